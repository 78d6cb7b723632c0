"""``assert_order``: a convergence order asserted the way the claims measure theirs.

import math

from cmverify.reference import euler_step
from cmverify.testing import assert_order

def test_euler_step_is_second_order_locally():
    v = lambda t, x: x  # dx/dt = x: X_{s→s−Δ}(1) = exp(−Δ)
    assert_order(lambda h: abs(euler_step(v, 1.0, h, 1.0) - math.exp(-h)), 2)
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence

import numpy as np

from .._validation import as_float_array, as_real
from ..reference import OrderFit, fit_order, refine_until_asymptotic

__all__ = ["assert_order"]

#: The first step size when ``deltas`` is not given; halved from there.
LARGEST = 1 / 8


def _error(error_at: Callable[[float], float], delta: float) -> float:
    """``error_at(delta)`` as a float; a clear error naming ``delta`` unless it is one
    finite real number > 0 (an order is a slope of ``log error``)."""
    value = error_at(delta)
    if isinstance(value, bool | str | bytes) or value is None:
        raise TypeError(
            f"error_at({delta:.6g}) must return a real number, got {type(value).__name__}"
        )
    if isinstance(value, numbers.Real):  # float, int, NumPy scalars, Fraction
        error = float(value)
    else:
        array = np.asarray(value)
        if array.shape != () or array.dtype.kind not in "iuf":
            what = f"shape {array.shape}" if array.shape != () else f"dtype {array.dtype}"
            raise TypeError(f"error_at({delta:.6g}) must return one real number, got {what}")
        error = float(array)
    if not (math.isfinite(error) and error > 0):
        raise ValueError(
            f"error_at({delta:.6g}) returned {error!r}; an order needs a finite error > 0 "
            "at every Δ (pass deltas above where it reaches 0 or rounding)"
        )
    return error


def _table(fit: OrderFit, expected: float, tol: float) -> str:
    """The failure report: the fit, then one row per Δ (``*``: in the fitted range)."""
    lo, hi = fit.range_used
    lines = [
        f"expected order {expected:g} ± {tol:g}, fitted {fit.describe()} "
        f"(error ≈ {fit.constant:.3g} Δ^{fit.order:.3f})",
        f"  {'Δ':>12}  {'error':>12}  {'local order':>11}",
    ]
    for i, (delta, error) in enumerate(zip(fit.deltas, fit.errors, strict=True)):
        local = f"{fit.local_orders[i - 1]:11.3f}" if i else " " * 11
        mark = "*" if lo <= delta <= hi else " "
        lines.append(f"{mark} {delta:12.6g}  {error:12.6g}  {local}".rstrip())
    lines.append("(* the step sizes fitted; local order: slope from the row above)")
    return "\n".join(lines)


def assert_order(
    error_at: Callable[[float], float],
    expected_order: float,
    *,
    deltas: Sequence[float] | None = None,
    tol: float = 0.1,
) -> OrderFit:
    """Assert that ``error_at(Δ) ≈ C Δ^p`` with ``|p − expected_order| ≤ tol``.

    ``p`` is the least-squares slope of ``log error`` against ``log Δ`` over the smallest
    step sizes (:func:`cmverify.reference.fit_order`). With ``deltas=None`` the step
    sizes are ``1/8, 1/16, …`` (:func:`cmverify.reference.refine_until_asymptotic`: at
    least 6, at most 14 of them, until the last three local orders agree within 0.02) and
    the fit uses the last four; with ``deltas`` (at least three, positive, distinct) the
    fit uses all but the largest two (at least three). Pass ``deltas`` when the error
    reaches rounding before ``Δ = 1/256`` (a high-order method) or when ``Δ`` must be
    the inverse of an integer step count.

    Args:
        error_at: ``Δ ↦ error``, one finite real number ``> 0`` per step size.
        expected_order: the order ``p`` predicted (finite, ``> 0``).
        deltas: the step sizes to measure, or ``None`` to refine from ``1/8``.
        tol: the largest accepted ``|p − expected_order|`` (``> 0``).

    Returns:
        The :class:`~cmverify.reference.OrderFit` (order, constant, range, every Δ and
        error, local orders).

    Raises:
        AssertionError: the fitted order is off by more than ``tol``; the message has
            the table of Δ, error and local order, and the fitted order and range.
        TypeError, ValueError: bad arguments, or ``error_at`` returned something other
            than one finite real number ``> 0`` (the message names that Δ).
    """
    if not callable(error_at):
        raise TypeError(f"error_at must be callable (Δ ↦ error), got {type(error_at).__name__}")
    expected = as_real(expected_order, "expected_order")
    if not (math.isfinite(expected) and expected > 0):
        raise ValueError(f"expected_order must be finite and > 0, got {expected_order!r}")
    tolerance = as_real(tol, "tol")
    if not (math.isfinite(tolerance) and tolerance > 0):
        raise ValueError(f"tol must be finite and > 0, got {tol!r}")
    if deltas is None:
        fit = refine_until_asymptotic(lambda delta: _error(error_at, delta), LARGEST)
    else:
        steps = as_float_array(deltas, "deltas")
        if steps.ndim != 1 or steps.size < 3:
            raise ValueError(
                f"deltas must be a 1-d sequence of at least 3 step sizes, got {steps.shape}"
            )
        if np.any(steps <= 0):
            raise ValueError(f"deltas must be > 0, got {float(steps[steps <= 0][0])!r}")
        if np.unique(steps).size != steps.size:
            raise ValueError(f"deltas must be distinct, got {steps.tolist()}")
        fit = fit_order(steps, [_error(error_at, float(delta)) for delta in steps])
    if not abs(fit.order - expected) <= tolerance:
        raise AssertionError("convergence order off\n" + _table(fit, expected, tolerance))
    return fit
