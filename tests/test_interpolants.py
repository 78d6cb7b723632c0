"""The interpolant catalogue: names, lookup, known values, shared instances, errors."""

import numpy as np
import pytest
import sympy as sp

import cmverify as cmv
from cmverify import interpolants
from cmverify.testing import named_path

NAMES = ["linear", "trig", "quadratic", "cos_linear", "sqrt"]
#: Closed forms of (α_t, σ_t), typed independently of the catalogue's SymPy expressions.
CLOSED_FORMS = {
    "linear": (lambda t: 1 - t, lambda t: t),
    "trig": (lambda t: np.cos(np.pi * t / 2), lambda t: np.sin(np.pi * t / 2)),
    "quadratic": (lambda t: (1 - t) ** 2, lambda t: 1 - (1 - t) ** 2),
    "cos_linear": (lambda t: np.cos(np.pi * t / 2), lambda t: t),
    "sqrt": (lambda t: 1 - t, lambda t: np.sqrt(1 - (1 - t) ** 2)),
}


def test_names_in_catalogue_order():
    assert interpolants.names() == NAMES
    assert interpolants.names(include_singular=False) == NAMES[:-1]
    assert interpolants.SINGULAR == {"sqrt"}


@pytest.mark.parametrize("name", NAMES)
def test_named_interpolants_have_their_closed_forms(name):
    interp = interpolants.by_name(name)
    assert interp.name == name
    assert interp is getattr(interpolants, name)()
    alpha, sigma = CLOSED_FORMS[name]
    tt = np.linspace(0.0, 1.0, 41)
    np.testing.assert_allclose(interp.alpha(tt), alpha(tt), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(interp.sigma(tt), sigma(tt), rtol=1e-14, atol=1e-15)


def test_known_values_at_one_half():
    """α, σ at t = 1/2 by hand, and σ σ̇ of the singular one (σ σ̇ = 1 − t, finite at 0)."""
    half = {name: (float(i.alpha(0.5)), float(i.sigma(0.5))) for name, i in _all()}
    r = np.sqrt(0.5)
    expected = {
        "linear": (0.5, 0.5),
        "trig": (r, r),
        "quadratic": (0.25, 0.75),
        "cos_linear": (r, 0.5),
        "sqrt": (0.5, np.sqrt(0.75)),
    }
    for name, values in expected.items():
        assert half[name] == pytest.approx(values, rel=1e-15), name
    assert interpolants.sqrt().sigma_dsigma(0.0) == 1.0
    assert interpolants.sqrt().sigma_dsigma(0.5) == 0.5


def test_singular_set_matches_the_numerics():
    """A name is in SINGULAR exactly when α̇ or σ̇ is infinite somewhere on [0, 1]."""
    grid = np.linspace(0.0, 1.0, 101)
    for name, interp in _all():
        finite = np.all(np.isfinite(interp.dalpha(grid))) and np.all(
            np.isfinite(interp.dsigma(grid))
        )
        assert finite == (name not in interpolants.SINGULAR), name


def test_instances_are_built_once_and_shared():
    assert interpolants.by_name("trig") is interpolants.by_name("trig") is cmv.Interpolant.trig()
    assert interpolants.linear() is cmv.Interpolant.linear()
    assert interpolants.by_name("quadratic") is interpolants.quadratic()


@pytest.mark.parametrize("spelling", ["cos-linear", "COS_LINEAR", "  cos_linear "])
def test_dashes_case_and_spaces_are_accepted(spelling):
    assert interpolants.by_name(spelling) is interpolants.cos_linear()


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(
        ValueError,
        match=r"^unknown interpolant 'cubic'; known: linear, trig, quadratic, cos_linear, sqrt$",
    ):
        interpolants.by_name("cubic")
    with pytest.raises(TypeError, match=r"^name must be a string, got Interpolant$"):
        interpolants.by_name(cmv.Interpolant.linear())


def test_catalogue_is_a_lazy_public_module():
    assert cmv.interpolants is interpolants
    assert "interpolants" in cmv.__all__


def test_named_path_uses_the_catalogue():
    path = named_path("gaussian", "cos-linear")
    assert path.interpolant is interpolants.cos_linear()
    np.testing.assert_array_equal(path.mixture.means, [[0.5, -0.25]])
    with pytest.raises(ValueError, match=r"^unknown interpolant 'vp'; known: linear, trig"):
        named_path("gaussian", "vp")
    with pytest.raises(ValueError, match=r"^unknown mixture 'nope'"):
        named_path("nope")


def test_train_config_accepts_every_catalogue_name():
    pytest.importorskip("torch")
    from cmverify.train import TrainConfig

    assert TrainConfig(interpolant="quadratic").interpolant == "quadratic"
    with pytest.raises(ValueError, match=r"^unknown interpolant 'vp'; known: linear, trig"):
        TrainConfig(interpolant="vp")


def test_catalogue_interpolants_are_distinct_and_hash_apart():
    items = [i for _, i in _all()]
    assert len(set(items)) == len(NAMES)
    t = sp.Symbol("tau", positive=True)
    again = cmv.Interpolant.from_sympy((1 - t) ** 2, t * (2 - t), t)
    assert again == interpolants.quadratic()
    assert again in set(items)


def _all():
    return [(name, interpolants.by_name(name)) for name in interpolants.names()]
