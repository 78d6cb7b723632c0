"""Consistency training (CT) and distillation (CD) losses on one batch.

Grid ``t_n = n / N``. For a batch of indices ``n`` (pairs ``t_n < t_{n+1}``):

- CT: ``x_{t_{n+1}} = α x0 + σ x1`` and ``x_{t_n}`` from the **same** ``(x0, x1)``;
- CD: ``x_{t_n}`` from ``x_{t_{n+1}}`` by one Euler or Heun step of a teacher velocity
  ``v(t, x)`` (default: the exact :meth:`MixturePath.velocity`);

and the loss is ``mean w_n · d(f_θ(t_{n+1}, x_{t_{n+1}}), f_θ⁻(t_n, x_{t_n}))`` with
``d`` the squared L2 distance ``|a − b|²`` or the pseudo-Huber distance
``sqrt(|a − b|² + c²) − c``, the target network ``θ⁻`` without gradient, and
``w_n = 1`` or ``1 / (t_{n+1} − t_n)``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..exact import MixturePath
from ..reference import euler_step, heun_step

__all__ = ["cd_pairs", "consistency_loss", "ct_pairs", "distance", "draw_points"]

Velocity = Callable[[np.ndarray, np.ndarray], np.ndarray]


def distance(
    a: torch.Tensor, b: torch.Tensor, kind: str = "l2", huber_c: float = 0.03
) -> torch.Tensor:
    """Per-row distance: ``|a − b|²`` (``"l2"``) or ``sqrt(|a − b|² + c²) − c`` (``"huber"``)."""
    sq = torch.sum((a - b) ** 2, dim=1)
    if kind == "l2":
        return sq
    if kind == "huber":
        return torch.sqrt(sq + huber_c**2) - huber_c
    raise ValueError(f"distance must be 'l2' or 'huber', got {kind!r}")


def _mix(at, x0: np.ndarray, x1: np.ndarray) -> np.ndarray:
    """``α_t x0 + σ_t x1`` per row, from the coefficients ``at`` of times shaped ``(n,)``."""
    return at.alpha[:, None] * x0 + at.sigma[:, None] * x1


def draw_points(
    path: MixturePath, t: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``(x_t, v_c)`` at times ``t`` (shape ``(n,)``): ``x0 ~ data``, then ``x1 ~ N(0, I)``
    from ``rng``, ``x_t = α_t x0 + σ_t x1`` and the conditional velocity ``v_c = α̇_t x0 +
    σ̇_t x1``, shapes ``(n, d)`` (the flow-map methods' training points)."""
    x0 = path.mixture.sample(t.shape[0], rng)
    x1 = rng.standard_normal(x0.shape)
    at = path.interpolant.at(t)
    return _mix(at, x0, x1), at.dalpha[:, None] * x0 + at.dsigma[:, None] * x1


def ct_pairs(path: MixturePath, t_lo: np.ndarray, t_hi: np.ndarray, x0: np.ndarray, x1: np.ndarray):
    """``(x_{t_hi}, x_{t_lo})`` from the same ``(x0, x1)``."""
    interp = path.interpolant
    hi = _mix(interp.at(t_hi), x0, x1)
    lo = _mix(interp.at(t_lo), x0, x1)
    return hi, lo


def cd_pairs(
    path: MixturePath,
    t_lo: np.ndarray,
    t_hi: np.ndarray,
    x0: np.ndarray,
    x1: np.ndarray,
    *,
    solver: str = "euler",
    velocity: Velocity | None = None,
):
    """``(x_{t_hi}, x̂_{t_lo})`` with ``x̂`` one Euler or Heun step of the teacher from ``t_hi``."""
    v = velocity or path.velocity
    interp = path.interpolant
    hi = _mix(interp.at(t_hi), x0, x1)
    h = (t_hi - t_lo)[:, None]
    if solver == "euler":
        return hi, euler_step(v, t_hi, h, hi)
    if solver == "heun":
        return hi, heun_step(v, t_hi, h, hi, t_next=t_lo)
    raise ValueError(f"solver must be 'euler' or 'heun', got {solver!r}")


def consistency_loss(
    model: torch.nn.Module,
    target: torch.nn.Module,
    t_lo: np.ndarray,
    t_hi: np.ndarray,
    x_hi: np.ndarray,
    x_lo: np.ndarray,
    *,
    kind: str = "l2",
    huber_c: float = 0.03,
    inverse_dt: bool = False,
) -> torch.Tensor:
    """``mean_n w_n d(f_θ(t_hi, x_hi), f_θ⁻(t_lo, x_lo))``; gradients flow only into ``model``."""
    dtype = next(model.parameters()).dtype
    as_t = lambda a: torch.as_tensor(a, dtype=dtype)  # noqa: E731
    online = model(as_t(t_hi), as_t(x_hi))
    with torch.no_grad():
        goal = target(as_t(t_lo), as_t(x_lo))
    d = distance(online, goal, kind, huber_c)
    if inverse_dt:
        d = d / as_t(t_hi - t_lo)
    return d.mean()
