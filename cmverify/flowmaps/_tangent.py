"""The Eulerian residual of a torch flow-map network by forward-mode differentiation
(flowmaps floor).

Read as ``X_θ(s→t)`` in our convention, a network has its own velocity
``v_θ(s, x) = ∂_t X_θ(s→t)(x)|_{t = s}``, and the Eulerian law of a flow map is

    ``∂_s X_θ(s→t)(x) + ∇_x X_θ(s→t)(x) v_θ(s, x) = 0``.

For a ``torch.nn.Module`` both derivatives are one ``torch.func.jvp`` each — ``v_θ`` the
tangent of ``t' ↦ X_θ(s→t')(x)`` at ``t' = s``, the residual the tangent of
``(x, s) ↦ X_θ(s→t)(x)`` along ``(v_θ, 1)`` — exact up to the network's rounding, where
differences of step ``h`` leave ``O(h²)``. The conversions network → ``X`` are those of
:func:`~cmverify.flowmaps.as_flow_map`, written once more in torch for the kinds whose
conversion needs no interpolant (:data:`JVP_KINDS`); ``ctm`` (``α``, ``σ`` of an
interpolant), the dyadic shortcut kind (``d`` on a grid) and the one-time kinds are left
to differences or have no Eulerian law to measure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from ._wrap import FlowMap

__all__ = ["JVP_KINDS", "eulerian_residual_jvp", "supports_jvp"]

#: The kinds whose Eulerian residual is taken by ``torch.func.jvp``.
JVP_KINDS = ("map", "meanflow", "ayf", "boffi", "shortcut")


def supports_jvp(flow_map: FlowMap) -> bool:
    """Whether :func:`eulerian_residual_jvp` applies: a torch module of a kind in
    :data:`JVP_KINDS` (a shortcut network only with ``dyadic=False``)."""
    caller = flow_map._caller
    if not caller.torch or flow_map.kind not in JVP_KINDS:
        return False
    return not (flow_map.kind == "shortcut" and flow_map.convention["dyadic"])


def _as_map(flow_map: FlowMap, net: Any, x: Any, s: Any, t: Any) -> Any:
    """``X_θ(s→t)(x)`` from the torch network (the conversions of ``as_flow_map``)."""
    kind = flow_map.kind
    if kind == "map":
        return net(x, s, t)
    if kind == "meanflow":
        if flow_map.convention["time_inputs"] == "r,t":
            u = net(x, t, s)
        else:
            u = net(x, s, s - t)
        return x - (s - t)[:, None] * u
    if kind == "ayf":
        return x + (t - s)[:, None] * net(x, s, t)
    if kind == "boffi":
        return net(x, 1 - s, 1 - t)
    return x + (s - t)[:, None] * net(x, 1 - s, s - t)  # shortcut


def eulerian_residual_jvp(flow_map: FlowMap, x: np.ndarray, s: float, t: float) -> np.ndarray:
    """``∂_s X_θ(s→t)(x) + ∇X_θ(s→t)(x) v_θ(s, x)`` per row, shape ``(n, d)`` float64, by
    two ``torch.func.jvp`` (module docstring), in the module's dtype, ``eval()`` mode.

    ``ValueError`` where :func:`supports_jvp` is false, and where the network's output or
    either tangent has the wrong shape or is not finite."""
    if not supports_jvp(flow_map):
        raise ValueError(f"no torch JVP for this {flow_map.kind} network; use differences")
    import torch

    caller = flow_map._caller
    n = x.shape[0]
    xt, st, tt = caller.tensors([x, np.full(n, s), np.full(n, t)])
    net = caller.model
    with caller.evaluating():
        # clones: a network that edits its input in place cannot change the next call's
        _, v = torch.func.jvp(
            lambda end: _as_map(flow_map, net, xt.clone(), st.clone(), end),
            (st,),
            (torch.ones_like(st),),
        )
        out, residual = torch.func.jvp(
            lambda points, start: _as_map(flow_map, net, points, start, tt.clone()),
            (xt, st),
            (v, torch.ones_like(st)),
        )
    for name, value in (("output", out), ("velocity tangent", v), ("residual", residual)):
        if tuple(value.shape) != tuple(x.shape):
            raise ValueError(
                f"the {flow_map.kind} network's {name} has shape {tuple(value.shape)}, "
                f"expected {x.shape}"
            )
    result = residual.detach().to("cpu", torch.float64).numpy().copy()
    if not np.all(np.isfinite(result)) or not bool(torch.isfinite(v).all()):
        raise ValueError(f"the {flow_map.kind} network's JVP tangents contain NaN or inf")
    return result
