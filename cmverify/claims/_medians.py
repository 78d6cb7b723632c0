"""Medians and pseudo-Huber M-estimates of posterior laws (claims layer, for PSEUDO-HUBER).

- :func:`pseudo_huber_estimate`: the minimizer of ``Σ_j w_j ρ_c(a − z_j)`` on a weighted
  node set (a quadrature rule), ``ρ_c(r) = √(‖r‖² + c²) − c``.
- :func:`posterior_median`: the exact median of ``x0`` given ``x_t = y`` in ``d = 1``
  (the reference layer's quantile inversion).
- :func:`geometric_median_2d`: the exact geometric median of a 2-d Gaussian mixture law,
  by polar coordinates about the candidate point: with ``W = a + r e_θ``,

      ∇_a E‖a − W‖ = −∫ e_θ R₁(θ) dθ,    ∇²_a E‖a − W‖ = ∫ (I − e_θ e_θᵀ) R₀(θ) dθ,
      R_j(θ) = ∫_0^∞ r^j p(a + r e_θ) dr,

  in closed form per Gaussian component (``q(r) = A r² + 2 B r + D``, ``β = B/√A``):
  ``R₀ = N √(π/2) g / √A`` and ``R₁ = N (e^{−D/2} − β √(π/2) g) / A`` with ``g =
  e^{−(D − β²)/2} erfc(β/√2)`` (``= e^{−D/2} erfcx(β/√2)`` for ``β ≥ 0``), ``N = 1/(2π
  √det Σ)``. The ``θ`` integrals are periodic and analytic: the trapezoid rule converges
  geometrically (its error is measured by halving the grid). A quadrature rule over the
  law would not do: the integrand ``(a − W)/‖a − W‖`` is discontinuous at ``W = a`` and a
  12-point Gauss–Hermite rule per axis misplaces the median by up to its own size.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import erfc, erfcx

from ..exact import MixturePath
from ..reference import gauss_hermite, posterior_quantile

__all__ = ["geometric_median_2d", "posterior_median", "pseudo_huber_estimate"]

#: The trapezoid grid in θ of :func:`geometric_median_2d`, the Mahalanobis distance within
#: which a component is integrated in polar coordinates, and the rule for the others.
THETA_POINTS, NEAR, FAR_ORDER = 2048, 8.0, 24


def pseudo_huber_estimate(
    values: np.ndarray, weights: np.ndarray, c: float, *, iterations: int = 200
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The minimizer ``a`` of ``Σ_j w_j ρ_c(a − z_j)`` per point (``c = 0``: the weighted
    geometric median), for ``values`` ``z`` of shape ``(n, M, m)`` and ``weights`` ``(n,
    M)`` summing to 1. Returns ``(mean, offset, residual)``: ``a = mean + offset`` with
    ``mean = Σ w z`` (so ``offset = a_c − a_2`` keeps its digits when it is tiny), and the
    stationarity residual ``‖Σ w ψ_c‖ / Σ w ‖ψ_c‖`` (0 at the minimizer).

    Newton's method on the centred values, from the mean, with backtracking on the
    (convex) objective. ``c = 0`` with ``m = 1`` is refused: the 1-d median is not a
    Newton problem (:func:`posterior_median` gives it exactly)."""
    if c < 0 or not math.isfinite(c):
        raise ValueError(f"c must be a finite number ≥ 0, got {c!r}")
    z = np.asarray(values, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if z.ndim != 3 or w.shape != z.shape[:2]:
        raise ValueError(f"values must be (n, M, m) and weights (n, M), got {z.shape}, {w.shape}")
    if not (np.all(np.isfinite(z)) and np.all(w >= 0) and np.allclose(w.sum(axis=1), 1.0)):
        raise ValueError("values must be finite and weights ≥ 0, summing to 1 per point")
    n, _, m = z.shape
    if c == 0 and m == 1:
        raise ValueError("the 1-d median (c = 0, m = 1) is not computed by Newton's method")
    mean = np.einsum("nj,njm->nm", w, z)
    r = z - mean[:, None]
    shift = np.einsum("nj,njm->nm", w, r)  # re-centre: the first mean's rounding
    mean, r = mean + shift, r - shift[:, None]
    scale = np.sqrt(np.einsum("nj,nj->n", w, np.sum(r * r, axis=2)))
    tiny = 1e-300 + 1e-30 * scale

    def parts(b: np.ndarray):
        diff = b[:, None] - r
        sq = np.sum(diff * diff, axis=2)
        rho = np.maximum(np.sqrt(sq + c * c), tiny[:, None])
        # ρ − c = ‖d‖²/(ρ + c): no cancellation where ‖d‖ ≪ c
        return diff, rho, np.einsum("nj,nj->n", w, sq / (rho + c))

    b = np.zeros((n, m))
    for _ in range(iterations):
        diff, rho, obj = parts(b)
        grad = np.einsum("nj,njm->nm", w / rho, diff)
        unit = diff / rho[..., None]
        hess = np.einsum("nj,nj->n", w, 1 / rho)[:, None, None] * np.eye(m) - np.einsum(
            "nj,nja,njb->nab", w / rho, unit, unit
        )
        step = np.linalg.solve(hess, grad[..., None])[..., 0]
        if np.all(np.linalg.norm(step, axis=1) <= 1e-15 * scale + tiny):
            break
        length = np.ones(n)
        for _ in range(40):  # backtracking: the objective must not rise beyond rounding
            worse = parts(b - length[:, None] * step)[2] > obj * (1 + 1e-12)
            if not np.any(worse):
                break
            length = np.where(worse, 0.5 * length, length)
        # where no step lowers the objective any more, the minimizer is resolved to rounding
        moved = ~worse
        if not np.any(moved):
            break
        b = np.where(moved[:, None], b - length[:, None] * step, b)
    diff, rho, _ = parts(b)
    psi = diff / rho[..., None]
    residual = np.linalg.norm(np.einsum("nj,njm->nm", w, psi), axis=1) / np.einsum(
        "nj,nj->n", w, np.linalg.norm(psi, axis=2)
    )
    return mean, b, residual


def posterior_median(path: MixturePath, t: float, y: np.ndarray) -> np.ndarray:
    """The median of ``x0`` given ``x_t = y`` for a 1-d path, shape ``(n, 1)``:
    :func:`~cmverify.reference.posterior_quantile` at ``log ½`` (to ``1e-15 (1 + |m|)``)."""
    return posterior_quantile(path, t, y, math.log(0.5))


def _gmed_moments(
    a: np.ndarray,
    weights: np.ndarray,
    means: np.ndarray,
    covs: np.ndarray,
    points: int,
    near: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The gradient ``(n, 2)`` and Hessian ``(n, 2, 2)`` of ``E‖a − W‖`` for the law ``Σ_k
    w_k N(means_k, covs_k)`` per point (shapes ``(n, K)``, ``(n, K, 2)``, ``(n, K, 2,
    2)``): polar formulas for the components marked ``near`` ``(n, K)``, a Gauss–Hermite
    rule for the others (their integrand is analytic over the component's mass)."""
    prec = np.linalg.inv(covs)
    off = a[:, None, :] - means  # (n, K, 2)
    big_d = np.einsum("nki,nkij,nkj->nk", off, prec, off)
    grad = np.zeros_like(a)
    hess = np.zeros((len(a), 2, 2))
    if np.any(near):
        theta = 2 * np.pi * np.arange(points) / points
        cos, sin = np.cos(theta), np.sin(theta)
        big_a = (
            prec[..., 0, 0, None] * cos**2
            + 2 * prec[..., 0, 1, None] * cos * sin
            + prec[..., 1, 1, None] * sin**2
        )
        po = np.einsum("nkij,nkj->nki", prec, off)
        big_b = po[..., 0, None] * cos + po[..., 1, None] * sin
        beta = big_b / np.sqrt(big_a)
        dd = big_d[..., None]
        gap = np.maximum(dd - beta * beta, 0.0)  # ≥ 0 by Cauchy–Schwarz
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            g = np.where(
                beta >= 0,
                np.exp(-0.5 * dd) * erfcx(np.maximum(beta, 0) / math.sqrt(2)),
                np.exp(-0.5 * gap) * erfc(beta / math.sqrt(2)),
            )
        root = math.sqrt(math.pi / 2)
        norm = 1.0 / (2 * np.pi * np.sqrt(np.linalg.det(covs)))
        scale = np.where(near, weights * norm, 0.0)[..., None] * (2 * np.pi / points)
        r0 = np.sum(scale * root * g / np.sqrt(big_a), axis=1)  # (n, P)
        r1 = np.sum(scale * (np.exp(-0.5 * dd) - beta * root * g) / big_a, axis=1)
        grad -= np.stack([r1 @ cos, r1 @ sin], axis=1)
        total = np.sum(r0, axis=1)
        cc, cs, ss = r0 @ (cos * cos), r0 @ (cos * sin), r0 @ (sin * sin)
        hess += np.stack([np.stack([total - cc, -cs], -1), np.stack([-cs, total - ss], -1)], 1)
    if not np.all(near):
        z, wz = gauss_hermite(FAR_ORDER, 2)
        chol = np.linalg.cholesky(covs)  # nodes μ + L z, shape (n, K, Q, 2)
        n0 = means[..., 0, None] + chol[..., 0, 0, None] * z[:, 0]
        n1 = means[..., 1, None] + chol[..., 1, 0, None] * z[:, 0] + chol[..., 1, 1, None] * z[:, 1]
        d0, d1 = a[:, None, None, 0] - n0, a[:, None, None, 1] - n1
        dist = np.sqrt(d0 * d0 + d1 * d1)
        far = np.where(near, 0.0, weights)[..., None] * wz / dist  # (n, K, Q)
        u0, u1 = d0 / dist, d1 / dist
        grad += np.stack([np.sum(far * d0, axis=(1, 2)), np.sum(far * d1, axis=(1, 2))], 1)
        total = np.sum(far, axis=(1, 2))
        cc = np.sum(far * u0 * u0, axis=(1, 2))
        cs = np.sum(far * u0 * u1, axis=(1, 2))
        ss = np.sum(far * u1 * u1, axis=(1, 2))
        hess += np.stack([np.stack([total - cc, -cs], -1), np.stack([-cs, total - ss], -1)], 1)
    return grad, hess


def geometric_median_2d(
    weights: np.ndarray,
    means: np.ndarray,
    covs: np.ndarray,
    *,
    points: int = THETA_POINTS,
    iterations: int = 50,
) -> tuple[np.ndarray, np.ndarray]:
    """The geometric median ``argmin_a E‖a − W‖`` of ``W ~ Σ_k w_k N(means_k, covs_k)`` in
    ``d = 2``, per point: ``weights`` ``(n, K)`` summing to 1, ``means`` ``(n, K, 2)``,
    ``covs`` ``(n, K, 2, 2)`` positive definite. Newton's method on the gradient (module
    docstring), from the mean, damped until ``‖∇‖`` falls. Returns the median ``(n, 2)``
    and its residual ``‖∇E‖a − W‖‖`` (a unit-free number: the mean of unit vectors)."""
    weights = np.asarray(weights, dtype=np.float64)
    means = np.asarray(means, dtype=np.float64)
    covs = np.asarray(covs, dtype=np.float64)
    if means.shape[-1] != 2:
        raise ValueError(f"geometric_median_2d needs a 2-d law, got d = {means.shape[-1]}")
    a = np.einsum("nk,nki->ni", weights, means)
    spread = np.sqrt(np.einsum("nk,nkii->n", weights, covs))
    # Which components are integrated in polar coordinates is fixed for one Newton run (a
    # switch mid-run would make the gradient jump by the far rule's error); the run is
    # repeated while the median lands near a component the split called far. Far means
    # beyond NEAR standard deviations of the component's *longest* axis (Euclidean):
    # there (a − W)/‖a − W‖ is smooth over all of its mass. (A Mahalanobis criterion calls
    # a point 8 thin-axis deviations off a needle far while it lies within the needle's
    # length: medians off by 2e-3, found in review.)
    longest = np.sqrt(np.linalg.eigvalsh(covs)[..., -1])
    near = None
    for _ in range(4):
        split = np.linalg.norm(a[:, None, :] - means, axis=2) <= NEAR * longest
        if near is not None and np.array_equal(near, near | split):
            break
        near = split if near is None else near | split
        a = _newton(a, weights, means, covs, points, near, spread, iterations)
    grad, _ = _gmed_moments(a, weights, means, covs, points, near)
    return a, np.linalg.norm(grad, axis=1)


def _newton(a, weights, means, covs, points, near, spread, iterations) -> np.ndarray:
    """Newton's method for :func:`geometric_median_2d` with a fixed near/far split, damped
    until the gradient's norm falls; a point stops when its step is below 1e-14 of the
    law's spread or no damped step lowers the gradient (resolved to rounding)."""
    a = a.copy()
    grad, hess = _gmed_moments(a, weights, means, covs, points, near)
    active = np.ones(len(a), dtype=bool)
    for _ in range(iterations):
        step = np.linalg.solve(hess, grad[..., None])[..., 0]
        active &= np.linalg.norm(step, axis=1) > 1e-14 * spread
        rows = np.flatnonzero(active)
        if rows.size == 0:
            break
        size = np.linalg.norm(grad[rows], axis=1)
        length = np.ones(rows.size)
        for _ in range(12):
            trial = a[rows] - length[:, None] * step[rows]
            g2, h2 = _gmed_moments(
                trial, weights[rows], means[rows], covs[rows], points, near[rows]
            )
            ok = np.linalg.norm(g2, axis=1) <= size
            if np.all(ok):
                break
            length = np.where(ok, length, 0.5 * length)
        a[rows[ok]], grad[rows[ok]], hess[rows[ok]] = trial[ok], g2[ok], h2[ok]
        active[rows[~ok]] = False
    return a
