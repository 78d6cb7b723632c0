"""Reference probability-flow maps ``X_{s→t}`` of mixture paths by ODE (reference layer).

``X_{s→t}(x)`` solves ``dx/dτ = v(τ, x)`` from ``x`` at ``τ = s`` to ``τ = t`` with the
closed-form velocity of :class:`~cmverify.path.MixturePath`; the consistency function is
``f*(t, x) = X_{t→0}(x)``. Every trajectory is integrated by the batched DOP853 of
:mod:`cmverify.batched_rk` with its own step-size control, so the tolerance holds per
trajectory, not for the RMS over a batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validation import as_float_array, as_points, as_times
from .batched_rk import SolverFailure, solve_batched
from .path import MixturePath

__all__ = ["FlowSolution", "ReferenceFlow", "SolverFailure"]

#: The smallest target accuracy offered: its local tolerance (× LOCAL_FACTOR) is 1e-14.
MIN_RTOL = 1e-12
#: Each step's local error is held to the target accuracy times this factor. Local
#: errors add up and are amplified where trajectories separate, so a local tolerance
#: equal to the target overshoots it: at rtol = 1e-10, a local 1e-10 left trajectories of
#: random 1-3-d mixtures 1.4e-8 off, a local 1e-12 left them 4.4e-11 off (worst of 27,000
#: trajectories), for 30% more velocity evaluations (benchmarks/RESULTS.md).
LOCAL_FACTOR = 1e-2
#: The certifying solve runs at the local tolerances divided by this factor …
CERTIFY_FACTOR = 100.0
#: … but never below this local tolerance (float64 rounding).
MIN_LOCAL_RTOL = 1e-14
#: Default cap on the step size. DOP853's embedded error estimate can be fooled by a
#: long step: on random Gaussians at a local tolerance of 1e-10, uncapped steps (as in
#: solve_ivp) left single trajectories 3e-7 off; capped at 1/32, 7e-11. The cap also
#: saves most rejected steps on eight_gaussians (benchmarks/RESULTS.md).
DEFAULT_MAX_STEP = 1.0 / 32


@dataclass(frozen=True)
class FlowSolution:
    """``X_{s→t}(x)`` with its cost and, if requested, its accuracy certificate.

    Attributes:
        x: the mapped points, shape ``(n, d)``.
        n_accepted, n_rejected: DOP853 steps per trajectory, shape ``(n,)``.
        n_calls: batched velocity evaluations; ``n_row_evaluations`` their total rows.
        error_estimate: per trajectory ``|X − X_fine|``, where ``X_fine`` is a second
            solve at local tolerances 100 times tighter (at most down to 1e-14), shape
            ``(n,)``; ``None`` unless certified.
        certificate: how the error was bounded, in words.
    """

    x: np.ndarray
    n_accepted: np.ndarray
    n_rejected: np.ndarray
    n_calls: int
    n_row_evaluations: int
    error_estimate: np.ndarray | None
    certificate: str


class ReferenceFlow:
    """Exact flow maps of a :class:`MixturePath`, accurate per trajectory.

    Arguments:
        path: the probability path whose velocity defines the flow.
        rtol: target accuracy of each trajectory, relative (≥ 1e-12). Each DOP853 step
            holds that trajectory's local error to ``rtol / 100`` (``LOCAL_FACTOR``), in
            the trajectory's own norm — never an RMS over the batch.
        atol: absolute target, default ``rtol`` (so points with ``|x| ≲ 1`` are held to
            about ``rtol`` absolutely); also scaled by ``LOCAL_FACTOR`` per step.
        max_steps: steps (accepted and rejected) allowed per trajectory.
        max_step: the longest step in time (default 1/32, see ``DEFAULT_MAX_STEP``).

    With the defaults, the measured global error against closed forms (FLOW-GAUSS in
    d = 1 to 32, FLOW-QUANTILE) is below ``1e-11 (1 + |x|)`` per trajectory, and below
    ``1e-10`` against tight solves for random mixtures; :meth:`solve` with
    ``certify=True`` measures it for the points at hand.
    """

    def __init__(
        self,
        path: MixturePath,
        rtol: float = 1e-10,
        atol: float | None = None,
        *,
        max_steps: int = 100_000,
        max_step: float = DEFAULT_MAX_STEP,
    ) -> None:
        if not isinstance(path, MixturePath):
            raise TypeError(f"path must be a MixturePath, got {type(path).__name__}")
        rtol = float(rtol)
        atol = rtol if atol is None else float(atol)
        if not MIN_RTOL <= rtol < 1:
            raise ValueError(f"rtol must lie in [{MIN_RTOL:g}, 1), got {rtol!r}")
        if not 0 < atol < 1:
            raise ValueError(f"atol must lie in (0, 1), got {atol!r}")
        if int(max_steps) < 1:
            raise ValueError(f"max_steps must be ≥ 1, got {max_steps!r}")
        if not float(max_step) > 0:
            raise ValueError(f"max_step must be > 0, got {max_step!r}")
        self.max_step = float(max_step)
        self._path = path
        self.rtol = rtol
        self.atol = atol
        self.max_steps = int(max_steps)

    @property
    def path(self) -> MixturePath:
        return self._path

    def __repr__(self) -> str:
        return f"ReferenceFlow({self._path!r}, rtol={self.rtol:g}, atol={self.atol:g})"

    def _velocity(self, t: np.ndarray, y: np.ndarray) -> np.ndarray:
        return self._path.velocity(t, y)

    def _integrate(self, x: np.ndarray, s: np.ndarray, t: np.ndarray, rtol: float, atol: float):
        n = x.shape[0]
        return solve_batched(
            self._velocity,
            x,
            np.broadcast_to(s, (n,)),
            np.broadcast_to(t, (n,)),
            rtol=rtol,
            atol=atol,
            max_steps=self.max_steps,
            max_step=self.max_step,
        )

    def solve(self, x: object, s: object, t: object, *, certify: bool = False) -> FlowSolution:
        """``X_{s→t}(x)`` with solver statistics; with ``certify=True`` also an error estimate.

        ``x`` has shape ``(n, d)``; ``s`` and ``t`` are floats or arrays of shape ``(n,)``
        in ``[0, 1]`` (either direction). Raises :class:`SolverFailure` with the indices
        of the trajectories the solver could not integrate.
        """
        x = as_points(x, self._path.dim)
        n = x.shape[0]
        s_arr, t_arr = as_times(s, n, "s"), as_times(t, n, "t")
        rtol_local, atol_local = self.rtol * LOCAL_FACTOR, self.atol * LOCAL_FACTOR
        sol = self._integrate(x, s_arr, t_arr, rtol_local, atol_local)
        certificate = (
            f"DOP853 (SciPy's tableau), local error per trajectory ≤ rtol = {rtol_local:g}, "
            f"atol = {atol_local:g} in that trajectory's own RMS norm over its "
            f"{self._path.dim} coordinates (not the batch's), steps ≤ {self.max_step:g}"
        )
        error = None
        if certify:
            rtol_f = max(rtol_local / CERTIFY_FACTOR, MIN_LOCAL_RTOL)
            atol_f = max(atol_local / CERTIFY_FACTOR, MIN_LOCAL_RTOL)
            fine = self._integrate(x, s_arr, t_arr, rtol_f, atol_f)
            error = np.linalg.norm(sol.y - fine.y, axis=1)
            certificate += (
                f"; global error estimated per trajectory as |X − X_fine| with X_fine solved "
                f"at local rtol = {rtol_f:g}: max {float(error.max(initial=0.0)):.2e}"
            )
        return FlowSolution(
            x=sol.y,
            n_accepted=sol.n_accepted,
            n_rejected=sol.n_rejected,
            n_calls=sol.n_calls,
            n_row_evaluations=sol.n_row_evaluations,
            error_estimate=error,
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
