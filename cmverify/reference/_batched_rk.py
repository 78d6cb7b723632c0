"""Batched DOP853 with per-trajectory step-size control (reference layer).

``scipy.integrate.solve_ivp`` controls one error norm over the whole state vector: the
RMS over all components. Batching ``B`` trajectories of dimension ``d`` into one state
therefore bounds each trajectory's local error only by about ``sqrt(B)`` times the
tolerance, and one hard trajectory forces tiny steps on all the easy ones.

This module runs Dormand and Prince's 8(5,3) method — SciPy's DOP853 tableau, imported
from SciPy, with SciPy's step-size rule (Hairer, Nørsett & Wanner, *Solving ODEs I*,
II.4 and II.10) — on many independent trajectories at once, each with **its own** time,
step size, error norm and accept/reject decision. Every stage evaluates the right-hand
side once on all still-active trajectories, each at its own time, so the batch costs one
vectorized call per stage while every trajectory takes exactly the steps it would take
if solved alone.

Error norm of one trajectory (dimension ``d``), as in SciPy's DOP853:
``sc = atol + rtol · max(|y|, |y_new|)``, ``e5 = Σ_s E5_s K_s / sc``,
``e3 = Σ_s E3_s K_s / sc``, ``err = |h| · |e5|² / sqrt(d · (|e5|² + 0.01 |e3|²))``;
a step is accepted when ``err < 1``, and ``h`` is multiplied by
``clip(0.9 err^{-1/8}, 0.2, 10)`` (at most 1 right after a rejection).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

try:
    from scipy.integrate._ivp import dop853_coefficients as _dop853
except ImportError as exc:  # pragma: no cover - only with a SciPy that moved the module
    raise ImportError(
        "cmverify needs SciPy's DOP853 tableau (scipy.integrate._ivp.dop853_coefficients)"
    ) from exc

from .._memory import keep_freed_memory
from .._rows import finite_rows, row_max_abs, row_squares

__all__ = ["BatchedSolution", "SolverFailure", "solve_batched"]

_N_STAGES = _dop853.N_STAGES
_A = _dop853.A[:_N_STAGES, :_N_STAGES]
_B = _dop853.B
_C = _dop853.C[:_N_STAGES]
_E3 = _dop853.E3
_E5 = _dop853.E5
_ORDER = 8
_ERROR_EXPONENT = -1.0 / _ORDER  # the error estimate is of order 7 in h
_SAFETY, _MIN_FACTOR, _MAX_FACTOR = 0.9, 0.2, 10.0

#: A right-hand side ``f(t, y)`` with ``t`` of shape ``(m,)`` and ``y`` of shape ``(m, d)``.
RightHandSide = Callable[[np.ndarray, np.ndarray], np.ndarray]
#: ``step_control(t, h, rows) -> (h', atol factor)`` (:func:`solve_batched`).
StepControl = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


class SolverFailure(RuntimeError):
    """Some trajectories could not be integrated; ``indices`` says which, ``reasons`` why."""

    def __init__(self, message: str, indices: np.ndarray, reasons: list[str]) -> None:
        super().__init__(message)
        self.indices = indices
        self.reasons = reasons

    def __reduce__(self):
        # picklable with its fields (a worker process raises it to the caller)
        return type(self), (str(self), self.indices, self.reasons)

    @classmethod
    def of(cls, failures: dict[int, str], n: int) -> SolverFailure:
        """The failure of the trajectories ``failures`` (index → why) out of ``n``."""
        indices = np.array(sorted(failures), dtype=np.int64)
        reasons = [failures[int(i)] for i in indices]
        shown = "; ".join(f"#{i}: {failures[int(i)]}" for i in indices[:5])
        more = f" (and {len(indices) - 5} more)" if len(indices) > 5 else ""
        return cls(
            f"DOP853 failed on {len(indices)} of {n} trajectories: {shown}{more}", indices, reasons
        )


@dataclass(frozen=True)
class BatchedSolution:
    """Result of :func:`solve_batched`.

    Attributes:
        y: final states, shape ``(n, d)``.
        n_accepted, n_rejected: steps per trajectory, shape ``(n,)``.
        n_calls: batched right-hand-side calls (each on the still-active trajectories).
        n_row_evaluations: right-hand-side evaluations summed over trajectories.
    """

    y: np.ndarray
    n_accepted: np.ndarray
    n_rejected: np.ndarray
    n_calls: int
    n_row_evaluations: int


class _Counter:
    """Counts the calls of ``fun`` and the rows evaluated; passes the batch indices of the
    rows as a third argument when ``with_rows`` (see :func:`solve_batched`)."""

    def __init__(self, fun: RightHandSide, with_rows: bool) -> None:
        self.fun = fun
        self.with_rows = with_rows
        self.calls = 0
        self.rows = 0

    def __call__(self, t: np.ndarray, y: np.ndarray, rows: np.ndarray) -> np.ndarray:
        self.calls += 1
        self.rows += y.shape[0]
        return self.fun(t, y, rows) if self.with_rows else self.fun(t, y)


def _evaluate_finite(fun: _Counter, t: np.ndarray, y: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``fun(t, y)`` on the rows whose state is finite; NaN on the others (a stage that
    already went non-finite is not passed on to the user's right-hand side)."""
    ok = finite_rows(y)
    if ok.all():
        return fun(t, y, rows)
    out = np.full_like(y, np.nan)
    if ok.any():
        out[ok] = fun(t[ok], y[ok], rows[ok])
    return out


def _magnitude(mag: np.ndarray, blocks: tuple[slice, ...]) -> np.ndarray:
    """``mag`` (``(m, d)``, absolute values) with each block's columns replaced by the
    block's maximum per row (in place; see ``scale_blocks`` of :func:`solve_batched`)."""
    for block in blocks:
        mag[:, block] = np.max(mag[:, block], axis=1, keepdims=True)
    return mag


def _rms(z: np.ndarray) -> np.ndarray:
    return np.sqrt(row_squares(z) / z.shape[1])


def _initial_step(
    fun: _Counter,
    rows: np.ndarray,
    t0: np.ndarray,
    y0: np.ndarray,
    f0: np.ndarray,
    direction: np.ndarray,
    length: np.ndarray,
    rtol: np.ndarray,
    atol: np.ndarray,
    scale_blocks: tuple[slice, ...] = (),
) -> np.ndarray:
    """Hairer's starting step, per trajectory (one extra right-hand-side call); ``rtol``
    and ``atol`` of shape ``(m, 1)``."""
    # Far out (|y| ~ 1e300) the norms overflow to inf: the rules below then give h = 0
    # or NaN, replaced by the small fallback at the end, silently.
    quiet = {"over": "ignore", "divide": "ignore", "invalid": "ignore"}
    with np.errstate(**quiet):
        scale = atol + _magnitude(np.abs(y0), scale_blocks) * rtol
        d0, d1 = _rms(y0 / scale), _rms(f0 / scale)
        h0 = np.where((d0 < 1e-5) | (d1 < 1e-5), 1e-6, 0.01 * d0 / d1)
        h0 = np.minimum(h0, length)
        y1 = y0 + (h0 * direction)[:, None] * f0
    f1 = fun(t0 + h0 * direction, y1, rows)
    with np.errstate(**quiet):
        d2 = _rms((f1 - f0) / scale) / h0
        dmax = np.maximum(d1, d2)
        h1 = np.where(dmax <= 1e-15, np.maximum(1e-6, h0 * 1e-3), (0.01 / dmax) ** (1 / _ORDER))
        h = np.minimum(np.minimum(100 * h0, h1), length)
    # A non-finite f1 (the right-hand side failed near the start) leaves h undefined:
    # start small and let the error control and the failure report deal with it.
    return np.where(np.isfinite(h) & (h > 0), h, 1e-6 * length)


def _floored(atol: np.ndarray, y: np.ndarray, floor: float) -> np.ndarray:
    """``max(atol, floor · min(1, max_j |y_j|))`` per row (``atol`` ``(m, 1)``, ``y`` ``(m, d)``)."""
    if not floor:
        return atol
    return np.maximum(atol, floor * np.minimum(1.0, row_max_abs(y))[:, None])


def solve_batched(
    fun: RightHandSide,
    y0: np.ndarray,
    t0: np.ndarray,
    t1: np.ndarray,
    *,
    rtol: float | np.ndarray,
    atol: float | np.ndarray,
    max_steps: int | np.ndarray = 100_000,
    max_step: float | np.ndarray = np.inf,
    dtype: type = np.float64,
    first_step_factor: float | np.ndarray = 1.0,
    with_rows: bool = False,
    scale_blocks: tuple[slice, ...] = (),
    step_control: StepControl | None = None,
    atol_floor: float = 0.0,
) -> BatchedSolution:
    """Integrate ``dy/dt = fun(t, y)`` from ``t0[i]`` to ``t1[i]`` for every row ``i``.

    Arguments:
        fun: vectorized right-hand side, called with per-row times ``(m,)`` and states
            ``(m, d)`` for the ``m`` still-active trajectories.
        y0: initial states, shape ``(n, d)``.
        t0, t1: start and end times, shape ``(n,)`` (either direction; equal means no
            integration).
        rtol, atol: tolerances of each trajectory's local error (norm above): one
            number, or one per trajectory (shape ``(n,)``).
        max_steps: accepted plus rejected steps allowed per trajectory (one number or
            one per trajectory).
        max_step: the longest step in time: one number, or one per trajectory (shape
            ``(n,)``).
        first_step_factor: multiplies Hairer's starting step (≤ 1: a shorter first step,
            so that solves at different levels of refinement do not share it); one number
            or one per trajectory.

    Per-trajectory tolerances let one call solve the same trajectories at several
    refinement levels at once (stacked rows): each row's arithmetic is that of a solve of
    its own, and the batch pays one right-hand-side call per stage for all of them.
        dtype: the floating type of the state and time (``np.float64``; ``np.longdouble``
            for extended-precision verification solves, see :mod:`cmverify.reference._extended`).
        with_rows: call ``fun(t, y, rows)`` with ``rows`` the indices (into ``y0``) of
            the trajectories evaluated, shape ``(m,)``: for right-hand sides with
            per-trajectory parameters.
        step_control: ``step_control(t, h, rows) -> (h', f)``: the signed steps ``h``
            from the active rows' times ``t`` (``rows``: their indices) shortened
            (``|h'| ≤ |h|``) before they are taken, and a factor ``f`` on ``atol`` in the
            step's error norm; shapes ``(m,)`` (:mod:`cmverify.reference._step_control`).
        atol_floor: each step's ``atol`` is at least ``atol_floor · min(1, max_j |y_j|)``
            over the row's state at the step's start, before ``step_control``'s factor
            (which accounts for the stretch to the end): float64 rounds a component by about
            eps times the row's size, not by an absolute amount (a constant floor 1e-14
            had made both levels of the certificate solve states of size 1e-6 at the same
            absolute tolerance, and their difference missed errors 2.3 to 190 times the
            target, found in review).
        scale_blocks: blocks of columns measured as one quantity: within a block every
            component's error is scaled by ``atol + rtol · max_j |y_j|`` over the block
            (not by its own ``|y_j|``). For a Jacobian ``J`` in the state, whose contract
            is ``‖ΔJ‖ ≤ atol + rtol ‖J‖``: an entry that stays at rounding level while
            ``J`` grows to 1e10 would otherwise demand absolute accuracy 1e-10 of a
            quantity that carries errors of ``1e-16 ‖J‖``, and the step size collapse.

    Raises :class:`SolverFailure` naming the trajectories that failed (step size below
    ``10 × spacing(t)``, a non-finite right-hand side that no step reduction avoids, or
    ``max_steps`` exceeded) and why.
    """
    keep_freed_memory()
    y0 = np.asarray(y0, dtype=dtype)
    n, d = y0.shape
    t = np.array(t0, dtype=dtype)
    t_end = np.asarray(t1, dtype=dtype)
    y = y0.copy()
    direction = np.sign(t_end - t)
    n_acc = np.zeros(n, dtype=np.int64)
    n_rej = np.zeros(n, dtype=np.int64)
    counted = _Counter(fun, with_rows)
    cap = np.broadcast_to(np.asarray(max_step, dtype=dtype), (n,))
    rtol_rows = np.broadcast_to(np.asarray(rtol, dtype=dtype), (n,))[:, None]
    atol_rows = np.broadcast_to(np.asarray(atol, dtype=dtype), (n,))[:, None]
    step_budget = np.broadcast_to(np.asarray(max_steps, dtype=np.int64), (n,))
    first_factor = np.broadcast_to(np.asarray(first_step_factor, dtype=dtype), (n,))
    failures: dict[int, str] = {}

    active = np.flatnonzero(direction != 0)
    if active.size == 0:
        return BatchedSolution(y, n_acc, n_rej, 0, 0)
    f = np.empty_like(y)
    f[active] = counted(t[active], y[active], active)
    bad = active[~np.all(np.isfinite(f[active]), axis=1)]
    for i in bad:
        failures[int(i)] = f"right-hand side is not finite at the start (t = {t[i]!r})"
    active = np.setdiff1d(active, bad)
    h_abs = np.zeros(n, dtype=dtype)
    just_rejected = np.zeros(n, dtype=bool)
    saw_nonfinite = np.zeros(n, dtype=bool)
    if active.size:
        h_abs[active] = first_factor[active] * _initial_step(
            counted,
            active,
            t[active],
            y[active],
            f[active],
            direction[active],
            np.abs(t_end[active] - t[active]),
            rtol_rows[active],
            _floored(atol_rows[active], y[active], atol_floor),
            scale_blocks,
        )

    k = np.empty((_N_STAGES + 1, n, d), dtype=dtype)
    while active.size:
        ta, ya, da = t[active], y[active], direction[active]
        min_step = 10 * np.abs(np.nextafter(ta, da * np.inf) - ta)
        too_small = h_abs[active] < min_step
        if np.any(too_small):
            for i in active[too_small]:
                cause = " after non-finite right-hand side values" if saw_nonfinite[i] else ""
                failures[int(i)] = f"step size fell below 10 × spacing(t) at t = {t[i]!r}{cause}"
            active = active[~too_small]
            continue
        h = np.minimum(h_abs[active], cap[active]) * da
        t_new = ta + h
        overshoot = da * (t_new - t_end[active]) > 0
        t_new[overshoot] = t_end[active][overshoot]
        h = t_new - ta
        atol_now = _floored(atol_rows[active], ya, atol_floor)  # then the control's factor
        if step_control is not None:  # shortened steps end inside; the others where they were
            limited, factor = step_control(ta, h, active)
            t_new = np.where(limited != h, ta + limited, t_new)
            h = t_new - ta
            atol_now = atol_now * factor[:, None]

        ka = k[:, : active.size]
        ka[0] = f[active]
        for s in range(1, _N_STAGES):
            dy = np.tensordot(_A[s, :s], ka[:s], axes=(0, 0)) * h[:, None]
            ka[s] = _evaluate_finite(counted, ta + _C[s] * h, ya + dy, active)
        y_new = ya + h[:, None] * np.tensordot(_B, ka[:_N_STAGES], axes=(0, 0))
        f_new = _evaluate_finite(counted, t_new, y_new, active)
        ka[_N_STAGES] = f_new

        magnitude = _magnitude(np.maximum(np.abs(ya), np.abs(y_new)), scale_blocks)
        # never 0: a state at 0 with atol ~1e-300 (times the control's factor) underflowed,
        # and 0/0 rejected every step (review)
        scale = np.maximum(atol_now + magnitude * rtol_rows[active], np.finfo(dtype).tiny)
        e5 = np.tensordot(_E5, ka, axes=(0, 0)) / scale
        e3 = np.tensordot(_E3, ka, axes=(0, 0)) / scale
        e5_2 = row_squares(e5)
        e3_2 = row_squares(e3)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            err = np.where(
                (e5_2 == 0) & (e3_2 == 0), 0.0, np.abs(h) * e5_2 / np.sqrt((e5_2 + 0.01 * e3_2) * d)
            )
            finite = finite_rows(y_new) & finite_rows(f_new)
            err = np.where(finite & np.isfinite(err), err, np.inf)
            saw_nonfinite[active[~finite]] = True
            factor = np.where(err == 0, _MAX_FACTOR, _SAFETY * err**_ERROR_EXPONENT)

        accept = err < 1
        acc, rej = active[accept], active[~accept]
        grow = np.minimum(_MAX_FACTOR, factor[accept])
        grow = np.where(just_rejected[acc], np.minimum(1.0, grow), grow)
        h_abs[acc] = np.abs(h[accept]) * grow
        t[acc], y[acc], f[acc] = t_new[accept], y_new[accept], f_new[accept]
        n_acc[acc] += 1
        just_rejected[acc] = False
        h_abs[rej] = np.abs(h[~accept]) * np.maximum(_MIN_FACTOR, factor[~accept])
        n_rej[rej] += 1
        just_rejected[rej] = True

        done = t[active] == t_end[active]
        over_budget = (n_acc[active] + n_rej[active] >= step_budget[active]) & ~done
        for i in active[over_budget]:
            failures[int(i)] = (
                f"more than max_steps = {step_budget[i]} steps (stopped at t = {t[i]!r})"
            )
        active = active[~done & ~over_budget]

    if failures:
        raise SolverFailure.of(failures, n)
    return BatchedSolution(y, n_acc, n_rej, counted.calls, counted.rows)
