"""Gaps of ``p_r`` out of the data-side rules' reach (loss-floors layer).

The MeanFlow floor on the data side is ``∫ F(y) dy`` with ``F = p_r h = p_t(x)² G(y) /
p_r(y)`` (``x = X_{r→t}(y)``, ``G = tr(adj A · C · adj Aᵀ)``, :mod:`._meanflow`). Where two
components of ``p_r`` are far apart, ``1/p_r`` peaks between them — the gap that the map
``X_{t→r}`` stretches a sheet of ``x`` across — while ``p_t(x)`` stays moderate there: a
thin slab across the segment between the means, of Gaussian extent along the other
directions. The rules integrate each component over its whitened box ``[−R, R]^d``
(:data:`~cmverify.loss_floors._cubature.SPAN`); a slab farther than ``R`` standard
deviations from both components lies outside every box, and no node sees it; one near
the box's edge, in its widest boxes, is missed too (:data:`GAP_REACH`). Measured
(d = 2, ``s = 0.14``, means 4.5 apart, the quadratic interpolant, ``(t, r) = (0.69,
0.062)``): the cubature returned 3.0e26 with an estimate of 5e-5 relative where the floor
is 8.2e26 (its 1-d reduction).

This module does not integrate the slab; it estimates what may have been left out, so
that the record says so. Along the segment from ``m_j`` to ``m_l`` the minimum ``y*`` of
``p_r`` is found on a grid; where ``y*`` lies beyond :data:`GAP_REACH` of every
component, Laplace's method across the slab gives its contribution ``≈ F(y*) √(2π/κ) (2π λ)^{(d−1)/2}``, with ``κ`` the curvature of
``log p_r`` along the segment at ``y*`` (``1/p_r`` falls off as ``exp(−κ u²/2)`` across
it) and ``λ`` the larger of the two components' largest variances (the slab's Gaussian
extent along the other directions, where ``p_t(x)²/p_r(y)`` decays like ``p_r``). A
magnitude, not a bound (1.24 times what the rules missed in the case above): the
floor's record adds twice it to the error estimate, which then says that the value does
not hold the gap.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ..exact import MixturePath
from ._rules import whitening_inverses

__all__ = ["gaps_beyond_reach"]

#: A gap farther than this many standard deviations (whitened, Euclidean) from every
#: component is out of the rules' reach. Measured on two modes on a rotated line in
#: d = 2 (s = 0.14, the quadratic interpolant, ``(t, r) = (0.69, 0.088)``, data-side
#: cubature): gaps 3.3–7.7 standard deviations out were resolved (errors within the
#: estimates); at 8.5 the value was 5.6e-4 off at an estimate of 4.1e-4, at 9.15 — inside
#: the box ``[−9, 9]^d`` in every coordinate — 27% off at 7e-7, "converged" (review).
GAP_REACH = 6.0
#: Points of the grid on each segment between two components' means.
SEGMENT_POINTS = 2049
#: The Laplace estimate is a magnitude (1.24 times what the rules missed in the case
#: above); the error estimate takes twice it.
SAFETY = 2.0


def gaps_beyond_reach(
    path: MixturePath, r: float, log_f: Callable[[np.ndarray], np.ndarray]
) -> tuple[float, int]:
    """The Laplace estimate of ``∫ F`` over the gaps of ``p_r`` outside every component's
    box (module docstring), summed over the pairs of components, and the number of
    points at which ``log_f`` (``log F``, shape ``(m, d) → (m,)``) was evaluated."""
    marginal = path.marginal(r)
    means, d = marginal.means, path.dim
    inverses = whitening_inverses(marginal)
    u = np.linspace(0.0, 1.0, SEGMENT_POINTS)
    points: list[np.ndarray] = []
    widths: list[float] = []
    for j in range(len(means)):
        for k in range(j + 1, len(means)):
            step = means[k] - means[j]
            length = float(np.linalg.norm(step))
            if length == 0.0:
                continue
            line = means[j] + u[:, None] * step
            log_p = path.log_prob(r, line)
            i = int(np.argmin(log_p[1:-1])) + 1
            y = line[i]
            whitened = np.einsum("kab,kb->ka", inverses, y - means)
            if np.min(np.linalg.norm(whitened, axis=1)) <= GAP_REACH:
                continue  # well inside some component's box: the rules resolve it
            h = length / (SEGMENT_POINTS - 1)
            kappa = (log_p[i + 1] - 2.0 * log_p[i] + log_p[i - 1]) / h**2
            if not kappa > 0:
                continue
            spread = float(max(marginal.eigvals[j].max(), marginal.eigvals[k].max()))
            points.append(y)
            widths.append(
                0.5 * math.log(2 * math.pi / kappa) + 0.5 * (d - 1) * math.log(2 * math.pi * spread)
            )
    if not points:
        return 0.0, 0
    log_total = log_f(np.array(points)) + np.array(widths)
    with np.errstate(over="ignore"):
        return SAFETY * float(np.sum(np.exp(log_total))), len(points)
