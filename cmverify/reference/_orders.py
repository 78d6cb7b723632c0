"""Convergence orders measured the way numerical analysts do (reference layer).

An order is the least-squares slope of ``log error`` against ``log Δ`` over the
asymptotic range (the smallest step sizes); a leading coefficient is checked as the
ratio measured / predicted at the smallest ``Δ``, which tends to 1 as ``Δ → 0``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["OrderFit", "fit_order", "refine_until_asymptotic", "step_sizes"]


@dataclass(frozen=True)
class OrderFit:
    """A fitted order.

    Attributes:
        order: least-squares slope of ``log error`` against ``log Δ`` on ``range_used``.
        constant: ``exp(intercept)``: ``error ≈ constant · Δ^order``.
        range_used: ``(Δ_min, Δ_max)`` of the fit.
        deltas, errors: all measured pairs (the fit uses the last ``points``).
        local_orders: slopes between consecutive pairs (they settle in the asymptotic
            range).
    """

    order: float
    constant: float
    range_used: tuple[float, float]
    deltas: tuple[float, ...]
    errors: tuple[float, ...]
    local_orders: tuple[float, ...]

    def describe(self) -> str:
        lo, hi = self.range_used
        return f"slope {self.order:.3f} on Δ ∈ [{lo:.3g}, {hi:.3g}]"


def step_sizes(largest: float, count: int) -> np.ndarray:
    """``largest · 2^{-j}``, ``j = 0, …, count − 1`` (decreasing)."""
    return largest * 2.0 ** -np.arange(count)


def fit_order(deltas: object, errors: object, *, points: int | None = None) -> OrderFit:
    """Fit ``error ≈ C Δ^p`` on the ``points`` smallest step sizes (default: all but the
    largest two, at least three)."""
    d = np.asarray(deltas, dtype=float)
    e = np.asarray(errors, dtype=float)
    if d.shape != e.shape or d.ndim != 1 or d.size < 3:
        raise ValueError("need at least three (Δ, error) pairs of equal length")
    if np.any(d <= 0) or np.any(~np.isfinite(e)) or np.any(e <= 0):
        raise ValueError("step sizes and errors must be positive and finite")
    order_idx = np.argsort(d)[::-1]
    d, e = d[order_idx], e[order_idx]
    k = max(3, d.size - 2) if points is None else int(points)
    if not 2 <= k <= d.size:
        raise ValueError(f"points must lie in [2, {d.size}], got {k}")
    ld, le = np.log(d[-k:]), np.log(e[-k:])
    slope, intercept = np.polyfit(ld, le, 1)
    local = np.diff(np.log(e)) / np.diff(np.log(d))
    return OrderFit(
        order=float(slope),
        constant=float(np.exp(intercept)),
        range_used=(float(d[-1]), float(d[-k])),
        deltas=tuple(map(float, d)),
        errors=tuple(map(float, e)),
        local_orders=tuple(map(float, local)),
    )


def refine_until_asymptotic(
    measure: Callable[[float], float],
    largest: float,
    *,
    minimum: int = 6,
    maximum: int = 14,
    settle: float = 0.02,
    points: int = 4,
    floor: float = 0.0,
) -> OrderFit:
    """Halve ``Δ`` from ``largest`` until the asymptotic range is reached, then fit.

    The range counts as reached when the last three local orders (slopes between
    consecutive ``Δ``) agree within ``settle``; the fit uses the last ``points`` pairs.
    At most ``maximum`` step sizes are measured (then the fit says so through its
    ``local_orders``, which have not settled), and refinement stops once an error falls
    below ``floor`` (the accuracy of the reference it is measured against).
    """
    deltas: list[float] = []
    errors: list[float] = []
    delta = float(largest)
    while True:
        deltas.append(delta)
        errors.append(float(measure(delta)))
        if len(deltas) >= max(minimum, 4):
            local = np.diff(np.log(errors[-4:])) / np.diff(np.log(deltas[-4:]))
            if np.ptp(local) < settle:
                break
        if len(deltas) >= maximum or (errors[-1] < floor and len(deltas) >= points):
            break
        delta /= 2
    return fit_order(deltas, errors, points=points)
