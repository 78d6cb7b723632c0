"""cmverify.flowmaps: each kind's exact network against the reference flow, the round trip
network → X_{s→t}, the limits, the refused pairs and conventions, and users' networks
(numpy and torch) called defensively.

Tolerances: the reference flow meets ``|X − X_exact| ≤ rtol (1 + |X|)`` per trajectory
with rtol = 1e-10 (its default); values derived from two reference solves are compared at
1e-8 relative, a hundred times that, so a failure is a wrong formula, not the solver.
"""

import numpy as np
import pytest
import sympy as sp

from cmverify import flowmaps
from cmverify.exact import GaussianMixture, MixturePath, mixtures
from cmverify.flowmaps._ctm import ratio_time
from cmverify.reference import ReferenceFlow
from cmverify.symbolic import Interpolant, interpolants

TOL = 1e-8
S = np.array([0.9, 0.5, 0.3, 0.99, 0.2, 0.6])
T = np.array([0.1, 0.5, 0.0, 0.4, 0.0, 0.05])  # t ≤ s: every kind's pairs
ZERO = np.zeros(6)


def close(a, b, tol=TOL):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    err = np.max(np.abs(a - b) / (1.0 + np.abs(b)))
    assert err <= tol, err


@pytest.fixture(scope="module", params=["linear", "trig"])
def path(request):
    return MixturePath(mixtures.eight_gaussians(), interpolants.by_name(request.param))


@pytest.fixture(scope="module")
def trig_path():
    return MixturePath(mixtures.eight_gaussians(), interpolants.trig())


@pytest.fixture(scope="module")
def x():
    return 2.0 * np.random.default_rng(12).normal(size=(6, 2))


def test_kinds_in_order():
    assert flowmaps.KINDS == (
        "map",
        "consistency",
        "meanflow",
        "ayf",
        "boffi",
        "shortcut",
        "ctm",
        "trigflow",
    )
    assert set(flowmaps.KIND_INFO) == set(flowmaps.KINDS) == set(flowmaps.CONVENTIONS)


# -- round trip: as_flow_map(exact(path, kind), kind).map == ReferenceFlow(path).map -----
@pytest.mark.parametrize(
    "kind, convention",
    [
        ("map", {}),
        ("consistency", {}),
        ("meanflow", {}),
        ("meanflow", {"time_inputs": "t,t-r"}),
        ("ayf", {}),
        ("boffi", {}),
        ("shortcut", {}),
        ("ctm", {}),
    ],
)
def test_round_trip(path, x, kind, convention):
    t = ZERO if kind == "consistency" else T
    flow_map = flowmaps.as_flow_map(flowmaps.exact(path, kind, **convention), kind, **convention)
    close(flow_map.map(x, S, t), ReferenceFlow(path).map(x, S, t))


@pytest.mark.parametrize("kind", ["map", "ayf", "boffi"])
def test_round_trip_forward_in_time(path, x, kind):
    """The kinds that express any pair, noise-ward (t > s)."""
    flow_map = flowmaps.as_flow_map(flowmaps.exact(path, kind), kind)
    close(flow_map.map(x, T, S), ReferenceFlow(path).map(x, T, S))


@pytest.mark.parametrize("sigma_data", [0.5, 1.0])
def test_trigflow_round_trip(trig_path, x, sigma_data):
    net = flowmaps.exact(trig_path, "trigflow", sigma_data=sigma_data)
    got = flowmaps.as_flow_map(net, "trigflow", sigma_data=sigma_data).map(x, S, 0.0)
    scaled = flowmaps.trigflow_path(trig_path, sigma_data)
    close(got, sigma_data * ReferenceFlow(scaled).map(x / sigma_data, S, 0.0))
    own = ReferenceFlow(trig_path).map(x, S, 0.0)
    if sigma_data == 1.0:  # TrigFlow's process is then the path itself
        close(got, own)
    else:  # and otherwise it is not
        assert np.max(np.abs(got - own)) > 1e-3


def test_trigflow_path_scales_the_data(trig_path):
    scaled = flowmaps.trigflow_path(trig_path.mixture, 0.5)
    mixture = trig_path.mixture
    assert scaled.interpolant == interpolants.trig()
    np.testing.assert_array_equal(scaled.mixture.means, mixture.means / 0.5)
    np.testing.assert_array_equal(scaled.mixture.covs, mixture.covs / 0.25)
    np.testing.assert_array_equal(scaled.mixture.weights, mixture.weights)


# -- each exact network against its formula in terms of the reference map ---------------
def test_exact_networks_against_the_map(path, x):
    ref = ReferenceFlow(path)
    r, t = np.array([0.1, 0.0, 0.1, 0.2, 0.05, 0.05]), S
    close(flowmaps.exact(path, "consistency")(t, x), ref.map(x, t, 0.0))
    u = flowmaps.exact(path, "meanflow")(x, r, t)
    close(u, (x - ref.map(x, t, r)) / (t - r)[:, None])
    close(flowmaps.exact(path, "meanflow", time_inputs="t,t-r")(x, t, t - r), u)
    close(flowmaps.exact(path, "ayf")(x, t, r), u)  # F(x, t, s) is u with times swapped
    close(flowmaps.exact(path, "ayf")(x, r, t), (ref.map(x, r, t) - x) / (t - r)[:, None])
    close(flowmaps.exact(path, "boffi")(x, r, t), ref.map(x, 1 - r, 1 - t))
    tau, d = 1 - t, t - r
    close(flowmaps.exact(path, "shortcut")(x, tau, d), (ref.map(x, t, r) - x) / d[:, None])


def test_ctm_against_the_map_and_interpolant_free(x):
    """G(y, ς, ς') = X_{t→s}(α_t y)/α_s, and the same function from either interpolant
    (the VE flow does not depend on how the path is scaled)."""
    linear = MixturePath(mixtures.eight_gaussians(), interpolants.linear())
    trig = MixturePath(mixtures.eight_gaussians(), interpolants.trig())
    t, s = np.array([0.9, 0.5, 0.7, 0.3, 0.6, 0.2]), np.array([0.1, 0.5, 0.0, 0.2, 0.05, 0.1])
    big, small = t / (1 - t), s / (1 - s)  # linear: ς = t/(1 − t)
    g = flowmaps.exact(linear, "ctm")(x, big, small)
    close(g, ReferenceFlow(linear).map((1 - t)[:, None] * x, t, s) / (1 - s)[:, None])
    close(flowmaps.exact(trig, "ctm")(x, big, small), g)


def test_ratio_inversion_to_full_precision():
    t = np.array([0.0, 1e-300, 1e-12, 0.25, 0.5, 0.9, 1 - 1e-9])
    assert np.all(ratio_time(interpolants.linear(), t / (1 - t)) == t)
    co = interpolants.trig().at(t)
    found = ratio_time(interpolants.trig(), co.sigma / co.alpha)
    np.testing.assert_allclose(found, t, rtol=4e-16, atol=0)


@pytest.mark.parametrize("name", ["linear", "trig"])
def test_ratio_inversion_picks_the_nearest_float(name):
    """No neighbour of the returned t has its σ/α nearer the target ς."""
    interpolant = interpolants.by_name(name)
    varsigma = 10.0 ** np.random.default_rng(3).uniform(-12, 6, size=200)

    def ratio(t):
        co = interpolant.at(t)
        return co.sigma / co.alpha

    found = ratio_time(interpolant, varsigma)
    miss = np.abs(ratio(found) - varsigma)
    for neighbour in (np.nextafter(found, 0.0), np.nextafter(found, 1.0)):
        assert np.all(miss <= np.abs(ratio(neighbour) - varsigma))


def test_trigflow_against_its_definition(trig_path, x):
    """F(x̂, τ) = (cos τ x̂ − X̂_{t→0}(x̂)) / sin τ on the scaled path, t = 2τ/π."""
    tau = np.array([0.3, 1.0, np.pi / 2, 0.05, 1.2, 0.7])
    scaled = flowmaps.trigflow_path(trig_path, 0.5)
    back = ReferenceFlow(scaled).map(x, 2 * tau / np.pi, 0.0)
    want = (np.cos(tau)[:, None] * x - back) / np.sin(tau)[:, None]
    close(flowmaps.exact(trig_path, "trigflow")(x, tau), want, 1e-7)  # 1/sin(0.05) = 20


# -- limits ------------------------------------------------------------------------------
def test_limits(path, x):
    t = np.array([0.0, 0.2, 0.5, 0.7, 0.95, 1.0])
    v = path.velocity(t, x)
    close(flowmaps.exact(path, "meanflow")(x, t, t), v, 1e-12)
    close(flowmaps.exact(path, "meanflow", time_inputs="t,t-r")(x, t, 0.0), v, 1e-12)
    close(flowmaps.exact(path, "ayf")(x, t, t), v, 1e-12)
    close(flowmaps.exact(path, "shortcut")(x, 1 - t, 0.0), -v, 1e-12)
    varsigma = np.array([0.0, 1e-3, 0.5, 1.0, 10.0, 1e4])
    np.testing.assert_array_equal(flowmaps.exact(path, "ctm")(x, varsigma, varsigma), x)
    np.testing.assert_array_equal(flowmaps.exact(path, "map")(x, t, t), x)
    np.testing.assert_array_equal(flowmaps.exact(path, "consistency")(0.0, x), x)


def test_trigflow_at_tau_zero(trig_path, x):
    """τ = 0: the limit (2/π) v̂(0, x̂) — zero for trig (v = 0 at t = 0) — with no 0/0, and
    continuous: F(x̂, τ) = O(τ) just above."""
    net = flowmaps.exact(trig_path, "trigflow")
    scaled = flowmaps.trigflow_path(trig_path, 0.5)
    at_zero = net(x, 0.0)
    close(at_zero, (2 / np.pi) * scaled.velocity(0.0, x), 1e-15)
    assert np.max(np.abs(at_zero)) < 1e-14
    near = net(x, 1e-7)
    assert np.all(np.isfinite(near)) and np.max(np.abs(near - at_zero)) < 1e-5
    np.testing.assert_array_equal(flowmaps.as_flow_map(net, "trigflow").map(x, 0.0, 0.0), x)


# -- pairs a kind cannot express -------------------------------------------------------
@pytest.mark.parametrize(
    "kind, s, t, match",
    [
        ("consistency", 0.5, 0.3, r"expresses only X_\{s→0\} \(t = 0\), got s = 0.5, t = 0.3"),
        ("trigflow", 0.5, 0.1, r"trigflow kind expresses only X_\{s→0\} \(t = 0"),
        ("meanflow", 0.2, 0.5, r"meanflow kind expresses only X_\{s→t\} with t ≤ s"),
        ("shortcut", 0.2, 0.5, r"shortcut kind expresses only X_\{s→t\} with t ≤ s"),
        ("ctm", 0.2, 0.5, r"ctm kind expresses only X_\{s→t\} with t ≤ s"),
        ("ctm", 1.0, 0.5, r"ctm kind expresses only X_\{s→t\} with s < 1 \(α_s > 0"),
    ],
)
def test_invalid_pairs_refused(trig_path, kind, s, t, match):
    flow_map = flowmaps.as_flow_map(flowmaps.exact(trig_path, kind), kind)
    x = np.zeros((3, 2))
    with pytest.raises(ValueError, match=match):
        flow_map.map(x, np.array([0.9, s, 0.9]), np.array([0.0, t, 0.0]))


@pytest.mark.parametrize(
    "kind, args, match",
    [
        ("meanflow", (0.6, 0.5), r"meanflow needs r ≤ t, got r = 0.6, t = 0.5"),
        ("shortcut", (0.7, 0.5), r"shortcut needs τ \+ d ≤ 1"),
        ("shortcut", (0.5, -0.1), r"d must lie in \[0, 1\], got -0.1"),
        ("ctm", (1.0, 2.0), r"ctm needs ς' ≤ ς"),
        ("ctm", (-1.0, 0.0), r"sigma \(ς\) must be ≥ 0, got -1.0"),
        ("trigflow", (2.0,), r"tau must lie in \[0, 1.5708\], got 2.0"),
        ("ayf", (np.nan, 0.5), r"t contains NaN"),
        ("boffi", (0.5, 1.5), r"t must lie in \[0, 1\], got 1.5"),
    ],
)
def test_exact_networks_refuse_bad_times(trig_path, kind, args, match):
    net = flowmaps.exact(trig_path, kind)
    with pytest.raises(ValueError, match=match):
        net(np.zeros((1, 2)), *args)


def test_meanflow_h_beyond_t_refused(trig_path):
    net = flowmaps.exact(trig_path, "meanflow", time_inputs="t,t-r")
    with pytest.raises(ValueError, match=r"h = t − r ≤ t, got t = 0.3, h = 0.5"):
        net(np.zeros((1, 2)), 0.3, 0.5)


def test_bad_points_refused(trig_path):
    net = flowmaps.exact(trig_path, "map")
    with pytest.raises(ValueError, match=r"x must have shape \(n, 2\)"):
        net(np.zeros((3, 3)), 0.5, 0.2)
    flow_map = flowmaps.as_flow_map(net, "map")
    with pytest.raises(ValueError, match="x contains NaN"):
        flow_map.map(np.array([[0.0, np.nan]]), 0.5, 0.2)
    with pytest.raises(ValueError, match=r"s has 2 entries but x has 3 points"):
        flow_map.map(np.zeros((3, 2)), [0.5, 0.4], 0.2)
    assert flow_map.map(np.zeros((0, 2)), 0.5, 0.2).shape == (0, 2)


# -- shortcut's dyadic grid ------------------------------------------------------------
def _shortcut(**convention):
    return flowmaps.as_flow_map(lambda x, tau, d: np.ones_like(x), "shortcut", **convention)


def test_dyadic_pairs_snapped_to_the_grid():
    """Within the tolerances, the network sees the grid's exact τ and d."""
    seen = {}

    def net(x, tau, d):
        seen.update(tau=tau.copy(), d=d.copy())
        return np.zeros_like(x)

    flowmaps.as_flow_map(net, "shortcut", dyadic=True).map(np.zeros((1, 1)), 0.375 + 1e-13, 0.25)
    assert seen["tau"][0] == 0.625 and seen["d"][0] == 0.125


def test_dyadic_pairs_accepted():
    flow_map = _shortcut(dyadic=True)
    x = np.zeros((5, 2))
    s = np.array([1.0, 0.75, 1.0, 0.5, 0.3])
    t = np.array([0.0, 0.5, 1 - 2.0**-7, 0.25, 0.3])  # d = 1, 1/4, 1/128, 1/4, 0
    np.testing.assert_array_equal(flow_map.map(x, s, t)[:, 0], s - t)


@pytest.mark.parametrize(
    "s, t, convention, match",
    [
        (0.8, 0.5, {}, r"d = s − t = 2\^-k, k = 0 … 7 \(1 … 0.0078125\), or 0; got d = 0.3"),
        (1.0, 1 - 2.0**-8, {}, r"got d = 0.00390625"),  # finer than d_min
        (1.0, 1 - 2.0**-8, {"d_min": 2.0**-8}, None),  # … unless d_min allows it
        (0.875, 0.625, {}, r"τ = 1 − s on the d-grid .*got τ = 0.125, d = 0.25 \(row 0\)"),
        (0.8, 0.5, {"dyadic": False}, None),
    ],
)
def test_dyadic_checks(s, t, convention, match):
    flow_map = _shortcut(**{"dyadic": True, **convention})
    if match is None:
        flow_map.map(np.zeros((1, 2)), s, t)
        return
    with pytest.raises(ValueError, match=match):
        flow_map.map(np.zeros((1, 2)), s, t)


# -- conventions and kinds -------------------------------------------------------------
def test_unknown_kind_and_keywords(trig_path):
    with pytest.raises(ValueError, match=r"unknown kind 'flow'; valid kinds: map, consistency"):
        flowmaps.as_flow_map(lambda *a: a[0], "flow")
    with pytest.raises(ValueError, match=r"unknown kind 'MeanFlow'"):
        flowmaps.exact(trig_path, "MeanFlow")
    with pytest.raises(TypeError, match="kind must be a string"):
        flowmaps.exact(trig_path, 3)
    with pytest.raises(
        ValueError, match=r"unknown convention keyword 'sigma_data' for the meanflow kind; valid"
    ):
        flowmaps.as_flow_map(lambda *a: a[0], "meanflow", sigma_data=1.0)
    with pytest.raises(ValueError, match=r"keyword 'dyadic' for the map kind; valid: none"):
        flowmaps.as_flow_map(lambda *a: a[0], "map", dyadic=True)
    with pytest.raises(ValueError, match=r"keyword 'interpolant' for the ctm kind; valid: rtol"):
        flowmaps.exact(trig_path, "ctm", interpolant="linear")
    with pytest.raises(ValueError, match=r"time_inputs must be one of 'r,t', 't,t-r'"):
        flowmaps.as_flow_map(lambda *a: a[0], "meanflow", time_inputs="t,r")
    with pytest.raises(ValueError, match="d_min must be 2"):
        _shortcut(d_min=0.3)
    with pytest.raises(TypeError, match="dyadic must be True or False"):
        _shortcut(dyadic=1)


@pytest.mark.parametrize("bad", [0.0, -0.5, np.inf, np.nan])
def test_bad_sigma_data(trig_path, bad):
    with pytest.raises(ValueError, match="sigma_data must be a finite number > 0"):
        flowmaps.exact(trig_path, "trigflow", sigma_data=bad)
    with pytest.raises(ValueError, match="sigma_data must be a finite number > 0"):
        flowmaps.as_flow_map(lambda x, tau: x, "trigflow", sigma_data=bad)
    with pytest.raises(TypeError, match="sigma_data must be a real number"):
        flowmaps.trigflow_path(trig_path, "0.5")


def test_trigflow_needs_the_trig_path():
    linear = MixturePath(mixtures.eight_gaussians(), interpolants.linear())
    with pytest.raises(ValueError, match="trigflow kind needs a path with the trig interpolant"):
        flowmaps.exact(linear, "trigflow")


def test_exact_network_wrapped_inconsistently(trig_path):
    with pytest.raises(
        ValueError, match="model is the exact meanflow network; it was wrapped as ayf"
    ):
        flowmaps.as_flow_map(flowmaps.exact(trig_path, "meanflow"), "ayf")
    with pytest.raises(ValueError, match=r"sigma_data=1.0; as_flow_map got sigma_data=0.5"):
        flowmaps.as_flow_map(flowmaps.exact(trig_path, "trigflow", sigma_data=1.0), "trigflow")


def test_ctm_conventions(trig_path, x):
    with pytest.raises(ValueError, match=r"the ctm kind needs interpolant="):
        flowmaps.as_flow_map(lambda y, a, b: y, "ctm")
    net = flowmaps.exact(trig_path, "ctm")
    # G is interpolant-free, so the conversion with linear's α, σ gives linear's flow map
    linear = MixturePath(mixtures.eight_gaussians(), interpolants.linear())
    got = flowmaps.as_flow_map(net, "ctm", interpolant="linear").map(x, S, T)
    close(got, ReferenceFlow(linear).map(x, S, T))
    t = sp.Symbol("t", real=True)  # σ/α = (t + 0.45 sin 2πt)/(1 − t) decreases near t = 1/2
    wavy = Interpolant.from_sympy(1 - t, t + 0.45 * sp.sin(2 * sp.pi * t), t, name="wavy")
    with pytest.raises(ValueError, match=r"σ_t/α_t \(CTM's ς\) strictly increasing"):
        flowmaps.as_flow_map(net, "ctm", interpolant=wavy)
    with pytest.raises(ValueError, match=r"σ_t/α_t \(CTM's ς\) strictly increasing"):
        flowmaps.exact(MixturePath(mixtures.eight_gaussians(), wavy), "ctm")


def test_reprs_name_kind_and_formula(trig_path):
    net = flowmaps.exact(trig_path, "meanflow")
    assert "meanflow" in repr(net) and "X_{t→r}(z) = z − (t − r) u(z, r, t)" in repr(net)
    assert "rtol=1e-10" in repr(net)
    assert "meanflow" in repr(flowmaps.as_flow_map(net, "meanflow"))
    assert "Geng" in type(net).__doc__ and "MeanFlow" in type(net).__doc__
    assert flowmaps.exact(trig_path, "map", rtol=1e-8).flow.rtol == 1e-8


def test_shortcut_released_path_equivalent_interpolant():
    """The docstring's claim: the released shortcut path τ x0 + (1 − (1 − ε)τ) x1 has the
    velocity of α = 1 − t, σ = √(t² + 2εt(1 − t)) on the data convolved with N(0, ε² I)."""
    eps, t = 1e-5, sp.Symbol("t", real=True)
    with pytest.raises(ValueError, match=r"sigma\(0\) = 0"):
        Interpolant.from_sympy(1 - t, 1 - (1 - sp.Rational(1, 10**5)) * (1 - t), t)
    root = sp.sqrt(t**2 + 2 * sp.Rational(1, 10**5) * t * (1 - t))
    mixture = mixtures.eight_gaussians()
    blurred = GaussianMixture(mixture.weights, mixture.means, mixture.covs + eps**2 * np.eye(2))
    equivalent = MixturePath(blurred, Interpolant.from_sympy(1 - t, root, t, name="sc"))
    times = np.array([1e-4, 0.01, 0.2, 0.5, 0.8, 0.99])
    y = 3.0 * np.random.default_rng(5).normal(size=(6, 2))
    alpha, sigma, dsigma = 1 - times, 1 - (1 - eps) * (1 - times), 1 - eps  # released path
    logs, velocities = [], []
    for w, mu, cov in zip(mixture.weights, mixture.means, mixture.covs, strict=True):
        c = alpha[:, None, None] ** 2 * cov + sigma[:, None, None] ** 2 * np.eye(2)
        dc = -2 * alpha[:, None, None] * cov + 2 * (sigma * dsigma)[:, None, None] * np.eye(2)
        r = y - alpha[:, None] * mu
        solved = np.linalg.solve(c, r[..., None])[..., 0]
        velocities.append(-mu + 0.5 * np.einsum("nij,nj->ni", dc, solved))
        logs.append(np.log(w) - 0.5 * np.sum(r * solved, 1) - 0.5 * np.linalg.slogdet(c)[1])
    weights = np.exp(np.array(logs) - np.max(logs, axis=0))
    released = np.einsum("kn,kni->ni", weights / weights.sum(0), np.array(velocities))
    close(equivalent.velocity(times, y), released, 1e-12)


# -- users' networks: numpy and torch, called defensively --------------------------------
def test_a_network_that_mutates_its_input(trig_path, x):
    exact = flowmaps.exact(trig_path, "meanflow")

    def net(z, r, t):
        out = exact(z, r, t)
        z += 100.0
        r[:] = 0.0
        t[:] = 1.0
        return out

    given, s, t = x.copy(), S.copy(), T.copy()
    got = flowmaps.as_flow_map(net, "meanflow").map(given, s, t)
    close(got, ReferenceFlow(trig_path).map(x, S, T))
    np.testing.assert_array_equal(given, x)
    np.testing.assert_array_equal(s, S)


def test_a_network_that_reuses_its_output_buffer():
    buffer = np.zeros((2, 1))

    def net(x, s, t):
        buffer[:, 0] = s
        return buffer

    flow_map = flowmaps.as_flow_map(net, "map")
    first = flow_map.map(np.zeros((2, 1)), 0.3, 0.1)
    flow_map.map(np.zeros((2, 1)), 0.7, 0.1)
    np.testing.assert_array_equal(first, 0.3)


@pytest.mark.parametrize(
    "output, match",
    [
        (
            lambda x: np.where(np.arange(len(x))[:, None] == 1, np.nan, x),
            r"NaN or inf in 1 of 3 rows, first row 1 \(r = 0.1, t = 0.5\)",
        ),
        (lambda x: x[:, 0], r"output has shape \(3,\), expected \(3, 2\)"),
        (lambda x: x + 1j, r"output is complex"),
        (lambda x: "nonsense", r"output is not numeric"),
    ],
)
def test_bad_outputs_name_kind_and_times(output, match):
    flow_map = flowmaps.as_flow_map(lambda z, r, t: output(z), "meanflow")
    with pytest.raises(ValueError, match=r"the meanflow network at r = 0.1, t = 0.5: .*" + match):
        flow_map.map(np.ones((3, 2)), 0.5, 0.1)


def test_an_output_that_overflows_in_the_conversion():
    """A finite output whose X = x + (t − s) F is not representable: an error, not inf."""
    flow_map = flowmaps.as_flow_map(lambda x, t, s: np.full_like(x, 1e308), "ayf")
    x = np.array([[0.0], [-1e308]])
    np.testing.assert_allclose(flow_map.map(x[:1], 0.9, 0.1), [[-0.8e308]], rtol=1e-15)
    with pytest.raises(
        ValueError,
        match=r"ayf network's output converted to X_\{s→t\} overflows float64 in 1 of 2 rows, "
        r"first row 1 \(s = 0.9, t = 0.1\)",
    ):
        flow_map.map(x, 0.9, 0.1)


def test_a_failing_network_keeps_its_exception():
    def net(x, s, t):
        raise KeyError("broken")

    with pytest.raises(KeyError, match="broken") as info:
        flowmaps.as_flow_map(net, "boffi").map(np.zeros((2, 2)), 0.25, 0.5)
    notes = getattr(info.value, "__notes__", ["while calling the boffi network at s = 0.75"])
    assert "while calling the boffi network at s = 0.75, t = 0.5" in notes[0]


def test_a_torch_module(trig_path, x):
    torch = pytest.importorskip("torch")
    exact = flowmaps.exact(trig_path, "meanflow", time_inputs="t,t-r")
    seen = {}

    class MeanFlowNet(torch.nn.Module):
        def __init__(self, dtype):
            super().__init__()
            self.linear = torch.nn.Linear(2, 2, dtype=dtype)
            self.drop = torch.nn.Dropout(0.5)
            with torch.no_grad():
                self.linear.weight.copy_(torch.eye(2))
                self.linear.bias.zero_()

        def forward(self, z, t, h):
            seen.update(dtype=z.dtype, t_shape=tuple(t.shape), training=self.training)
            seen.update(grad=torch.is_grad_enabled(), drop=self.drop.training)
            u = exact(z.double().numpy(), t.double().numpy(), h.double().numpy())
            return self.drop(self.linear(torch.as_tensor(u, dtype=z.dtype)))

    for dtype, tol in ((torch.float64, TOL), (torch.float32, 1e-5)):
        model = MeanFlowNet(dtype).train()
        model.linear.eval()  # a mixed state, restored exactly
        flow_map = flowmaps.as_flow_map(model, "meanflow", time_inputs="t,t-r")
        got = flow_map.map(x, S, T)
        close(got, ReferenceFlow(trig_path).map(x, S, T), tol)
        assert seen == {
            "dtype": dtype,
            "t_shape": (6,),
            "training": False,
            "grad": False,
            "drop": False,
        }
        assert model.training and model.drop.training and not model.linear.training
        assert got.dtype == np.float64


def test_a_torch_module_without_parameters_gets_float32(x):
    torch = pytest.importorskip("torch")

    class Identity(torch.nn.Module):
        def forward(self, t, z):
            assert z.dtype == torch.float32 and t.shape == (z.shape[0],)
            return z.clone().requires_grad_(True)

    got = flowmaps.as_flow_map(Identity(), "consistency").map(x, 0.5, 0.0)
    close(got, x.astype(np.float32).astype(np.float64), 0.0)
