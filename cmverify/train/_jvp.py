"""How precise a MeanFlow JVP target is: float32 against float64, and the model's tangent
against the exact one (train layer).

MeanFlow regresses ``u_θ(z, r, t)`` (``X_{t→r}(z) = z − (t − r) u(z, r, t)``, data at 0)
on ``u_tgt = v_c − (t − r) du/dt``, ``du/dt = ∂_t u_θ + ∇_z u_θ · v_c``: the JVP of the
network along the tangent ``(v_c, 0, 1)`` of ``(z, r, t)``. When a MeanFlow loss goes NaN
or plateaus, the questions are how much precision that JVP keeps and how far the model's
tangent is from the exact one. :func:`jvp_precision` measures both on pairs ``(x0, x1)``:

- ``target_float32``: ``‖u_tgt(float32) − u_tgt(float64)‖ / ‖u_tgt(float64)‖`` (root mean
  squares over the batch), the same weights cast to each precision;
- ``tangent``: the model's ``du/dt`` (float64) against the exact ``u``'s, which follows from
  the MeanFlow identity ``u = v − (t − r)(∂_t u + ∇u v)`` and ``∇u = (I − ∇X_{t→r})/(t − r)``:

      ∂_t u + ∇u v_c = [v − u + (I − ∇X_{t→r})(v_c − v)] / (t − r);

- ``u``: the model's ``u`` against the exact ``(z − X_{t→r}(z))/(t − r)``.

The exact quantities come from :class:`~cmverify.reference.ReferenceFlow` (``map`` and
``jacobian``, rtol 1e-10 per trajectory); the tangent divides their error by ``(t − r)²``,
so ``t − r ≥ 1e-3`` is required (error ≲ 1e-7 there). Only float32 against float64 is
measured, in eval mode: bf16/fp16 autocast and BatchNorm's batch statistics are not.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

from ..exact import MixturePath
from ..reference import ReferenceFlow
from ._losses import draw_points

__all__ = ["JvpPrecision", "jvp_precision"]

#: The smallest ``t − r``: the exact tangent's error is about ``1e-13/(t − r)²`` (the
#: reference flow's error divided twice), 1e-7 here — far below any network's.
MIN_SPAN = 1e-3


@dataclass(frozen=True)
class JvpPrecision:
    """The relative errors of :func:`jvp_precision` at ``(t, r)`` over ``n`` pairs."""

    t: float
    r: float
    n: int
    target_float32: float
    tangent: float
    u: float

    def describe(self) -> str:
        return (
            f"JVP at (t, r) = ({self.t:g}, {self.r:g}), {self.n} pairs: float32 target off "
            f"float64 by {self.target_float32:.2e}; tangent off the exact by {self.tangent:.2e}; "
            f"u off the exact by {self.u:.2e} (relative RMS)"
        )


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.sum((a - b) ** 2) / np.sum(b**2)))


def _target(
    model: torch.nn.Module, dtype, z, r, t, v_c
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(u, du/dt, u_tgt)`` of a copy of ``model`` in ``dtype`` (numpy float64 arrays)."""
    net = copy.deepcopy(model).to(device="cpu", dtype=dtype).eval()  # no dropout noise
    z, r, t, v_c = (torch.as_tensor(a, dtype=dtype) for a in (z, r, t, v_c))
    u, du = torch.func.jvp(
        lambda zz, rr, tt: net(zz.clone(), rr.clone(), tt.clone()),
        (z, r, t),
        (v_c, torch.zeros_like(r), torch.ones_like(t)),
    )
    if tuple(u.shape) != tuple(z.shape) or u.dtype != dtype:
        raise ValueError(
            f"the model returned {u.dtype} of shape {tuple(u.shape)} for z, {dtype} of "
            f"shape {tuple(z.shape)} (a complex or half-precision output would be cast)"
        )
    target = v_c - (t - r)[:, None] * du
    out = tuple(a.detach().to(torch.float64).numpy() for a in (u, du, target))
    if not all(np.all(np.isfinite(a)) for a in out):
        raise ValueError(f"the model's u or its JVP is not finite in {dtype}")
    return out


def jvp_precision(
    model: torch.nn.Module,
    path: MixturePath,
    *,
    t: float = 0.8,
    r: float = 0.3,
    n: int = 512,
    seed: int = 0,
) -> JvpPrecision:
    """Measure a MeanFlow network's JVP target (module docstring).

    Arguments:
        model: ``u(z, r, t)`` with ``z`` of shape ``(n, d)`` and ``r``, ``t`` of shape
            ``(n,)``, a torch module, evaluated on the CPU as copies in eval mode (so that
            dropout cannot masquerade as rounding); the model itself is not touched.
        path: the exact path; ``0 ≤ r < t ≤ 1``.
        n, seed: pairs ``x0 ~ data``, ``x1 ~ N(0, I)``, ``z = α_t x0 + σ_t x1``.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not (0.0 <= r < t <= 1.0) or t - r < MIN_SPAN:
        raise ValueError(
            f"need 0 ≤ r < t ≤ 1 with t − r ≥ {MIN_SPAN:g} (the exact tangent divides the "
            f"reference's error by (t − r)²), got t = {t!r}, r = {r!r}"
        )
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a whole number ≥ 1, got {n!r}")
    rng = np.random.default_rng(seed)
    tt, rr = np.full(n, float(t)), np.full(n, float(r))
    z, v_c = draw_points(path, tt, rng)
    u64, du64, target64 = _target(model, torch.float64, z, rr, tt, v_c)
    _, _, target32 = _target(model, torch.float32, z, rr, tt, v_c)
    flow = ReferenceFlow(path)
    end = flow.map(z, t, r)
    jac = flow.jacobian(z, t, r)
    v = path.velocity(t, z)
    u_exact = (z - end) / (t - r)
    tangent = (v - u_exact + (v_c - v) - np.einsum("nij,nj->ni", jac, v_c - v)) / (t - r)
    return JvpPrecision(
        t=float(t),
        r=float(r),
        n=int(n),
        target_float32=_rel(target32, target64),
        tangent=_rel(du64, tangent),
        u=_rel(u64, u_exact),
    )
