"""The pair grid and the chains of :func:`~cmverify.compare.compare_flow_map`: the default
pairs of each kind, where the chains start, and the checks of ``pairs`` and ``schedule``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._validation import as_times, refuse_bool
from ..flowmaps import KINDS, ctm_time
from ._flow_map_laws import _ONE_TIME

__all__ = ["CHAIN_STEPS", "CTM_SIGMA_MAX", "chain_start", "default_pairs"]

_GRID = tuple(round(k / 10, 12) for k in range(11))
#: Steps of the uniform chains.
CHAIN_STEPS = (1, 2, 4, 8)
#: Where CTM's chains start: ``ς = σ_s/α_s = 80`` (EDM's ``σ_max``, CTM's default), since
#: its VE variables are infinite at ``s = 1``.
CTM_SIGMA_MAX = 80.0


def default_pairs(kind: str, convention: dict[str, Any] | None = None) -> list[tuple[float, float]]:
    """The default ``(s, t)`` grid of ``kind``: for the one-time kinds (``consistency``,
    ``trigflow``) ``(s, 0)`` with ``s = 0.1, …, 1``; for ``shortcut`` the dyadic levels
    ``d = 1, ½, ¼, ⅛, 1/16`` from every grid point ``s = 1 − m d`` (with
    ``convention={"dyadic": True, "d_min": …}`` only the levels ``d ≥ d_min``); for ``ctm``
    (whose VE variables are infinite at ``s = 1``) ``t < s ≤ 0.9`` on the grid ``0, 0.1,
    …``; for the others (``map``, ``meanflow``, ``ayf``, ``boffi``) ``t < s`` on that
    grid."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    if kind in _ONE_TIME:
        return [(s, 0.0) for s in _GRID[:0:-1]]
    if kind == "shortcut":
        convention = convention or {}
        levels = 5
        if convention.get("dyadic"):
            levels = min(levels, round(math.log2(1.0 / convention.get("d_min", 1.0 / 128))) + 1)
        out = []
        for level in range(levels):
            d = 2.0**-level
            out += [(1.0 - m * d, 1.0 - (m + 1) * d) for m in range(2**level)]
        return out
    top = 0.9 if kind == "ctm" else 1.0
    return [(s, t) for s in _GRID[::-1] if 0 < s <= top for t in _GRID[::-1] if t < s]


def _check_pairs(pairs: object) -> list[tuple[float, float]]:
    if _has_bool(pairs):  # NumPy would read True as 1.0
        raise TypeError("pairs must hold floats, got a bool")
    try:
        array = np.asarray(pairs, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"pairs must be a list of (s, t) pairs, got {pairs!r}") from None
    if array.ndim != 2 or array.shape[1] != 2 or array.shape[0] == 0:
        raise ValueError(f"pairs must be a non-empty list of (s, t) pairs, got shape {array.shape}")
    as_times(array.ravel(), name="pairs")  # finite, in [0, 1]
    return [(float(s), float(t)) for s, t in array]


def _has_bool(value: object) -> bool:
    if isinstance(value, bool | np.bool_) or getattr(value, "dtype", None) == np.bool_:
        return True
    return isinstance(value, list | tuple) and any(_has_bool(v) for v in value)


def _check_schedule(schedule: object, kind: str) -> list[float]:
    refuse_bool(schedule, "schedule")
    sched = np.atleast_1d(as_times(schedule, name="schedule"))
    if (
        sched.ndim != 1
        or sched.size < 2
        or sched[0] <= 0.0
        or sched[-1] != 0.0
        or np.any(np.diff(sched) >= 0)
    ):
        raise ValueError(
            f"schedule must decrease strictly from a time in (0, 1] to 0, got {schedule!r}"
        )
    if kind in _ONE_TIME and sched.size > 2:
        raise ValueError(
            f"the {kind} kind maps to t = 0 only: its chain is one step (for its multistep "
            "sampler, which re-noises between steps, use cmverify.compare.compare)"
        )
    return [float(v) for v in sched]


def chain_start(kind: str, convention: Any) -> float:
    """The time the uniform chains start from: 1, except for CTM (``ς = 80``, the time
    :data:`CTM_SIGMA_MAX` maps to under its interpolant)."""
    if kind == "ctm":
        interpolant = convention["interpolant"]
        return float(ctm_time(interpolant, np.array([CTM_SIGMA_MAX]))[0])
    return 1.0
