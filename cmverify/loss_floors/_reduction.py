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

Mixtures within :data:`TOLERANCE` of this structure (relative, in the means' spread, the
covariances and the invariance) are treated as on it: a tilt ``ε`` changes the floor by
``O(ε²)``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..exact import GaussianMixture, MixturePath
from ._rules import STEPS, RuleResult, line_integral

__all__ = ["line_rule_floor", "line_start", "reduced_path", "subspace_reduction"]

#: Relative departure from the structure (module docstring) still treated as on it.
TOLERANCE = 1e-12


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
    (at most), 24 Gauss–Legendre nodes a panel."""
    return 24 * (2 * STEPS) * n_components


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
