"""The kinds of flow-map network, their conventions, and the checks shared by
:func:`~cmverify.flowmaps.exact` and :func:`~cmverify.flowmaps.as_flow_map` (flowmaps floor).

Our convention: data ``x0`` at ``t = 0``, noise ``x1 ~ N(0, I)`` at ``t = 1``,
``x_t = α_t x0 + σ_t x1``; ``X_{s→t}`` is the flow map of ``dx/dτ = v(τ, x)`` from time
``s`` to time ``t``, in either direction. Each kind is a published network
parameterization; :data:`KIND_INFO` gives its signature and its conversion to ``X``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validation import as_float_array, as_real, refuse_bool
from ..symbolic import Interpolant, interpolants

__all__ = ["CONVENTIONS", "KINDS", "KIND_INFO", "KindInfo"]

#: The kinds of network, in the order of the documentation.
KINDS = ("map", "consistency", "meanflow", "ayf", "boffi", "shortcut", "ctm", "trigflow")


@dataclass(frozen=True)
class KindInfo:
    """One kind: the paper, the network's signature, what it is in our convention, and
    the pairs ``(s, t)`` of ``X_{s→t}`` it can express."""

    name: str
    paper: str
    signature: str
    to_ours: str
    pairs: str


KIND_INFO = {
    info.name: info
    for info in (
        KindInfo("map", "cmverify", "X(x, s, t)", "X_{s→t}(x) = X(x, s, t)", "any s, t"),
        KindInfo(
            "consistency",
            "Song et al. 2023 (consistency models)",
            "f(t, x)",
            "X_{t→0}(x) = f(t, x)",
            "t = 0 only",
        ),
        KindInfo(
            "meanflow",
            "Geng et al. 2025 (MeanFlow)",
            "u(z, r, t), r ≤ t (or u(z, t, h), h = t − r)",
            "X_{t→r}(z) = z − (t − r) u(z, r, t)",
            "t ≤ s",
        ),
        KindInfo(
            "ayf",
            "Sabour et al. 2025 (Align Your Flow)",
            "F(x, t, s)",
            "X_{t→s}(x) = x + (s − t) F(x, t, s)",
            "any s, t",
        ),
        KindInfo(
            "boffi",
            "Boffi, Albergo, Vanden-Eijnden 2024 (flow map matching)",
            "X^B(x, s, t), time running noise → data",
            "X_{s→t}(x) = X^B(x, 1 − s, 1 − t)",
            "any s, t",
        ),
        KindInfo(
            "shortcut",
            "Frans et al. 2024 (shortcut models)",
            "s(x, τ, d), τ = 1 − t, d ≥ 0, τ + d ≤ 1",
            "X_{t→t−d}(x) = x + d · s(x, 1 − t, d)",
            "t ≤ s (dyadic=True: d = s − t = 2^-k, 1 − s on the d-grid)",
        ),
        KindInfo(
            "ctm",
            "Kim et al. 2023 (consistency trajectory models)",
            "G(y, ς, ς'), ς' ≤ ς, on the VE path y = x0 + ς ε",
            "X_{t→s}(x) = α_s G(x/α_t, σ_t/α_t, σ_s/α_s)",
            "t ≤ s < 1",
        ),
        KindInfo(
            "trigflow",
            "Lu & Song 2024 (sCM, TrigFlow)",
            "F(x/σ_d, τ), τ ∈ [0, π/2]",
            "f(x, τ) = cos τ x − sin τ σ_d F(x/σ_d, τ) = X^TF_{τ→0}(x)",
            "t = 0 only (s = 2τ/π)",
        ),
    )
}

#: The convention keywords of each kind, with their defaults; both
#: :func:`~cmverify.flowmaps.exact` and :func:`~cmverify.flowmaps.as_flow_map` take them.
CONVENTIONS: dict[str, dict[str, Any]] = {
    "map": {},
    "consistency": {},
    "meanflow": {"time_inputs": "r,t"},
    "ayf": {},
    "boffi": {},
    "shortcut": {"dyadic": False, "d_min": 1.0 / 128},
    "ctm": {},
    "trigflow": {"sigma_data": 0.5},
}
#: Keywords only :func:`~cmverify.flowmaps.exact` takes (every kind).
EXACT_ONLY = {"rtol": 1e-10}
#: Keywords only :func:`~cmverify.flowmaps.as_flow_map` takes, per kind.
WRAP_ONLY: dict[str, dict[str, Any]] = {"ctm": {"interpolant": None}}

#: MeanFlow's two ways of feeding the times: ``(r, t)`` or ``(t, h = t − r)``.
TIME_INPUTS = ("r,t", "t,t-r")
#: Tolerances of the dyadic checks of the shortcut kind: ``|d − 2^-k|`` and ``|τ − m d|``.
#: The pair is snapped to the grid within them, so ``X`` is computed at times up to the
#: tolerance away from the ones asked, which moves it by about ``tolerance · |v|``: 1e-12
#: is far above the rounding of ``1 − s`` and ``s − t`` (≤ 2.2e-16) and below the
#: reference's 1e-10 (a τ tolerance of 1e-9 silently moved ``X`` by ~1e-9).
DYADIC_TOL = 1e-12
GRID_TOL = 1e-12


def check_kind(kind: object) -> str:
    """``kind`` if it is one of :data:`KINDS`; ``ValueError`` listing them otherwise."""
    if not isinstance(kind, str):
        raise TypeError(f"kind must be a string (one of {', '.join(KINDS)}), got {kind!r}")
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    return kind


def _time_inputs(value: object) -> str:
    if not isinstance(value, str) or value.replace(" ", "") not in TIME_INPUTS:
        raise ValueError(
            f"time_inputs must be one of {', '.join(repr(v) for v in TIME_INPUTS)}, got {value!r}"
        )
    return value.replace(" ", "")


def _dyadic(value: object) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"dyadic must be True or False, got {value!r}")
    return bool(value)


def _d_min(value: object) -> float:
    d_min = as_real(value, "d_min")
    k = math.log2(1.0 / d_min) if 0 < d_min <= 1 else -1.0
    if not (k >= 0 and abs(k - round(k)) <= DYADIC_TOL):
        raise ValueError(f"d_min must be 2^-K for an integer K ≥ 0 (e.g. 1/128), got {num(d_min)}")
    return float(2.0 ** -round(k))


def as_sigma_data(value: object) -> float:
    sigma_data = as_real(value, "sigma_data")
    if not (math.isfinite(sigma_data) and sigma_data > 0):
        raise ValueError(f"sigma_data must be a finite number > 0, got {num(sigma_data)}")
    return sigma_data


def _interpolant(value: object) -> Interpolant | None:
    if value is None or isinstance(value, Interpolant):
        return value
    if isinstance(value, str):
        return interpolants.by_name(value)
    raise TypeError(f"interpolant must be an Interpolant or its name, got {type(value).__name__}")


_VALIDATORS = {
    "time_inputs": _time_inputs,
    "dyadic": _dyadic,
    "d_min": _d_min,
    "sigma_data": as_sigma_data,
    "interpolant": _interpolant,
    "rtol": lambda value: value,  # ReferenceFlow validates it
}


def resolve_convention(kind: str, given: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """The full convention of ``kind``: defaults overridden by ``given``, each validated.

    ``extra`` holds the keywords (with defaults) the caller accepts beyond the kind's own
    (``rtol`` for exact networks, ``interpolant`` for a wrapped CTM network). An unknown
    keyword is a ``ValueError`` listing the valid ones.
    """
    defaults = {**CONVENTIONS[kind], **extra}
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        valid = ", ".join(defaults) or "none"
        raise ValueError(
            f"unknown convention keyword {unknown[0]!r} for the {kind} kind; valid: {valid}"
        )
    return {key: _VALIDATORS[key](given.get(key, default)) for key, default in defaults.items()}


def as_network_times(
    value: object, n: int, name: str, lo: float = 0.0, hi: float = 1.0
) -> np.ndarray:
    """A time argument (a float or an array of shape ``(n,)``, finite, in ``[lo, hi]``) as a
    fresh float64 array of shape ``(n,)``; ``ValueError``/``TypeError`` naming ``name``."""
    refuse_bool(value, name)
    array = as_float_array(value, name)
    if array.ndim > 1:
        raise ValueError(f"{name} must be a float or a 1-d array, got shape {array.shape}")
    if array.ndim == 1 and array.shape[0] != n:
        raise ValueError(f"{name} has {array.shape[0]} entries but x has {n} points")
    outside = (array < lo) | (array > hi)
    if np.any(outside):
        first = float(np.ravel(array)[np.ravel(outside)][0])
        bounds = f"be ≥ {lo:g}" if hi == math.inf else f"lie in [{lo:g}, {hi:g}]"
        raise ValueError(f"{name} must {bounds}, got {num(first)}")
    return np.array(np.broadcast_to(array, (n,)), dtype=np.float64)


def num(value: object) -> str:
    """A number for a message: the shortest repr of the float (``0.3``, not
    ``np.float64(0.3)``)."""
    return repr(float(value))


def first_row(mask: np.ndarray) -> int:
    """The index of the first ``True`` of ``mask``."""
    return int(np.flatnonzero(mask)[0])


def check_dyadic(tau: np.ndarray, d: np.ndarray, d_min: float) -> tuple[np.ndarray, np.ndarray]:
    """Shortcut models' grid: each nonzero ``d`` is ``2^-k``, ``k = 0 … log2(1/d_min)``
    (to :data:`DYADIC_TOL`), and ``τ`` a multiple of ``d`` (to :data:`GRID_TOL`); ``d = 0``
    (the identity, ``s = t``) is always accepted. ``ValueError`` saying which fails.

    Returns ``(τ, d)`` snapped to the grid (``d = 2^-k`` and ``τ = m d`` exactly), so that
    the network sees the values it was trained on, not ``s − t`` with its rounding."""
    top = round(math.log2(1.0 / d_min))
    nonzero = d > 0
    with np.errstate(divide="ignore"):
        k = np.round(-np.log2(np.where(nonzero, d, 1.0)))
    dyadic = (k >= 0) & (k <= top) & (np.abs(d - np.exp2(-k)) <= DYADIC_TOL)
    bad = nonzero & ~dyadic
    if np.any(bad):
        i = first_row(bad)
        raise ValueError(
            f"the shortcut kind with dyadic=True needs d = s − t = 2^-k, k = 0 … {top} "
            f"(1 … {d_min:g}), or 0; got d = {num(d[i])} (row {i})"
        )
    step = np.where(nonzero, d, 1.0)
    off = np.abs(tau - np.round(tau / step) * step)
    bad = nonzero & (off > GRID_TOL)
    if np.any(bad):
        i = first_row(bad)
        raise ValueError(
            f"the shortcut kind with dyadic=True needs τ = 1 − s on the d-grid (a multiple "
            f"of d = s − t); got τ = {num(tau[i])}, d = {num(d[i])} (row {i})"
        )
    exact_d = np.where(nonzero, np.exp2(-k), 0.0)
    return np.where(nonzero, np.round(tau / step) * exact_d, tau), exact_d
