"""Hostile review of cmverify.flowmaps (issue 12): regressions of the defects found, and
checks of every kind in its paper's own variables, independent of the round trip
``as_flow_map(exact(path, kind), kind)`` (which would pass with a convention misread the
same way in both directions).

Truths are closed forms for one Gaussian ``N(μ, c² I)``: our flow map
(:func:`cmverify.reference.gaussian_flow_map`), the VE flow map
``Y_{ς→ς'}(y) = μ + √((c² + ς'²)/(c² + ς²)) (y − μ)`` (CTM's variables) and TrigFlow's
consistency function ``f(x, τ) = μ + c (x − cos τ μ)/√(cos²τ c² + sin²τ σ_d²)``, from its
process ``x_τ = cos τ x0 + sin τ z``, ``z ~ N(0, σ_d² I)``.
"""

import warnings

import numpy as np
import pytest

from cmverify import flowmaps
from cmverify.exact import GaussianMixture, MixturePath, mixtures
from cmverify.reference import ReferenceFlow, gaussian_flow_map
from cmverify.symbolic import interpolants

MU, C = np.array([1.5, -0.7]), 0.3
COV = C**2 * np.eye(2)


def gaussian_path(name: str) -> MixturePath:
    return MixturePath(GaussianMixture([1.0], MU[None], COV[None]), interpolants.by_name(name))


def relative(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.max(np.linalg.norm(got - want, axis=1) / (1 + np.linalg.norm(want, axis=1))))


def ve_map(y: np.ndarray, big: float, small: float) -> np.ndarray:
    return MU + np.sqrt((C**2 + small**2) / (C**2 + big**2)) * (y - MU)


# -- CTM at large noise levels (a float time's ς is not the asked one) -----------------
@pytest.mark.parametrize("name", ["linear", "trig", "sqrt"])
def test_ctm_exact_at_large_noise_levels(name):
    """Before: the network ran from the nearest float time's ς(t), up to ς²·1e-16 away
    (5e-10 relative at ς = 1e7, 1e-7 at 1e11, 3e-4 at 1e15); now within rounding."""
    net = flowmaps.exact(gaussian_path(name), "ctm")
    rng = np.random.default_rng(0)
    for big, small in [(80.0, 0.002), (1e7, 1.0), (1e11, 0.0), (1e15, 1e3)]:
        y = MU + big * rng.normal(size=(20, 2))
        assert relative(net(y, big, small), ve_map(y, big, small)) < 1e-13, (big, small)


def test_ctm_still_interpolant_free_at_large_noise_levels():
    """G does not depend on the interpolant; before the fix linear and trig disagreed by
    ~3e-8 at ς = 1e9 on eight_gaussians (each off by its own time quantization)."""
    y = 1e9 * np.random.default_rng(1).normal(size=(12, 2))
    linear, trig = (
        flowmaps.exact(MixturePath(mixtures.eight_gaussians(), interpolants.by_name(n)), "ctm")
        for n in ("linear", "trig")
    )
    assert relative(trig(y, 1e9, 0.0), linear(y, 1e9, 0.0)) < 1e-13


def test_ctm_refuses_a_noise_level_no_float_time_carries():
    """Before: ς > σ/α at the last float below 1 was silently run from that float
    (G(y, 1e17, 0) off by a factor 3 on one Gaussian)."""
    net = flowmaps.exact(gaussian_path("linear"), "ctm")
    y = np.ones((2, 2))
    with pytest.raises(ValueError, match=r"ctm needs ς ≤ 9\.007e\+15 on the 'linear' .*1e\+17"):
        net(y, np.array([10.0, 1e17]), 0.0)
    # quadratic's σ/α = t(2 − t)/(1 − t)² reaches 8e31: 1e17 has a time there
    quad = flowmaps.exact(gaussian_path("quadratic"), "ctm")
    assert relative(quad(y, 1e17, 0.0), ve_map(y, 1e17, 0.0)) < 1e-13


def test_noise_level_bound_reads_as_a_sentence():
    net = flowmaps.exact(gaussian_path("linear"), "ctm")
    with pytest.raises(ValueError, match=r"^sigma_prime \(ς'\) must be ≥ 0, got -0\.5$"):
        net(np.zeros((1, 2)), 1.0, -0.5)


# -- times: bool arrays, and shortcut's grid -------------------------------------------
def test_bool_time_arrays_refused():
    """A bool scalar was refused but a bool array read as 0/1 (s = True: X_{1→t})."""
    path = gaussian_path("linear")
    with pytest.raises(TypeError, match="s must be a float or an array of floats, got bool"):
        flowmaps.exact(path, "map")(np.zeros((2, 2)), np.array([True, False]), 0.0)
    flow_map = flowmaps.as_flow_map(lambda x, t, s: x, "ayf")
    with pytest.raises(TypeError, match="t must be a float or an array of floats, got bool"):
        flow_map.map(np.zeros((2, 2)), 0.5, np.array([False, False]))
    with pytest.raises(TypeError, match="s must be a float or an array of floats, got bool"):
        flow_map.map(np.zeros((2, 2)), [True, True], 0.0)
    # the layers below refuse them too (they read True as t = 1 before)
    with pytest.raises(TypeError, match=r"^t must be a float or an array of floats, got bool"):
        path.velocity(np.array([True, False]), np.zeros((2, 2)))
    with pytest.raises(TypeError, match=r"^s must be a float or an array of floats, got bool"):
        ReferenceFlow(path).map(np.zeros((2, 2)), [True, 0.5], 0.0)


def test_dyadic_grid_snaps_only_rounding():
    """τ = 1 − s 1e-10 off the grid was snapped silently (X computed 1e-10 away in time);
    rounding (1e-16) still snaps."""
    flow_map = flowmaps.as_flow_map(lambda x, tau, d: np.ones_like(x), "shortcut", dyadic=True)
    with pytest.raises(ValueError, match=r"τ = 1 − s on the d-grid"):
        flow_map.map(np.zeros((1, 2)), 0.375 + 1e-10, 0.25 + 1e-10)
    got = flow_map.map(np.zeros((1, 2)), 0.375 + 1e-16, 0.25)
    assert got[0, 0] == 0.125


# -- each kind in its paper's variables, against closed forms ---------------------------
@pytest.mark.parametrize("name", ["linear", "trig"])
def test_two_time_kinds_against_the_gaussian_closed_form(name):
    """MeanFlow u(z, r, t) = (z − X_{t→r}(z))/(t − r); AYF F(x, t, s) = (X_{t→s}(x) − x)/(s − t);
    flow map matching X^B(x, s, t) = X_{1−s→1−t}(x); shortcut s(x, τ, d) with
    x_{τ+d} = x_τ + d s, τ = 1 − t; consistency f(t, x) = X_{t→0}(x)."""
    path = gaussian_path(name)
    interp = path.interpolant
    x = 1.3 * np.random.default_rng(2).normal(size=(8, 2))

    def X(s, t):
        return gaussian_flow_map(MU, COV, interp, x, s, t)

    assert relative(flowmaps.exact(path, "meanflow")(x, 0.2, 0.9), (x - X(0.9, 0.2)) / 0.7) < 1e-13
    th = flowmaps.exact(path, "meanflow", time_inputs="t,t-r")(x, 0.9, 0.7)
    assert relative(th, (x - X(0.9, 0.2)) / 0.7) < 1e-13
    assert relative(flowmaps.exact(path, "ayf")(x, 0.3, 0.8), (X(0.3, 0.8) - x) / 0.5) < 1e-13
    assert relative(flowmaps.exact(path, "boffi")(x, 0.1, 0.6), X(0.9, 0.4)) < 1e-13
    shortcut = flowmaps.exact(path, "shortcut")(x, 0.25, 0.5)  # from t = 0.75 to 0.25
    assert relative(x + 0.5 * shortcut, X(0.75, 0.25)) < 1e-13
    assert relative(flowmaps.exact(path, "consistency")(0.6, x), X(0.6, 0.0)) < 1e-13


@pytest.mark.parametrize("sigma_data", [0.5, 2.0])
def test_trigflow_against_its_own_process(sigma_data):
    """TrigFlow's f(x, τ) = cos τ x − sin τ σ_d F(x/σ_d, τ) from its own process, not from
    trigflow_path (which the round trip shares with the exact network)."""
    path = gaussian_path("trig")
    net = flowmaps.exact(path, "trigflow", sigma_data=sigma_data)
    flow_map = flowmaps.as_flow_map(net, "trigflow", sigma_data=sigma_data)
    x = 1.1 * np.random.default_rng(3).normal(size=(8, 2))
    for tau in (0.3, 1.2, np.pi / 2):
        scale = np.sqrt(np.cos(tau) ** 2 * C**2 + np.sin(tau) ** 2 * sigma_data**2)
        f = MU + C * (x - np.cos(tau) * MU) / scale
        got = np.cos(tau) * x - np.sin(tau) * sigma_data * net(x / sigma_data, tau)
        assert relative(got, f) < 1e-13, tau
        assert relative(flow_map.map(x, 2 * tau / np.pi, 0.0), f) < 1e-13, tau


def test_shortcut_self_consistency_in_its_own_time():
    """Frans et al.'s target, exact for the exact network: two steps of d are one of 2d,
    s(x, τ, 2d) = ½ [s(x, τ, d) + s(x + d s(x, τ, d), τ + d, d)]."""
    net = flowmaps.exact(MixturePath(mixtures.eight_gaussians(), interpolants.linear()), "shortcut")
    x = 2.0 * np.random.default_rng(4).normal(size=(8, 2))
    tau, d = 0.25, 0.125
    first = net(x, tau, d)
    assert relative(net(x, tau, 2 * d), 0.5 * (first + net(x + d * first, tau + d, d))) < 1e-8


def test_boffi_flow_runs_noise_to_data():
    """Boffi et al.'s X^B_{s,t} solves ∂_t X^B = b(t, X^B) with their velocity
    b(t, y) = −v(1 − t, y) (time reversed): 4th-order central difference in t."""
    path = MixturePath(mixtures.eight_gaussians(), interpolants.linear())
    net = flowmaps.exact(path, "boffi")
    x = path.sample(0.8, 8, rng=5)  # their time 0.2
    h, s, t = 1e-3, 0.2, 0.6
    dt = 8 * (net(x, s, t + h) - net(x, s, t - h)) - (net(x, s, t + 2 * h) - net(x, s, t - 2 * h))
    dt /= 12 * h
    assert relative(dt, -path.velocity(1 - t, net(x, s, t))) < 1e-7
    np.testing.assert_array_equal(net(x, s, s), ReferenceFlow(path).map(x, 1 - s, 1 - s))


def test_far_out_points_give_finite_derivatives_without_runtime_warnings():
    """At |x| = 1e300 Hairer's starting-step norms overflowed (RuntimeWarning) before the
    fallback step took over; the results were right, the warnings noise."""
    path = MixturePath(mixtures.eight_gaussians(), interpolants.linear())
    flow = ReferenceFlow(path)
    far = np.full((1, 2), -1e300)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        u = flow.average_velocity(far, 0.2, 0.9)
        jac = flow.jacobian(far, 1.0, 0.5)
    # far out the flow is the Gaussian one of a single component: X = x sqrt(c_t / c_s)
    lam = path.mixture.eigvals[0, 0]
    c = {t: (1 - t) ** 2 * lam + t**2 for t in (0.2, 0.9)}
    assert u[0, 0] == pytest.approx(-1e300 * (np.sqrt(c[0.9] / c[0.2]) - 1) / 0.7, rel=1e-9)
    assert np.all(np.isfinite(jac))
