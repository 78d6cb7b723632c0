"""The pytest plugin, exercised as a user would with ``pytester``."""

import subprocess
import sys

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


def test_loading_the_plugin_imports_nothing_heavy():
    """pytest imports the plugin in every run of the environment: it (and the top-level
    package) must not import NumPy, SciPy, SymPy, torch or matplotlib (SciPy and SymPy
    used to add 2.4 s to a trivial test)."""
    code = (
        "import sys, cmverify.pytest_plugin\n"
        "heavy = ('numpy', 'scipy', 'sympy', 'torch', 'matplotlib', 'cmverify.exact._path')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_public_names_are_imported_on_first_access():
    code = (
        "import sys, cmverify as cmv\n"
        "assert 'sympy' not in sys.modules\n"
        "assert cmv.MixturePath is __import__('cmverify.exact._path').path.MixturePath\n"
        "assert set(cmv.__all__) <= set(dir(cmv)) and cmv.mixtures.eight_gaussians().dim == 2\n"
        "try:\n    cmv.no_such_name\nexcept AttributeError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "module 'cmverify' has no attribute 'no_such_name'"
