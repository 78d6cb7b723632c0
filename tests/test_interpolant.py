"""Interpolant: symbolic source, generated numerics, boundary proofs, clear errors."""

import numpy as np
import pytest
import sympy as sp
from hypothesis import given

import cmverify as cmv
from cmverify import interpolants
from cmverify import strategies as cst
from cmverify.symbolic import Coefficients, prove_boundary_conditions

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
    from cmverify.symbolic import time_derivative

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


def test_the_prover_proves_exactly_the_four_boundary_conditions():
    """All four conditions are proven, each once, also for a non-polynomial interpolant;
    dropping or garbling one in ``BOUNDARY_CONDITIONS`` changes this list."""
    four = ["alpha(0) = 1", "alpha(1) = 0", "sigma(0) = 0", "sigma(1) = 1"]
    assert prove_boundary_conditions(1 - t, t, t) == four
    assert prove_boundary_conditions(sp.cos(sp.pi * t / 2), sp.sin(sp.pi * t / 2), t) == four


@pytest.mark.parametrize("name", interpolants.names())
def test_named_interpolants_meet_the_boundary_conditions_exactly_in_float(name):
    """The generated numerics give α_0 = σ_1 = 1 and σ_0 = 0 exactly, and α_1 = 0 up to
    the rounding of ``cos(π/2)`` in float64 (6.1e-17, for trig and cos_linear)."""
    co = interpolants.by_name(name).at([0.0, 1.0])
    assert co.alpha[0] == 1.0
    assert co.sigma.tolist() == [0.0, 1.0]
    assert co.alpha[1] == (np.cos(np.pi / 2) if name in ("trig", "cos_linear") else 0.0)


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


BAD_TIMES = [
    (-0.1, r"^t must lie in \[0, 1\], got -0\.1$"),
    (1.5, r"^t must lie in \[0, 1\], got 1\.5$"),
    ([0.5, 2.0], r"^t must lie in \[0, 1\], got 2\.0$"),
    (np.nan, r"^t contains NaN or inf \(1 entry, first at index \(\)\)$"),
    ([0.5, np.inf, -np.inf], r"^t contains NaN or inf \(2 entries, first at index \(1,\)\)$"),
    ([[0.5]], r"^t must be a float or a 1-d array, got shape \(1, 1\)$"),
]


@pytest.mark.parametrize(("bad", "message"), BAD_TIMES)
def test_times_outside_unit_interval_are_rejected(bad, message):
    interp = cmv.Interpolant.linear()
    with pytest.raises(ValueError, match=message):
        interp.alpha(bad)
    with pytest.raises(ValueError, match=message):
        interp.at(bad)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("0.5", r"^t must be numeric, got str$"),
        (None, r"^t must be numeric, got NoneType$"),
        (True, r"^t must be a float or an array of floats, got bool$"),
        (1j, r"^t must be real, got complex dtype complex128$"),
    ],
)
def test_time_of_wrong_type(bad, message):
    with pytest.raises(TypeError, match=message):
        cmv.Interpolant.linear().alpha(bad)
    with pytest.raises(TypeError, match=message):
        cmv.Interpolant.linear().at(bad)


def test_at_returns_every_coefficient_with_known_values():
    """Linear: α = 1 − t, σ = t, α̇ = −1, σ̇ = 1, α̈ = σ̈ = 0, α α̇ = t − 1, σ σ̇ = t,
    d(α α̇)/dt = d(σ σ̇)/dt = 1. Trig at t = 1/2: α = σ = 1/√2, α̇ = −σ̇ = −π/(2√2),
    α α̇ = −π/4 sin(πt) = −π/4, σ σ̇ = π/4, d(α α̇)/dt = −π²/4 cos(πt) = 0."""
    tt = np.array([0.0, 0.25, 1.0])
    co = cmv.Interpolant.linear().at(tt)
    expected = {
        "alpha": 1 - tt,
        "sigma": tt,
        "dalpha": -np.ones(3),
        "dsigma": np.ones(3),
        "ddalpha": np.zeros(3),
        "ddsigma": np.zeros(3),
        "alpha_dalpha": tt - 1,
        "sigma_dsigma": tt,
        "d_alpha_dalpha": np.ones(3),
        "d_sigma_dsigma": np.ones(3),
    }
    for key, value in expected.items():
        np.testing.assert_array_equal(getattr(co, key), value, err_msg=key)
    np.testing.assert_array_equal(co.t, tt)
    trig = cmv.Interpolant.trig().at(0.5)
    r, q = np.sqrt(0.5), np.pi / 4
    known = {
        "alpha": r,
        "sigma": r,
        "dalpha": -q * 2 * r,
        "dsigma": q * 2 * r,
        "alpha_dalpha": -q,
        "sigma_dsigma": q,
        "d_alpha_dalpha": 0.0,
        "d_sigma_dsigma": 0.0,
    }
    for key, value in known.items():
        assert getattr(trig, key).shape == (), key
        assert float(getattr(trig, key)) == pytest.approx(value, rel=1e-15, abs=1e-15), key


@pytest.mark.parametrize("name", interpolants.names())
def test_at_agrees_with_the_methods(name):
    interp = interpolants.by_name(name)
    tt = np.linspace(0.0, 1.0, 17)
    co = interp.at(tt)
    assert co.interpolant is interp
    for key, _ in interp.expressions.items():
        np.testing.assert_array_equal(getattr(co, key), getattr(interp, key)(tt), err_msg=key)


def test_coefficients_are_read_only_and_kept():
    """A caller cannot corrupt the kept values (or the times) in place."""
    source = np.array([0.2, 0.4])
    co = cmv.Interpolant.trig().at(source)
    source[0] = 0.9  # the validated times are a copy
    assert co.t.tolist() == [0.2, 0.4]
    assert co.alpha is co.alpha
    for array in (co.t, co.alpha):
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 2.0
    with pytest.raises(AttributeError):
        co.alpha = np.zeros(2)
    assert Coefficients(0.5, cmv.Interpolant.linear()).sigma == 0.5
    with pytest.raises(TypeError, match=r"^interpolant must be an Interpolant, got str$"):
        Coefficients(0.5, "linear")


@pytest.mark.parametrize("name", interpolants.names())
def test_at_trusted_gives_the_values_of_at_without_checking(name):
    """The trusted door returns bit-for-bit what ``at`` does on validated times, keeps the
    caller's array (no copy) and does not check: a time outside [0, 1] is evaluated."""
    interp = interpolants.by_name(name)
    tt = np.linspace(0.0, 1.0, 9)
    co, trusted = interp.at(tt), interp.at_trusted(tt)
    assert trusted.t is tt and trusted.interpolant is interp
    for key, _ in interp.expressions.items():
        np.testing.assert_array_equal(getattr(trusted, key), getattr(co, key), err_msg=key)
    assert float(interp.at_trusted(np.float64(0.5)).alpha) == float(interp.alpha(0.5))
    if name == "linear":
        assert float(interp.at_trusted(np.array(2.0)).alpha) == -1.0  # 1 − t, unchecked


def test_equality_is_symbolic():
    s = sp.Symbol("s", real=True)
    same = cmv.Interpolant.from_sympy(sp.expand((1 - s) * 1), s, s)
    assert same == cmv.Interpolant.linear()
    assert cmv.Interpolant.trig() != cmv.Interpolant.linear()


def test_equal_interpolants_hash_alike():
    """Equality is symbolic, so the hash must not depend on the time symbol's name or
    assumptions, nor on how the expressions are written (the old hash of
    ``str(expr)`` gave ``1 - s`` and ``1 - t`` different hashes: a set kept both)."""
    s, u = sp.Symbol("s"), sp.Symbol("u", positive=True)
    linear, trig = cmv.Interpolant.linear(), cmv.Interpolant.trig()
    variants = [
        (cmv.Interpolant.from_sympy(1 - s, s, s), linear),
        (cmv.Interpolant.from_sympy(1 - sp.sqrt(u**2), sp.sqrt(u**2), u), linear),
        (
            cmv.Interpolant.from_sympy(sp.sin(sp.pi * (1 - t) / 2), sp.cos(sp.pi * (1 - t) / 2), t),
            trig,
        ),
    ]
    for variant, named in variants:
        assert variant == named and named == variant
        assert hash(variant) == hash(named)
        assert len({variant, named}) == 1
    assert len({linear, trig, *(v for v, _ in variants)}) == 2


def test_unequal_interpolants_are_told_apart():
    """Different functions (also ones that agree at the boundary and at t = 1/2)."""
    lin = cmv.Interpolant.linear()
    bent = cmv.Interpolant.from_sympy(1 - t + t * (1 - t) * (1 - 2 * t) / 4, t, t)
    assert float(bent.alpha(0.5)) == 0.5
    assert bent != lin and lin != bent
    assert hash(bent) != hash(lin)
    assert lin != "linear"


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

    for name in interpolants.names():
        e = interpolants.by_name(name).expressions
        for key in ("alpha", "sigma"):
            assert positive_inside(getattr(e, key), e.t) == (True, None), (name, key)


def test_positivity_falls_back_to_the_grid_where_sympy_cannot_decide():
    """1 − t + sin(2πt)/10 > 0 on (0, 1), but SymPy cannot solve ≤ 0: the numeric check
    accepts it; the verdict of ``positive_inside`` is None (undecided)."""
    from cmverify.symbolic import positive_inside

    alpha = 1 - t + sp.sin(2 * sp.pi * t) / 10
    assert positive_inside(alpha, t) == (None, None)
    assert cmv.Interpolant.from_sympy(alpha, t, t).alpha(0.5) == pytest.approx(0.5)
