"""PSEUDO-HUBER: the estimators it rests on, and the claim catching what it should."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import ndtr

import cmverify as cmv
from cmverify.claims import BatteryConfig, Case, _huber, _medians
from cmverify.claims._huber import measure_pseudo_huber, median_chain, median_flow
from cmverify.claims._medians import (
    geometric_median_2d,
    posterior_median,
    pseudo_huber_estimate,
)
from cmverify.reference import quantile_flow_map

QUICK = BatteryConfig.quick_config()


def _path(mixture: str, interpolant: str = "linear") -> cmv.MixturePath:
    return Case.named(mixture, interpolant).path


def test_posterior_median_splits_the_posterior_in_half():
    path = _path("seed_bimodal")
    y = np.linspace(-4, 4, 41)[:, None]
    for t in (0.05, 0.5, 1.0):
        m = posterior_median(path, t, y)
        post = path.posterior(t, y)
        sd = np.sqrt(post.eigvals[..., 0])
        cdf = np.sum(post.weights * ndtr((m - post.means[..., 0]) / sd), axis=1)
        np.testing.assert_allclose(cdf, 0.5, atol=1e-14)
    with pytest.raises(ValueError, match="1-d path"):
        posterior_median(_path("eight_gaussians"), 0.5, np.zeros((1, 2)))


def test_pseudo_huber_estimate_limits_and_refusals():
    rng = np.random.default_rng(0)
    z = rng.gamma(2.0, size=(3, 400, 2))  # skewed: mean ≠ median
    w = np.full((3, 400), 1 / 400)
    mean, offset, residual = pseudo_huber_estimate(z, w, 1e6)
    np.testing.assert_allclose(offset, 0, atol=1e-9)  # huge c: the squared loss
    assert np.all(residual < 1e-12)
    mean, offset, residual = pseudo_huber_estimate(z, w, 0.0)  # the geometric median
    g = mean + offset
    for _ in range(5000):  # Weiszfeld's iteration converges to the same point
        d = np.linalg.norm(z - g[:, None], axis=2)
        g = np.einsum("nj,njm->nm", w / d, z) / np.sum(w / d, axis=1)[:, None]
    np.testing.assert_allclose(mean + offset, g, atol=1e-9)
    assert np.all(np.linalg.norm(offset, axis=1) > 0.1)
    with pytest.raises(ValueError, match="1-d median"):
        pseudo_huber_estimate(z[..., :1], w, 0.0)
    with pytest.raises(ValueError, match="c must be"):
        pseudo_huber_estimate(z, w, -1.0)


def _all_polar(w, m, c):
    """Polar integration of every component, on a grid 16 times finer than the default."""
    near = _medians.NEAR
    try:
        _medians.NEAR = np.inf
        return geometric_median_2d(w, m, c, points=16 * _medians.THETA_POINTS)[0]
    finally:
        _medians.NEAR = near


def test_geometric_median_2d_is_exact():
    """Symmetric law: its centre. A skewed mixture with a far, narrow component: the hybrid
    (polar near, Gauss–Hermite far) agrees with polar integration of every component on a
    grid 16 times finer."""
    cov = np.array([[[[2.0, 0.7], [0.7, 0.5]]]])
    med, residual = geometric_median_2d(np.ones((1, 1)), np.array([[[0.3, -0.2]]]), cov)
    np.testing.assert_allclose(med, [[0.3, -0.2]], atol=1e-15)
    w = np.array([[0.6, 0.3, 0.1]])
    m = np.array([[[0.0, 0.0], [3.0, 1.0], [-2.0, 4.0]]])
    c = np.array(
        [[[[1, 0.2], [0.2, 0.5]], [[0.01, 0], [0, 0.002]], [[0.003, 0.001], [0.001, 0.002]]]]
    )
    med, residual = geometric_median_2d(w, m, c)
    assert residual[0] < 1e-13
    np.testing.assert_allclose(med, _all_polar(w, m, c), atol=1e-12)
    assert np.linalg.norm(med - np.einsum("nk,nki->ni", w, m)) > 0.1


@pytest.mark.parametrize(
    ("weights", "means", "stds", "expected"),
    [
        # the median moves into a component first integrated by the far rule (review W1):
        # Weiszfeld on 2e6 samples gives (0.4384, 0.0816)
        ([0.7, 0.3], [[0.0, 0.0], [2.0, 1.0]], [[1.0, 1e-2], [0.5**0.5, 0.5**0.5]], None),
        # 8 thin-axis deviations off a needle yet inside its length (review W2)
        ([0.3, 0.7], [[0.0, 0.0], [0.0, 0.15]], [[1.0, 1e-3], [0.05, 0.05]], None),
    ],
)
def test_geometric_median_2d_of_needles(weights, means, stds, expected):
    """Needles (std ratios 100 and 1000): the hybrid agrees with polar integration of
    every component on a grid 16 times finer."""
    w, m = np.array([weights]), np.array([means])
    c = np.array([[np.diag(np.square(s)) for s in stds]])
    med, residual = geometric_median_2d(w, m, c)
    assert residual[0] < 1e-12
    np.testing.assert_allclose(med, _all_polar(w, m, c), atol=1e-9)


def test_pseudo_huber_estimate_refuses_bad_weights_and_values():
    z = np.zeros((1, 3, 2))
    with pytest.raises(ValueError, match="weights"):
        pseudo_huber_estimate(z, np.array([[0.5, 0.7, -0.2]]), 0.1)
    with pytest.raises(ValueError, match="finite"):
        pseudo_huber_estimate(z + np.nan, np.full((1, 3), 1 / 3), 0.1)


def test_the_claim_runs_in_two_dimensions():
    """eight_gaussians (full battery only in verify): every check passes, among them the
    geometric medians resolved to 1e-10."""
    checks = measure_pseudo_huber(
        Case.named("eight_gaussians", "linear"), BatteryConfig(), np.random.default_rng(0)
    )
    assert len(checks) == 9 and all(c.passed for c in checks), [
        (c.name, c.measured) for c in checks if not c.passed
    ]


def test_median_flow_of_gaussian_data_is_the_flow():
    """Gaussian data: the posterior is symmetric, the median velocity is v, so the c = 0
    limit is f* itself (to the median flow's tolerance)."""
    path = _path("gaussian")
    if path.dim != 1:  # the battery's Gaussian case may be multivariate
        path = cmv.MixturePath(
            cmv.GaussianMixture([1.0], [[0.7]], [[[0.4]]]), cmv.Interpolant.linear()
        )
    x = np.linspace(-2.5, 2.5, 11)[:, None]
    np.testing.assert_allclose(
        median_flow(path, x), quantile_flow_map(path, x, 1.0, 0.0), atol=1e-9
    )


def test_median_chain_converges_to_the_median_flow_not_to_fstar():
    path = _path("mild_bimodal")
    x = np.linspace(-2, 2, 9)[:, None]
    limit = median_flow(path, x)
    errors = [np.max(np.abs(median_chain(path, x, k) - limit)) for k in (64, 128)]
    assert 1.8 < errors[0] / errors[1] < 2.2  # order 1
    assert np.max(np.abs(limit - quantile_flow_map(path, x, 1.0, 0.0))) > 0.05


def test_a_mean_in_place_of_the_median_is_caught(monkeypatch):
    """If c = 0 gave the posterior mean (the squared loss's answer), the c = 0 local
    checks would see order 2, and the induction's limit would be f* itself (DDIM with the
    mean denoiser converges to the flow of v)."""

    def mean(path, t, y):
        return path.denoiser(t, y)

    monkeypatch.setattr(_huber, "posterior_median", mean)
    checks = measure_pseudo_huber(
        Case.named("mild_bimodal", "linear"), QUICK, np.random.default_rng(0)
    )
    assert len(checks) == 10  # its passing run is verify --quick's (tests/test_cli.py)
    failed = {c.name.split(":")[0] for c in checks if not c.passed}
    assert any(name.startswith("c = 0") for name in failed)
    (limit,) = [c for c in checks if "limit is not f*" in c.name]
    assert not limit.passed and limit.value < 1e-8


def test_a_wrong_cubic_coefficient_is_caught(monkeypatch):
    """The pseudo-Huber offset halved (as if ψ's cubic term were −r‖r‖²/(4c³))."""
    real = _huber.pseudo_huber_estimate

    def halved(values, weights, c, **kw):
        mean, offset, residual = real(values, weights, c, **kw)
        return mean, (0.5 * offset if c > 0 else offset), residual

    monkeypatch.setattr(_huber, "pseudo_huber_estimate", halved)
    checks = measure_pseudo_huber(
        Case.named("mild_bimodal", "linear"), QUICK, np.random.default_rng(0)
    )
    ratios = [c for c in checks if "measured/predicted" in c.name and "c = 0:" not in c.name]
    assert ratios and not any(c.passed for c in ratios)


def test_conditional_nodes_are_the_rule_behind_conditional_expectation():
    from cmverify.reference import conditional_expectation, conditional_nodes

    path = _path("eight_gaussians", "trig")
    y = np.array([[0.3, -1.0], [2.0, 2.0]])
    x0, x1, w = conditional_nodes(path, 0.6, y, order=6)
    assert x0.shape == x1.shape == (2, 8 * 36, 2) and w.shape == (2, 8 * 36)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=1e-14)
    at = path.interpolant.at(0.6)
    np.testing.assert_allclose(
        float(at.alpha) * x0 + float(at.sigma) * x1,
        np.broadcast_to(y[:, None], x0.shape),
        atol=1e-14,
    )

    def g(a, b):
        return a * b[..., ::-1]

    np.testing.assert_allclose(
        np.einsum("nj,nja->na", w, g(x0, x1)),
        conditional_expectation(path, 0.6, y, g, order=6),
        rtol=1e-14,
    )
    with pytest.raises(ValueError, match="σ_t = 0"):
        conditional_nodes(path, 0.0, y)
