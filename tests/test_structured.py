"""Structured covariances (issue 16, item 2): isotropic, diagonal and low-rank-plus-diagonal
mixtures agree with the same mixture given by its full covariances, and nothing on the hot
path forms a ``d × d`` array.

Tolerance: the Woodbury route's rounding is about ``κ = 1 + α² ‖F‖²/min E`` units
(module docstring of ``cmverify.exact._lowrank``); the strategy bounds the components'
condition number by 100. Errors are measured against the largest entry of the batch
(floored at 1e-280: at ``t = 5e-324`` both routes return subnormal noise), and for the
Jacobian against ``max|v| · max|s|`` too, the size of its terms ``(m_k − v)(h_k − h̄)ᵀ``
(at ``t = 1`` under trig the Jacobian is 0 and both routes return ~1e-15 of rounding).
Measured worst case over two runs of 3,000 random mixtures × 64 points each (Hypothesis,
all kinds, both interpolants, scalar and per-point times): 1.9e-13 (score, low rank);
``1e-12`` is the contract.
"""

from __future__ import annotations

import numpy as np
import pytest
from _product_cases import close_isotropic_pair, far_along_a_factor
from hypothesis import given
from hypothesis import strategies as st

from cmverify import strategies as cst
from cmverify.exact import GaussianMixture, MixturePath
from cmverify.reference import ReferenceFlow
from cmverify.symbolic import Interpolant

QUANTITIES = ("log_prob", "denoiser", "expected_noise", "score", "velocity", "velocity_jacobian")
TOL = 1e-12


def _dense(mix: GaussianMixture) -> GaussianMixture:
    return GaussianMixture(mix.weights, mix.means, mix.covs)


def _eigenbasis_path(mix: GaussianMixture, interpolant: Interpolant | None = None) -> MixturePath:
    """The full form's path on the eigenbasis route only: a full mixture of isotropic
    components would otherwise take the product route too (``_product``, exact/_gram.py)."""
    path = MixturePath(_dense(mix), interpolant)
    path._product = None
    return path


def _relative(a: np.ndarray, b: np.ndarray, scale: float = 0.0) -> float:
    """Largest error against the largest entry of ``b`` (or ``scale``, floor 1e-280)."""
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), scale, 1e-280))


@given(
    mix=cst.structured_mixtures(),
    interpolant=st.sampled_from([Interpolant.linear(), Interpolant.trig()]),
    t=cst.times(),
    seed=st.integers(0, 2**32 - 1),
    per_point=st.booleans(),
)
def test_structured_path_matches_the_full_form(mix, interpolant, t, seed, per_point):
    rng = np.random.default_rng(seed)
    fast, dense = MixturePath(mix, interpolant), _eigenbasis_path(mix, interpolant)
    x = fast.sample(t, 64, rng) + rng.standard_normal((64, mix.dim))
    times = rng.uniform(0.0, 1.0, 64) if per_point else t
    terms = np.max(np.abs(dense.velocity(times, x))) * np.max(np.abs(dense.score(times, x)))
    for name in QUANTITIES:
        a, b = getattr(fast, name)(times, x), getattr(dense, name)(times, x)
        assert _relative(a, b, terms if name == "velocity_jacobian" else 0.0) <= TOL, name
    v, g = fast.velocity_and_jacobian_trusted(np.asarray(times, dtype=float), x)
    v2, g2 = dense.velocity_and_jacobian_trusted(np.asarray(times, dtype=float), x)
    assert _relative(v, v2) <= TOL
    assert _relative(g, g2, terms) <= TOL


@given(mix=cst.structured_mixtures(), seed=st.integers(0, 2**32 - 1))
def test_structured_mixture_density_and_moments_match(mix, seed):
    dense = _dense(mix)
    x = np.random.default_rng(seed).standard_normal((32, mix.dim)) * 3
    assert np.max(np.abs(mix.log_prob(x) - dense.log_prob(x))) <= TOL * np.max(
        np.abs(dense.log_prob(x))
    )
    np.testing.assert_allclose(mix.covariance(), dense.covariance(), rtol=0, atol=1e-13)
    marg, marg_dense = MixturePath(mix).marginal(0.3), MixturePath(dense).marginal(0.3)
    assert marg.structure == mix.structure
    np.testing.assert_allclose(marg.covs, marg_dense.covs, rtol=0, atol=1e-14)


def test_hot_path_forms_no_dense_array():
    rng = np.random.default_rng(0)
    k, d, r = 3, 400, 4
    mix = GaussianMixture.low_rank(
        np.ones(k) / k,
        rng.normal(size=(k, d)),
        rng.normal(size=(k, d, r)) * 0.2,
        rng.uniform(0.5, 1.0, (k, d)),
    )
    path = MixturePath(mix)
    assert path._lowrank is not None  # κ₀ ≤ 100: the Woodbury route (exact/_lowrank.py)
    x = rng.normal(size=(20, d))
    for name in QUANTITIES[:-1]:
        getattr(path, name)(rng.uniform(size=20), x)
    assert mix._covs is None and mix._eigvals is None and path._dense is None
    diag = GaussianMixture.diagonal(np.ones(k) / k, rng.normal(size=(k, d)), np.ones((k, d)))
    MixturePath(diag).velocity(0.5, x)
    MixturePath(diag).score(1e-9, x * 1e6)  # far rows: the scaled route, still elementwise
    assert diag._covs is None and diag._eigvecs is None
    assert diag.eigvecs.strides[0] == 0  # a broadcast identity: d² numbers, not K d²


def test_far_rows_fall_back_to_the_eigenbasis_route():
    rng = np.random.default_rng(1)
    for diag in (rng.uniform(0.1, 1.0, (2, 3)), np.full((2, 3), 0.3)):
        mix = GaussianMixture.low_rank(
            [0.4, 0.6], rng.normal(size=(2, 3)) * 1e4, rng.normal(size=(2, 3, 2)), diag
        )
        fast, dense = MixturePath(mix), _eigenbasis_path(mix)
        # Far rows (eigenbasis route), and rows near means of size 1e4 that the product
        # route leaves to the Woodbury route ((|x|² + α²|μ|²)/c⊥ above 2^20, q small).
        near = fast.sample(0.4, 10, rng)
        x = np.concatenate([rng.normal(size=(5, 3)) * 1e6, rng.normal(size=(5, 3)) * 1e150, near])
        for name in ("velocity", "score", "log_prob"):
            a, b = getattr(fast, name)(0.4, x), getattr(dense, name)(0.4, x)
            assert _relative(a, b) <= TOL, name
    with pytest.raises(ValueError, match="log_prob is not representable"):
        MixturePath(mix).log_prob(0.2, np.full((1, 3), 1e200))


def test_flow_of_a_low_rank_mixture_matches_the_full_form():
    rng = np.random.default_rng(2)
    k, d, r = 4, 6, 2
    means, factors = rng.normal(size=(k, d)) * 2, rng.normal(size=(k, d, r)) * 0.5
    for diag in (rng.uniform(0.05, 0.5, (k, d)), np.full((k, d), 0.2)):
        mix = GaussianMixture.low_rank(np.ones(k) / k, means, factors, diag)
        x1 = rng.normal(size=(50, d))
        fast = ReferenceFlow(MixturePath(mix)).map(x1, 1.0, 0.0)
        dense = ReferenceFlow(_eigenbasis_path(mix)).map(x1, 1.0, 0.0)
        err = np.linalg.norm(fast - dense, axis=1)
        assert np.all(err <= 2 * (1e-10 + 1e-10 * np.linalg.norm(dense, axis=1)))


def test_ppca_eigenpairs_come_from_the_factors():
    """``Σ_k = F_k F_kᵀ + s_k I``: eigenvalues ``s_k`` exactly on the complement of the
    factors and ``s_k + eig(F_kᵀ F_k)`` on them (the dense ``eigh`` had put ``s = 1e-8``
    under ``‖F‖² ≈ 1e2`` at 9.99999916e-9, and the torch path's public velocity, built on
    these eigenpairs, 5.5e-8 off; found in review); other diagonals keep the dense form."""
    import torch

    rng = np.random.default_rng(5)
    k, d, r = 3, 8, 2
    weights = rng.random(k)
    means = rng.standard_normal((k, d)) * 3
    factors = rng.standard_normal((k, d, r)) * np.array([1.0, 0.1, 3.0])[:, None, None]
    s = np.array([1e-8, 1e-4, 0.5])
    mix = GaussianMixture.low_rank(
        weights / weights.sum(), means, factors, s[:, None] * np.ones((k, d))
    )
    gram = np.linalg.eigvalsh(np.swapaxes(factors, 1, 2) @ factors)  # (K, r), ascending
    assert np.all(mix.eigvals[:, : d - r] == s[:, None])
    np.testing.assert_allclose(mix.eigvals[:, d - r :], s[:, None] + gram, rtol=1e-14)
    u = mix.eigvecs
    np.testing.assert_allclose(
        np.swapaxes(u, 1, 2) @ u, np.broadcast_to(np.eye(d), (k, d, d)), atol=1e-15
    )
    np.testing.assert_allclose(
        u * mix.eigvals[:, None, :] @ np.swapaxes(u, 1, 2),
        mix.covs,
        rtol=0,
        atol=1e-14 * np.abs(mix.covs).max(),
    )
    # the torch path's public (differentiable) velocity against numpy's product route
    path = MixturePath(mix, Interpolant.trig())
    t = np.full(24, 1e-6)
    at = path.interpolant.at(1e-6)
    x = float(at.alpha) * mix.sample(24, rng) + float(at.sigma) * rng.standard_normal((24, d))
    want = path.velocity(t, x)
    got = path.to_torch().velocity(torch.tensor(t), torch.tensor(x)).detach().numpy()
    assert _relative(got, want) <= 1e-10
    general = GaussianMixture.low_rank(
        weights / weights.sum(), means, factors, rng.uniform(0.1, 1, (k, d))
    )
    np.testing.assert_allclose(general.eigvals, np.linalg.eigvalsh(general.covs), rtol=1e-13)


def test_structured_sampling_moments():
    rng = np.random.default_rng(3)
    k, d, r, n = 3, 5, 2, 400_000
    mixes = [
        GaussianMixture.isotropic([0.2, 0.3, 0.5], rng.normal(size=(k, d)), [0.1, 0.5, 2.0]),
        GaussianMixture.diagonal(
            [0.2, 0.3, 0.5], rng.normal(size=(k, d)), rng.uniform(0.1, 2, (k, d))
        ),
        GaussianMixture.low_rank(
            [0.2, 0.3, 0.5],
            rng.normal(size=(k, d)),
            rng.normal(size=(k, d, r)),
            rng.uniform(0.1, 2, (k, d)),
        ),
    ]
    for mix in mixes:
        x = mix.sample(n, rng)
        cov = mix.covariance()
        se = np.sqrt(np.diag(cov) / n)
        # Mean: z ≤ 5 per coordinate (a false alarm has probability < 1e-5 per test).
        assert np.all(np.abs(x.mean(axis=0) - mix.mean()) <= 5 * se)
        # Covariance entries: the sampling s.d. of an entry is ≤ sqrt(E[x_i² x_j²] / n);
        # bounded by the fourth moments estimated from the same sample.
        c = x - mix.mean()
        emp = c.T @ c / n
        sd = np.sqrt(((c[:, :, None] * c[:, None, :]) ** 2).mean(axis=0) / n)
        assert np.all(np.abs(emp - cov) <= 6 * sd)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: GaussianMixture.isotropic([1.0], [[0.0, 0.0]], [[1.0, 1.0]]), r"shape \(1,\)"),
        (
            lambda: GaussianMixture.isotropic([0.5, 0.5], [[0.0], [1.0]], [1.0, -1.0]),
            r"variances must be positive, got variances\[1\] = -1.0",
        ),
        (
            lambda: GaussianMixture.diagonal([1.0], [[0.0, 0.0]], [[1.0, 0.0]]),
            r"variances must be positive, got variances\[\(0, 1\)\] = 0.0",
        ),
        (
            lambda: GaussianMixture.diagonal([1.0], [[0.0, 0.0]], [1.0, 1.0]),
            r"variances of a diagonal mixture must have shape \(1, 2\)",
        ),
        (lambda: GaussianMixture.diagonal([1.0], [[0.0, 0.0]], [[1.0, np.nan]]), "NaN or inf"),
        (lambda: GaussianMixture.diagonal([1.0], [[0.0, 0.0]], [[1e-310, 1.0]]), "normal float64"),
        (
            lambda: GaussianMixture.low_rank([1.0], [[0.0, 0.0]], np.ones((1, 3, 1)), [[1.0, 1.0]]),
            r"factors must have shape \(K, d, r\) = \(1, 2, r\)",
        ),
        (
            lambda: GaussianMixture.low_rank([1.0], [[0.0, 0.0]], np.ones((1, 2, 1)), [[1.0]]),
            r"diagonal must have shape",
        ),
        (
            lambda: GaussianMixture.low_rank([1.0], [[0.0, 0.0]], np.ones((1, 2, 1)), [[1.0, 0.0]]),
            "diagonal must be positive",
        ),
        (
            lambda: GaussianMixture.low_rank(
                [1.0], [[0.0, 0.0]], np.ones((1, 2, 1)) * 1e9, [[1e-9, 1.0]]
            ),
            "component 0 is too ill-conditioned for float64",
        ),
        (
            lambda: GaussianMixture.low_rank(
                [1.0], [[0.0, 0.0]], np.ones((1, 2, 1)) * 1e160, [[1.0, 1.0]]
            ),
            "factors\\[0\\] is too large",
        ),
    ],
)
def test_bad_structured_parameters_are_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_structure_attributes():
    iso = GaussianMixture.isotropic([0.5, 0.5], [[0.0, 1.0], [1.0, 0.0]], [0.5, 2.0], name="iso")
    assert iso.structure == "isotropic" and iso.name == "iso"
    np.testing.assert_array_equal(iso.diagonal_term, [[0.5, 0.5], [2.0, 2.0]])
    np.testing.assert_array_equal(iso.covs[1], 2.0 * np.eye(2))
    with pytest.raises(AttributeError, match="no factors"):
        _ = iso.factors
    full = GaussianMixture([1.0], [[0.0]], [[[1.0]]])
    assert full.structure == "full"
    with pytest.raises(AttributeError, match="no diagonal"):
        _ = full.diagonal_term
    lr = GaussianMixture.low_rank([1.0], [[0.0, 0.0]], [[[1.0], [1.0]]], [[1.0, 2.0]])
    np.testing.assert_allclose(lr.covs[0], [[2.0, 1.0], [1.0, 3.0]])
    np.testing.assert_allclose(lr.eigvals[0], np.linalg.eigvalsh(lr.covs[0]))
    for arr in (lr.factors, lr.diagonal_term, lr.covs, iso.eigvals):
        assert not arr.flags.writeable


def test_isotropic_components_take_the_product_route_from_d_8():
    rng = np.random.default_rng(4)
    for d, expected in ((2, False), (4, False), (7, False), (8, True), (16, True)):
        k = 5
        full = GaussianMixture(
            np.ones(k) / k,
            rng.normal(size=(k, d)),
            rng.uniform(0.05, 0.5, k)[:, None, None] * np.eye(d),
        )
        path = MixturePath(full)
        assert (path._product is not None) is expected
        if expected:
            x = path.sample(rng.uniform(size=200), 200, rng)
            t = rng.uniform(size=200)
            assert _relative(path.velocity(t, x), _eigenbasis_path(full).velocity(t, x)) <= TOL


def test_product_route_keeps_the_contract_where_its_expansion_cancels():
    """Review findings (tests/_product_cases.py): rows recomputed about their nearest mean,
    and rows whose split cancels even there taken by the Woodbury route."""
    for case in (close_isotropic_pair, far_along_a_factor):
        mix, t, x = case()
        assert MixturePath(mix)._product is not None
        got, exact = MixturePath(mix).velocity(t, x), _eigenbasis_path(mix).velocity(t, x)
        assert _relative(got, exact) <= 1e-13, case.__name__


def test_product_route_checks_the_split_of_every_likely_component():
    # Second review: a likely component whose mean lies far along its own factor from the
    # most likely component's mean (a "ridge" past a "blob", s = 1e-8): q_k's split
    # |y⊥|² = |y|² − p²/γ cancelled after centring about μ_j, 1.1e-9 relative, until every
    # component with a responsibility above eps got the test (such rows go to Woodbury).
    d, s, t = 8, 1e-8, 1e-5
    mu = np.zeros((2, d))
    mu[1, 0] = 1.0
    factors = np.zeros((2, d, 1))
    factors[1, 0, 0], factors[0, 1, 0] = 1.0, 1e-6
    weights = [2e-4, 1 - 2e-4]
    mix = GaussianMixture.low_rank(weights, mu, factors, np.full((2, d), s))
    noise = np.random.default_rng(1).normal(size=(20, d))
    x = (1 - t) * mu[0] + np.sqrt((1 - t) ** 2 * s + t * t) * noise
    assert _relative(MixturePath(mix).velocity(t, x), _eigenbasis_path(mix).velocity(t, x)) <= 1e-12


#: Found in the second review: ``κ₀ ≈ 999``, then under the eigenbasis route's threshold
#: (1e3, now 100): Woodbury's score 6.8e-12 off at ``t = 1e-3``.
ADVERSARIAL_F = [
    [-0.3288239040579627, -0.7921467553588982],
    [0.45495807124085547, -0.09919805171738795],
    [0.5452887139646817, -0.6071856998706371],
]


@pytest.mark.parametrize(
    "d, r, smallest",
    [(1, 1, None), (3, 3, None), (3, 5, None), (3, 2, 1e-12), (4, 2, 1e-8), (3, 2, "review")],
)
def test_ill_conditioned_woodbury_cases_keep_the_contract(d, r, smallest):
    """``r ≥ d``: Woodbury's two terms are each ``κ ≈ α²‖F‖²/E`` times the result in every
    direction (``D = 1e-8``, ``t = 1e-6``: ``κ ~ 1e8``, 6e-7 off at ``d = r = 1``, found in
    review); an uneven ``D`` with a tiny entry (``smallest``; the others 1 and ½) makes the
    solve with ``M`` lose ``eps κ²`` (``r < d``: 2.7e6 times the score at ``D = (1e-12, 1,
    1)``, found in review). Both take the eigenbasis route (from the SVD of ``[F,
    diag(√D)]``), as does the second review's ``κ₀ = 999`` ("review"). Truth: the score
    and velocity in 40-digit arithmetic from the factors (``h = C⁻¹ y`` by LU)."""
    import mpmath as mp

    mp.mp.dps = 40
    rng = np.random.default_rng(d * 10 + r)
    k, s = 2, 1e-8
    weights, means = np.array([0.4, 0.6]), rng.standard_normal((k, d))
    factors = rng.standard_normal((k, d, r))
    diagonal = np.full((k, d), s)
    if smallest == "review":  # both components the review's
        factors = np.array([ADVERSARIAL_F, ADVERSARIAL_F])
        diagonal[:] = [0.0010396072658163374, 1.0, 0.5]
    elif smallest is not None:
        diagonal[:] = np.where(np.arange(d) == 0, smallest, np.where(np.arange(d) % 2, 1.0, 0.5))
    mix = GaussianMixture.low_rank(weights, means, factors, diagonal)
    interpolant = Interpolant.linear()
    path = MixturePath(mix, interpolant)
    for t in (1e-8, 1e-6, 1e-3, 0.5):
        at = interpolant.at(t)
        a, sig = mp.mpf(float(at.alpha)), mp.mpf(float(at.sigma))
        da, dsig = mp.mpf(float(at.dalpha)), mp.mpf(float(at.dsigma))
        x = rng.standard_normal((4, d))
        score, velocity = path.score(t, x), path.velocity(np.full(4, t), x)
        for i in range(4):
            logs, hs, ms = [], [], []
            for j in range(k):
                f = mp.matrix(factors[j].tolist())
                sigma_j = f * f.T
                for q in range(d):
                    sigma_j[q, q] += mp.mpf(diagonal[j, q])
                c = sigma_j * a**2 + mp.eye(d) * sig**2
                y = mp.matrix([mp.mpf(x[i, q]) - a * mp.mpf(means[j, q]) for q in range(d)])
                h = mp.lu_solve(c, y)
                logs.append(mp.log(weights[j]) - (y.T * h)[0] / 2 - mp.log(mp.det(c)) / 2)
                hs.append(h)
                mu = mp.matrix(means[j].tolist())
                ms.append(mu * da + (sigma_j * (a * da) + mp.eye(d) * (sig * dsig)) * h)
            top = max(logs)
            resp = [mp.exp(v - top) for v in logs]
            total = sum(resp)
            want_s = np.array(
                [float(-sum(resp[j] * hs[j][q] for j in range(k)) / total) for q in range(d)]
            )
            want_v = np.array(
                [float(sum(resp[j] * ms[j][q] for j in range(k)) / total) for q in range(d)]
            )
            assert _relative(score[i], want_s) <= TOL
            assert _relative(velocity[i], want_v) <= TOL
