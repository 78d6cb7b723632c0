"""The pytest plugin, exercised as a user would with ``pytester``."""

import pathlib
import re
import subprocess
import sys

import pytest

# Imported here, before pytester's in-process runs (which restore sys.modules after each
# run, and NumPy cannot be imported twice in one process).
from cmverify.claims import CATALOGUE, BatteryConfig

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


USER_CLAIMS = """
import numpy as np
from cmverify.claims import Case, Check, Claim
from cmverify.reference import fit_order, step_sizes


def remainder_order(expected):
    def measure(case, settings, rng):
        h = step_sizes(1 / 8, 6)
        fit = fit_order(h, np.abs(np.expm1(h) - h))  # e^h - 1 - h = h^2/2 + O(h^3)
        return [Check.against("order of e^h - 1 - h", "", fit.order, expected, 0.05, "Taylor")]
    return measure


def pytest_cmverify_claims(config):
    return [
        Claim("MY-ORDER", "a remainder", "e^h - 1 - h = O(h^2)", (Case("exp"),), remainder_order(2.0)),
        Claim("MY-WRONG", "a wrong order", "e^h - 1 - h = O(h)", (Case("exp"),), remainder_order(1.0)),
    ]
"""


def test_cmverify_claims_runs_the_users_claims_and_selected_catalogue_items(pytester):
    """A user's claims (one right, one wrong) and one real catalogue item picked with -k;
    the failure shows the table of checks."""
    pytester.makeconftest(USER_CLAIMS)
    result = pytester.runpytest(
        "--cmverify-claims", "-k", "MY- or PARAM-BOUNDARY and gaussian/trig", "-v"
    )
    quick = sum(len(c.selected_cases(BatteryConfig.quick_config())) for c in CATALOGUE.values())
    result.assert_outcomes(passed=2, failed=1, deselected=quick + 2 - 3)
    result.stdout.fnmatch_lines(
        [
            "cmverify-claims::PARAM-BOUNDARY[[]gaussian/trig[]] PASSED*",
            "cmverify-claims::MY-ORDER[[]exp[]] PASSED*",
            "cmverify-claims::MY-WRONG[[]exp[]] FAILED*",
            "MY-WRONG [[]exp[]]: 1 of 1 checks outside their error budget",
            "*check*case*measured*tolerance*detail*budget",
            "FAIL*order of e^h - 1 - h*exp*(value 2.0*, expected 1)*0.05*Taylor",
        ]
    )


def test_last_failed_and_failed_first_know_the_claim_items(pytester):
    """Regression (review finding 3): pytest 9 parses the node ids it caches into
    (path, names, params); a claim item whose id was the plain name ``ID[case]`` never
    equalled its cached id, so ``--lf`` reported "1 known failures not in selected
    tests" and reran every item."""
    pytester.makeconftest(USER_CLAIMS)
    pytester.makepyfile("def test_one():\n    pass\n")
    first = pytester.runpytest("--cmverify-claims", "-k", "MY- or test_one")
    first.assert_outcomes(passed=2, failed=1, deselected=first.parseoutcomes()["deselected"])
    again = pytester.runpytest("--cmverify-claims", "--lf", "-v")  # no -k: only the failure
    quick = sum(len(c.selected_cases(BatteryConfig.quick_config())) for c in CATALOGUE.values())
    again.assert_outcomes(failed=1, deselected=quick + 2)
    again.stdout.fnmatch_lines(
        ["run-last-failure: rerun previous 1 failure", "cmverify-claims::MY-WRONG[[]exp[]] FAILED*"]
    )
    first_first = pytester.runpytest("--cmverify-claims", "--ff", "-k", "MY-", "-v")
    first_first.assert_outcomes(passed=1, failed=1, deselected=quick + 1)  # + test_one
    first_first.stdout.fnmatch_lines(
        [
            "run-last-failure: rerun previous 1 failure first",
            "cmverify-claims::MY-WRONG[[]exp[]] FAILED*",
            "cmverify-claims::MY-ORDER[[]exp[]] PASSED*",
        ]
    )


def test_a_printed_claim_node_id_is_accepted_on_the_command_line(pytester):
    """``--collect-only -q`` prints node ids; given back as arguments (no option needed)
    they select exactly those items, next to files given with them; an id that names
    no item is a usage error (before, any claim id was "file or directory not found")."""
    pytester.makeconftest(USER_CLAIMS)
    pytester.makepyfile(test_mine="def test_one():\n    pass\n")
    listed = pytester.runpytest("--cmverify-claims", "--collect-only", "-q", "-k", "MY-WRONG")
    node_id = "cmverify-claims::MY-WRONG[exp]"
    assert node_id in listed.stdout.lines
    result = pytester.runpytest(node_id, "-v")
    result.assert_outcomes(failed=1)  # the claim only: test_mine.py is not collected
    result.stdout.fnmatch_lines(["*collected 1 item", "cmverify-claims::MY-WRONG[[]exp[]] FAILED*"])
    both = pytester.runpytest("test_mine.py", "cmverify-claims::MY-ORDER", node_id)
    both.assert_outcomes(passed=2, failed=1)
    every = pytester.runpytest("cmverify-claims", "--collect-only", "-q")
    quick = sum(len(c.selected_cases(BatteryConfig.quick_config())) for c in CATALOGUE.values())
    every.stdout.fnmatch_lines([f"{quick + 2} tests collected*"])
    for wrong, why in [
        ("cmverify-claims::MY-WRONG[nope]", "no claim item 'cmverify-claims::MY-WRONG[[]nope[]]'"),
        ("cmverify-claims::NO-SUCH", "no claim item 'cmverify-claims::NO-SUCH'"),
        ("cmverify-claims::CT-GLOBAL[mild_bimodal/trig]", "*--cmverify-claims-full every case)"),
    ]:
        refused = pytester.runpytest(wrong)
        assert refused.ret == pytest.ExitCode.USAGE_ERROR
        refused.stderr.fnmatch_lines([f"*{why}*"])
    full = pytester.runpytest("--cmverify-claims-full", "cmverify-claims::CT-GLOBAL", "--co", "-q")
    full.stdout.fnmatch_lines(["cmverify-claims::CT-GLOBAL[[]mild_bimodal/trig[]]"])


def test_without_the_option_no_claim_is_collected(pytester):
    """The hook is not even called (the conftest's would fail the run), and the claims
    layer is not imported (in a fresh process)."""
    pytester.makeconftest("def pytest_cmverify_claims():\n    raise RuntimeError('called')\n")
    pytester.makepyfile(
        "import sys\n"
        "def test_one():\n"
        "    assert not {'cmverify.claims', 'sympy'} & set(sys.modules)\n"
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)


def _readme_conftest() -> str:
    readme = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    (block,) = [b for b in blocks if "def pytest_cmverify_claims" in b]
    return block


def test_the_readme_conftest_costs_nothing_without_the_option(pytester):
    """Regression (review finding 8): the README's conftest imported cmverify.claims at
    the top (SymPy, SciPy, the catalogue: +2.6 s measured on a one-test project, every
    pytest run). As written now it imports nothing of cmverify (nor NumPy) unless
    ``--cmverify-claims`` is given, and its claim passes under the option."""
    pytester.makeconftest(_readme_conftest())
    pytester.makepyfile(
        "import sys\n"
        "def test_one():\n"
        "    assert not {'cmverify.claims', 'cmverify.reference', 'numpy'} & set(sys.modules)\n"
    )
    pytester.runpytest_subprocess().assert_outcomes(passed=1)
    result = pytester.runpytest("--cmverify-claims", "-k", "EXPM1", "-v")
    result.assert_outcomes(passed=1, deselected=result.parseoutcomes()["deselected"])
    result.stdout.fnmatch_lines(["cmverify-claims::EXPM1-ORDER[[]exp[]] PASSED*"])


def test_full_collects_every_case_and_the_marker_selects_claims(pytester):
    pytester.makepyfile("def test_one():\n    pass\n")
    quick = pytester.runpytest("--cmverify-claims", "--collect-only", "-q", "-m", "cmverify_claim")
    full = pytester.runpytest("--cmverify-claims-full", "--collect-only", "-q")
    n_quick = sum(len(c.selected_cases(BatteryConfig.quick_config())) for c in CATALOGUE.values())
    n_full = sum(len(c.cases) for c in CATALOGUE.values())
    assert n_full > n_quick
    quick.stdout.fnmatch_lines(
        ["cmverify-claims::CT-GLOBAL[[]mild_bimodal/linear[]]", f"{n_quick}/{n_quick + 1} *"]
    )
    assert "mild_bimodal/trig" not in quick.stdout.str()
    full.stdout.fnmatch_lines(
        ["cmverify-claims::CT-GLOBAL[[]mild_bimodal/trig[]]", f"{n_full + 1} tests collected*"]
    )


def test_a_hook_returning_something_else_or_a_taken_id_is_a_usage_error(pytester):
    pytester.makeconftest(
        "from cmverify.claims import CATALOGUE\n"
        "def pytest_cmverify_claims():\n"
        "    return [CATALOGUE['EULER-LOCAL']]\n"
    )
    result = pytester.runpytest("--cmverify-claims")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*claim id(s) EULER-LOCAL given more than once*"])
    pytester.makeconftest("def pytest_cmverify_claims():\n    return ['EULER-LOCAL']\n")
    result = pytester.runpytest("--cmverify-claims")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*returned str, not a cmverify.claims.Claim*"])


def test_loading_the_plugin_imports_nothing_heavy():
    """pytest imports the plugin in every run of the environment: it (and the top-level
    package) must not import NumPy, SciPy, SymPy, torch or matplotlib (SciPy and SymPy
    used to add 2.4 s to a trivial test)."""
    code = (
        "import sys, cmverify.pytest_plugin, cmverify.testing._plugin\n"
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
