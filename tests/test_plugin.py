"""The pytest plugin, exercised as a user would with ``pytester``."""

pytest_plugins = ["pytester"]

USER_TEST = """
import numpy as np

def test_matches(cmverify_reference, cmverify_path, assert_matches_reference):
    path = cmverify_path("seed_bimodal")
    flow = cmverify_reference("seed_bimodal")
    assert_matches_reference(lambda t, x: flow.consistency(t, x), path, atol=1e-6,
                             times=[0.0, 0.5, 1.0], n=200)

def test_biased(cmverify_reference, cmverify_path, assert_matches_reference):
    path = cmverify_path("seed_bimodal")
    flow = cmverify_reference("seed_bimodal")
    def model(t, x):
        return flow.consistency(t, x) + (0.3 if t == 0.5 else 0.0)
    assert_matches_reference(model, path, atol=0.1, times=[0.0, 0.5, 1.0], n=200)
"""


def test_plugin_passing_and_failing_user_tests(pytester):
    pytester.makepyfile(USER_TEST)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*does not match the exact flow map of seed_bimodal / linear within atol = 0.1*",
            "*t = 0.5: max |f − f*| = 0.3 > atol = 0.1*worst at x_t = (*",
        ]
    )
