"""The flow-matching loss floor ``E |v_c − v(t, x_t)|²`` against truths computed another way:
the Gaussian closed form, adaptive 1-d quadrature of the posterior covariance, Monte
Carlo of the definition, the endpoints, and the identity ``E|v_c|² − E|v|²``."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import integrate

import cmverify as cmv
from cmverify import loss_floors
from cmverify.reference import AccuracyWarning
from cmverify.testing import strategies as cst


def test_gaussian_data_floor_is_the_closed_form():
    """One Gaussian ``N(μ, Σ)``: ``Cov(x0 | x_t) = U diag(λσ²/c) Uᵀ`` everywhere, so the floor is
    ``W² Σ_i λ_i / c_i`` with ``W = 1`` (linear) — no quadrature in the truth."""
    cov = np.array([[0.5, 0.2], [0.2, 0.3]])
    path = cmv.MixturePath(
        cmv.GaussianMixture([1.0], [[1.0, -2.0]], [cov]), cmv.Interpolant.linear()
    )
    lam = np.linalg.eigvalsh(cov)
    for t in (0.0, 0.05, 0.3, 0.7, 1.0):
        truth = np.sum(lam / ((1 - t) ** 2 * lam + t**2))
        assert loss_floors.flow_matching(path, t) == pytest.approx(truth, rel=1e-13)


@pytest.mark.parametrize("mixture", ["seed_bimodal", "mild_bimodal"])
@pytest.mark.parametrize("interpolant", ["linear", "trig"])
def test_one_dimensional_floors_match_adaptive_quadrature_of_the_posterior_covariance(
    mixture, interpolant
):
    """Truth: ``∫ p_t(x) (W/σ)² Var(x0 | x_t = x) dx`` by ``scipy.integrate.quad`` over the
    posterior's own covariance (another route than the code's per-component velocities)."""
    path = cmv.MixturePath(
        getattr(cmv.mixtures, mixture)(), getattr(cmv.Interpolant, interpolant)()
    )
    times = (0.001, 0.05, 0.2, 0.5, 0.9)
    got = loss_floors.flow_matching(path, np.array(times))
    for t, value in zip(times, got, strict=True):
        at = path.interpolant.at(t)
        factor = (float(at.wronskian) / float(at.sigma)) ** 2

        def integrand(x, t=t, factor=factor):
            point = np.array([[x]])
            var = path.posterior(t, point).covariance()[0, 0, 0]
            return float(np.exp(path.log_prob(t, point)[0]) * factor * var)

        m = path.marginal(t)
        mus, sds = m.means.ravel(), np.sqrt(m.covs.ravel())
        lo, hi = float(np.min(mus - 40 * sds)), float(np.max(mus + 40 * sds))
        breaks = sorted({float(v) for v in np.concatenate([mus, mus - 3 * sds, mus + 3 * sds])})
        truth, err = integrate.quad(
            integrand,
            lo,
            hi,
            points=[b for b in breaks if lo < b < hi],
            limit=2000,
            epsabs=0.0,
            epsrel=1e-12,
        )
        assert abs(value - truth) <= 1e-10 * truth + 10 * err, (t, value, truth)


def test_floor_is_the_loss_of_the_exact_velocity_by_monte_carlo():
    """The definition itself: ``mean |α̇ x0 + σ̇ x1 − v(t, x_t)|²`` over 400,000 draws is
    within 5 standard errors of the floor (a random 2-d mixture, trig interpolant)."""
    mix = cmv.GaussianMixture(
        [0.3, 0.7], [[-1.0, 0.5], [1.5, 0.0]], [np.diag([0.2, 0.05]), np.diag([0.1, 0.3])]
    )
    path = cmv.MixturePath(mix, cmv.Interpolant.trig())
    rng = np.random.default_rng(7)
    for t in (0.1, 0.4, 0.8):
        at = path.interpolant.at(t)
        x0 = mix.sample(400_000, rng)
        x1 = rng.standard_normal(x0.shape)
        xt = float(at.alpha) * x0 + float(at.sigma) * x1
        sq = np.sum((float(at.dalpha) * x0 + float(at.dsigma) * x1 - path.velocity(t, xt)) ** 2, 1)
        se = sq.std() / math.sqrt(sq.size)
        assert abs(sq.mean() - loss_floors.flow_matching(path, t)) < 5 * se


def test_endpoints_are_exact():
    """``t = 0``: ``d σ̇_0²`` (x1 is independent of x0 = x_0); ``t = 1``: ``α̇_1² tr Cov x0``."""
    for name in ("linear", "trig"):
        path = cmv.MixturePath(cmv.mixtures.eight_gaussians(), getattr(cmv.Interpolant, name)())
        interp = path.interpolant
        start, end = loss_floors.flow_matching(path, np.array([0.0, 1.0]))
        assert start == pytest.approx(2 * interp.dsigma(0.0) ** 2, rel=1e-14)
        cov = np.trace(path.mixture.covariance())
        assert end == pytest.approx(interp.dalpha(1.0) ** 2 * cov, rel=1e-14)


@given(
    path=cst.paths(
        cst.mixtures(dims=st.just(1), n_components=st.integers(1, 3)),
        cst.interpolants(include_singular=False),
    ),
    t=cst.times(0.05, 0.95, endpoints=False),
)
def test_floor_equals_target_energy_minus_velocity_energy(path, t):
    """``E|v_c − v|² = E|v_c|² − E|v|²`` (since ``E[v_c | x_t] = v``), with ``E|v_c|² =
    α̇² E|x0|² + σ̇² d`` (x0 and x1 independent, ``E x1 = 0``) and ``E_{p_t}|v|²`` by
    adaptive quadrature (random 1-d mixtures: broad and narrow components together are
    where fixed Gauss–Hermite rules converge slowly)."""
    at = path.interpolant.at(t)
    mix = path.mixture
    second_moment = np.trace(mix.covariance()) + float(np.sum(mix.mean() ** 2))
    target_energy = float(at.dalpha) ** 2 * second_moment + float(at.dsigma) ** 2

    def energy(x):
        point = np.array([[x]])
        return float(np.exp(path.log_prob(t, point)[0]) * np.sum(path.velocity(t, point) ** 2))

    m = path.marginal(t)
    mus, sds = m.means.ravel(), np.sqrt(m.covs.ravel())
    lo, hi = float(np.min(mus - 40 * sds)), float(np.max(mus + 40 * sds))
    inner = sorted({float(v) for v in mus if lo < v < hi})
    velocity_energy, err = integrate.quad(
        energy, lo, hi, points=inner, limit=2000, epsabs=0.0, epsrel=1e-12
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", AccuracyWarning)
        floor = loss_floors.flow_matching(path, t)
    assert floor >= 0
    assert floor == pytest.approx(target_energy - velocity_energy, rel=1e-8, abs=1e-10 + 10 * err)


def test_quadrature_records_say_how_the_value_was_reached():
    path = cmv.MixturePath(cmv.mixtures.eight_gaussians(), cmv.Interpolant.linear())
    (rec,) = loss_floors.flow_matching_quadrature(path, 0.5)
    assert rec.converged and rec.error_estimate <= 1e-9 * rec.value
    assert rec.rule == "gauss-hermite"
    assert rec.nodes == 8 * sum(q**2 for q in (8, 16, 32, 64, 128, 256, 512) if q <= rec.order)
    assert rec.value == loss_floors.flow_matching(path, 0.5)
    # plain Python numbers whichever rule produced them (review: np.bool_ from one rule)
    assert type(rec.value) is float and type(rec.nodes) is int and rec.converged is True


def test_bad_input_is_refused_by_name():
    path = cmv.MixturePath(cmv.mixtures.eight_gaussians(), cmv.Interpolant.linear())
    with pytest.raises(TypeError, match="path must be a MixturePath"):
        loss_floors.flow_matching(cmv.mixtures.eight_gaussians(), 0.5)
    with pytest.raises(ValueError, match=r"t must lie in \[0, 1\]"):
        loss_floors.flow_matching(path, 1.5)
    with pytest.raises(ValueError, match="rtol must be a number in"):
        loss_floors.flow_matching_quadrature(path, 0.5, rtol=0.0)
    for bad in ("1e-6", True, 1e-6 + 0j):  # not a real number: a TypeError, as in ReferenceFlow
        with pytest.raises(TypeError, match="rtol must be a real number"):
            loss_floors.flow_matching_quadrature(path, 0.5, rtol=bad)
        with pytest.raises(TypeError, match="rtol must be a real number"):
            loss_floors.meanflow_quadrature(path, 0.5, 0.2, rtol=bad)
    big = cmv.MixturePath(
        cmv.GaussianMixture([1.0], [np.zeros(5)], [np.eye(5)]), cmv.Interpolant.linear()
    )
    with pytest.raises(ValueError, match=r"limited to d ≤ 4 .*got d = 5"):
        loss_floors.flow_matching(big, 0.5)
