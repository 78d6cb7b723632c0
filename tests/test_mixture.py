"""GaussianMixture: validation, densities, sampling statistics."""

import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

import cmverify as cmv
from cmverify import strategies as cst

#: False-alarm probability of each statistical check below (for a random seed; the
#: seeds here are fixed, so the tests are deterministic).
FALSE_ALARM = 1e-6


def good():
    return dict(
        weights=[0.3, 0.7], means=[[0.0, 1.0], [2.0, -1.0]], covs=[np.eye(2), 0.5 * np.eye(2)]
    )


def test_read_back_as_given():
    mix = cmv.GaussianMixture(**good())
    np.testing.assert_array_equal(mix.weights, [0.3, 0.7])
    np.testing.assert_array_equal(mix.means, good()["means"])
    np.testing.assert_array_equal(mix.covs, np.array(good()["covs"]))
    assert mix.dim == 2 and mix.n_components == 2
    assert mix.weights.dtype == np.float64
    with pytest.raises(ValueError):
        mix.means[0, 0] = 5.0  # read-only


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"weights": [0.5, 0.6]}, ValueError, r"weights must sum to 1.*\+1\.000e-01"),
        ({"weights": [-0.2, 1.2]}, ValueError, "weights must be non-negative"),
        ({"weights": [[0.3, 0.7]]}, ValueError, "weights must have shape"),
        ({"weights": [np.nan, 1.0]}, ValueError, "weights contains NaN"),
        ({"means": [[0.0, 1.0]]}, ValueError, "means must have shape"),
        ({"means": [[0.0, np.inf], [1.0, 1.0]]}, ValueError, "means contains NaN or inf"),
        ({"covs": [np.eye(2)]}, ValueError, "covs must have shape"),
        ({"covs": [np.eye(3), np.eye(3)]}, ValueError, "covs must have shape"),
        (
            {"covs": [[[1.0, 0.5], [0.0, 1.0]], np.eye(2)]},
            ValueError,
            r"covs\[0\] is not symmetric",
        ),
        (
            {"covs": [np.eye(2), [[1.0, 2.0], [2.0, 1.0]]]},
            ValueError,
            r"covs\[1\] is not positive definite",
        ),
        (
            {"covs": [np.eye(2), np.zeros((2, 2))]},
            ValueError,
            r"covs\[1\] is not positive definite",
        ),
        ({"covs": [np.eye(2), [[np.nan, 0], [0, 1]]]}, ValueError, "covs contains NaN"),
        ({"weights": "abc"}, TypeError, "weights must be numeric"),
        ({"means": [["a", "b"], ["c", "d"]]}, TypeError, "means must be numeric"),
        ({"covs": np.eye(2)[None].repeat(2, 0) + 0j}, TypeError, "covs must be real"),
        ({"weights": None}, TypeError, "weights must be numeric"),
    ],
)
def test_invalid_parameters(change, error, message):
    with pytest.raises(error, match=message):
        cmv.GaussianMixture(**{**good(), **change})


def test_log_prob_matches_scipy():
    mix = cmv.mixtures.random_mixture(3, 4, rng=1)
    x = np.random.default_rng(2).normal(size=(50, 3)) * 3
    expected = np.log(
        sum(
            w * stats.multivariate_normal(m, c).pdf(x)
            for w, m, c in zip(mix.weights, mix.means, mix.covs, strict=True)
        )
    )
    np.testing.assert_allclose(mix.log_prob(x), expected, rtol=1e-12)


def test_log_prob_far_away_is_finite():
    mix = cmv.mixtures.eight_gaussians()
    x = np.array([[1e3, 0.0], [0.0, -1e3], [1e3, 1e3]])
    lp = mix.log_prob(x)
    assert np.all(np.isfinite(lp))
    # log-sum-exp bounds: max_k ℓ_k ≤ log p ≤ max_k ℓ_k + log K.
    top = np.max(mix.component_log_prob(x), axis=1)
    assert np.all(top <= lp) and np.all(lp <= top + np.log(8))


def test_point_shape_errors():
    mix = cmv.mixtures.eight_gaussians()
    with pytest.raises(ValueError, match=r"x must have shape \(n, 2\)"):
        mix.log_prob(np.zeros(2))
    with pytest.raises(ValueError, match="x contains NaN"):
        mix.log_prob(np.array([[np.nan, 0.0]]))


@given(mix=cst.mixtures(), seed=st.integers(0, 2**32 - 1))
def test_sampling_statistics(mix, seed):
    """Component frequencies (χ² test), per-component means (Hotelling-type χ²_d with the
    true covariance) and covariances (likelihood-ratio statistic, asymptotically
    χ²_{d(d+1)/2}) at n = 20,000; each at false-alarm rate 1e-6 with a Bonferroni split."""
    n = 20_000
    x, labels = mix.sample(n, np.random.default_rng(seed), return_components=True)
    k, d = mix.n_components, mix.dim
    n_tests = 1 + 2 * k
    level = FALSE_ALARM / n_tests
    counts = np.bincount(labels, minlength=k)
    if k > 1:
        assert stats.chisquare(counts, n * mix.weights).pvalue > level
    for i in range(k):
        xi = x[labels == i]
        ni = len(xi)
        diff = xi.mean(axis=0) - mix.means[i]
        t2 = ni * diff @ np.linalg.solve(mix.covs[i], diff)
        assert stats.chi2.sf(t2, d) > level, f"mean of component {i}"
        s = np.cov(xi, rowvar=False, bias=True).reshape(d, d)
        m = np.linalg.solve(mix.covs[i], s)
        lr = ni * (np.trace(m) - np.log(np.linalg.det(m)) - d)
        assert stats.chi2.sf(lr, d * (d + 1) // 2) > level, f"covariance of component {i}"


def _projected_cdf(weights, means, covs, u):
    """Exact CDF of ``u·x`` for ``x ~ Σ w_k N(μ_k, Σ_k)``: a linear image of a Gaussian is
    Gaussian, so ``F(z) = Σ_k w_k Φ((z − u·μ_k) / √(uᵀ Σ_k u))`` (written here from the
    parameters, independently of the library's densities and quantiles)."""
    loc = np.asarray(means) @ u
    scale = np.sqrt(np.einsum("i,kij,j->k", u, np.asarray(covs), u))
    return lambda z: stats.norm.cdf((np.asarray(z)[:, None] - loc) / scale) @ np.asarray(weights)


SAMPLER_CASES = {
    "seed_bimodal": cmv.mixtures.seed_bimodal,
    "mild_bimodal": cmv.mixtures.mild_bimodal,
    "eight_gaussians": cmv.mixtures.eight_gaussians,
    "gaussian": cmv.mixtures.gaussian,
    "random_d3_k4": lambda: cmv.mixtures.random_mixture(3, 4, rng=5),
}


def _ks_pvalues(x, weights, means, covs, seed=0):
    """Kolmogorov–Smirnov p-values of ``u·x`` against the exact CDF along every axis and,
    for ``d > 1``, two random unit directions (they see the covariances' off-diagonals)."""
    d = x.shape[1]
    random = np.random.default_rng(seed).normal(size=(2 if d > 1 else 0, d))
    directions = np.vstack([np.eye(d), random / np.linalg.norm(random, axis=1, keepdims=True)])
    return [stats.kstest(x @ u, _projected_cdf(weights, means, covs, u)).pvalue for u in directions]


@pytest.mark.parametrize("name", SAMPLER_CASES)
def test_samples_follow_the_exact_cdf(name):
    """The sampler (labels not used: the mixing is tested too) against the exact CDF of
    each 1-d projection: KS at n = 20,000, each direction at false-alarm rate
    FALSE_ALARM / (number of directions)."""
    mix = SAMPLER_CASES[name]()
    x = mix.sample(20_000, 11)
    pvalues = _ks_pvalues(x, mix.weights, mix.means, mix.covs)
    assert min(pvalues) > FALSE_ALARM / len(pvalues), pvalues


@pytest.mark.parametrize(
    "wrong",
    [
        {"weights": [0.75, 0.25]},  # 5% of the mass moved: KS distance 0.05 between the modes
        {"covs": np.full((2, 1, 1), 0.15**2)},  # component scale 0.1 → 0.15
        {"means": [[-1.05], [2.0]]},  # one mean moved by half a component scale
    ],
    ids=["weights", "scale", "mean"],
)
def test_the_cdf_test_rejects_a_slightly_wrong_sampler(wrong):
    """Power of the test above at the same n and level: samples of seed_bimodal perturbed
    in one parameter are rejected against the exact CDF of seed_bimodal."""
    mix = cmv.mixtures.seed_bimodal()
    params = {"weights": mix.weights, "means": mix.means, "covs": mix.covs}
    x = cmv.GaussianMixture(**{**params, **wrong}).sample(20_000, 11)
    pvalues = _ks_pvalues(x, **params)
    assert max(pvalues) < FALSE_ALARM / len(pvalues), pvalues


def test_sampling_is_reproducible():
    mix = cmv.mixtures.eight_gaussians()
    np.testing.assert_array_equal(mix.sample(10, 5), mix.sample(10, np.random.default_rng(5)))
    with pytest.raises(TypeError, match="rng must be"):
        mix.sample(10, "seed")
    with pytest.raises(ValueError, match="n must be non-negative"):
        mix.sample(-1, 0)
    assert mix.sample(0, 0).shape == (0, 2)


def test_named_mixtures():
    seed = cmv.mixtures.seed_bimodal()
    np.testing.assert_array_equal(seed.weights, [0.8, 0.2])
    np.testing.assert_array_equal(seed.means[:, 0], [-1.0, 2.0])
    np.testing.assert_allclose(np.sqrt(seed.covs[:, 0, 0]), [0.1, 0.1])
    eight = cmv.mixtures.eight_gaussians()
    np.testing.assert_allclose(np.linalg.norm(eight.means, axis=1), 2.0)
    np.testing.assert_allclose(eight.covs, np.broadcast_to(0.04 * np.eye(2), (8, 2, 2)))
    assert cmv.mixtures.by_name("eight-gaussians").n_components == 8
    with pytest.raises(ValueError, match="unknown mixture 'nine'"):
        cmv.mixtures.by_name("nine")


@pytest.mark.parametrize("name", cmv.mixtures.names())
def test_catalogue_mixtures_carry_their_name(name):
    mix = cmv.mixtures.by_name(name.replace("_", "-").upper())
    assert mix.name == name
    assert repr(mix).startswith(f"GaussianMixture({name!r}, ")
    path = cmv.MixturePath(mix, cmv.Interpolant.trig())
    assert path.name == f"{name}/trig"


def test_unnamed_mixtures_and_their_paths_have_no_name():
    assert cmv.GaussianMixture(**good()).name is None
    assert cmv.mixtures.random_mixture(2, 3, rng=0).name is None
    # explicit arguments: by_name("gaussian") would not rebuild it
    assert cmv.mixtures.gaussian([0.0], [[1.0]]).name is None
    assert cmv.MixturePath(cmv.GaussianMixture(**good())).name is None
    # the marginal at t is another distribution: no name
    assert cmv.MixturePath(cmv.mixtures.eight_gaussians()).marginal(0.5).name is None


def test_a_name_is_a_label_only():
    named = cmv.GaussianMixture(**good(), name="two")
    plain = cmv.GaussianMixture(**good())
    assert named.name == "two" and cmv.MixturePath(named).name == "two/linear"
    x = np.array([[0.3, -0.2], [1.0, 2.0]])
    np.testing.assert_array_equal(named.log_prob(x), plain.log_prob(x))
    # equality stays identity, with or without a name
    assert named != cmv.GaussianMixture(**good(), name="two") and named == named


@pytest.mark.parametrize(
    ("name", "error", "message"),
    [
        (3, TypeError, "name must be a string or None, got int"),
        ("", ValueError, "name must be a non-empty string without '/'"),
        ("  ", ValueError, "name must be a non-empty string without '/'"),
        ("a/b", ValueError, "name must be a non-empty string without '/'"),
    ],
)
def test_invalid_names(name, error, message):
    with pytest.raises(error, match=re.escape(message)):
        cmv.GaussianMixture(**good(), name=name)


def test_random_mixture_is_well_conditioned():
    mix = cmv.mixtures.random_mixture(4, 5, rng=3, max_condition=10.0)
    cond = mix.eigvals[:, -1] / mix.eigvals[:, 0]
    assert np.all(cond <= 10.0 * (1 + 1e-12))
    np.testing.assert_allclose(mix.weights.sum(), 1.0)


def test_mixture_moments():
    mix = cmv.mixtures.seed_bimodal()
    assert mix.mean()[0] == pytest.approx(0.8 * -1 + 0.2 * 2)
    # Var = Σ w (σ² + μ²) − m² = 0.01 + 0.8 + 0.8 − 0.16.
    assert mix.covariance()[0, 0] == pytest.approx(0.01 + 0.8 * 1 + 0.2 * 4 - 0.4**2)


def test_float32_weights_are_accepted_and_renormalized():
    """float32 1/K sums to 1 + 3e-8 (the old tolerance was 1e-10): within 1e-6 the
    weights are divided by their sum, and sampling (which needs sum 1) works."""
    w = np.full(3, 1 / 3, dtype=np.float32)
    assert abs(float(np.sum(w.astype(np.float64))) - 1.0) > 1e-8
    mix = cmv.GaussianMixture(w, np.zeros((3, 2)), np.broadcast_to(np.eye(2), (3, 2, 2)))
    np.testing.assert_allclose(mix.weights, 1 / 3, rtol=1e-15)
    assert mix.weights.sum() == pytest.approx(1.0, abs=1e-15)
    assert mix.sample(10, 0).shape == (10, 2)


def test_weights_summing_to_one_up_to_rounding_read_back_as_given():
    weights = [0.1] * 10  # sums to 0.9999999999999999
    mix = cmv.GaussianMixture(weights, np.zeros((10, 1)), np.ones((10, 1, 1)))
    np.testing.assert_array_equal(mix.weights, weights)


@pytest.mark.parametrize("excess", [2e-6, -5e-6])
def test_weights_beyond_the_tolerance_are_refused_saying_how_far(excess):
    with pytest.raises(ValueError, match=re.escape(f"off by {excess:+.3e}; tolerance 1e-06")):
        cmv.GaussianMixture([0.5, 0.5 + excess], np.zeros((2, 1)), np.ones((2, 1, 1)))


def test_subnormal_covariance_eigenvalue_is_refused():
    with pytest.raises(ValueError, match=r"covs\[0\] has an eigenvalue 1\.000e-310 below"):
        cmv.GaussianMixture([1.0], [[0.0]], [[[1e-310]]])


def test_log_prob_where_the_squared_norm_overflows():
    """N(0, 100 I): at |x| = 1e155, |x|² overflows but log p = −|x|²/200 − log(200π) ≈
    −5e307 does not (the old code returned −inf); at 1e200 it is −5e397: ValueError."""
    mix = cmv.mixtures.gaussian([0.0, 0.0], 100 * np.eye(2))
    expected = -0.5 * (1e155 / 10) ** 2 - np.log(200 * np.pi)
    assert mix.log_prob([[1e155, 0.0]])[0] == pytest.approx(expected, rel=1e-15)
    with pytest.raises(ValueError, match=r"log_prob is not representable in float64 at x\[1\]"):
        mix.log_prob([[0.0, 0.0], [1e200, 0.0]])
    with pytest.raises(ValueError, match="component_log_prob is not representable"):
        mix.component_log_prob([[1e200, 0.0]])


def test_covariance_without_cancellation():
    """Means 1e10 ± 1, variance 1e-4: Var = 1e-4 + 1. The uncentred Σ w (σ² + μ²) − m²
    subtracts two numbers near 1e20 and is off by about 1e4."""
    mix = cmv.GaussianMixture([0.5, 0.5], [[1e10 - 1], [1e10 + 1]], [[[1e-4]], [[1e-4]]])
    assert mix.covariance()[0, 0] == pytest.approx(1.0001, rel=1e-12)
