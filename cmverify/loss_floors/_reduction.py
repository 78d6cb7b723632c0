"""Mixtures that reduce to the subspace of their means: the MeanFlow floor by the rules of
that subspace's dimension (loss-floors layer).

**The reduction.** Let every component share one covariance ``Σ``, and let the means lie
in an affine subspace ``m_k = c + B s_k`` (``B`` ``(d, m)`` orthonormal, ``m < d``,
``c ⊥ range B``) that ``Σ`` maps into itself (``Σ B = B Bᵀ Σ B``) — two modes of one shape,
any number of isotropic modes on a line or in a plane, or a shared covariance with the
means along its eigenvectors. Write ``y = c' + B s + w`` with ``w ⊥ range B``. At every time
the components' covariance ``α² Σ + σ² I`` keeps ``range B`` and its complement, so the
density of ``x_τ`` factors into an ``m``-dimensional mixture in ``s`` times one Gaussian in
``w``, the same for every component: the responsibilities, ``E[x0 | x_τ]`` and
``Cov(v_c | x_τ)`` depend on ``s`` alone within ``range B`` and are affine (the mean) or
constant (the covariance) across it, and the flow moves ``s`` by an ``m``-dimensional
velocity and ``w`` linearly, whatever ``s`` is. So ``A = ∇X_{r→t}`` and ``C = Cov(v_c |
x_t)`` are block-diagonal in ``(range B, its complement)`` with constant second blocks,
and the data-side integrand ``h(y) = tr(A⁻¹ C A⁻ᵀ)`` (:mod:`._meanflow`) does not depend
on ``w``:

    ``E_{y ~ p_r}[h(y)] = E_{s ~ p_r^B}[h(α_r c + B s)]``,

``p_r^B = Σ_k w_k N(α_r s_k, α_r² BᵀΣB + σ_r² I_m)`` the law of ``Bᵀ y``
(:func:`reduced_path`). No approximation is made: each node is the full
``d``-dimensional Jacobian solve at ``w = 0``; the rules are those of dimension ``m``,
placed by ``p_r^B``. On a line (``m = 1``) that is the adaptive composite Gauss–Legendre rule
of ``d = 1`` (:func:`line_rule_floor`), across every gap between the modes, where ``1/p_r``
peaks; tensor Gauss–Hermite converges slowly on the same line (two modes ``±e`` of std 0.3
in ``d = 3``, ``(t, r) = (0.8, 0.2)``: 16 nodes per axis 6.7e-4 off, 128 along the line
still 2.2e-5; the line rule 5.5e-15 in 1.4 s).

**Products.** Where, in an orthonormal basis ``V`` that diagonalizes the shared ``Σ`` (the
standard basis, ``Σ``'s eigenbasis, or the axes of the means' grid, :func:`_grid_axes`, for
an isotropic ``Σ``), the means form a full grid ``m = c + Σ_i a_{i, j_i}
v_i`` with weights ``Π_i u_{i, j_i}`` — a grid of modes such as the 5 × 5 "25 Gaussians" —
the data is a product of 1-d mixtures, and so is ``x_t`` at every time (``x1`` is
isotropic): each coordinate ``v_iᵀ x`` flows by its own 1-d velocity, ``∇X_{t→r}`` and
``Cov(v_c | x_t)`` are diagonal in ``V``, and the floor is the sum of the 1-d floors of the
factors ``Σ_j u_{i, j} N(a_{i, j}, λ_i)`` (:func:`product_factors`), each by the rule of
``d = 1`` without a Jacobian solve.

**Translation.** Moving the data by ``c`` moves ``x_τ`` by ``α_τ c``, ``X_{t→r}`` by
``α_r c`` and ``v_c`` by ``α̇ c``: ``∇X_{t→r}`` and ``Cov(v_c | x_t)``, and so the floors,
do not change. :func:`centred` puts the data's mean at 0 (two modes 1e5 from the origin:
17 s a floor, 3e5: over 150 s — the Jacobian solves resolve ``∇v`` against rounding of
size ``eps |x|`` — found in review).

Mixtures within :data:`TOLERANCE` of these structures (relative, in the means' spread, the
covariances and the invariance) are treated as on it: a tilt ``ε`` changes the floor by
``O(ε²)``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..exact import GaussianMixture, MixturePath
from ._flow_matching import FloorQuadrature
from ._rules import STEPS, RuleResult, line_integral

__all__ = [
    "centred",
    "line_rule_floor",
    "line_start",
    "product_factors",
    "reduced_path",
    "subspace_reduction",
    "sum_of_floors",
]

#: Relative departure from the structure (module docstring) still treated as on it.
TOLERANCE = 1e-12
#: Means compared with all others at a time in :func:`_grid_axes` (memory ``GRID_ROWS · K · d``).
GRID_ROWS = 256


def subspace_reduction(mixture: GaussianMixture) -> tuple[np.ndarray, np.ndarray] | None:
    """``(c, B)`` where ``mixture``'s components share one covariance and their means lie in
    ``c + range B`` (``B`` ``(d, m)`` orthonormal, ``m < d``, ``c ⊥ range B``), a subspace
    the covariance maps into itself (module docstring); else ``None`` (also for one
    component or coincident means: nothing to reduce to, and for means spanning ``d``)."""
    means, covs = mixture.means, mixture.covs
    if mixture.n_components < 2:
        return None
    scale = float(np.max(np.abs(covs[0])))
    if not np.all(np.abs(covs - covs[0]) <= TOLERANCE * scale):
        return None
    _, sing, vt = np.linalg.svd(means - means[0], full_matrices=False)
    rank = int(np.sum(sing > TOLERANCE * sing[0])) if sing[0] > 0.0 else 0
    if not 0 < rank < mixture.dim:
        return None
    basis = vt[:rank].T
    mapped = covs[0] @ basis
    if np.max(np.abs(mapped - basis @ (basis.T @ mapped))) > TOLERANCE * scale:
        return None
    return means[0] - basis @ (basis.T @ means[0]), basis


def centred(path: MixturePath) -> MixturePath:
    """``path`` with the data moved so that its mean is 0 (the same floors: module
    docstring)."""
    mixture = path.mixture
    centre = mixture.weights @ mixture.means
    if not np.any(centre):
        return path
    moved = GaussianMixture(mixture.weights, mixture.means - centre, mixture.covs)
    return MixturePath(moved, path.interpolant)


def reduced_path(path: MixturePath, basis: np.ndarray) -> MixturePath:
    """The law of ``Bᵀ x_τ`` along ``path`` (a mixture of :func:`subspace_reduction`): the
    mixture of means ``Bᵀ m_k`` and covariance ``BᵀΣB`` on the same interpolant."""
    mixture = path.mixture
    cov = basis.T @ mixture.covs[0] @ basis
    k = mixture.n_components
    reduced = GaussianMixture(
        mixture.weights,
        mixture.means @ basis,
        np.broadcast_to(0.5 * (cov + cov.T), (k, *cov.shape)),
    )
    return MixturePath(reduced, path.interpolant)


def line_start(n_components: int) -> int:
    """The solves of :func:`line_rule_floor`'s starting partition: 16 panels a component
    (at most), 48 Gauss–Legendre nodes a panel (16 on it, 16 on each half)."""
    return 48 * (2 * STEPS) * n_components


def line_rule_floor(
    reduced: MixturePath,
    r: float,
    embed: Callable[[np.ndarray], np.ndarray],
    log_terms: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    rtol: float,
    max_solves: int,
) -> RuleResult | None:
    """``E_{s ~ p_r^B}[h(embed(s))]`` on a line (``reduced.dim == 1``) by the adaptive rule of
    ``d = 1`` (module docstring); ``embed`` maps ``s`` ``(n, 1)`` to ``y`` ``(n, d)``,
    ``log_terms(y)`` gives ``(log a, b)`` with ``h = a b``, ``b ≥ 0``, one Jacobian solve a
    point. ``None`` where the starting partition would pass ``max_solves``; refined within
    it."""
    if line_start(reduced.mixture.n_components) > max_solves:
        return None

    def log_f(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        log_a, b = log_terms(embed(s[:, None]))
        return reduced.log_prob(r, s[:, None]) + log_a, b

    return line_integral(reduced.marginal(r), log_f, rtol, max_evaluations=max_solves)


def product_factors(mixture: GaussianMixture) -> list[GaussianMixture] | None:
    """The 1-d factors of a mixture that is a product of 1-d mixtures in the standard basis,
    its shared covariance's eigenbasis or its means' grid axes (module docstring), one per axis (a factor of one
    component where the means do not vary along it); ``None`` where it is not one (also
    for one component)."""
    means, covs = mixture.means, mixture.covs
    k, d = mixture.n_components, mixture.dim
    if k < 2:
        return None
    scale = float(np.max(np.abs(covs[0])))
    if not np.all(np.abs(covs - covs[0]) <= TOLERANCE * scale):
        return None
    for basis in (np.eye(d), mixture.eigvecs[0], _grid_axes(means)):
        within = basis.T @ covs[0] @ basis
        if np.max(np.abs(within - np.diag(np.diag(within)))) > TOLERANCE * scale:
            continue
        factors = _grid_factors(mixture.weights, means @ basis, np.diag(within))
        if factors is not None:
            return factors
    return None


def _grid_axes(means: np.ndarray) -> np.ndarray:
    """An orthonormal basis ``(d, d)`` whose first columns are the axes of the grid that
    ``means`` form, if they form one (a rotated grid of isotropic modes): in a full grid
    the nearest two points differ along one axis only (a point differing along two is
    farther than one differing along either), and the means projected across the axes
    found form the grid of the others."""
    d = means.shape[1]
    apart = TOLERANCE * 100 * (float(np.max(np.abs(means - means[0]))) or 1.0)
    axes = np.zeros((d, 0))
    for _ in range(d - 1):
        points = means - (means @ axes) @ axes.T
        nearest, best = None, np.inf
        for i in range(0, len(points), GRID_ROWS):  # (rows, K, d) at a time: bounded memory
            diff = points[i : i + GRID_ROWS, None, :] - points[None, :, :]
            norms = np.linalg.norm(diff, axis=2)
            norms[norms <= apart] = np.inf  # the same point
            at = np.unravel_index(np.argmin(norms), norms.shape)
            if norms[at] < best:
                nearest, best = diff[at], norms[at]
        if nearest is None:
            break
        axes = np.column_stack([axes, nearest / best])
    basis, _ = np.linalg.qr(np.column_stack([axes, np.eye(d)]))
    return basis[:, :d]


def _grid_factors(
    weights: np.ndarray, coords: np.ndarray, variances: np.ndarray
) -> list[GaussianMixture] | None:
    """The factors where ``coords`` ``(K, d)`` form a full grid (each combination of the
    axes' values once) and the weights are the products of their marginals."""
    k, d = coords.shape
    size = float(np.max(np.abs(coords))) + float(np.sqrt(np.max(variances)))
    index = np.empty((k, d), dtype=np.int64)
    values = []
    for i in range(d):
        order = np.argsort(coords[:, i])
        jumps = np.diff(coords[order, i]) > TOLERANCE * size
        labels = np.concatenate([[0], np.cumsum(jumps)])
        index[order, i] = labels
        values.append(
            np.array([coords[order[labels == j], i].mean() for j in range(labels[-1] + 1)])
        )
    counts = [len(v) for v in values]
    if int(np.prod(counts)) != k or len({tuple(row) for row in index}) != k:
        return None
    marginals = [np.bincount(index[:, i], weights=weights, minlength=counts[i]) for i in range(d)]
    product = np.prod([marginals[i][index[:, i]] for i in range(d)], axis=0)
    if np.max(np.abs(product - weights)) > TOLERANCE * np.max(weights) * d:
        return None
    return [
        GaussianMixture(
            marginals[i] / marginals[i].sum(),
            values[i][:, None],
            np.full((counts[i], 1, 1), variances[i]),
        )
        for i in range(d)
    ]


def sum_of_floors(parts: list[FloorQuadrature], rtol: float) -> FloorQuadrature:
    """The floor of a product from its factors' (:func:`product_factors`): values, error
    estimates and solves added."""
    value = sum(part.value for part in parts)
    error = sum(part.error_estimate for part in parts)
    nodes = sum(part.nodes for part in parts)
    converged = error <= rtol * abs(value)
    return FloorQuadrature(
        parts[0].t, value, error, 16, nodes, converged, parts[0].r, "gauss-legendre-product"
    )
