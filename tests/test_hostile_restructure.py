"""Regressions from the hostile review of issue 11's restructure: each test is one
defect a new user found (a velocity field that edits its input, complex velocities,
``--lf`` on claim items, measurement errors reported as usage errors, old exports, the
deprecation warning's line, invalid check tolerances, the sampler's input)."""

import importlib
import subprocess
import sys
import warnings

import numpy as np
import pytest

import cmverify as cmv

# Imported before pytester's in-process runs (which restore sys.modules after each run,
# and NumPy cannot be imported twice in one process).
from cmverify.claims import Check

pytest_plugins = ["pytester"]


@pytest.fixture(scope="module")
def path():
    return cmv.MixturePath(cmv.mixtures.eight_gaussians(), cmv.Interpolant.linear())


X = np.array([[0.3, -0.2], [1.0, 0.5]])


class _Field:
    """A VelocityField around ``fn(t, x)``."""

    dim = 2

    def __init__(self, fn):
        self.fn = fn

    def velocity(self, t, x):
        return self.fn(t, x)


# Finding 1: the solver's own array is handed to the user's field.
def test_a_field_that_edits_its_input_cannot_change_the_flow(path):
    def edits_input(t, x):
        v = path.velocity(t, x)
        x[:] = 0.0  # an in-place habit: must not reach the solver's state
        return v

    exact = cmv.ReferenceFlow(path).map(X, 1.0, 0.0)
    try:
        hostile = cmv.ReferenceFlow(_Field(edits_input)).map(X, 1.0, 0.0)
    except ValueError:  # a read-only input refusing the edit is a fix too
        return
    np.testing.assert_allclose(hostile, exact, atol=1e-8)


# Finding 2: complex velocities are cast to real with a warning only.
def test_a_complex_velocity_is_rejected(path):
    field = _Field(lambda t, x: path.velocity(t, x) + 1j)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises((TypeError, ValueError), match="velocity"):
            cmv.ReferenceFlow(field).map(X, 1.0, 0.0)


# Finding 3: claim items' node ids do not match pytest's cached ids.
LF_CLAIMS = """
from cmverify.claims import Case, Check, Claim

def passes(case, settings, rng):
    return [Check("fine", "", 0.5, 1.0, "budget")]

def fails(case, settings, rng):
    return [Check("off", "", 5.0, 1.0, "budget")]

def pytest_cmverify_claims():
    return [
        Claim("R-PASSES", "passes", "0.5 <= 1", (Case("c"),), passes),
        Claim("R-FAILS", "fails", "5 <= 1", (Case("c"),), fails),
    ]
"""


def test_last_failed_reruns_only_the_failed_claim(pytester):
    pytester.makeconftest(LF_CLAIMS)
    first = pytester.runpytest("--cmverify-claims", "-k", "R-PASSES or R-FAILS")
    first.assert_outcomes(passed=1, failed=1, deselected=first.parseoutcomes()["deselected"])
    again = pytester.runpytest("--cmverify-claims", "-k", "R-PASSES or R-FAILS", "--lf")
    outcomes = again.parseoutcomes()
    assert outcomes.get("failed") == 1
    assert "passed" not in outcomes  # only the failure is rerun


# Finding 4: a ValueError from a measurement is reported as a usage error (exit 2).
def test_a_measurement_error_is_not_a_usage_error(capsys):
    from cmverify.claims import CATALOGUE
    from cmverify.cli import main

    def broken(case, settings, rng):
        raise ValueError("an internal error of the measurement")

    claim = CATALOGUE["PARAM-BOUNDARY"]
    measure = claim.measure
    object.__setattr__(claim, "measure", broken)  # a frozen dataclass: restored below
    try:
        status = main(["verify", "--claim", "PARAM-BOUNDARY", "--quick"])
    except ValueError:
        status = None  # propagating with its traceback is fine
    finally:
        object.__setattr__(claim, "measure", measure)
    assert status != 2, capsys.readouterr().err


# Finding 5: names of the old modules' __all__ that the shim no longer provides.
@pytest.mark.parametrize(
    ("old", "name"),
    [
        ("cmverify.claims.sampling", "multistep_samples"),
        ("cmverify.proofs.core", "math_latex"),
        ("cmverify.proofs.core", "tex_width"),
        ("cmverify.train.checkpoint", "check_writable"),
    ],
)
def test_old_all_names_still_import(old, name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = importlib.import_module(old)
    assert hasattr(module, name), f"from {old} import {name} fails"


# Finding 6: the warning of `from cmverify import flow` is attributed to importlib.
def test_from_import_of_an_old_module_warns_at_the_callers_line():
    code = (
        "import warnings\n"
        "warnings.simplefilter('always')\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    from cmverify import flow\n"
        "print([w.filename for w in caught if w.category is DeprecationWarning])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "['<string>']"


# Finding 7: NaN tolerances make the verdict's "worst" depend on the order of checks.
def test_check_rejects_a_nan_or_negative_tolerance():
    with pytest.raises(ValueError, match="tolerance"):
        Check("a", "", 0.0, float("nan"), "budget")
    with pytest.raises(ValueError, match="tolerance"):
        Check("a", "", -5.0, -1.0, "budget")


# Finding 9: the public multistep sampler validates nothing.
@pytest.mark.parametrize("times", [[float("nan"), 0.5], [0.2, 0.8], [2.0, 0.5]])
def test_multistep_sample_rejects_bad_times(times):
    from cmverify.reference import multistep_sample

    with pytest.raises(ValueError, match="times"):
        multistep_sample(
            cmv.Interpolant.linear(),
            lambda t, x: x,
            times,
            np.ones((3, 2)),
            np.random.default_rng(0),
        )
