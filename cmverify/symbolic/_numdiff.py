"""High-order finite differences with stencil weights derived by SymPy.

The weights of a first-derivative stencil on integer offsets ``o_j`` are the exact
rationals of :func:`sympy.finite_diff_weights`; a central stencil with ``2m + 1`` points
has truncation error ``O(h^{2m})``. Rounding error is about ``eps · |f| / h``; callers
choose ``h`` to balance the two and state the budget.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import sympy as sp

__all__ = [
    "divergence",
    "gradient",
    "hessian",
    "jacobian",
    "stencil",
    "time_derivative",
    "time_stencil",
]


@functools.cache
def stencil(offsets: tuple[int, ...]) -> tuple[tuple[int, float], ...]:
    """``(offset, weight)`` pairs of the first-derivative stencil on ``offsets`` (unit step).

    Zero weights are dropped. The truncation order is ``len(offsets) − 1``.
    """
    weights = sp.finite_diff_weights(1, list(offsets), 0)[1][-1]
    return tuple((o, float(w)) for o, w in zip(offsets, weights, strict=True) if w != 0)


def _offsets(t: float, h: float, accuracy: int, lo: float, hi: float) -> tuple[int, ...]:
    """Integer offsets for a stencil of the given accuracy that stays inside ``[lo, hi]``."""
    half = accuracy // 2
    central = tuple(range(-half, half + 1))
    if t - half * h >= lo and t + half * h <= hi:
        return central
    if t - half * h < lo:
        return tuple(range(0, accuracy + 1))
    return tuple(range(-accuracy, 1))


def time_derivative(
    f: Callable[[float], np.ndarray],
    t: float,
    h: float,
    *,
    accuracy: int = 6,
    domain: tuple[float, float] = (0.0, 1.0),
) -> np.ndarray:
    """``d f / d t`` at a scalar ``t`` by a stencil of order ``accuracy`` (even).

    The stencil is central where it fits in ``domain`` and one-sided (same order)
    otherwise. Truncation error ``O(h^accuracy)``.
    """
    times, weights = time_stencil(t, h, accuracy=accuracy, domain=domain)
    return sum(w * np.asarray(f(tau)) for tau, w in zip(times, weights, strict=True))


def time_stencil(
    t: float, h: float, *, accuracy: int = 6, domain: tuple[float, float] = (0.0, 1.0)
) -> tuple[np.ndarray, np.ndarray]:
    """The times and weights of :func:`time_derivative`'s stencil at ``t``:
    ``d f / d t ≈ Σ_j weights_j f(times_j)`` (the weights include ``1/h``), for callers
    that evaluate ``f`` at all the times in one batch."""
    if accuracy % 2 or accuracy < 2:
        raise ValueError(f"accuracy must be an even integer ≥ 2, got {accuracy}")
    pairs = stencil(_offsets(t, h, accuracy, *domain))
    times = np.array([t + o * h for o, _ in pairs])
    return times, np.array([w for _, w in pairs]) / h


def jacobian(
    f: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    h: float | np.ndarray,
    *,
    accuracy: int = 6,
) -> np.ndarray:
    """Jacobian ``∂f_i/∂x_j`` of a batched map ``f: (n, d) → (n, m)``, shape ``(n, m, d)``.

    Central differences of order ``accuracy``; ``h`` is a float or one step per point,
    shape ``(n,)``.
    """
    if accuracy % 2 or accuracy < 2:
        raise ValueError(f"accuracy must be an even integer ≥ 2, got {accuracy}")
    x = np.asarray(x, dtype=np.float64)
    n, d = x.shape
    step = np.broadcast_to(np.asarray(h, dtype=np.float64), (n,))[:, None]
    half = accuracy // 2
    columns = []
    for j in range(d):
        unit = np.zeros(d)
        unit[j] = 1.0
        acc = None
        for o, w in stencil(tuple(range(-half, half + 1))):
            term = w * np.asarray(f(x + o * step * unit))
            acc = term if acc is None else acc + term
        columns.append(acc / step)
    return np.stack(columns, axis=-1)


def gradient(
    f: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    h: float | np.ndarray,
    *,
    accuracy: int = 6,
) -> np.ndarray:
    """Gradient of a batched scalar field ``f: (n, d) → (n,)``, shape ``(n, d)``."""
    return jacobian(lambda z: np.asarray(f(z))[:, None], x, h, accuracy=accuracy)[:, 0, :]


def divergence(
    f: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    h: float | np.ndarray,
    *,
    accuracy: int = 6,
) -> np.ndarray:
    """Divergence ``Σ_j ∂f_j/∂x_j`` of a batched vector field ``(n, d) → (n, d)``, shape ``(n,)``."""
    return np.trace(jacobian(f, x, h, accuracy=accuracy), axis1=1, axis2=2)


def hessian(
    f: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    h: float | np.ndarray,
    *,
    accuracy: int = 6,
) -> np.ndarray:
    """Second derivatives ``∂²f_i/∂x_j∂x_k`` of ``f: (n, d) → (n, m)``, shape ``(n, m, d, d)``.

    The Jacobian of the Jacobian, both by central differences of order ``accuracy``:
    ``(accuracy · d)²`` evaluations of ``f``; truncation ``O(h^accuracy)``, rounding
    about ``eps · |f| / h²``.
    """

    def jac(z: np.ndarray) -> np.ndarray:
        j = jacobian(f, z, h, accuracy=accuracy)
        return j.reshape(z.shape[0], -1)

    x = np.asarray(x, dtype=np.float64)
    second = jacobian(jac, x, h, accuracy=accuracy)  # (n, m*d, d)
    n, d = x.shape
    return second.reshape(n, -1, d, d)
