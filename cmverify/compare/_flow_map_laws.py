"""The model's own laws in :func:`~cmverify.compare.compare_flow_map`: calls that turn
every problem into a :class:`~cmverify.compare.PairFailure`, the semigroup midpoint, and
the Eulerian residual ``∂_s X_θ + ∇X_θ v_θ`` (``v_θ = ∂_t X_θ(s→t)|_{t=s}``, the model's
own velocity) by ``torch.func.jvp`` for a torch module or by second-order differences
otherwise."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..flowmaps import InvalidOutput
from ._flow_map_report import PairFailure
from ._statistics import rms

#: The difference step of the Eulerian residual.
EULER_STEP = 1e-3
#: The kinds that map to ``t = 0`` only (no second time, no law of their own to measure).
_ONE_TIME = ("consistency", "trigflow")


class _Calls:
    """``X_θ(s→t)(x)`` with every problem turned into a :class:`PairFailure`."""

    def __init__(self, flow_map: Any) -> None:
        self.flow_map = flow_map

    def __call__(self, x: np.ndarray, s, t, what: str = "X_{s→t}") -> np.ndarray | PairFailure:
        s0, t0 = float(np.ravel(s)[0]), float(np.ravel(t)[0])
        try:
            out = self.flow_map.map(x, s, t)
        except InvalidOutput as exc:
            return PairFailure(s0, t0, "invalid output", str(exc).splitlines()[0], what)
        except (Exception, SystemExit) as exc:  # the network itself raised (or exited)
            return PairFailure(s0, t0, "exception", f"{type(exc).__name__}: {exc}", what)
        return out


def _grid_midpoint(s: float, t: float, kind: str, convention: Any) -> float | None:
    """``u`` halfway between ``s`` and ``t`` on the pair grid, or ``None`` (one step, or a
    one-time kind)."""
    if kind in _ONE_TIME:
        return None
    u = (s + t) / 2
    if kind == "shortcut":
        smallest = convention["d_min"] if convention["dyadic"] else 2.0**-5
        return u if abs(s - t) / 2 >= smallest - 1e-12 else None
    snapped = round(u * 10) / 10
    return snapped if t < snapped < s - 1e-12 or s < snapped < t - 1e-12 else None


def eulerian_expressible(kind: str, convention: Any, s: float, t: float) -> bool:
    """Whether the Eulerian residual's differences can be asked of the kind at ``(s, t)``:
    not for the one-time kinds (``X_{s→0}`` only), nor for a dyadic shortcut network
    (``X(s ± h → t)`` needs ``d = s ± h − t``, off the dyadic grid), nor within ``2h`` of
    ``t`` or of ``s = 0``."""
    if kind in _ONE_TIME or (kind == "shortcut" and convention["dyadic"]):
        return False
    return s - 2 * EULER_STEP >= 0 and s - t > 2 * EULER_STEP


def _eulerian_jvp(call: _Calls, x: np.ndarray, s: float, t: float) -> float | None:
    """RMS of the Eulerian residual by ``torch.func.jvp``
    (:meth:`cmverify.flowmaps.FlowMap.eulerian_residual_jvp`); ``None`` when the JVP
    raises (a module that leaves torch, e.g. through numpy, cannot be differentiated: the
    caller then takes differences, whose calls report the network's own failures)."""
    try:
        residual = call.flow_map.eulerian_residual_jvp(x, s, t)
    except Exception:
        return None
    return rms(np.linalg.norm(residual, axis=1))


def _finite(value: float | PairFailure, s: float, t: float, what: str) -> float | PairFailure:
    """``value``, or a failure when it is NaN or inf (the model's outputs were finite but
    their differences overflow float64)."""
    if isinstance(value, PairFailure) or math.isfinite(value):
        return value
    return PairFailure(s, t, "non-finite error", "the residual overflows float64", what)


def _eulerian(call: _Calls, x: np.ndarray, start: np.ndarray, s: float, t: float, out):
    """RMS of ``∂_s X_θ(s→t)(x) + ∇X_θ(s→t)(x) v_θ(s, x)`` by second-order differences:
    ``v_θ = (3 X_θ(s→s) − 4 X_θ(s→s−h) + X_θ(s→s−2h)) / 2h`` (``start = X_θ(s→s)(x)``:
    the one-sided derivative of ``t ↦ X_θ(s→t)`` at ``t = s``, the quantity the JVP
    takes, from the side every kind can express), ``∂_s`` central (one-sided at
    ``s = 1``), ``∇X_θ v_θ`` central. An exact map leaves ``O(h²) + O(ε/h)`` (ε its
    accuracy): up to 3e-5 at ``h = 1e-3`` (measured on eight_gaussians, exact MeanFlow)."""
    h = EULER_STEP
    near = [call(x, s, s - k * h, f"Eulerian: X_θ(s→s−{k}h)") for k in (1, 2)]
    for part in near:
        if isinstance(part, PairFailure):
            return part
    with np.errstate(over="ignore", invalid="ignore"):
        return _eulerian_differences(call, x, start, s, t, out, near)


def _eulerian_differences(call, x, start, s, t, out, near):
    h = EULER_STEP
    v = (3 * start - 4 * near[0] + near[1]) / (2 * h)
    if s + h <= 1.0:
        starts, weights = (s + h, s - h), (1 / (2 * h), -1 / (2 * h))
    else:
        starts, weights = (s - h, s - 2 * h), (-4 / (2 * h), 1 / (2 * h))
    parts = [call(x, u, t, "Eulerian: X_θ(s±h→t)") for u in starts] + [
        call(x + h * v, s, t, "Eulerian: X_θ(s→t)(x + h v)"),
        call(x - h * v, s, t, "Eulerian: X_θ(s→t)(x − h v)"),
    ]
    for part in parts:
        if isinstance(part, PairFailure):
            return part
    d_s = weights[0] * parts[0] + weights[1] * parts[1]
    if s + h > 1.0:
        d_s = d_s + 3 * out / (2 * h)
    residual = d_s + (parts[2] - parts[3]) / (2 * h)
    return rms(np.linalg.norm(residual, axis=1))
