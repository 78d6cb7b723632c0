"""Shortcut-model training (Frans et al. 2024) in our convention (train layer).

The network is ``s_θ(x, τ, d)`` with ``τ = 1 − t`` (the paper's time, noise at ``τ = 0``)
and step ``d``: ``X_{t→t−d}(x) = x + d s_θ(x, 1 − t, d)``, so ``s = −v`` as ``d → 0``.
Levels ``d = 2^-k``, ``k = 0 … K``, ``d_min = 2^-K``. Each batch holds

- **flow-matching rows** (a fraction ``1 − f``): target ``−w`` at the base step — ``w`` the
  conditional velocity ``v_c`` (or the exact ``v``, ``teacher="exact"``) at ``x = α_t x0 +
  σ_t x1`` — with ``d = d_min`` and ``τ`` on the ``d_min`` grid (the released code's
  choice; base ``"d_min"``), or ``d = 0`` and ``τ ~ U[0, 1)`` (base ``"zero"``);
- **bootstrap rows** (a fraction ``f``, default 1/4; the released code's is 1/8; at least
  one row of the batch stays a flow-matching row): a level ``d`` above the
  base (``d ≥ 2 d_min``; base ``"zero"``: ``d ≥ d_min``), ``τ`` a multiple of ``d``, and
  the self-consistency target from the target network ``θ⁻`` (an EMA, or the network
  itself without gradient at ``μ = 0``), with ``h = d/2`` and query step ``q = h`` (base
  ``"zero"`` at ``d = d_min``: ``q = 0``):

      s₁ = s_θ⁻(x, τ, q),  s₂ = s_θ⁻(x + h s₁, τ + h, q),  target ½ (s₁ + s₂).

SHORTCUT-BASE: the fixed point is ``D/d_min`` Euler steps of ``v`` (error ``O(d_min)``
against ``X_{t→t−D}``). The released code also clips targets to ``[−4, 4]``; that is a
property of its image data, not of the method, and is not done here.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..exact import MixturePath
from ._losses import draw_points

__all__ = ["shortcut_batch", "shortcut_loss"]


def shortcut_batch(
    path: MixturePath,
    n: int,
    rng: np.random.Generator,
    *,
    d_min: float,
    base: str,
    fraction: float,
    exact: Callable[[np.ndarray, np.ndarray], np.ndarray] | None,
) -> dict[str, np.ndarray]:
    """One batch of ``n`` rows (module docstring): ``x``, ``tau``, ``d`` of every row; for
    the ``n_fm`` flow-matching rows (first) their target ``-w``; for the bootstrap rows
    their half step ``h`` and query step ``q``."""
    levels = round(np.log2(1.0 / d_min))
    n_boot = min(int(fraction * n + 0.5), n - 1)  # at least one flow-matching row
    n_fm = n - n_boot
    if base == "d_min":
        tau_fm = rng.integers(0, 2**levels, n_fm) * d_min
        d_fm = np.full(n_fm, d_min)
        top = levels  # bootstrap levels k = 0 … K − 1 (d ≥ 2 d_min)
    else:
        tau_fm = rng.random(n_fm)
        d_fm = np.zeros(n_fm)
        top = levels + 1  # k = 0 … K (d ≥ d_min)
    k = rng.integers(0, top, n_boot)
    d_boot = np.exp2(-k.astype(np.float64))
    tau_boot = np.floor(rng.random(n_boot) * 2.0**k) * d_boot
    x_fm, w = draw_points(path, 1.0 - tau_fm, rng)
    if exact is not None:
        w = np.asarray(exact(1.0 - tau_fm, x_fm), dtype=np.float64)
    x_boot, _ = draw_points(path, 1.0 - tau_boot, rng)
    h = d_boot / 2
    q = np.where(h >= d_min, h, 0.0)
    return {
        "x": np.concatenate([x_fm, x_boot]),
        "tau": np.concatenate([tau_fm, tau_boot]),
        "d": np.concatenate([d_fm, d_boot]),
        "fm_target": -w,
        "h": h,
        "q": q,
        "n_fm": np.array(n_fm),
    }


def shortcut_loss(
    model: torch.nn.Module, target: torch.nn.Module, batch: dict[str, np.ndarray]
) -> torch.Tensor:
    """``mean ‖s_θ(x, τ, d) − target‖²`` over the batch of :func:`shortcut_batch`; the
    bootstrap targets come from ``target`` without gradient."""
    first = next(model.parameters())
    x, tau, d, fm, h, q = (
        torch.as_tensor(batch[key], dtype=first.dtype, device=first.device)
        for key in ("x", "tau", "d", "fm_target", "h", "q")
    )
    n_fm = int(batch["n_fm"])
    with torch.no_grad():  # the target network gets copies: x must reach the model intact
        xb, tb = x[n_fm:], tau[n_fm:]
        s1 = target(xb.clone(), tb.clone(), q.clone())
        s2 = target(xb + h[:, None] * s1, tb + h, q.clone())
        goal = torch.cat([fm, 0.5 * (s1 + s2)])
    return torch.mean(torch.sum((model(x, tau, d) - goal) ** 2, dim=1))
