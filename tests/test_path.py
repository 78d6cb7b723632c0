"""MixturePath: the closed-form path quantities, checked as properties over
``cmverify.strategies`` (mixtures d 1–4, K 1–5, condition ≤ 10; five interpolants)."""

import math
from fractions import Fraction as F

import mpmath
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import integrate, stats

import cmverify as cmv
from cmverify import strategies as cst
from cmverify.exact import _identities as identities

seeds = st.integers(0, 2**32 - 1)

#: Budgets (see cmverify.exact._identities): 6th-order differences give ≲ 3e-10 for the
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


class Perturbed:
    """A VelocityField wrapping a path: its velocity times ``1 + eps``; every other member
    is the path's (so the identities can measure the velocity against its density)."""

    def __init__(self, path, eps):
        self.path, self.eps = path, eps

    def __getattr__(self, name):
        return getattr(self.path, name)

    def velocity(self, t, x):
        return (1 + self.eps) * self.path.velocity(t, x)


@pytest.mark.parametrize("relative_error", [1e-3, 1e-5])
def test_continuity_check_detects_a_wrong_velocity(relative_error):
    """The residual is sensitive: a velocity off by a relative ε gives a residual ≈ ε."""
    exact = cmv.MixturePath(cmv.mixtures.eight_gaussians(), cmv.Interpolant.trig())
    path = Perturbed(exact, relative_error)
    assert isinstance(path, cmv.exact.VelocityField)
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


@given(path=cst.paths(), seed=seeds)
def test_the_trusted_velocity_is_the_velocity_bit_for_bit(path, seed):
    """``velocity_trusted`` skips the checks, nothing else: on validated arrays (scalar and
    per-point times, typical and far points, both routes) it equals ``velocity``."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, 1, size=8)
    t[:2] = [0.0, 1.0]
    x = path.sample(t, 8, rng)
    x[-2:] *= 1e30  # far rows: the scaled route
    for times in (t, np.array(0.3)):
        np.testing.assert_array_equal(path.velocity_trusted(times, x), path.velocity(times, x))


@pytest.mark.parametrize("name", ["eight_gaussians", "seed_bimodal"])
def test_a_shared_spectrum_is_computed_once_bit_for_bit(name):
    """Components with equal covariance eigenvalues share ``c_k = α² λ + σ²``: computed once
    per time, broadcast over ``k``, with every result equal to the bit to the per-component
    computation (near and far points, scalar and per-point times, every quantity)."""
    path = cmv.MixturePath(cmv.mixtures.by_name(name), cmv.Interpolant.trig())
    full = cmv.MixturePath(cmv.mixtures.by_name(name), cmv.Interpolant.trig())
    k = path.mixture.n_components
    assert path._evaluator.eigvals.shape == (1, path.dim, 1)
    full._evaluator.eigvals = np.repeat(path._evaluator.eigvals, k, axis=0)
    rng = np.random.default_rng(0)
    t = rng.uniform(0, 1, 40)
    x = path.sample(t, 40, rng)
    x[-5:] *= 1e25
    for times in (t, 0.7):
        for method in ("log_prob", "denoiser", "expected_noise", "score", "velocity"):
            got, want = getattr(path, method)(times, x), getattr(full, method)(times, x)
            np.testing.assert_array_equal(got, want, err_msg=method)
        got, want = path.posterior(times, x), full.posterior(times, x)
        for field in ("log_weights", "means", "eigvals"):
            np.testing.assert_array_equal(getattr(got, field), getattr(want, field), field)


def test_the_public_door_still_checks_and_the_trusted_one_does_not_copy():
    path = cmv.MixturePath(cmv.mixtures.eight_gaussians())
    with pytest.raises(ValueError, match=r"t must lie in \[0, 1\], got 1.5"):
        path.velocity(1.5, np.zeros((1, 2)))
    with pytest.raises(ValueError, match="x contains NaN"):
        path.velocity(0.5, [[np.nan, 0.0]])
    x, t = np.ones((3, 2)), np.array([0.1, 0.5, 0.9])
    x.flags.writeable = t.flags.writeable = False  # read-only input is fine: never modified
    np.testing.assert_array_equal(path.velocity_trusted(t, x), path.velocity(t, x))


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


# -- extreme scales (issue 10): exact values or a ValueError, never NaN ------------------


def exact_quantities(path, t, x):
    """Exact-arithmetic reference for small ``d``: every float input (``x``, means, covs,
    weights, and the coefficients α, σ, α̇, α α̇, σ σ̇ at ``t``) is taken as the exact
    rational it stands for; ``C_k⁻¹ (x − α μ_k)`` and the Mahalanobis differences are
    exact (``fractions``), and only the logarithms and exponentials of the
    responsibilities are rounded, at 40 digits (mpmath). Returns the velocity,
    denoiser, expected noise and score, shape ``(n, d)``, and the responsibilities,
    shape ``(n, K)``, rounded to float64."""
    interp, mix = path.interpolant, path.mixture
    a, s, da, ad, sd = (F(c) for c in _coefficients(interp, t))
    d = mix.dim

    def solve(m, v):  # Gauss-Jordan elimination in exact arithmetic
        rows = [[*m[i], v[i]] for i in range(d)]
        for c in range(d):
            p = next(i for i in range(c, d) if rows[i][c] != 0)
            rows[c], rows[p] = rows[p], rows[c]
            rows[c] = [e / rows[c][c] for e in rows[c]]
            for i in range(d):
                if i != c and rows[i][c] != 0:
                    rows[i] = [e - rows[i][c] * f for e, f in zip(rows[i], rows[c], strict=True)]
        return [rows[i][d] for i in range(d)]

    def det(m):  # Laplace expansion (d ≤ 3 here)
        if len(m) == 1:
            return m[0][0]
        return sum(
            (-1) ** j * m[0][j] * det([[r[c] for c in range(len(m)) if c != j] for r in m[1:]])
            for j in range(len(m))
        )

    largest = mpmath.mpf(float(np.finfo(float).max))
    with mpmath.workdps(40):
        comps = []
        for k in range(mix.n_components):
            cov = [[F(float(e)) for e in row] for row in mix.covs[k]]
            mu = [F(float(e)) for e in mix.means[k]]
            c = [[a * a * cov[i][j] + (s * s if i == j else 0) for j in range(d)] for i in range(d)]
            dc = det(c)
            logdet = mpmath.log(mpmath.mpf(dc.numerator) / dc.denominator)
            w = float(mix.weights[k])
            comps.append((mpmath.log(w) if w > 0 else None, mu, cov, c, logdet))
        out = {key: [] for key in ("velocity", "denoiser", "expected_noise", "score", "resp")}
        for row in x:
            xv = [F(float(e)) for e in row]
            logs, terms = [], []
            for logw, mu, cov, c, logdet in comps:
                y = [xv[i] - a * mu[i] for i in range(d)]
                z = solve(c, y)
                q = sum(yi * zi for yi, zi in zip(y, z, strict=True))
                logs.append((logw, logdet, q))
                cz = [sum(cov[i][j] * z[j] for j in range(d)) for i in range(d)]
                terms.append(
                    {
                        "velocity": [da * mu[i] + ad * cz[i] + sd * z[i] for i in range(d)],
                        "denoiser": [mu[i] + a * cz[i] for i in range(d)],
                        "expected_noise": [s * z[i] for i in range(d)],
                        "score": [-z[i] for i in range(d)],
                    }
                )
            # log r_k up to a constant: log w_k − ½ log det C_k − ½ (q_k − q_min), exactly.
            q_min = min(q for logw, _, q in logs if logw is not None)
            expo = [
                None
                if logw is None
                else logw
                - logdet / 2
                - mpmath.mpf((q - q_min).numerator) / (2 * (q - q_min).denominator)
                for logw, logdet, q in logs
            ]
            top = max(e for e in expo if e is not None)
            weights = [mpmath.mpf(0) if e is None else mpmath.exp(e - top) for e in expo]
            total = sum(weights)
            r = [wk / total for wk in weights]
            out["resp"].append([float(rk) for rk in r])
            for key in ("velocity", "denoiser", "expected_noise", "score"):
                value = []
                for i in range(d):
                    acc = mpmath.mpf(0)
                    for k, term in enumerate(terms):
                        if r[k] != 0:
                            e = term[key][i]
                            acc += r[k] * (mpmath.mpf(e.numerator) / e.denominator)
                    value.append(float(acc) if abs(acc) <= largest else np.inf)
                out[key].append(value)
    return {key: np.array(v) for key, v in out.items()}


def _relative_errors(got, ref, floor):
    """Per-row ``max_i |got − ref| / (max_i |ref| + floor)``; ``floor`` bounds the size of
    the terms of a sum that may cancel (and ``tiny`` keeps ``0/0`` away)."""
    scale = np.max(np.abs(ref), axis=1) + floor + np.finfo(float).tiny
    return np.max(np.abs(got - ref), axis=1) / scale


#: Worst case of the far-point comparisons below: a few roundings of each term
#: (measured ≤ 1e-15; the old code returned NaN for |x| ≥ 1e154).
FAR_TOLERANCE = 1e-13


def _unit_directions(rng, n, d):
    v = rng.standard_normal((n, d))
    return v / np.max(np.abs(v), axis=1, keepdims=True)


def _coefficients(interp, t):
    """``α, σ, α̇, α α̇, σ σ̇`` at one time, as floats."""
    return tuple(
        float(f(t))
        for f in (
            interp.alpha,
            interp.sigma,
            interp.dalpha,
            interp.alpha_dalpha,
            interp.sigma_dsigma,
        )
    )


@pytest.mark.parametrize("variance", [1e-21, 1e20])
@pytest.mark.parametrize("name", ["linear", "trig", "sqrt"])
def test_d16_gaussian_at_extreme_variance_matches_the_closed_form(variance, name):
    """N(μ, s² I), d = 16, s² = 1e-21 or 1e20 (Π c under/overflows: the old code gave
    all-NaN velocities): v = α̇ μ + (α α̇ s² + σ σ̇)/(α² s² + σ²) (x − α μ), worst case
    over typical and far points; log p = −½ (d log 2π c + |x − α μ|²/c) on typical points."""
    rng = np.random.default_rng(16)
    interp = cst.named_interpolants()[name]
    mu = rng.uniform(-3, 3, 16)
    path = cmv.MixturePath(cmv.mixtures.gaussian(mu, variance * np.eye(16)), interp)
    for t in (0.0, 1e-300, 1e-12, 1e-3, 0.3, 0.999, 1.0):
        a, s, da, ad, sd = _coefficients(interp, t)
        c = a * a * variance + s * s
        k = (ad * variance + sd) / c
        typical = path.sample(t, 40, rng)
        far = np.array([1e3, 1e20, 1e160, 1e300]).repeat(10)[:, None] * _unit_directions(
            rng, 40, 16
        )
        x = np.vstack([typical, far])
        with np.errstate(over="ignore"):
            expected = da * mu + k * (x - a * mu)
        representable = np.all(np.isfinite(expected), axis=1)
        got = path.velocity(t, x[representable])
        floor = abs(da) * np.max(np.abs(mu))
        assert np.max(_relative_errors(got, expected[representable], floor)) < FAR_TOLERANCE, t
        for row in x[~representable]:  # |k| · 1e300 > 1.8e308: raise, saying so
            with pytest.raises(ValueError, match="velocity is not representable in float64"):
                path.velocity(t, row[None])
        # log p = −½ (16 log 2πc + q): the two terms may cancel, so bound by their size.
        log_norm, quad = 16 * np.log(2 * np.pi * c), np.sum((typical - a * mu) ** 2, 1) / c
        error = np.abs(path.log_prob(t, typical) + 0.5 * (log_norm + quad))
        assert np.all(error <= 1e-14 * (abs(log_norm) + quad)), t


FAR_MIXTURES = {
    # shared isotropic covariance: x − α μ_k rounds every mean away at |x| = 1e160
    "eight_gaussians": cmv.mixtures.eight_gaussians,
    # shared anisotropic covariance
    "shared": lambda: cmv.GaussianMixture(
        [0.3, 0.7], [[1.0, 0.0], [-1.0, 0.5]], [[[1.0, 0.3], [0.3, 2.0]]] * 2
    ),
    # different covariances, eigenbases permuted: identical C_k = σ² I at t = 1
    "crossed": lambda: cmv.GaussianMixture(
        [0.3, 0.7], [[1.0, 0.0], [-1.0, 0.5]], [np.diag([1.0, 2.0]), np.diag([2.0, 1.0])]
    ),
    # three dimensions, a zero weight, rotated covariances
    "rotated": lambda: cmv.GaussianMixture(
        [0.5, 0.0, 0.5],
        [[0.0, 1.0, -1.0], [5.0, 5.0, 5.0], [1.0, 0.0, 2.0]],
        [np.eye(3), np.eye(3), cmv.mixtures.random_mixture(3, 1, rng=2).covs[0]],
    ),
}


@pytest.mark.parametrize("mixture", sorted(FAR_MIXTURES))
@pytest.mark.parametrize("name", ["linear", "trig"])
def test_far_points_match_exact_arithmetic(mixture, name):
    """|x| = 1e20, 1e160, 1e300 (the old code: NaN from 1e154 on, and responsibilities
    split evenly where rounding had erased the means): every conditional expectation
    and the responsibilities against exact arithmetic, worst case over the points."""
    mix = FAR_MIXTURES[mixture]()
    path = cmv.MixturePath(mix, cst.named_interpolants()[name])
    rng = np.random.default_rng(7)
    x = np.array([1e20, 1e160, 1e300]).repeat(4)[:, None] * _unit_directions(rng, 12, mix.dim)
    for t in (0.0, 0.3, 1.0):
        exact = exact_quantities(path, t, x)
        floor = (1 + abs(float(path.interpolant.dalpha(t)))) * np.max(np.abs(mix.means))
        for quantity in ("velocity", "denoiser", "expected_noise", "score"):
            got = getattr(path, quantity)(t, x)
            worst = np.max(_relative_errors(got, exact[quantity], floor))
            assert worst < FAR_TOLERANCE, (quantity, t, worst)
        resp = path.posterior(t, x).weights
        assert np.max(np.abs(resp - exact["resp"])) < FAR_TOLERANCE, t


@pytest.mark.parametrize("magnitude", [1e20, 1e160, 1e300])
def test_far_responsibilities_go_to_the_nearest_component(magnitude):
    """Far out, all the posterior weight is on the component nearest in Mahalanobis
    distance, whatever the prior weights: with a shared covariance the nearest mean
    (decided by the term α x·(μ_k − μ_j), which the rounded x − α μ_k has lost), with
    different covariances the widest component along x. And the velocity is then that
    component's Gaussian velocity."""
    t = 0.5  # linear: α = σ = ½
    shared = cmv.GaussianMixture([0.9, 0.1], [[-1.0, 0.0], [1.0, 0.0]], [np.eye(2)] * 2)
    path = cmv.MixturePath(shared)
    x = magnitude * np.array([[1.0, 0.0], [-1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    weights = path.posterior(t, x).weights
    # Nearest: μ_1 for x_1 > 0, μ_0 for x_1 < 0; on the bisector x_1 = 0 the prior decides.
    np.testing.assert_array_equal(weights[:3], [[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(weights[3], [0.9, 0.1], rtol=1e-15)
    # N(μ, I): v = α̇ μ + (α α̇ + σ σ̇)/(α² + σ²) (x − α μ) = −μ + 0 · (x − μ/2) = −μ.
    np.testing.assert_array_equal(path.velocity(t, x[:1]), [[-1.0, 0.0]])
    wide = cmv.GaussianMixture([0.9, 0.1], [[0.0, 0.0], [0.0, 0.0]], [np.eye(2), 4 * np.eye(2)])
    weights = cmv.MixturePath(wide).posterior(t, x).weights
    np.testing.assert_array_equal(weights, np.broadcast_to([0.0, 1.0], (4, 2)))


def test_values_that_are_not_representable_raise():
    """log p_t at |x| = 1e160 is about −1e320, and the score −x / c at |x| = 1e300 with
    c = 1e-21 about 1e321: no float64 holds them. The velocity there is representable."""
    path = cmv.MixturePath(cmv.mixtures.eight_gaussians())
    far = np.array([[0.0, 0.0], [1e160, 0.0]])
    with pytest.raises(ValueError, match=r"log_prob is not representable in float64 at x\[1\]"):
        path.log_prob(0.5, far)
    assert np.isfinite(path.log_prob(0.5, far[:1])).all()
    narrow = cmv.MixturePath(cmv.mixtures.gaussian([1.0], [[1e-21]]))
    x = np.array([[1e300]])
    with pytest.raises(ValueError, match=r"score is not representable .* beyond ±1\.8e308"):
        narrow.score(0.0, x)
    # v = α̇ μ + α̇/α (x − α μ) = −x at t = 0 for the linear interpolant.
    np.testing.assert_array_equal(narrow.velocity(0.0, x), -x)
    # λ = 1e300, t = ½: E[x0 | x] = μ + α λ / c (x − α μ) ≈ 2 x, beyond float64 for 1.7e308.
    wide = cmv.MixturePath(cmv.mixtures.gaussian([1.0], [[1e300]]))
    with pytest.raises(ValueError, match="posterior is not representable"):
        wide.posterior(0.5, [[1.7e308]])
    with pytest.raises(ValueError, match="denoiser is not representable"):
        wide.denoiser(0.5, [[1.7e308]])
    assert wide.denoiser(0.5, [[0.8e308]])[0, 0] == pytest.approx(1.6e308, rel=1e-15)


def test_far_rows_in_large_batches_and_per_point_times():
    """The scaled route is taken row by row inside blocks: a batch larger than a block,
    with per-point times and far rows scattered, equals the rows evaluated one by one."""
    path = cmv.MixturePath(FAR_MIXTURES["rotated"](), cmv.Interpolant.trig())
    rng = np.random.default_rng(3)
    n = 3 * path._evaluator.block_rows
    x = rng.normal(size=(n, 3)) * 10.0 ** rng.choice([0.0, 20.0, 160.0, 300.0], size=(n, 1))
    t = rng.uniform(0, 1, n)
    batched = path.velocity(t, x)
    rows = rng.choice(n, 50, replace=False)
    one_by_one = np.vstack([path.velocity(t[i], x[i : i + 1]) for i in rows])
    np.testing.assert_allclose(batched[rows], one_by_one, rtol=1e-14, atol=0)
    post = path.posterior(t, x)
    assert np.all(np.isfinite(post.means)) and np.all(post.weights[:, 1] == 0.0)
    np.testing.assert_allclose(post.weights.sum(axis=1), 1.0, rtol=1e-14)


@given(
    mix=cst.extreme_mixtures(n_components=st.just(1)),
    interp=cst.interpolants(),
    t=cst.times(),
    seed=seeds,
    data=st.data(),
)
def test_extreme_gaussians_match_the_closed_form(mix, interp, t, seed, data):
    """A single N(μ, Σ) at extreme scales, typical and far points: the velocity equals
    α̇ μ + (α α̇ Σ + σ σ̇ I) C⁻¹ (x − α μ) (in Σ's eigenbasis, cond(Σ) ≤ 10), or
    raises ValueError exactly where that overflows."""
    path = cmv.MixturePath(mix, interp)
    x = np.vstack([path.sample(t, 4, seed), data.draw(cst.far_points(mix.dim, n=4))])
    a, s, da, ad, sd = _coefficients(interp, t)
    mu, cov = mix.means[0], mix.covs[0]
    # In Σ's eigenbasis the matrix (α α̇ Σ + σ σ̇ I) C⁻¹ is diag((α α̇ λ + σ σ̇) / c): the
    # ratio is formed first, so this oracle overflows only where the velocity itself does
    # (solving with C first overflowed spuriously for λ = 1e-21, |x| = 1e300 at t = 0).
    lam, vecs = np.linalg.eigh(cov)
    ratio = (ad * lam + sd) / (a * a * lam + s * s)
    with np.errstate(over="ignore", invalid="ignore"):
        term = ((x - a * mu) @ vecs * ratio) @ vecs.T
        expected = da * mu + term
    for i in range(len(x)):
        size = np.max(np.abs(expected[i]))
        if np.isfinite(size) and size < 1e300:
            got = path.velocity(t, x[i : i + 1])[0]
            floor = np.max(np.abs(da * mu)) + np.max(np.abs(term[i]))
            assert np.max(np.abs(got - expected[i])) <= 1e-12 * floor
        elif not np.isfinite(size):
            with pytest.raises(ValueError, match="not representable"):
                path.velocity(t, x[i : i + 1])


@given(mix=cst.extreme_mixtures(), interp=cst.interpolants(), t=cst.times(), data=st.data())
def test_extreme_mixtures_never_return_nan(mix, interp, t, data):
    """Every quantity at extreme scales is finite, or a ValueError says it is not
    representable; responsibilities are a probability vector."""
    path = cmv.MixturePath(mix, interp)
    x = np.vstack([path.sample(t, 4, data.draw(seeds)), data.draw(cst.far_points(mix.dim, n=4))])
    for i in range(len(x)):
        row = x[i : i + 1]
        for name in ("log_prob", "denoiser", "expected_noise", "score", "velocity"):
            try:
                value = getattr(path, name)(t, row)
            except ValueError as exc:
                assert "not representable in float64" in str(exc)
            else:
                assert np.all(np.isfinite(value)), name
        try:
            post = path.posterior(t, row)
        except ValueError as exc:
            assert "not representable in float64" in str(exc)
        else:
            assert np.all(np.isfinite(post.means))
            assert post.weights.sum() == pytest.approx(1.0, rel=1e-13)


def test_posterior_weights_sum_to_one_when_log_p_is_huge():
    """Two modes of variance 1e-21 at ±1, t = 0, x = 0: log p ≈ −5e20, and
    log r_k = log_comp_k − log p lost log Σ exp = log 2 against it (the old code's
    posterior weights were (1, 1)); by symmetry r = (½, ½) and D = 0."""
    mix = cmv.GaussianMixture([0.5, 0.5], [[-1.0], [1.0]], [[[1e-21]], [[1e-21]]])
    path = cmv.MixturePath(mix)
    post = path.posterior(0.0, [[0.0], [0.25]])
    np.testing.assert_array_equal(post.weights, [[0.5, 0.5], [0.0, 1.0]])
    np.testing.assert_array_equal(path.denoiser(0.0, [[0.0]]), [[0.0]])


def test_posterior_covariance_without_cancellation():
    """x0 ~ N(1e10, 1), linear, t = ½: Cov(x0 | x_t) = λ σ² / c = ½ exactly. The
    uncentred Σ r (C + m mᵀ) − D Dᵀ subtracts numbers near 1e20 (off by about 1e4)."""
    path = cmv.MixturePath(cmv.mixtures.gaussian([1e10], [[1.0]]))
    cov = path.posterior(0.5, [[0.5e10 + 1.0]]).covariance()
    assert cov[0, 0, 0] == pytest.approx(0.5, rel=1e-14)
