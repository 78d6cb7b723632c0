"""Many reference solves answered by one batched solve (claims layer).

:class:`~cmverify.reference.ReferenceFlow` integrates every trajectory with its own step
size, error norm and refinement, so a trajectory takes the same steps whether it is
solved alone or among others; what a solve costs is mostly per call, not per row
(measured on this project's 2-core machine: 0.19 s for 8 trajectories of seed_bimodal,
trig, from ``t = 0.5`` to 0, 0.23 s for 64, 0.34 s for 512, 0.67 s for 4096). A
measurement that needs ``X_{s→t}`` for many point sets and times — a finite-difference
stencil of ``f*``, ``f*`` at the nodes of a quadrature rule for each of nine ``Δ`` —
therefore asks for all of them in one solve, each row with its own ``s`` and ``t``.

:func:`batched_solves` does this for a computation written as if it called the flow
directly: it runs the computation once to record its calls, solves them together, then
runs it again with the answers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np

from ..reference import ReferenceFlow

__all__ = ["FlowCalls", "batched_solves"]

T = TypeVar("T")


class FlowCalls:
    """Stands in for a :class:`~cmverify.reference.ReferenceFlow` (its :meth:`map` and
    :meth:`consistency`) in the two runs of :func:`batched_solves`: the first records each
    call and answers zeros, the second checks each call against the record and answers
    the batched solve's rows."""

    def __init__(self, dim: int, answers: list[np.ndarray] | None = None, record=None) -> None:
        self.dim = dim
        #: ``(x, s, t)`` of each call in order: ``x`` ``(n, d)``, ``s`` and ``t`` ``(n,)``.
        self.calls: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = record or []
        self._answers = answers
        self._next = 0

    def map(self, x: object, s: object, t: object) -> np.ndarray:
        """``X_{s→t}(x)`` for ``x`` of shape ``(n, d)``, ``s`` and ``t`` floats or shape
        ``(n,)`` (zeros in the recording run)."""
        x = np.array(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (n, {self.dim}), got shape {x.shape}")
        n = x.shape[0]
        s, t = self._times(s, n, "s"), self._times(t, n, "t")
        if self._answers is None:
            self.calls.append((x, s, t))
            return np.zeros_like(x)
        if self._next >= len(self.calls):
            raise RuntimeError("the answering run made more flow calls than the recording run")
        rx, rs, rt = self.calls[self._next]
        if not (np.array_equal(x, rx) and np.array_equal(s, rs) and np.array_equal(t, rt)):
            raise RuntimeError(
                f"flow call #{self._next} differs between the recording and the answering run: "
                "a computation given to batched_solves must not choose its calls from the answers"
            )
        answer = self._answers[self._next].copy()
        self._next += 1
        return answer

    @staticmethod
    def _times(value: object, n: int, name: str) -> np.ndarray:
        """``value`` (a time, or one per row) as a float64 array of shape ``(n,)``."""
        times = np.asarray(value, dtype=np.float64)
        if times.shape not in ((), (n,)):
            raise ValueError(
                f"{name} must be a time or one per row, shape ({n},), got {times.shape}"
            )
        return np.array(np.broadcast_to(times, (n,)))

    def consistency(self, t: object, x: object) -> np.ndarray:
        """``f*(t, x) = X_{t→0}(x)``."""
        return self.map(x, t, 0.0)


def batched_solves(flow: ReferenceFlow, compute: Callable[[FlowCalls], T]) -> T:
    """``compute(flow)`` with all its calls ``flow.map(x, s, t)`` and
    ``flow.consistency(t, x)`` answered by one ``flow.map`` of their rows stacked.

    ``compute`` runs twice: first its calls are recorded (and answered with zeros, under
    ``np.errstate(all="ignore")``, so ``compute`` must get through zero answers; its
    result is discarded), then they are solved as one
    batch and ``compute`` runs again with the answers, each row what its own solve gives
    (the same steps and certificate; the batch's vectorized arithmetic may round the
    last bit differently, measured ≤ 4.4e-16). The calls, their points and times, must
    therefore not depend on the answers (nor on a random generator the runs would
    share): the second run's calls are checked, bit for bit, against the record
    (``RuntimeError`` otherwise). Calls that depend on earlier answers go in a second
    :func:`batched_solves`.
    """
    recording = FlowCalls(flow.path.dim)
    with np.errstate(all="ignore"):
        compute(recording)
    calls = recording.calls
    answers: list[np.ndarray] = []
    if calls:
        stacked = flow.map(
            np.concatenate([c[0] for c in calls]),
            np.concatenate([c[1] for c in calls]),
            np.concatenate([c[2] for c in calls]),
        )
        answers = np.split(stacked, np.cumsum([len(c[0]) for c in calls])[:-1])
    answering = FlowCalls(flow.path.dim, answers, calls)
    result = compute(answering)
    if answering._next != len(calls):
        raise RuntimeError(
            f"the answering run made {answering._next} flow calls, the recording run {len(calls)}"
        )
    return result
