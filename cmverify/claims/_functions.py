"""Smooth test functions ``F: R^d → R^d`` for the local claims, with fixed seeds.

- :class:`CubicMap`: ``F(x) = A x + Σ_jk B_ijk x_j x_k + Σ_jkl C_ijkl x_j x_k x_l``
  (non-zero third derivatives, so the ``O(Δ³)`` remainder is present).
- :class:`TanhNetwork`: ``F(x) = W2 tanh(W1 x + b1) + b2``, a small network with fixed
  random weights.

All are vectorized over rows ``x`` of shape ``(n, d)`` (also ``(n, M, d)``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["CubicMap", "TanhNetwork", "TimeTanhNetwork"]


class CubicMap:
    """A random cubic polynomial map ``R^d → R^d`` (coefficients scaled to O(1) on ``|x| ≲ 3``)."""

    def __init__(self, dim: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.a = rng.normal(size=(dim, dim))
        self.b = rng.normal(size=(dim, dim, dim)) / 3
        self.c = rng.normal(size=(dim, dim, dim, dim)) / 10
        self.name = f"cubic(seed={seed})"

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        return (
            np.einsum("ij,...j->...i", self.a, x)
            + np.einsum("ijk,...j,...k->...i", self.b, x, x)
            + np.einsum("ijkl,...j,...k,...l->...i", self.c, x, x, x)
        )


class TanhNetwork:
    """``W2 tanh(W1 x + b1) + b2`` with ``width`` hidden units and fixed random weights."""

    def __init__(self, dim: int, width: int = 16, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.w1 = rng.normal(size=(width, dim))
        self.b1 = rng.normal(size=width)
        self.w2 = rng.normal(size=(dim, width)) / np.sqrt(width)
        self.b2 = rng.normal(size=dim)
        self.name = f"tanh-net(width={width}, seed={seed})"

    def __call__(self, x: np.ndarray) -> np.ndarray:
        hidden = np.tanh(np.asarray(x, dtype=np.float64) @ self.w1.T + self.b1)
        return hidden @ self.w2.T + self.b2


class TimeTanhNetwork:
    """``F(t, x) = W2 tanh(W1 x + w t + b1) + b2``: a smooth time-dependent model with
    fixed random weights (a stand-in for a student or target network). ``W1`` has entries
    of standard deviation ``input_scale`` (default 0.5): steeper networks put the poles of
    ``tanh`` close to the real axis and Gauss–Hermite rules converge slowly on them."""

    def __init__(self, dim: int, width: int = 16, seed: int = 0, input_scale: float = 0.5) -> None:
        rng = np.random.default_rng(seed)
        self.w1 = input_scale * rng.normal(size=(width, dim))
        self.wt = rng.normal(size=width)
        self.b1 = rng.normal(size=width)
        self.w2 = rng.normal(size=(dim, width)) / np.sqrt(width)
        self.b2 = rng.normal(size=dim)
        self.name = f"time-tanh-net(width={width}, seed={seed})"

    def __call__(self, t: float, x: np.ndarray) -> np.ndarray:
        # matrix products, not einsum: 2.7 times faster on SONG-T2's 1.3M quadrature nodes
        pre = np.asarray(x, dtype=np.float64) @ self.w1.T + (self.wt * t + self.b1)
        return np.tanh(pre) @ self.w2.T + self.b2
