"""The claims layer measures what the theory predicts — and fails when the prediction
is wrong. Hypothesis properties run over random mixtures (d 1–2), the linear, trig and
two from_sympy interpolants, and times in [0.05, 0.95]."""

import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.interpolate import make_interp_spline

import cmverify as cmv
from cmverify import strategies as cst
from cmverify.claims import (
    BatteryConfig,
    Case,
    CubicMap,
    TanhNetwork,
    TimeTanhNetwork,
    bulk_points,
    ct_gauss,
    ct_global,
    ct_local,
    ct_local_target,
    euler_local,
    flow_velocity_forms,
    multistep,
    song_t1,
    song_t2,
    swap_local,
)
from cmverify.claims import _velocity as velocity_module
from cmverify.claims._batch import batched_solves
from cmverify.claims._boundary import int_boundary
from cmverify.claims._flows import (
    TRANSPORT_TOLERANCE,
    flow_gauss,
    flow_quantile,
    transport_residual,
)
from cmverify.claims._induction import _GridSpline, _loop_velocity
from cmverify.claims._local import _swap_coefficient
from cmverify.exact import acceleration
from cmverify.reference import (
    ReferenceFlow,
    conditional_expectation,
    fit_order,
    gauss_hermite,
    refine_until_asymptotic,
    step_sizes,
)
from cmverify.symbolic import ct_gauss_rate, probability_flow_identity

REGULAR = cst.interpolants(include_singular=False)  # linear, trig, quadratic, cos-linear
SMALL_MIXTURES = cst.mixtures(
    dims=st.integers(1, 2), n_components=st.integers(1, 3), min_variance=0.05
)
seeds = st.integers(0, 2**32 - 1)
#: These properties run ~0.3 s per example: a quarter of the profile's examples (8 in
#: the ci profile, 25 in dev).
EXPENSIVE = settings(max_examples=max(8, settings.default.max_examples // 4))


def all_pass(checks):
    failed = [f"{c.case}: {c.name} = {c.value} ({c.detail})" for c in checks if not c.passed]
    assert not failed, failed


def local_setup(mix, interp, s, seed):
    path = cmv.MixturePath(mix, interp)
    flow = ReferenceFlow(path)
    rng = np.random.default_rng(seed)
    y = flow.map(bulk_points(mix, 8, rng), 0.0, s)
    deltas = step_sizes(min(1 / 8, s / 4), 10)
    return path, flow, y, deltas


@EXPENSIVE
@given(mix=SMALL_MIXTURES, interp=REGULAR, s=st.floats(0.05, 0.95), seed=seeds)
def test_euler_local_property(mix, interp, s, seed):
    path, flow, y, deltas = local_setup(mix, interp, s, seed)
    all_pass(euler_local(path, s, y, flow=flow, deltas=deltas))


@EXPENSIVE
@given(mix=SMALL_MIXTURES, interp=REGULAR, s=st.floats(0.05, 0.95), seed=seeds)
def test_swap_local_property(mix, interp, s, seed):
    path, _, y, deltas = local_setup(mix, interp, s, seed)
    all_pass(swap_local(path, s, y, CubicMap(mix.dim, seed=seed % 7), deltas=deltas))


@EXPENSIVE
@given(mix=SMALL_MIXTURES, interp=REGULAR, s=st.floats(0.05, 0.95), seed=seeds)
def test_ct_local_property(mix, interp, s, seed):
    path, flow, y, deltas = local_setup(mix, interp, s, seed)
    all_pass(ct_local(path, s, y, TanhNetwork(mix.dim, seed=seed % 5), flow=flow, deltas=deltas))


def test_wrong_local_prediction_fails():
    """A leading term off by a factor (here ½ a → ¼ a) fails the coefficient check but not
    the order check."""
    path, flow, y, deltas = local_setup(
        cmv.mixtures.eight_gaussians(), cmv.Interpolant.linear(), 0.5, 0
    )

    def wrong(p, s, pts):
        return 0.25 * acceleration(p, s, pts)

    checks = euler_local(path, 0.5, y, flow=flow, deltas=deltas, prediction=wrong)
    order, ratio = checks
    assert order.passed and not ratio.passed
    assert ratio.value == pytest.approx(2.0, rel=0.02)


def test_swap_prediction_sign_matters():
    path, _, y, deltas = local_setup(cmv.mixtures.seed_bimodal(), cmv.Interpolant.trig(), 0.5, 1)
    F = CubicMap(1)
    right = _swap_coefficient(path, 0.5, y, F)
    checks = swap_local(path, 0.5, y, F, deltas=deltas, prediction=lambda p, s, pts: -right)
    assert not checks[1].passed and checks[1].value == pytest.approx(-1.0, abs=0.02)


def test_conditional_expectation_is_exact_for_polynomials():
    """E[x0 ⊗ x0 | y] (degree 2) by 2-point rules equals the closed-form posterior moments."""
    path = cmv.MixturePath(cmv.mixtures.random_mixture(2, 3, rng=0), cmv.Interpolant.trig())
    y = path.sample(0.4, 10, 1)
    second = conditional_expectation(
        path, 0.4, y, lambda x0, x1: x0[..., :, None] * x0[..., None, :], order=2
    )
    mean = path.denoiser(0.4, y)
    np.testing.assert_allclose(
        second - mean[:, :, None] * mean[:, None, :],
        path.posterior(0.4, y).covariance(),
        atol=1e-13,
    )
    with pytest.raises(ValueError, match="d ≤ 3"):
        conditional_expectation(
            cmv.MixturePath(cmv.mixtures.random_mixture(4, 1, rng=0)),
            0.5,
            np.zeros((1, 4)),
            lambda a, b: a,
        )
    with pytest.raises(ValueError, match="σ_t = 0"):
        conditional_expectation(path, 0.0, y, lambda a, b: a)


def test_gauss_hermite_weights():
    z, w = gauss_hermite(5, 2)
    assert z.shape == (25, 2) and w.sum() == pytest.approx(1.0)
    assert np.sum(w * z[:, 0] ** 4) == pytest.approx(3.0)  # E[z⁴] = 3, exact for 5 points


def test_fit_order_on_exact_power_laws():
    d = step_sizes(0.1, 6)
    fit = fit_order(d, 3.0 * d**2)
    assert fit.order == pytest.approx(2.0, abs=1e-12) and fit.constant == pytest.approx(3.0)
    assert fit.range_used == (d[-1], d[-4])
    with pytest.raises(ValueError):
        fit_order(d[:2], d[:2])
    calls = []
    refined = refine_until_asymptotic(lambda h: calls.append(h) or h + 50 * h**2, 0.5, maximum=14)
    assert refined.order == pytest.approx(1.0, abs=0.02) and len(calls) > 6


def test_ct_gauss_rate_matches_closed_forms():
    """I(λ) from quadrature of the SymPy integrand against closed forms: SymPy's for the
    linear interpolant, 1 + (1 + λ) π / (4 √λ), and the substitution u = tan(πt/2) for
    trig, π² (1 + λ) / (8 √λ)."""
    for lam in (0.05, 0.3, 1.0, 4.0):
        linear = 1 + (1 + lam) * math.pi / (4 * math.sqrt(lam))
        trig = math.pi**2 * (1 + lam) / (8 * math.sqrt(lam))
        assert ct_gauss_rate(cmv.Interpolant.linear(), lam) == pytest.approx(linear, rel=1e-12)
        assert ct_gauss_rate(cmv.Interpolant.trig(), lam) == pytest.approx(trig, rel=1e-12)


@pytest.mark.parametrize("name", sorted(cst.named_interpolants()))
def test_probability_flow_identity_is_proven(name):
    assert probability_flow_identity(cst.named_interpolants()[name])


@pytest.mark.parametrize(
    "interp", [cmv.Interpolant.linear(), cmv.Interpolant.trig()], ids=lambda i: i.name
)
def test_ct_gauss(interp):
    path = cmv.MixturePath(cmv.mixtures.gaussian(), interp)
    all_pass(ct_gauss(path, ns=(64, 128, 256, 512)))
    wrong = ct_gauss(path, ns=(64, 128), rate=1.0)
    assert not wrong[1].passed  # the constant with I(λ) replaced by 1


def test_ct_global_and_cd_order_one():
    path = cmv.MixturePath(cmv.mixtures.mild_bimodal(), cmv.Interpolant.linear())
    all_pass(ct_global(path, ns=(16, 32, 64, 128)))
    assert not all(c.passed for c in ct_global(path, ns=(16, 32, 64, 128), expected_order=2.0))


def test_song_t1_orders():
    path = cmv.MixturePath(cmv.mixtures.gaussian(), cmv.Interpolant.trig())
    grid = np.linspace(-3, 3, 9)
    all_pass(song_t1(path, np.stack(np.meshgrid(grid, grid), -1).reshape(-1, 2)))


@EXPENSIVE
@given(mix=SMALL_MIXTURES, interp=REGULAR, s=st.floats(0.3, 0.95), seed=seeds)
def test_song_t2_property(mix, interp, s, seed):
    path = cmv.MixturePath(mix, interp)
    f, g = TimeTanhNetwork(mix.dim, seed=seed % 11), TimeTanhNetwork(mix.dim, seed=seed % 11 + 1)
    all_pass(song_t2(path, f, g, s=s, largest=min(1 / 8, s / 4)))


def test_multistep_accepts_the_exact_map_and_rejects_a_wrong_one():
    path = cmv.MixturePath(cmv.mixtures.seed_bimodal(), cmv.Interpolant.linear())
    all_pass(multistep(path, n=2000))
    euler = multistep(path, n=2000, consistency=lambda t, x: x - t * path.velocity(t, x))
    assert not euler[0].passed


def test_the_flow_measures_refuse_a_case_they_cannot_measure():
    """FLOW-GAUSS needs one Gaussian component, FLOW-QUANTILE a 1-d path: a clear error
    naming the case, not a wrong number."""
    settings = BatteryConfig.quick_config()
    with pytest.raises(ValueError, match=r"one-component.*'eight_gaussians/linear'"):
        flow_gauss(Case.named("eight_gaussians", "linear"), settings, np.random.default_rng(0))
    with pytest.raises(ValueError, match="1-d path, case 'gaussian/trig' has d = 2"):
        flow_quantile(Case.named("gaussian", "trig"), settings, np.random.default_rng(0))


def test_multistep_takes_a_generator_as_its_seed():
    """The runner passes each case's generator: the same stream as the integer seed."""
    path = cmv.MixturePath(cmv.mixtures.gaussian(), cmv.Interpolant.linear())
    exact = path.denoiser  # f*(t, ·) is not needed to compare two runs of the same stream
    by_int = multistep(path, n=500, seed=3, consistency=exact)
    by_generator = multistep(path, n=500, seed=np.random.default_rng(3), consistency=exact)
    assert by_int == by_generator


def test_the_transport_check_resolves_the_steepest_bulk_point():
    """FLOW-MAP's transport residual at a data point 2 std from its mode (drawn by the
    full battery's per-case seed): with the old step h = 1e-3 the 6th-order truncation
    alone was 1.4e-7 > 1e-7; at TRANSPORT_STEP = 5e-4 it is 64 times smaller."""
    path = cmv.MixturePath(cmv.mixtures.eight_gaussians(), cmv.Interpolant.linear())
    flow = ReferenceFlow(path)
    xt = flow.map(np.array([[-1.0437, 1.5554]]), 0.0, 0.5)
    assert transport_residual(flow, 0.5, xt)[0] <= TRANSPORT_TOLERANCE / 10
    assert transport_residual(flow, 0.5, xt, h=1e-3)[0] > TRANSPORT_TOLERANCE


# -- issue 12: the quick battery's speed (each test guards one saving) ------------------


def _one_d_gaussian_path():
    return cmv.MixturePath(cmv.mixtures.gaussian([0.3], [[0.5]]), cmv.Interpolant.linear())


def _count_solves(monkeypatch):
    """Counts the reference solves (every map, consistency and solve goes through
    ReferenceFlow._checked)."""
    calls = []
    checked = ReferenceFlow._checked

    def counting(self, x, s, t, certify, stacklevel):
        calls.append(np.shape(x)[0])
        return checked(self, x, s, t, certify, stacklevel + 1)

    monkeypatch.setattr(ReferenceFlow, "_checked", counting)
    return calls


def test_batched_solves_answer_each_call_as_its_own_solve_would(monkeypatch):
    """One solve for three calls with different points and times, each row what its own
    solve gives (every trajectory keeps its own steps; the batch's linear algebra may
    round the last bit differently: measured ≤ 4.4e-16)."""
    path = _one_d_gaussian_path()
    flow = ReferenceFlow(path)
    x = np.array([[-1.0], [0.2], [1.5]])
    alone = [flow.map(x, 0.5, 0.0), flow.consistency(0.3, 2 * x), flow.map(x[:2], 0.2, 0.9)]
    solves = _count_solves(monkeypatch)
    together = batched_solves(
        flow, lambda f: [f.map(x, 0.5, 0.0), f.consistency(0.3, 2 * x), f.map(x[:2], 0.2, 0.9)]
    )
    assert solves == [8]
    for a, b in zip(alone, together, strict=True):
        assert a.shape == b.shape
        assert np.max(np.abs(a - b)) <= 4 * np.finfo(float).eps * (1 + np.max(np.abs(a)))


def test_batched_solves_refuse_calls_that_depend_on_the_answers():
    flow = ReferenceFlow(_one_d_gaussian_path())
    x = np.array([[0.1], [0.4]])
    with pytest.raises(RuntimeError, match="must not choose its calls from the answers"):
        batched_solves(flow, lambda f: f.map(f.map(x, 0.0, 0.5), 0.5, 0.0))
    assert batched_solves(flow, lambda f: 7) == 7  # no calls, no solve


def test_ct_local_target_runs_one_reference_solve(monkeypatch):
    """f* at the target, the 9 × (quadrature nodes, Euler end points) and the 6 + 36
    stencil points of ∇f*, ∇²f* (1-d): one batched solve, not 61."""
    path = _one_d_gaussian_path()
    flow = ReferenceFlow(path)
    y = flow.map(np.array([[0.1], [0.6]]), 0.0, 0.5)
    solves = _count_solves(monkeypatch)
    all_pass(ct_local_target(path, 0.5, y, flow=flow, order=8))
    assert len(solves) == 1


def test_grid_spline_is_the_quintic_interpolant():
    """CT-GLOBAL's piecewise-polynomial evaluation agrees with the B-spline to rounding
    inside the grid and is the B-spline itself outside (its extrapolation)."""
    grid = np.linspace(-8.0, 8.0, 3201)
    values = np.tanh(3 * grid) + 0.1 * grid**2
    spline = make_interp_spline(grid, values, k=5)
    fast = _GridSpline(grid, values)
    x = np.random.default_rng(0).uniform(-8.0, 8.0, size=(200, 40))
    assert np.max(np.abs(fast(x) - spline(x))) <= 1e-13 * np.max(np.abs(values))
    outside = np.array([[-9.0, 8.5], [12.0, -8.25]])
    assert np.array_equal(fast(outside), spline(outside))


def test_probability_flow_forms_are_derived_once_per_interpolant(monkeypatch):
    """FLOW-VELOCITY's SymPy work (λ, g², the identity's proof) is done once per
    interpolant, not once per case."""
    monkeypatch.setattr(velocity_module, "_PROBABILITY_FLOW", {})
    proofs = []
    prove = velocity_module.probability_flow_identity
    monkeypatch.setattr(
        velocity_module, "probability_flow_identity", lambda i: proofs.append(i) or prove(i)
    )
    rng = np.random.default_rng(0)
    for mix in (cmv.mixtures.seed_bimodal(), cmv.mixtures.mild_bimodal()):
        path = cmv.MixturePath(mix, cmv.Interpolant.linear())
        all_pass(flow_velocity_forms(path, np.array([0.5]), [path.sample(0.5, 16, rng)]))
    assert len(proofs) == 1


def test_int_boundary_threshold_is_the_chi2_quantile():
    """INT-BOUNDARY's χ²_d quantile without scipy.stats: bit for bit chi2.isf."""
    from scipy import stats

    settings = BatteryConfig.quick_config()
    for name, interp in (("seed_bimodal", "trig"), ("gaussian", "linear")):
        case = Case.named(name, interp)
        checks = int_boundary(case, settings, np.random.default_rng(0))
        expected = float(stats.chi2.isf(1e-6, case.path.dim))
        assert [c.tolerance for c in checks[1:]] == [expected, expected]


def test_importing_the_claims_does_not_import_scipy_stats():
    """scipy.stats (0.25 s) is imported by MULTISTEP when it runs, not at start-up."""
    code = "import sys, cmverify.cli; print('scipy.stats' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_song_t1_loops_call_the_velocity_a_subclass_defines():
    """The distillation loops use the path's trusted door only for MixturePath's own
    velocity, bit for bit the public one; an overriding subclass is called."""
    path = cmv.MixturePath(cmv.mixtures.eight_gaussians(), cmv.Interpolant.trig())
    x = path.sample(0.7, 9, np.random.default_rng(1))
    assert np.array_equal(_loop_velocity(path)(0.7, x), path.velocity(0.7, x))

    class Halved(cmv.MixturePath):
        def velocity(self, t, x):
            return 0.5 * super().velocity(t, x)

    halved = Halved(path.mixture, path.interpolant)
    assert np.array_equal(_loop_velocity(halved)(0.7, x), 0.5 * path.velocity(0.7, x))


def test_interpolant_coefficients_are_new_arrays_of_the_times_shape():
    """The generated numerics return the computed array itself when it is new and of the
    right shape, and still copy or broadcast otherwise: σ = t (linear) does not return
    the caller's times, a constant (α̇ = −1) has the times' shape."""
    linear = cmv.Interpolant.linear()
    t = np.array([0.1, 0.5, 0.9])
    sigma = linear.sigma(t)
    assert np.array_equal(sigma, t) and not np.may_share_memory(sigma, t)
    co = linear.at_trusted(t)
    assert not np.may_share_memory(co.sigma, t) and t.flags.writeable
    assert np.array_equal(linear.dalpha(t), [-1.0, -1.0, -1.0])
    assert linear.dalpha(0.5).shape == ()
