"""Reference probability-flow maps ``X_{s→t}`` of mixture paths by ODE (reference layer).

``X_{s→t}(x)`` solves ``dx/dτ = v(τ, x)`` from ``x`` at ``τ = s`` to ``τ = t`` with the
velocity of a :class:`~cmverify.exact.VelocityField` — the closed-form velocity of a
:class:`~cmverify.exact.MixturePath`, or any object with ``dim`` and ``velocity``; the
consistency function is ``f*(t, x) = X_{t→0}(x)``. Every trajectory is integrated by the
batched DOP853 of :mod:`cmverify.reference._batched_rk` with its own step-size control,
so the tolerance holds per trajectory, not for the RMS over a batch.
"""

from __future__ import annotations

import warnings

import numpy as np

from .._threads import limit_threads
from .._validation import (
    as_count,
    as_float_array,
    as_points,
    as_real,
    as_times,
    velocity_field_problem,
)
from ..exact import MixturePath, VelocityField
from ._batched_rk import SolverFailure, solve_batched
from ._certified import Certified, certified_solve, unresolved_message
from ._solution import AccuracyWarning, FlowSolution, JacobianSolution
from ._step_control import KAPPA, CovarianceControl
from ._variational import FlowDerivatives

__all__ = ["AccuracyWarning", "FlowSolution", "JacobianSolution", "ReferenceFlow", "SolverFailure"]

#: The smallest target accuracy offered (its first level's local tolerance is 1e-14).
MIN_RTOL = 1e-12
#: The solves of one trajectory, level after level: (local tolerance ÷ rtol, step cap ÷
#: ``max_step``). Levels 0 and 1 run for every trajectory; level 1 is returned, with
#: ``error_estimate = |X_1 − X_0|``. A trajectory whose estimate exceeds its target goes
#: on to the next level (estimate ``|X_k − X_{k−1}|``, ``X_k`` returned), up to the last.
#: Each level is 100× tighter with shorter steps, so its error is a small fraction of the
#: previous level's and the difference over-estimates it. Why each level also shortens the
#: steps: DOP853's embedded estimate can be fooled by long steps, and two solves with the
#: same step cap were then wrong *together* — measured: 1-d mixtures of narrow modes where
#: local tolerances 1e-8 and 1e-6 (steps ≤ 1/32 and 1/16) both ended 3e-6 and 1.2e-6 off,
#: agreeing to 1.8e-6, while 1e-10 with steps ≤ 1/64 was 1e-10 off; and at the local
#: floor 1e-14, equal tolerances take equal steps where the tolerance governs (two 8-d
#: solves with steps ≤ 1/64 and ≤ 1/128 agreed to 9e-12 while both were 1e-10 off).
LEVELS = ((1e-2, 1.0), (1e-4, 0.5), (1e-6, 1 / 16), (1e-8, 1 / 128))
#: Each level after the first also shortens its *first* step by its step-cap factor:
#: Hairer's starting-step rule hardly depends on the tolerance (where ``v = 0`` at the
#: start, as for the trig interpolant at ``t = 0``, it gives 1e-4 at any tolerance), and a
#: first step across a narrow mode's transition (std 3e-4) was accepted, wrongly, by every
#: level alike (a review's finding: 5.6e-8 off at rtol 1e-12, estimate 4e-15). A different
#: first step also shifts every later step, so solves at the tolerance floor differ too.
#: No solve runs below this local tolerance (float64 rounding).
MIN_LOCAL_RTOL = 1e-14
#: Default cap on the step size. DOP853's embedded error estimate can be fooled by a
#: long step: on random Gaussians at a local tolerance of 1e-10, uncapped steps (as in
#: solve_ivp) left single trajectories 3e-7 off; capped at 1/32, 7e-11. The cap also
#: saves most rejected steps on eight_gaussians (benchmarks/RESULTS.md).
DEFAULT_MAX_STEP = 1.0 / 32


class ReferenceFlow(FlowDerivatives):
    """Exact flow maps of a :class:`MixturePath` (or any velocity field), accurate per
    trajectory.

    Arguments:
        path: the probability path whose velocity defines the flow: a
            :class:`~cmverify.exact.MixturePath`, or any
            :class:`~cmverify.exact.VelocityField` — an object with ``dim`` (a positive
            integer) and ``velocity(t, x)``, called with ``t`` of shape ``(m,)`` and ``x``
            of shape ``(m, d)`` and returning shape ``(m, d)``; e.g. a wrapper around a
            path that perturbs its velocity (a supported use: the flow of the perturbed
            field, with the same per-trajectory certificate). A ``MixturePath`` is
            integrated through its trusted door (``velocity_trusted``: the solver's
            arrays are valid by construction); a subclass that overrides ``velocity``,
            a path whose ``velocity`` was replaced on the instance, and any other field,
            through ``velocity``, its result checked for shape ``(m, d)``.
        rtol: target accuracy of each trajectory, relative (≥ 1e-12). The guarantee below
            is measured at rtol ≥ 1e-10; below that, the float64 rounding of the velocity,
            amplified by the flow (about 1/std across narrow modes), can exceed the target
            unseen (at 1e-10 it already left estimates short of errors of 0.19 of the
            target between 19 modes of std 0.0095). One Gaussian of std 3e-4, trig,
            mapped forward from t = 0 at rtol 1e-12: 0.004 of the target (7.2× before
            the step control of item 3, which an absolute tolerance had caused).
        atol: absolute target, default ``rtol``. Each returned trajectory satisfies
            ``|X − X_exact| ≤ atol + rtol |X|`` (Euclidean norms), or is reported (see
            below).
        max_steps: steps (accepted and rejected) allowed per trajectory in the first solve;
            a level with a step cap ``c`` times shorter is allowed ``c`` times as many.
        max_step: the longest step in time (default 1/32, see ``DEFAULT_MAX_STEP``).
        threads: BLAS threads during a solve (default 1: the velocity's BLAS calls are
            small; ``None`` leaves the setting alone).
        backend: ``"numpy"`` (default) or ``"torch"``: the same solver and certificate on
            float64 tensors on ``device`` (a MixturePath's own velocity, by the eigenbasis
            or product route; rows these cannot bound by the numpy path on the host;
            ``solve``, ``map``, ``consistency``;
            :mod:`cmverify.reference._torch_rk`).

    How the target is met, per trajectory (``LEVELS``):

    1. two DOP853 solves, each with its own step size and error norm per trajectory (never
       an RMS over the batch): one at local tolerance ``rtol / 100`` with steps ≤
       ``max_step``, one at ``rtol / 10⁴`` (never below 1e-14) with steps ≤
       ``max_step / 2``; the second is returned, ``error_estimate = |X_1 − X_0|``;
    2. trajectories with ``error_estimate > atol + rtol |X|`` are solved again, 100 times
       tighter with an eighth of the step cap, the previous solve serving as the check —
       at most twice;
    3. for a MixturePath, in every solve, steps short enough that no marginal covariance
       grows by more than ``e^{1/4}`` (times the level's cap factor) over one, and
       ``atol`` at each time scaled by how much the covariances stretch an error from
       there to the end (:mod:`cmverify.reference._step_control`: forward maps from narrow
       data, ``X_{0→t}``, had been up to 209 times their target off, passed).

    Why a local tolerance is not enough: a local error ``e`` committed at time ``τ``
    reaches the end multiplied by ``∇X_{τ→t}``, and trajectories that pass near a
    separatrix between modes amplify it by 10⁴ and more (measured: a trajectory of a
    random 8-d mixture whose every step met its local tolerance 1e-12 ended 1.1e-8 off,
    the sum of its local errors times that amplification). The check solve suffers the same
    amplification, so the difference sees it. A trajectory still over target after the
    refinements is listed in ``FlowSolution.unresolved`` with an :class:`AccuracyWarning`
    (float64 cannot resolve seed_bimodal's jump between modes, for instance). The measured
    worst case is in benchmarks/RESULTS.md ("Reference flow: worst case over 10⁶
    trajectories": no trajectory over target, worst 0.93 of it); the solves cost 2.6–3.4
    times the velocity evaluations of the first one alone.
    """

    MIN_RTOL = MIN_RTOL  #: the smallest ``rtol`` offered

    def __init__(
        self,
        path: VelocityField,
        rtol: float = 1e-10,
        atol: float | None = None,
        *,
        max_steps: int = 100_000,
        max_step: float = DEFAULT_MAX_STEP,
        threads: int | None = 1,
        backend: str = "numpy",
        device: object = None,
    ) -> None:
        problem = velocity_field_problem(path)
        if problem is not None:
            raise TypeError(
                "path must be a MixturePath or a VelocityField (dim and velocity(t, x)), "
                f"got {type(path).__name__}, which {problem}"
            )
        rtol = as_real(rtol, "rtol")
        atol = rtol if atol is None else as_real(atol, "atol")
        if not MIN_RTOL <= rtol < 1:
            raise ValueError(f"rtol must lie in [{MIN_RTOL:g}, 1), got {rtol!r}")
        if not 0 < atol < 1:
            raise ValueError(f"atol must lie in (0, 1), got {atol!r}")
        if as_count(max_steps, "max_steps") < 1:
            raise ValueError(f"max_steps must be ≥ 1, got {max_steps!r}")
        max_step = as_real(max_step, "max_step")
        if not max_step > 0:
            raise ValueError(f"max_step must be > 0, got {max_step!r}")
        self.max_step, self._path = max_step, path
        self._dim = int(path.dim)
        # MixturePath's own velocity (not overridden, not replaced on the instance)?
        trusted = getattr(path.velocity, "__func__", None) is MixturePath.velocity
        self._field = path.velocity_trusted if trusted else self._checked_velocity
        self._control = CovarianceControl(path) if trusted else None
        self.rtol, self.atol, self.max_steps = rtol, atol, int(max_steps)
        limit_threads(threads)  # validates threads
        self.threads, self.backend, self._torch = threads, backend, None
        if backend != "numpy" or device is not None:  # torch only where asked for
            from ._torch_rk import torch_backend

            self._torch = torch_backend(path, backend, device, trusted, threads)

    @property
    def path(self) -> VelocityField:
        """The path (velocity field) whose flow this is."""
        return self._path

    def __repr__(self) -> str:
        return f"ReferenceFlow({self._path!r}, rtol={self.rtol:g}, atol={self.atol:g})"

    def _checked_velocity(self, t: np.ndarray, y: np.ndarray) -> np.ndarray:
        """A field's public ``velocity`` on copies of the solver's ``t`` and ``y``, its
        result copied (a field that edits its input or reuses its output buffer cannot
        corrupt the solve) and checked: real numbers, shape ``(m, d)``."""
        raw = np.asarray(self._path.velocity(t.copy(), y.copy()))
        if raw.dtype.kind == "c":
            raise TypeError(
                f"path.velocity(t, x) returned complex values (dtype {raw.dtype}); "
                "a velocity field must be real"
            )
        if raw.dtype.kind not in "biuf":
            raise TypeError(f"path.velocity(t, x) returned non-numeric dtype {raw.dtype}")
        v = raw.astype(np.float64)  # a copy: a field that reuses its output buffer is safe
        if v.shape != y.shape:
            raise ValueError(
                f"path.velocity(t, x) returned shape {v.shape} for x of shape {y.shape}; "
                f"it must return one velocity per row, shape (m, {self._dim})"
            )
        return v

    def _integrate(
        self,
        x: np.ndarray,
        s: np.ndarray,
        t: np.ndarray,
        rtol: float | np.ndarray,
        atol: float | np.ndarray,
        cap: float | np.ndarray,
        max_steps: int | np.ndarray,
        first_step_factor: float | np.ndarray = 1.0,
        fun=None,
    ):
        """One batched DOP853 solve of ``fun`` (default: the path's velocity); a ``fun``
        with per-trajectory parameters takes ``(t, y, rows)``."""
        times = np.broadcast_to(s, x.shape[:1]), np.broadcast_to(t, x.shape[:1])
        options = {
            "rtol": np.maximum(rtol, MIN_LOCAL_RTOL),
            "atol": atol,
            "atol_floor": MIN_LOCAL_RTOL,  # relative to the row's size, at most 1
            "max_steps": max_steps,
            "max_step": cap,
            "first_step_factor": first_step_factor,
        }
        if self._control is not None and fun is None:  # _step_control's two rules
            kappa = KAPPA * np.broadcast_to(first_step_factor, x.shape[:1])  # the level's cap
            options["step_control"] = self._control.hook(kappa, times[1])
        if self._torch is not None:
            if fun is not None:
                raise NotImplementedError("backend='torch' solves X_{s→t}; use 'numpy' here")
            return self._torch.solve(x, *times, **options)
        return solve_batched(
            self._field if fun is None else fun,
            x,
            *times,
            **options,
            with_rows=fun is not None and getattr(fun, "with_rows", False),
            scale_blocks=getattr(fun, "scale_blocks", ()),
        )

    def solve(self, x: object, s: object, t: object, *, certify: bool = False) -> FlowSolution:
        """``X_{s→t}(x)`` with solver statistics and a per-trajectory error estimate.

        ``x`` has shape ``(n, d)``; ``s`` and ``t`` are floats or arrays of shape ``(n,)``
        in ``[0, 1]`` (either direction). With ``certify=True`` every trajectory goes one
        refinement level further (``LEVELS``): it is solved again 100 times tighter with an
        eighth of the step, that solve is returned, and the estimate is its difference to
        the previous level.

        Raises :class:`SolverFailure` with the indices of the trajectories the solver
        could not integrate; warns with :class:`AccuracyWarning` when some trajectories
        cannot be shown to meet the target (``FlowSolution.unresolved``).
        """
        return self._checked(x, s, t, certify, stacklevel=3)

    def _checked(
        self, x: object, s: object, t: object, certify: bool, stacklevel: int
    ) -> FlowSolution:
        """Validate, then :meth:`_solve` under the thread limit; ``stacklevel`` makes an
        :class:`AccuracyWarning` point at the user's call."""
        x = as_points(x, self._dim)
        n = x.shape[0]
        s_arr = np.broadcast_to(as_times(s, n, "s"), (n,))
        t_arr = np.broadcast_to(as_times(t, n, "t"), (n,))
        with limit_threads(self.threads):
            return self._solve(x, s_arr, t_arr, certify, stacklevel + 1)

    def _cap(self, k: int) -> float:
        """Level ``k``'s step cap; beyond the first level an infinite ``max_step`` is read
        as the whole interval (else every level would take the same steps)."""
        base = self.max_step if k == 0 else min(self.max_step, 1.0)
        return base * LEVELS[k][1]

    def _level(
        self,
        k: int | np.ndarray,
        x: np.ndarray,
        s: np.ndarray,
        t: np.ndarray,
        fun=None,
        cap_scale: float | np.ndarray = 1.0,
    ):
        """Level ``k`` of ``LEVELS`` — one level, or one per row (shape ``(n,)``: rows of
        several levels solved in one batched call); ``fun`` and ``cap_scale`` (the step
        cap's factor, per trajectory) for the augmented systems of
        :mod:`cmverify.reference._variational`."""
        k = np.asarray(k, dtype=np.int64)
        tol_factor, cap_factor = np.asarray(LEVELS)[k].T
        caps = np.array([self._cap(j) for j in range(len(LEVELS))])[k]
        return self._integrate(
            x,
            s,
            t,
            self.rtol * tol_factor,
            self.atol * tol_factor,
            caps * cap_scale,
            # a level with steps c times shorter may take c times as many
            np.ceil(self.max_steps / cap_factor).astype(np.int64),
            first_step_factor=cap_factor,
            fun=fun,
        )

    def _solve(
        self, x: np.ndarray, s: np.ndarray, t: np.ndarray, certify: bool, stacklevel: int
    ) -> FlowSolution:
        floor = None if self._control is None else self._control.rounding_floor
        done = self._certified(
            lambda k, rows: self._level(k, x[rows], s[rows], t[rows]),
            len(x),
            (slice(None),),
            certify,
            stacklevel + 1,
            floor=floor and (lambda rows, y, steps: floor(x[rows], s[rows], t[rows], y, steps)),
        )
        return FlowSolution(x=done.y, **self._solution_fields(done))

    def _solution_fields(self, done: Certified) -> dict:
        """The :class:`FlowSolution` fields of a certified solve other than ``x`` (the
        point's block is the first)."""
        return {
            "n_accepted": done.n_accepted,
            "n_rejected": done.n_rejected,
            "n_calls": done.n_calls,
            "n_row_evaluations": done.n_row_evaluations,
            "error_estimate": done.error[:, 0],
            "target": done.target[:, 0],
            "n_refinements": done.level - 1,
            "unresolved": done.unresolved,
            "certificate": self._certificate(done),
        }

    def _certified(
        self, run, n: int, blocks, certify: bool, stacklevel: int, floor=None
    ) -> Certified:
        """:func:`certified_solve` with this flow's tolerances and levels and ``floor(rows,
        y, steps)`` in the estimates; warns with an :class:`AccuracyWarning` (at
        ``stacklevel``) for unresolved trajectories."""
        done = certified_solve(
            run,
            n,
            blocks,
            atol=self.atol,
            rtol=self.rtol,
            n_levels=len(LEVELS),
            certify=certify,
            floor=floor,
        )
        if done.unresolved.size:
            message = unresolved_message(done, n, self.rtol, self.atol)
            warnings.warn(message, AccuracyWarning, stacklevel=stacklevel)
        return done

    def _certificate(self, done: Certified) -> str:
        refined = int(np.count_nonzero(done.level > 1))
        return (
            "DOP853 (SciPy's tableau) per trajectory, in that trajectory's own norm (not the "
            f"batch's), at local rtol = rtol × {LEVELS[1][0]:g} (≥ {MIN_LOCAL_RTOL:g}) with "
            f"steps ≤ {self._cap(1):g}; error estimated as the difference to "
            f"a solve at rtol × {LEVELS[0][0]:g} with steps ≤ {self._cap(0):g}"
            f"; {refined} trajectories refined (levels in FlowSolution.n_refinements); "
            f"max estimate / target {float(np.max(done.ratio, initial=0.0)):.2g}"
        )

    def map(self, x: object, s: object, t: object) -> np.ndarray:
        """``X_{s→t}(x)``, shape ``(n, d)`` (see :meth:`solve`)."""
        return self._checked(x, s, t, False, stacklevel=3).x

    def consistency(self, t: object, x: object) -> np.ndarray:
        """The consistency function ``f*(t, x) = X_{t→0}(x)``, shape ``(n, d)``."""
        return self._checked(x, t, 0.0, False, stacklevel=3).x

    def trajectory(self, x: object, s: float, t: float, ts: object) -> np.ndarray:
        """The trajectories from ``x`` at time ``s`` evaluated at the times ``ts``.

        ``s`` and ``t`` are single times; ``ts`` is a 1-d array of times in the closed
        interval between them, ordered from ``s`` towards ``t``. Each output time is hit
        exactly (the integration restarts there; no interpolation). Returns shape
        ``(len(ts), n, d)``.
        """
        x = as_points(x, self._dim)
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
            current = self._checked(current, now, float(target), False, stacklevel=3).x
            out[i], now = current, float(target)
        return out
