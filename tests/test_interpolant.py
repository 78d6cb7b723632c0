"""Interpolant: symbolic source, generated numerics, boundary proofs, clear errors."""

import numpy as np
import pytest
import sympy as sp
from hypothesis import given

import cmverify as cmv
from cmverify import strategies as cst
from cmverify.symbolic import BOUNDARY_CONDITIONS

t = sp.Symbol("t", real=True)


def test_linear_values():
    lin = cmv.Interpolant.linear()
    tt = np.array([0.0, 0.25, 1.0])
    np.testing.assert_array_equal(lin.alpha(tt), 1 - tt)
    np.testing.assert_array_equal(lin.sigma(tt), tt)
    np.testing.assert_array_equal(lin.dalpha(tt), -np.ones(3))
    np.testing.assert_array_equal(lin.dsigma(tt), np.ones(3))
    assert lin.dalpha(0.5).shape == ()


def test_trig_values():
    trig = cmv.Interpolant.trig()
    tt = np.linspace(0, 1, 7)
    np.testing.assert_allclose(trig.alpha(tt), np.cos(np.pi * tt / 2), atol=1e-16)
    np.testing.assert_allclose(trig.dsigma(tt), np.pi / 2 * np.cos(np.pi * tt / 2), atol=1e-15)
    np.testing.assert_allclose(trig.alpha(tt) ** 2 + trig.sigma(tt) ** 2, 1.0, rtol=1e-15)


@given(interp=cst.interpolants(), s=cst.times().filter(lambda s: s == 0 or s > 1e-100))
def test_numerics_are_generated_from_the_expressions(interp, s):
    """Every numeric method agrees with evaluating its SymPy expression at high precision.

    (Times below 1e-100 are left out: ``σ̈ ∝ t^{-3/2}/t`` of the sqrt interpolant squares
    ``t`` into the subnormal range, where float64 loses relative precision.)"""
    e = interp.expressions
    for key, expr in e.items():
        value = getattr(interp, key)(s)
        exact = sp.N(expr.subs(e.t, sp.Rational(s)), 30)
        if exact.is_finite:
            assert value == pytest.approx(float(exact), rel=1e-13, abs=1e-14), key
        else:
            assert not np.isfinite(value), key


@given(interp=cst.interpolants(), s=cst.times(endpoints=False))
def test_derivatives_match_finite_differences(interp, s):
    from cmverify.numdiff import time_derivative

    h = 1e-4
    for f, df in (
        (interp.alpha, interp.dalpha),
        (interp.sigma, interp.dsigma),
        (interp.dalpha, interp.ddalpha),
    ):
        # 6th-order stencil (one-sided near the ends): truncation ≲ 1e-12 relative here,
        # but σ = sqrt(1 − (1 − t)²) has scale t near 0: skip where the stencil would see it.
        if interp.name == "sqrt" and s < 1e-2:
            continue
        fd = time_derivative(f, s, h)
        assert fd == pytest.approx(float(df(s)), rel=1e-7, abs=1e-7)


def test_singular_interpolant_products_are_finite():
    """σ = sqrt(1 − (1 − t)²): σ̇ = ∞ at t = 0, but σ σ̇ = 1 − t after simplification."""
    interp = cmv.Interpolant.from_sympy(1 - t, sp.sqrt(1 - (1 - t) ** 2), t)
    assert sp.simplify(interp.expressions.sigma_dsigma - (1 - t)) == 0
    assert not np.isfinite(interp.dsigma(0.0))
    assert interp.sigma_dsigma(0.0) == 1.0
    assert interp.alpha_dalpha(0.0) == -1.0


VIOLATIONS = [
    # (alpha, sigma, the one condition violated)
    (2 * (1 - t), t, r"alpha\(0\) = 1"),
    (1 - t / 2, t, r"alpha\(1\) = 0"),
    (1 - t, (1 + t) / 2, r"sigma\(0\) = 0"),
    (1 - t, t / 2, r"sigma\(1\) = 1"),
]


@pytest.mark.parametrize(("alpha", "sigma", "message"), VIOLATIONS)
def test_each_violated_boundary_condition_is_named(alpha, sigma, message):
    with pytest.raises(ValueError, match=message):
        cmv.Interpolant.from_sympy(alpha, sigma, t)


def test_boundary_conditions_cover_all_four():
    assert {(c, a) for c, a, _ in BOUNDARY_CONDITIONS} == {
        ("alpha", 0),
        ("alpha", 1),
        ("sigma", 0),
        ("sigma", 1),
    }


def test_from_sympy_argument_errors():
    x = sp.Symbol("x")
    with pytest.raises(ValueError, match=r"sigma may depend on t only.*x"):
        cmv.Interpolant.from_sympy(1 - t, t * x, t)
    with pytest.raises(TypeError, match=r"t must be a sympy\.Symbol"):
        cmv.Interpolant.from_sympy(1 - t, t, "t")
    with pytest.raises(TypeError, match="alpha must be a SymPy expression"):
        cmv.Interpolant.from_sympy(object(), t, t)
    with pytest.raises(ValueError, match=r"alpha = sigma = 0 at t = 0\.5"):
        cmv.Interpolant.from_sympy((1 - t) * (1 - 2 * t) ** 2, t * (1 - 2 * t) ** 2, t)
    with pytest.raises(ValueError, match=r"sigma .* not finite at t = 0\.5"):
        cmv.Interpolant.from_sympy(1 - t, t**2 / (2 * t - 1), t)
    with pytest.raises(ValueError, match="not defined at t = 0"):
        cmv.Interpolant.from_sympy(1 - t, t * sp.log(t), t)
    with pytest.raises(ValueError, match=r"dalpha .* not finite at t = 1"):
        cmv.Interpolant.from_sympy(sp.sqrt(1 - t), t, t)


@pytest.mark.parametrize("bad", [-0.1, 1.5, np.nan, np.inf, [0.5, 2.0]])
def test_times_outside_unit_interval_are_rejected(bad):
    with pytest.raises(ValueError, match="t"):
        cmv.Interpolant.linear().alpha(bad)


def test_time_of_wrong_type():
    with pytest.raises(TypeError, match="t must be numeric"):
        cmv.Interpolant.linear().alpha("0.5")


def test_equality_is_symbolic():
    s = sp.Symbol("s", real=True)
    same = cmv.Interpolant.from_sympy(sp.expand((1 - s) * 1), s, s)
    assert same == cmv.Interpolant.linear()
    assert cmv.Interpolant.trig() != cmv.Interpolant.linear()


NONPOSITIVE = [
    # (alpha, sigma, message): the derivations assume alpha, sigma > 0 inside (0, 1)
    (
        (1 - t) * (1 - 3 * t),
        t,
        r"but alpha = -0\.333333 at t = 2/3 \(found symbolically\)",
    ),
    (1 - t, t * (3 * t - 2), r"but sigma = -0\.333333 at t = 1/3 \(found symbolically\)"),
    ((1 - t) * (1 - 2 * t) ** 2, t, r"but alpha = 0 at t = 1/2 \(found symbolically\)"),
    (
        1 - t,
        -sp.sin(3 * sp.pi * t / 2),
        r"but sigma = -1 at t = 1/3 \(found symbolically\)",
    ),
    # SymPy leaves 1 − t + (3/5) sin 2πt ≤ 0 as a ConditionSet: the dense numeric check
    (
        1 - t + sp.Rational(3, 5) * sp.sin(2 * sp.pi * t),
        t,
        r"but alpha = -1\.\d+e-06 at t = 0\.61194 \(on a grid of 100,001 points\)",
    ),
]


@pytest.mark.parametrize(("alpha", "sigma", "message"), NONPOSITIVE)
def test_nonpositive_coefficient_inside_the_interval_is_refused(alpha, sigma, message):
    """These satisfy the four boundary conditions, but α or σ vanishes or turns negative
    inside (0, 1) (the old code accepted them)."""
    with pytest.raises(ValueError, match=r"must be positive inside \(0, 1\) .*" + message):
        cmv.Interpolant.from_sympy(alpha, sigma, t)


def test_positivity_is_proven_symbolically_for_the_named_interpolants():
    """``positive_inside`` decides every named interpolant's α and σ symbolically."""
    from cmverify.symbolic import positive_inside

    for name, interp in cst.named_interpolants().items():
        e = interp.expressions
        for key in ("alpha", "sigma"):
            assert positive_inside(getattr(e, key), e.t) == (True, None), (name, key)


def test_positivity_falls_back_to_the_grid_where_sympy_cannot_decide():
    """1 − t + sin(2πt)/10 > 0 on (0, 1), but SymPy cannot solve ≤ 0: the numeric check
    accepts it; the verdict of ``positive_inside`` is None (undecided)."""
    from cmverify.symbolic import positive_inside

    alpha = 1 - t + sp.sin(2 * sp.pi * t) / 10
    assert positive_inside(alpha, t) == (None, None)
    assert cmv.Interpolant.from_sympy(alpha, t, t).alpha(0.5) == pytest.approx(0.5)
