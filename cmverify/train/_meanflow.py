"""MeanFlow training (Geng et al. 2025) in our convention (train layer).

The network is the average velocity ``u_θ(z, r, t)``, ``X_{t→r}(z) = z − (t − r) u``
(data at ``t = 0``). For pairs ``x0 ~ data``, ``x1 ~ N(0, I)``, ``z = α_t x0 + σ_t x1`` and
a tangent ``w`` — the conditional velocity ``v_c = α̇_t x0 + σ̇_t x1`` (training) or the
exact velocity ``v(t, z)`` of the mixture (``teacher="exact"``: MeanFlow distillation) —
the target is the MeanFlow identity with the network's own total derivative:

    u_tgt = sg[w − (t − r) (∂_t u_θ + ∇_z u_θ · w)],

the JVP of ``u_θ`` along ``(w, 0, 1)`` in ``(z, r, t)`` (``torch.func.jvp``, or a
network's own ``forward_and_tangent(z, r, t, w)`` when it has one, as
:class:`~cmverify.train.MeanFlowNet` does; only the rows with ``r < t`` need it, the
others' target is ``w``). The loss is adaptively weighted,
``mean sg(1/(‖Δ‖² + ε)^p) ‖Δ‖²`` with ``Δ = u_θ − u_tgt``: ``p = 0`` is the squared loss,
whose optimum is ``u`` (MEANFLOW-FLOOR); ``p > 0`` moves the fixed point off ``v`` where the
posterior of ``v_c`` is skewed (MEANFLOW-WEIGHTING measures by how much).

Times: ``t, r`` the larger and smaller of two draws of ``sigmoid(N(μ, s²))`` (logit-normal,
the paper's) or of ``U(0, 1)``, or ``t ~ U(0, 1)`` and ``r ~ U(0, t)`` (``"nested"``, whose
``r`` has density ``−log r``: more pairs near the one-step line ``r = 0``); then ``r = t``
for a fraction ``1 − ratio`` of the pairs.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..exact import MixturePath
from ._losses import draw_points

__all__ = ["meanflow_loss", "meanflow_tangents", "meanflow_times"]


def meanflow_times(
    rng: np.random.Generator,
    n: int,
    ratio: float,
    *,
    law: str = "logit_normal",
    mean: float = -0.4,
    std: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """``(r, t)``, shape ``(n,)`` each, ``0 ≤ r ≤ t ≤ 1`` (module docstring): by ``law``
    two logit-normal draws ``sigmoid(N(mean, std²))`` sorted, two uniform draws sorted, or
    ``"nested"`` ``t ~ U(0, 1)``, ``r ~ U(0, t)``; then ``r = t`` for each pair with
    probability ``1 − ratio``."""
    if law == "nested":
        t = rng.random(n)
        r = t * rng.random(n)
    else:
        if law == "uniform":
            a, b = rng.random(n), rng.random(n)
        else:
            a, b = (1.0 / (1.0 + np.exp(-rng.normal(mean, std, n))) for _ in range(2))
        t, r = np.maximum(a, b), np.minimum(a, b)
    same = rng.random(n) >= ratio
    r[same] = t[same]
    return r, t


def meanflow_tangents(
    path: MixturePath,
    r: np.ndarray,
    t: np.ndarray,
    rng: np.random.Generator,
    exact: Callable[[np.ndarray, np.ndarray], np.ndarray] | None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(z, w)``: points ``z = α_t x0 + σ_t x1`` and tangents ``w`` — ``v_c`` or, with
    ``exact`` (a velocity ``v(t, z)``), the exact velocity — shapes ``(n, d)``."""
    z, v_c = draw_points(path, t, rng)
    if exact is not None:
        return z, np.asarray(exact(t, z), dtype=np.float64)
    return z, v_c


def _own_forward(model: torch.nn.Module) -> bool:
    """Whether ``model.forward_and_tangent`` differentiates ``model.forward``: true for a
    :class:`~cmverify.train.MeanFlowNet` whose ``forward`` is not overridden (a subclass
    that changes ``forward`` takes the generic ``torch.func.jvp`` route)."""
    from ._flow_nets import MeanFlowNet

    return isinstance(model, MeanFlowNet) and type(model).forward is MeanFlowNet.forward


def meanflow_loss(
    model: torch.nn.Module,
    z: torch.Tensor,
    r: torch.Tensor,
    t: torch.Tensor,
    w: torch.Tensor,
    *,
    p: float = 1.0,
    eps: float = 1e-3,
) -> tuple[torch.Tensor, float]:
    """``(loss, mean ‖Δ‖²)``: the adaptively weighted MeanFlow loss (module docstring) and
    its unweighted value. ``z``, ``w`` of shape ``(n, d)``, ``r``, ``t`` of shape ``(n,)``.
    Rows are reordered (``r = t`` first); the loss is a mean, so that does not matter."""
    span = t > r
    parts_u, parts_target = [], []
    if bool((~span).any()):
        parts_u.append(model(z[~span], r[~span], t[~span]))
        parts_target.append(w[~span])
    if bool(span.any()):
        zs, rs, ts, ws = z[span], r[span], t[span], w[span]
        fast = getattr(model, "forward_and_tangent", None)
        if callable(fast) and _own_forward(model):  # MeanFlowNet: the JVP written out
            u, du = fast(zs, rs, ts, ws)
        else:
            u, du = torch.func.jvp(
                lambda zz, rr, tt: model(zz, rr, tt),
                (zs, rs, ts),
                (ws, torch.zeros_like(rs), torch.ones_like(ts)),
            )
        parts_u.append(u)
        parts_target.append(ws - (ts - rs)[:, None] * du)
    delta = torch.cat(parts_u) - torch.cat(parts_target).detach()
    sq = torch.sum(delta**2, dim=1)
    weight = (sq.detach() + eps) ** (-p) if p else torch.ones_like(sq)
    return torch.mean(weight * sq), float(sq.detach().mean())
