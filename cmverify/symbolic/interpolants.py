"""Named interpolants ``x_t = α_t x0 + σ_t x1`` (symbolic layer), like :mod:`cmverify.mixtures`.

=============  ================  =========================  ==========================================
name           ``α_t``           ``σ_t``                    note
=============  ================  =========================  ==========================================
``linear``     ``1 − t``         ``t``                      the default; velocity ``E[x1 − x0 | x_t]``
``trig``       ``cos(πt/2)``     ``sin(πt/2)``              variance preserving: ``α² + σ² = 1``
``quadratic``  ``(1 − t)²``      ``1 − (1 − t)²``
``cos_linear`` ``cos(πt/2)``     ``t``
``sqrt``       ``1 − t``         ``sqrt(1 − (1 − t)²)``     singular: ``σ̇ = ∞`` at ``t = 0``
=============  ================  =========================  ==========================================

Building an interpolant runs SymPy (boundary proofs, derivatives, positivity), so each
is built once, on first use, and shared: every call returns the same (immutable)
:class:`~cmverify.symbolic.Interpolant`, and ``linear()``, ``trig()`` are
:meth:`Interpolant.linear <cmverify.symbolic.Interpolant.linear>` and
:meth:`~cmverify.symbolic.Interpolant.trig` themselves. :func:`by_name` accepts
underscores or dashes (``cos_linear``, ``cos-linear``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import sympy as sp

from ._interpolant import Interpolant

__all__ = [
    "SINGULAR",
    "by_name",
    "cos_linear",
    "linear",
    "names",
    "quadratic",
    "sqrt",
    "trig",
]


def _time() -> sp.Symbol:
    return sp.Symbol("t", real=True)


def linear() -> Interpolant:
    """``α_t = 1 − t``, ``σ_t = t`` (:meth:`Interpolant.linear`)."""
    return Interpolant.linear()


def trig() -> Interpolant:
    """``α_t = cos(πt/2)``, ``σ_t = sin(πt/2)`` (:meth:`Interpolant.trig`)."""
    return Interpolant.trig()


@functools.cache
def quadratic() -> Interpolant:
    """``α_t = (1 − t)²``, ``σ_t = 1 − (1 − t)²``."""
    t = _time()
    return Interpolant.from_sympy((1 - t) ** 2, 1 - (1 - t) ** 2, t, name="quadratic")


@functools.cache
def cos_linear() -> Interpolant:
    """``α_t = cos(πt/2)``, ``σ_t = t``."""
    t = _time()
    return Interpolant.from_sympy(sp.cos(sp.pi * t / 2), t, t, name="cos_linear")


@functools.cache
def sqrt() -> Interpolant:
    """``α_t = 1 − t``, ``σ_t = sqrt(1 − (1 − t)²)``: the singular one (``σ̇`` is infinite
    at ``t = 0``, but ``σ σ̇ = 1 − t`` is finite)."""
    t = _time()
    return Interpolant.from_sympy(1 - t, sp.sqrt(1 - (1 - t) ** 2), t, name="sqrt")


#: Name → constructor, in catalogue order (simplest first).
_NAMED: dict[str, Callable[[], Interpolant]] = {
    "linear": linear,
    "trig": trig,
    "quadratic": quadratic,
    "cos_linear": cos_linear,
    "sqrt": sqrt,
}

#: Names of the interpolants whose ``α̇`` or ``σ̇`` is infinite somewhere on ``[0, 1]``.
SINGULAR: frozenset[str] = frozenset({"sqrt"})


def names(*, include_singular: bool = True) -> list[str]:
    """Names accepted by :func:`by_name`, in catalogue order (``linear`` first).

    With ``include_singular=False`` only those whose ``α̇`` and ``σ̇`` are finite on all
    of ``[0, 1]`` (not in :data:`SINGULAR`).
    """
    return [name for name in _NAMED if include_singular or name not in SINGULAR]


def by_name(name: str) -> Interpolant:
    """The named interpolant (built on first use, then shared); dashes and underscores
    are interchangeable, case and surrounding spaces are ignored.

    ``ValueError`` listing the known names for an unknown one.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {type(name).__name__}")
    key = name.strip().lower().replace("-", "_")
    if key not in _NAMED:
        raise ValueError(f"unknown interpolant {name!r}; known: {', '.join(names())}")
    return _NAMED[key]()
