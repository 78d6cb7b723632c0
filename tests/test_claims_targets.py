"""MEANFLOW-FLOOR and SHORTCUT-BASE pass on the exact objects and fail on wrong ones: a
floor that forgets ``∇X_{t→r}`` (the flow-matching floor), a shortcut base case whose
flow-matching network is off by a constant."""

import numpy as np

from cmverify import loss_floors
from cmverify.claims import CATALOGUE
from cmverify.claims._case import BatteryConfig, Case
from cmverify.claims._targets import (
    measure_meanflow_floor,
    measure_shortcut_base,
    shortcut_fixed_point,
)

QUICK = BatteryConfig.quick_config()
MILD = Case.named("mild_bimodal", "linear")


def test_both_claims_are_in_the_catalogue_with_quick_cases():
    for claim in ("MEANFLOW-FLOOR", "SHORTCUT-BASE"):
        cases = CATALOGUE[claim].cases
        assert [c.name for c in cases if c.quick] == ["mild_bimodal/linear"]
        assert {c.name for c in cases} >= {"eight_gaussians/linear", "eight_gaussians/trig"}


def test_meanflow_floor_passes_and_catches_a_floor_without_the_jacobian():
    checks = measure_meanflow_floor(MILD, QUICK, np.random.default_rng(0))
    assert all(c.passed for c in checks), [(c.name, c.measured) for c in checks]

    def flow_matching_floor(path, t, r, rtol):  # the floor at r = t: ∇X forgotten
        return loss_floors.flow_matching_quadrature(path, t)

    wrong = measure_meanflow_floor(MILD, QUICK, np.random.default_rng(0), floor=flow_matching_floor)
    z_scores = [c for c in wrong if "s.e." in c.name]
    assert z_scores and all(not c.passed for c in z_scores)


def test_shortcut_fixed_point_is_the_euler_composition_and_a_biased_base_fails():
    path = MILD.path
    x = np.array([[0.3], [-1.2]])
    two = shortcut_fixed_point(path, x, 1.0, 0.5, 0.25)
    by_hand = x - 0.25 * path.velocity(1.0, x)
    by_hand = by_hand - 0.25 * path.velocity(0.75, by_hand)
    assert np.array_equal(two, by_hand)
    assert all(c.passed for c in measure_shortcut_base(MILD, QUICK, np.random.default_rng(0)))
    biased = measure_shortcut_base(
        MILD, QUICK, np.random.default_rng(0), base=lambda t, y: path.velocity(t, y) + 0.01
    )
    assert not any(c.passed for c in biased)  # the error stalls at the bias: order ≈ 0


def test_meanflow_weighting_fixed_point_is_an_m_estimate_not_the_mean():
    """p = 1, ε = 0.01 at r = t: the fixed point solves its M-estimation equation to
    rounding and sits ≥ 5% of the posterior spread off ``v`` between mild_bimodal's modes
    (where the law of v_c given x_t is most skewed);
    for Gaussian data (a symmetric law of v_c) it is ``v``; for large ε the offset is
    ``−(p/ε) E[Δ|Δ|²]`` (the claim's checks pass)."""
    from cmverify.claims._targets import measure_meanflow_weighting, weighted_fixed_point

    path = MILD.path
    x = np.array([[0.0], [0.3]])
    u, residual = weighted_fixed_point(path, 0.5, x, 1.0, 0.01)
    spread = np.sqrt(path.velocity_target_variance(0.5, x))
    offset = np.abs(u - path.velocity(0.5, x))[:, 0] / spread
    assert np.all(residual < 1e-12) and offset[0] > 0.05  # x = 0: between the modes
    gaussian = Case.named("gaussian", "linear").path
    y = gaussian.sample(0.5, 3, np.random.default_rng(1))
    u_gauss, _ = weighted_fixed_point(gaussian, 0.5, y, 1.0, 0.01)
    assert np.max(np.abs(u_gauss - gaussian.velocity(0.5, y))) < 1e-13
    checks = measure_meanflow_weighting(MILD, QUICK, np.random.default_rng(0))
    assert all(c.passed for c in checks), [(c.name, c.measured) for c in checks]


def test_scm_tangent_passes_and_is_zero_for_gaussian_data():
    """SCM-TANGENT on mild_bimodal: sCD's tangent is zero at f*, sCT's normalized tangent
    has mean ≈ 0.1 at c = 0.1 (f* is not its fixed point), its large-c expansion and the
    discrete gradient's order-Δ approach pass; on Gaussian data the mean is 0."""
    from cmverify.claims._tangents import measure_scm_tangent

    checks = measure_scm_tangent(MILD, QUICK, np.random.default_rng(0))
    assert all(c.passed for c in checks), [(c.name, c.measured) for c in checks]
    order = next(c for c in checks if "order of E[g_c" in c.name)
    assert "|E[ĝ]| up to 0.1" in order.detail
    symmetric = measure_scm_tangent(Case.named("gaussian", "trig"), QUICK, np.random.default_rng(0))
    assert any("symmetric law" in c.name and c.passed for c in symmetric)
