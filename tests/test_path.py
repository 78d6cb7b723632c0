"""MixturePath: the closed-form path quantities, checked as properties over
``cmverify.strategies`` (mixtures d 1–4, K 1–5, condition ≤ 10; five interpolants)."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import integrate, stats

import cmverify as cmv
from cmverify import identities
from cmverify import strategies as cst

seeds = st.integers(0, 2**32 - 1)

#: Budgets (see cmverify.identities): 6th-order differences give ≲ 3e-10 for the
#: continuity residual and ≲ 1e-11 for the score; identities without differences are
#: exact up to rounding, ≲ 1e-14 relative.
CONTINUITY_TOLERANCE = 1e-8
SCORE_TOLERANCE = 1e-9
ROUNDING_TOLERANCE = 1e-12


@given(path=cst.paths(), t=cst.times(), seed=seeds)
def test_continuity_equation(path, t, seed):
    """∂_t p + ∇·(p v) = 0 for the closed-form velocity."""
    x = path.sample(t, 64, seed)
    assert identities.continuity_residual(path, t, x).max() < CONTINUITY_TOLERANCE


@pytest.mark.parametrize("relative_error", [1e-3, 1e-5])
def test_continuity_check_detects_a_wrong_velocity(relative_error):
    """The residual is sensitive: a velocity off by a relative ε gives a residual ≈ ε."""

    class Perturbed(cmv.MixturePath):
        def velocity(self, t, x):
            return (1 + relative_error) * super().velocity(t, x)

    path = Perturbed(cmv.mixtures.eight_gaussians(), cmv.Interpolant.trig())
    x = path.sample(0.4, 64, 0)
    assert identities.continuity_residual(path, 0.4, x).max() > 0.1 * relative_error


@given(path=cst.paths(), t=cst.times(), seed=seeds)
def test_score_is_gradient_of_log_prob(path, t, seed):
    x = path.sample(t, 64, seed)
    assert identities.score_gradient_residual(path, t, x).max() < SCORE_TOLERANCE


@given(path=cst.paths(), t=cst.times(), seed=seeds)
def test_denoiser_and_expected_noise_reconstruct_x(path, t, seed):
    """α_t D + σ_t E[x1 | x_t] = x."""
    x = path.sample(t, 64, seed)
    assert identities.decomposition_residual(path, t, x).max() < ROUNDING_TOLERANCE


@given(
    path=cst.paths(interpolant_strategy=cst.interpolants(include_singular=False)),
    t=cst.times(),
    seed=seeds,
)
def test_velocity_is_alpha_dot_d_plus_sigma_dot_e(path, t, seed):
    """v = α̇ D + σ̇ E[x1 | x_t] wherever σ̇ is finite."""
    x = path.sample(t, 64, seed)
    assert identities.velocity_decomposition_residual(path, t, x).max() < ROUNDING_TOLERANCE


@given(
    path=cst.paths(interpolant_strategy=cst.interpolants().filter(lambda i: i.name == "sqrt")),
    t=cst.times(min_value=1e-3),
    seed=seeds,
)
def test_velocity_decomposition_for_the_singular_interpolant(path, t, seed):
    x = path.sample(t, 64, seed)
    assert identities.velocity_decomposition_residual(path, t, x).max() < ROUNDING_TOLERANCE


def gaussian_formulas(mean, cov, interp, t, x):
    """Textbook formulas for x0 ~ N(μ, Σ): x_t ~ N(αμ, C), C = α²Σ + σ²I."""
    a, s = float(interp.alpha(t)), float(interp.sigma(t))
    da, ds = float(interp.dalpha(t)), float(interp.dsigma(t))
    c = a * a * cov + s * s * np.eye(len(mean))
    centered = x - a * mean
    c_inv_y = np.linalg.solve(c, centered.T).T
    return {
        "log_prob": stats.multivariate_normal(a * mean, c).logpdf(x).reshape(len(x)),
        "denoiser": mean + a * c_inv_y @ cov,
        "expected_noise": s * c_inv_y,
        "score": -c_inv_y,
        "velocity": da * mean + c_inv_y @ (a * da * cov + s * ds * np.eye(len(mean))),
    }


@given(
    mix=cst.mixtures(n_components=st.just(1)),
    interp=cst.interpolants(include_singular=False),
    t=cst.times(),
    seed=seeds,
)
def test_one_component_matches_gaussian_formulas(mix, interp, t, seed):
    path = cmv.MixturePath(mix, interp)
    x = path.sample(t, 32, seed)
    expected = gaussian_formulas(mix.means[0], mix.covs[0], interp, t, x)
    for name, value in expected.items():
        got = getattr(path, name)(t, x)
        # Both sides are rounding-exact; C is well conditioned (cond ≤ 10 / min(λ, 1)).
        np.testing.assert_allclose(got, value, rtol=1e-9, atol=1e-9, err_msg=name)


@given(path=cst.paths(), t=st.sampled_from([0.0, 1.0]), seed=seeds)
def test_finite_at_endpoints_and_far_away(path, t, seed):
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=(8, path.dim))
    far = 1e3 * direction / np.linalg.norm(direction, axis=1, keepdims=True)
    near = path.sample(t, 8, rng)
    x = np.vstack([near, far])
    for name in ("log_prob", "denoiser", "expected_noise", "score", "velocity"):
        assert np.all(np.isfinite(getattr(path, name)(t, x))), name


@given(path=cst.paths(), t=cst.times(), seed=seeds)
def test_posterior_is_a_proper_mixture_with_the_denoiser_as_mean(path, t, seed):
    x = path.sample(t, 16, seed)
    post = path.posterior(t, x)
    np.testing.assert_allclose(post.weights.sum(axis=1), 1.0, rtol=1e-13)
    assert np.all(post.eigvals >= 0)
    np.testing.assert_allclose(post.mean(), path.denoiser(t, x), rtol=1e-12, atol=1e-12)


def test_posterior_at_the_endpoints():
    mix = cmv.mixtures.random_mixture(2, 3, rng=0)
    path = cmv.MixturePath(mix, cmv.Interpolant.trig())
    x = path.sample(0.0, 5, 1)
    post0 = path.posterior(0.0, x)  # x0 = x_0 exactly
    np.testing.assert_allclose(
        post0.means, np.broadcast_to(x[:, None], post0.means.shape), atol=1e-14
    )
    np.testing.assert_array_equal(post0.eigvals, 0.0)
    post1 = path.posterior(1.0, x)  # x_1 carries no information about x0
    np.testing.assert_allclose(post1.weights, np.broadcast_to(mix.weights, (5, 3)), rtol=1e-14)
    np.testing.assert_allclose(post1.means, np.broadcast_to(mix.means, (5, 3, 2)), atol=1e-15)
    np.testing.assert_allclose(post1.covs, np.broadcast_to(mix.covs, (5, 3, 2, 2)), atol=1e-15)


@given(
    mix=cst.mixtures(dims=st.just(1)),
    interp=cst.interpolants(),
    t=cst.times(0.05, 0.95),
    seed=seeds,
)
def test_posterior_moments_match_bayes_by_quadrature(mix, interp, t, seed):
    """d = 1: posterior mean and variance against Bayes' rule integrated numerically,
    ∫ g(x0) p0(x0) N(y; α x0, σ²) dx0 / ∫ p0(x0) N(y; α x0, σ²) dx0 (adaptive quadrature,
    relative accuracy ≈ 1e-10)."""
    path = cmv.MixturePath(mix, interp)
    y = path.sample(t, 3, seed)
    a, s = float(interp.alpha(t)), float(interp.sigma(t))
    post = path.posterior(t, y)
    var = np.einsum("nk,nk->n", post.weights, post.eigvals[..., 0] + post.means[..., 0] ** 2)
    var -= post.mean()[:, 0] ** 2
    centers = list(mix.means[:, 0])
    comps = list(zip(mix.weights, centers, mix.covs[:, 0, 0], strict=True))
    for i in range(3):

        def joint(x0, i=i):
            prior = sum(w * math.exp(-0.5 * (x0 - m) ** 2 / v) / math.sqrt(v) for w, m, v in comps)
            return prior * math.exp(-0.5 * ((y[i, 0] - a * x0) / s) ** 2)

        # Integrate over ±15 standard deviations of every prior component and of the
        # likelihood in x0 (centre y/α, width σ/α): the tails left out are < 1e-45.
        sd = math.sqrt(float(mix.covs.max()))
        lo = min(min(centers) - 15 * sd, (y[i, 0] - 15 * s) / a)
        hi = max(max(centers) + 15 * sd, (y[i, 0] + 15 * s) / a)
        pts = [*centers, y[i, 0] / a]
        moments = [
            integrate.quad(
                lambda z, k=k: z**k * joint(z),
                lo,
                hi,
                points=pts,
                limit=400,
                epsabs=0,
                epsrel=1e-12,
            )[0]
            for k in range(3)
        ]
        mean = moments[1] / moments[0]
        assert post.mean()[i, 0] == pytest.approx(mean, rel=1e-7, abs=1e-8)
        assert var[i] == pytest.approx(moments[2] / moments[0] - mean**2, rel=1e-6, abs=1e-8)


@given(path=cst.paths(), seed=seeds)
def test_per_point_times_match_scalar_times(path, seed):
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, 1, size=6)
    t[:2] = [0.0, 1.0]
    x = path.sample(t, 6, rng)
    for name in ("log_prob", "denoiser", "expected_noise", "score", "velocity"):
        batched = getattr(path, name)(t, x)
        rows = np.concatenate(
            [np.atleast_1d(getattr(path, name)(ti, x[i : i + 1])) for i, ti in enumerate(t)]
        )
        np.testing.assert_allclose(
            batched.reshape(rows.shape), rows, rtol=1e-14, atol=1e-14, err_msg=name
        )


@given(path=cst.paths(), t=cst.times(), seed=seeds)
def test_log_prob_matches_the_marginal_mixture(path, t, seed):
    """INT-BOUNDARY: x_t ~ Σ w_k N(α μ_k, α² Σ_k + σ² I)."""
    x = path.sample(t, 16, seed)
    np.testing.assert_allclose(
        path.log_prob(t, x), path.marginal(t).log_prob(x), rtol=1e-11, atol=1e-11
    )


@given(path=cst.paths(), t=cst.times(), seed=seeds)
def test_sampled_x_t_has_the_marginal_moments(path, t, seed):
    """Mean (χ²_d with the exact covariance) and covariance (Frobenius distance, relative,
    against a bound from the fourth moments) of sampled x_t, false-alarm rate ≤ 1e-6."""
    n = 20_000
    xt = path.sample(t, n, seed)
    marginal = path.marginal(t)
    m, cov = marginal.mean(), marginal.covariance()
    diff = xt.mean(axis=0) - m
    assert stats.chi2.sf(n * diff @ np.linalg.solve(cov, diff), path.dim) > 1e-6
    # Chebyshev on E|S − Σ|²_F ≤ E|x − m|⁴ / n (a bound for the biased estimator, up to
    # O(1/n²)): P(|S − Σ|_F > k · sqrt(E|x−m|⁴/n)) ≤ 1/k², k = 1000 → ≤ 1e-6.
    ref = marginal.sample(200_000, seed + 1)
    fourth = np.mean(np.sum((ref - m) ** 2, axis=1) ** 2)
    err = np.linalg.norm(np.cov(xt, rowvar=False, bias=True).reshape(cov.shape) - cov)
    assert err < 1000 * np.sqrt(fourth / n)


def test_endpoints_of_the_path():
    mix = cmv.mixtures.seed_bimodal()
    path = cmv.MixturePath(mix)
    x = np.linspace(-3, 3, 7)[:, None]
    np.testing.assert_allclose(path.log_prob(0.0, x), mix.log_prob(x), rtol=1e-14)
    np.testing.assert_allclose(path.log_prob(1.0, x), stats.norm.logpdf(x[:, 0]), rtol=1e-14)
    np.testing.assert_allclose(path.expected_noise(1.0, x), x, rtol=1e-14)
    np.testing.assert_allclose(path.denoiser(0.0, x), x, rtol=1e-14)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda p: p.velocity(1.5, np.zeros((2, 2))), ValueError, r"t must lie in \[0, 1\]"),
        (lambda p: p.velocity(-1e-9, np.zeros((2, 2))), ValueError, r"t must lie in \[0, 1\]"),
        (lambda p: p.velocity(np.nan, np.zeros((2, 2))), ValueError, "t contains NaN"),
        (
            lambda p: p.velocity([0.1, 0.2, 0.3], np.zeros((2, 2))),
            ValueError,
            "t has 3 entries but x has 2",
        ),
        (
            lambda p: p.velocity(np.zeros((2, 1)), np.zeros((2, 2))),
            ValueError,
            "t must be a float or a 1-d",
        ),
        (lambda p: p.velocity(0.5, np.zeros((2, 3))), ValueError, r"x must have shape \(n, 2\)"),
        (lambda p: p.velocity(0.5, np.zeros(2)), ValueError, r"x must have shape \(n, 2\)"),
        (lambda p: p.score(0.5, np.array([[0.0, np.inf]])), ValueError, "x contains NaN or inf"),
        (lambda p: p.denoiser(0.5, "x"), TypeError, "x must be numeric"),
        (lambda p: p.log_prob("0.5", np.zeros((1, 2))), TypeError, "t must be numeric"),
        (lambda p: p.sample(0.5, 3.5), TypeError, "n must be an integer"),
        (lambda p: p.sample(2.0, 3), ValueError, r"t must lie in \[0, 1\]"),
        (lambda p: p.marginal([0.1, 0.2]), ValueError, "single time"),
        (lambda p: cmv.MixturePath("eight"), TypeError, "mixture must be a GaussianMixture"),
        (
            lambda p: cmv.MixturePath(p.mixture, "linear"),
            TypeError,
            "interpolant must be an Interpolant",
        ),
    ],
)
def test_invalid_inputs(call, error, message):
    path = cmv.MixturePath(cmv.mixtures.eight_gaussians())
    with pytest.raises(error, match=message):
        call(path)
