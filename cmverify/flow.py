"""Reference probability-flow maps ``X_{s→t}`` of mixture paths by ODE (reference layer).

``X_{s→t}(x)`` solves ``dx/dτ = v(τ, x)`` from ``x`` at ``τ = s`` to ``τ = t`` with the
closed-form velocity of :class:`~cmverify.path.MixturePath`; the consistency function is
``f*(t, x) = X_{t→0}(x)``. Every trajectory is integrated by the batched DOP853 of
:mod:`cmverify.batched_rk` with its own step-size control, so the tolerance holds per
trajectory, not for the RMS over a batch.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ._threads import limit_threads
from ._validation import as_float_array, as_points, as_times
from .batched_rk import SolverFailure, solve_batched
from .path import MixturePath

__all__ = ["AccuracyWarning", "FlowSolution", "ReferenceFlow", "SolverFailure"]

#: The smallest target accuracy offered: its local tolerance (× LOCAL_FACTOR) is 1e-14.
MIN_RTOL = 1e-12
#: Each step's local error is held to the target accuracy times this factor (the *fine*
#: solve, whose result is returned).
LOCAL_FACTOR = 1e-2
#: The *check* solve runs at local tolerances equal to the target (LOCAL_FACTOR times
#: looser than the fine solve) with steps up to CHECK_STEP_FACTOR × ``max_step``: every
#: step differs from the fine solve's, so the two solves' errors cannot coincide.
CHECK_STEP_FACTOR = 2.0
#: A trajectory whose check fails is re-solved, one level after the other, with the fine
#: solve's (local tolerance, step cap) multiplied by these factors; the previous solve
#: then serves as the check. The local tolerance never goes below MIN_LOCAL_RTOL, so the
#: last level shortens the steps far below what that tolerance would choose (DOP853's
#: local error falls like h⁹): at the floor, two solves with the same tolerance take the
#: same steps where the tolerance governs and would make the same errors there —
#: measured on an 8-d trajectory amplifying local errors by 7e4, solves at 1e-14 with
#: steps ≤ 1/64 and ≤ 1/128 agreed to 9e-12 while both were 1e-10 off.
REFINEMENTS = ((1e-2, 0.5), (1e-4, 1 / 16))
#: The certifying solve (``certify=True``) runs at the local tolerances divided by this
#: factor, with a quarter of the step cap …
CERTIFY_FACTOR = 100.0
#: … and no solve runs below this local tolerance (float64 rounding).
MIN_LOCAL_RTOL = 1e-14
#: Default cap on the step size. DOP853's embedded error estimate can be fooled by a
#: long step: on random Gaussians at a local tolerance of 1e-10, uncapped steps (as in
#: solve_ivp) left single trajectories 3e-7 off; capped at 1/32, 7e-11. The cap also
#: saves most rejected steps on eight_gaussians (benchmarks/RESULTS.md).
DEFAULT_MAX_STEP = 1.0 / 32


class AccuracyWarning(UserWarning):
    """Some trajectories could not be shown to meet the target accuracy.

    Raised (as a warning) by :meth:`ReferenceFlow.solve` when, after the refinements, a
    trajectory's error estimate still exceeds ``atol + rtol |X|``: the flow amplifies
    perturbations along it so much (near a separatrix between modes) that float64 cannot
    resolve it to the target. ``FlowSolution.unresolved`` lists them.
    """


@dataclass(frozen=True)
class FlowSolution:
    """``X_{s→t}(x)`` with its cost and its per-trajectory accuracy check.

    Attributes:
        x: the mapped points, shape ``(n, d)``.
        n_accepted, n_rejected: DOP853 steps per trajectory of the solve whose result is
            returned, shape ``(n,)``.
        n_calls: batched velocity evaluations of all solves (fine, check, refinements,
            certificate); ``n_row_evaluations`` their total rows.
        error_estimate: per trajectory ``|X − X_check|`` (Euclidean), where ``X_check``
            is a solve with looser tolerances and longer steps (or, for refined
            trajectories, the previous fine solve; with ``certify=True``, the larger of
            that and ``|X − X_cert|``), shape ``(n,)``. It over-estimates the error of
            ``x``: measured on 10⁶ trajectories, the true error never exceeded it.
        target: per trajectory ``atol + rtol |X|``, shape ``(n,)``.
        n_refinements: how many times each trajectory was re-solved, shape ``(n,)``.
        unresolved: indices of the trajectories whose estimate still exceeds the target
            after the refinements (empty unless an :class:`AccuracyWarning` was issued).
        certificate: how the error was bounded, in words.
    """

    x: np.ndarray
    n_accepted: np.ndarray
    n_rejected: np.ndarray
    n_calls: int
    n_row_evaluations: int
    error_estimate: np.ndarray
    target: np.ndarray
    n_refinements: np.ndarray
    unresolved: np.ndarray
    certificate: str


def _check_tolerance(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    return float(value)


class ReferenceFlow:
    """Exact flow maps of a :class:`MixturePath`, accurate per trajectory.

    Arguments:
        path: the probability path whose velocity defines the flow.
        rtol: target accuracy of each trajectory, relative (≥ 1e-12).
        atol: absolute target, default ``rtol``. Each returned trajectory satisfies
            ``|X − X_exact| ≤ atol + rtol |X|`` (Euclidean norms), or is reported (see
            below).
        max_steps: steps (accepted and rejected) allowed per trajectory and solve.
        max_step: the longest step in time (default 1/32, see ``DEFAULT_MAX_STEP``).
        threads: BLAS threads during a solve (default 1: the velocity's BLAS calls are
            small; ``None`` leaves the setting alone).

    How the target is met, per trajectory:

    1. the *fine* solve holds each DOP853 step's local error to ``rtol / 100``
       (``LOCAL_FACTOR``) in the trajectory's own norm — never an RMS over the batch;
    2. a *check* solve at local tolerance ``rtol`` with steps up to ``2 max_step`` gives
       ``error_estimate = |X_fine − X_check|``;
    3. trajectories with ``error_estimate > atol + rtol |X|`` are re-solved with local
       tolerances 100 times tighter and half the step cap, then, if still over, 10⁴ times
       tighter (never below a local 1e-14) with steps ≤ ``max_step / 16``; each time the
       previous solution becomes the check (``REFINEMENTS``).

    Why a local tolerance is not enough: a local error ``e`` committed at time ``τ``
    reaches the end multiplied by ``∇X_{τ→t}``, and trajectories that pass near a
    separatrix between modes amplify it by 10⁴ and more (measured: a trajectory of a
    random 8-d mixture whose every step met its local tolerance ended 1.1e-8 off at
    rtol 1e-10, the sum of its local errors times that amplification). The check solve
    sees the amplification because it suffers it too. A trajectory still over target after
    the refinements is listed in ``FlowSolution.unresolved`` with an
    :class:`AccuracyWarning` — that happens only where float64 itself cannot resolve the
    flow (e.g. seed_bimodal's jump between modes). The measured worst case over 10⁶
    trajectories is in benchmarks/RESULTS.md ("Reference flow: worst case").
    """

    def __init__(
        self,
        path: MixturePath,
        rtol: float = 1e-10,
        atol: float | None = None,
        *,
        max_steps: int = 100_000,
        max_step: float = DEFAULT_MAX_STEP,
        threads: int | None = 1,
    ) -> None:
        if not isinstance(path, MixturePath):
            raise TypeError(f"path must be a MixturePath, got {type(path).__name__}")
        rtol = _check_tolerance(rtol, "rtol")
        atol = rtol if atol is None else _check_tolerance(atol, "atol")
        if not MIN_RTOL <= rtol < 1:
            raise ValueError(f"rtol must lie in [{MIN_RTOL:g}, 1), got {rtol!r}")
        if not 0 < atol < 1:
            raise ValueError(f"atol must lie in (0, 1), got {atol!r}")
        if isinstance(max_steps, bool) or not isinstance(max_steps, (int, np.integer)):
            raise TypeError(f"max_steps must be an int, got {type(max_steps).__name__}")
        if int(max_steps) < 1:
            raise ValueError(f"max_steps must be ≥ 1, got {max_steps!r}")
        max_step = _check_tolerance(max_step, "max_step")
        if not max_step > 0:
            raise ValueError(f"max_step must be > 0, got {max_step!r}")
        self.max_step = max_step
        self._path = path
        self.rtol = rtol
        self.atol = atol
        self.max_steps = int(max_steps)
        limit_threads(threads)  # validates threads
        self.threads = threads

    @property
    def path(self) -> MixturePath:
        return self._path

    def __repr__(self) -> str:
        return f"ReferenceFlow({self._path!r}, rtol={self.rtol:g}, atol={self.atol:g})"

    def _velocity(self, t: np.ndarray, y: np.ndarray) -> np.ndarray:
        return self._path.velocity(t, y)

    def _integrate(
        self, x: np.ndarray, s: np.ndarray, t: np.ndarray, rtol: float, atol: float, cap: float
    ):
        n = x.shape[0]
        return solve_batched(
            self._velocity,
            x,
            np.broadcast_to(s, (n,)),
            np.broadcast_to(t, (n,)),
            rtol=max(rtol, MIN_LOCAL_RTOL),
            atol=max(atol, MIN_LOCAL_RTOL),
            max_steps=self.max_steps,
            max_step=cap,
        )

    def solve(self, x: object, s: object, t: object, *, certify: bool = False) -> FlowSolution:
        """``X_{s→t}(x)`` with solver statistics and a per-trajectory error estimate.

        ``x`` has shape ``(n, d)``; ``s`` and ``t`` are floats or arrays of shape ``(n,)``
        in ``[0, 1]`` (either direction). With ``certify=True`` every trajectory is also
        solved at local tolerances 100 times tighter than the fine solve with a quarter of
        its step cap, and ``error_estimate`` is the larger of the two estimates.

        Raises :class:`SolverFailure` with the indices of the trajectories the solver
        could not integrate; warns with :class:`AccuracyWarning` when some trajectories
        cannot be shown to meet the target (``FlowSolution.unresolved``).
        """
        x = as_points(x, self._path.dim)
        n = x.shape[0]
        s_arr = np.broadcast_to(as_times(s, n, "s"), (n,))
        t_arr = np.broadcast_to(as_times(t, n, "t"), (n,))
        with limit_threads(self.threads):
            return self._solve(x, s_arr, t_arr, certify)

    def _solve(self, x: np.ndarray, s: np.ndarray, t: np.ndarray, certify: bool) -> FlowSolution:
        rtol, atol, cap = self.rtol * LOCAL_FACTOR, self.atol * LOCAL_FACTOR, self.max_step
        fine = self._integrate(x, s, t, rtol, atol, cap)
        check = self._integrate(x, s, t, self.rtol, self.atol, CHECK_STEP_FACTOR * cap)
        calls = fine.n_calls + check.n_calls
        rows = fine.n_row_evaluations + check.n_row_evaluations
        y, n_acc, n_rej = fine.y.copy(), fine.n_accepted.copy(), fine.n_rejected.copy()
        error = np.linalg.norm(y - check.y, axis=1)
        target = self.atol + self.rtol * np.linalg.norm(y, axis=1)
        todo = np.flatnonzero(~(error <= target))
        refinements = np.zeros(len(y), dtype=np.int64)
        for tol_factor, cap_factor in REFINEMENTS:
            if todo.size == 0:
                break
            sol = self._integrate(
                x[todo],
                s[todo],
                t[todo],
                rtol * tol_factor,
                atol * tol_factor,
                cap * cap_factor,
            )
            calls, rows = calls + sol.n_calls, rows + sol.n_row_evaluations
            error[todo] = np.linalg.norm(sol.y - y[todo], axis=1)
            y[todo], n_acc[todo], n_rej[todo] = sol.y, sol.n_accepted, sol.n_rejected
            target[todo] = self.atol + self.rtol * np.linalg.norm(sol.y, axis=1)
            refinements[todo] += 1
            todo = todo[~(error[todo] <= target[todo])]
        certificate = (
            f"DOP853 (SciPy's tableau) per trajectory, in that trajectory's own norm (not the "
            f"batch's): fine solve at local rtol = {self.rtol * LOCAL_FACTOR:g}, steps ≤ "
            f"{self.max_step:g}; error estimated as |X − X_check| with X_check solved at local "
            f"rtol = {self.rtol:g}, steps ≤ {CHECK_STEP_FACTOR * self.max_step:g}; "
            f"{int(np.count_nonzero(refinements))} trajectories refined; max estimate {float(error.max(initial=0.0)):.2e}"
        )
        if certify:
            rtol_c = self.rtol * LOCAL_FACTOR / CERTIFY_FACTOR
            atol_c = self.atol * LOCAL_FACTOR / CERTIFY_FACTOR
            cert = self._integrate(x, s, t, rtol_c, atol_c, self.max_step / 4)
            calls, rows = calls + cert.n_calls, rows + cert.n_row_evaluations
            error = np.maximum(error, np.linalg.norm(y - cert.y, axis=1))
            todo = np.flatnonzero(~(error <= target))
            certificate += (
                f"; certified against a solve at local rtol = {max(rtol_c, MIN_LOCAL_RTOL):g}, "
                f"steps ≤ {self.max_step / 4:g}: max estimate {float(error.max(initial=0.0)):.2e}"
            )
        if todo.size:
            worst = int(todo[np.argmax(error[todo] / target[todo])])
            warnings.warn(
                f"{todo.size} of {len(y)} trajectories could not be shown to meet the target "
                f"atol + rtol|X| (rtol = {self.rtol:g}, atol = {self.atol:g}): worst #{worst}, "
                f"estimated error {error[worst]:.2e} against {target[worst]:.2e}; the flow "
                "amplifies perturbations along them beyond what float64 resolves "
                "(FlowSolution.unresolved lists them)",
                AccuracyWarning,
                stacklevel=3,
            )
        return FlowSolution(
            x=y,
            n_accepted=n_acc,
            n_rejected=n_rej,
            n_calls=calls,
            n_row_evaluations=rows,
            error_estimate=error,
            target=target,
            n_refinements=refinements,
            unresolved=todo,
            certificate=certificate,
        )

    def map(self, x: object, s: object, t: object) -> np.ndarray:
        """``X_{s→t}(x)``, shape ``(n, d)`` (see :meth:`solve`)."""
        return self.solve(x, s, t).x

    def consistency(self, t: object, x: object) -> np.ndarray:
        """The consistency function ``f*(t, x) = X_{t→0}(x)``, shape ``(n, d)``."""
        return self.map(x, t, 0.0)

    def trajectory(self, x: object, s: float, t: float, ts: object) -> np.ndarray:
        """The trajectories from ``x`` at time ``s`` evaluated at the times ``ts``.

        ``s`` and ``t`` are single times; ``ts`` is a 1-d array of times in the closed
        interval between them, ordered from ``s`` towards ``t``. Each output time is hit
        exactly (the integration restarts there; no interpolation). Returns shape
        ``(len(ts), n, d)``.
        """
        x = as_points(x, self._path.dim)
        s_val, t_val = as_times(s, name="s"), as_times(t, name="t")
        if s_val.ndim or t_val.ndim:
            raise ValueError("s and t must be single times for trajectory")
        times = as_float_array(ts, "ts")
        if times.ndim != 1:
            raise ValueError(f"ts must be a 1-d array of times, got shape {times.shape}")
        lo, hi = sorted((float(s_val), float(t_val)))
        if np.any((times < lo) | (times > hi)):
            raise ValueError(f"ts must lie between s = {float(s_val)} and t = {float(t_val)}")
        direction = np.sign(float(t_val) - float(s_val))
        if np.any(direction * np.diff(times) < 0):
            raise ValueError("ts must be ordered from s towards t")
        out = np.empty((times.size, *x.shape))
        current, now = x, float(s_val)
        for i, target in enumerate(times):
            current = self.map(current, now, float(target))
            out[i], now = current, float(target)
        return out
