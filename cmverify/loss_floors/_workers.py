"""The MeanFlow floor's Jacobian solves shared among worker processes (loss-floors floor).

Each node of the floor's rules in ``d ≥ 2`` is one Jacobian solve of the reference flow
(:class:`._data_side.DataSide`), and the rules ask for them in batches of thousands (a
cubature round, a Gauss–Hermite rule). The solves are independent, each trajectory under
its own step control, so a batch cut into contiguous slices, one per process, gives the
values of one process to rounding (a batch's size can change the rounding of its linear
algebra: measured, 5e-18 in one Jacobian entry of 1,024; tested on whole floors).
:class:`SolvePool` forks its processes at the first batch of at least ``2 ·``
:data:`MIN_SLICE` solves (``fork``: they inherit the path and its flow, whose generated
functions do not pickle; only points, values, their errors and warnings cross); a smaller
batch, and every batch of another path or flow, is solved in
the calling process. The processes stop when the floor returns, also on an exception or
``KeyboardInterrupt``, and when the calling process dies (Linux: a parent-death signal).
Linux only: macOS offers ``fork`` but its system libraries (Accelerate) are not safe in a
forked child.
"""

from __future__ import annotations

import ctypes
import itertools
import multiprocessing
import numbers
import os
import signal
import sys
import warnings
from concurrent.futures import ProcessPoolExecutor, wait
from types import TracebackType

import numpy as np

from ..exact import MixturePath
from ..reference import ReferenceFlow, SolverFailure

__all__ = ["MIN_SLICE", "SolvePool", "check_workers"]

#: The fewest points a process is sent: below, the batch is solved in the caller (a batched
#: solve of fewer trajectories is dominated by its per-step overhead).
MIN_SLICE = 256

_SHARED: dict[str, object] = {}  # in a worker: the path and flow it inherited
_PR_SET_PDEATHSIG = 1  # prctl option (linux/prctl.h)


def usable_cores() -> int:
    """The cores this process may run on (its affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # no affinity on this platform
        return max(1, os.cpu_count() or 1)


def check_workers(workers: object) -> int:
    """``workers`` as an int: ``TypeError`` unless a whole number (not a bool),
    ``ValueError`` unless ``1 ≤ workers ≤`` the usable cores, or for ``workers > 1``
    off Linux or inside a daemonic process (which may not start processes)."""
    if isinstance(workers, bool) or not isinstance(workers, numbers.Integral):
        raise TypeError(f"workers must be a whole number ≥ 1, got {workers!r}")
    if workers < 1:
        raise ValueError(f"workers must be a whole number ≥ 1, got {workers!r}")
    if workers == 1:
        return 1
    if (
        not sys.platform.startswith("linux")
        or "fork" not in multiprocessing.get_all_start_methods()
    ):
        raise ValueError(
            f"workers > 1 forks processes, supported on Linux only (this is {sys.platform}): "
            "use workers=1"
        )
    cores = usable_cores()
    if workers > cores:
        raise ValueError(f"workers = {workers} is more than the {cores} usable cores")
    if multiprocessing.current_process().daemon:
        raise ValueError(
            "workers > 1 cannot start processes from a daemonic process (a "
            "multiprocessing.Pool worker, for one): use workers=1"
        )
    return int(workers)


def _adopt(path: MixturePath, flow: ReferenceFlow, parent: int) -> None:
    """A worker's initializer: keep the path and flow it inherited (forked, not pickled),
    and die with the process that started it (by SIGTERM, its default action restored:
    a handler the caller set, inherited, could ignore it)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))
    except (OSError, AttributeError):  # pragma: no cover - prctl is in every Linux libc
        pass
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)
    _SHARED["path"], _SHARED["flow"] = path, flow


def _solve_slice(job: tuple[float, float, np.ndarray, int, int]):
    """``(log a, b, errors, warnings)`` of :meth:`._data_side.DataSide.log_terms` on one
    slice, in a worker (``errors``: the nodes' relative error estimates; its warnings
    recorded under the filters it inherited, for the caller to issue); a
    :class:`SolverFailure` names the trajectories by their index in the batch."""
    from ._data_side import DataSide  # here: _data_side imports this module

    t, r, y, start, n = job
    side = DataSide(_SHARED["path"], _SHARED["flow"], t, r)
    try:
        with warnings.catch_warnings(record=True) as caught:
            log_a, b = side.log_terms(y)
    except SolverFailure as failure:
        moved = {
            int(i) + start: why for i, why in zip(failure.indices, failure.reasons, strict=True)
        }
        raise SolverFailure.of(moved, n) from None
    issued = [(w.message, w.category, w.filename, w.lineno) for w in caught]
    return log_a, b, side.errors, issued


class SolvePool:
    """``workers`` processes solving slices of the floor's batches (module docstring); a
    context manager. With ``workers = 1`` it starts nothing and :meth:`shares` is false."""

    def __init__(self, path: MixturePath, flow: ReferenceFlow, workers: int) -> None:
        self.path, self.flow, self.workers = path, flow, check_workers(workers)
        self._executor: ProcessPoolExecutor | None = None

    def __enter__(self) -> SolvePool:
        if self.workers > 1:  # the processes are forked at the first batch shared
            self._executor = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("fork"),
                initializer=_adopt,
                initargs=(self.path, self.flow, os.getpid()),
            )
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._executor is not None:
            # on an exception, the slices still queued are dropped and running ones awaited
            self._executor.shutdown(wait=True, cancel_futures=kind is not None)
            self._executor = None

    def shares(self, path: MixturePath, flow: ReferenceFlow, n: int) -> bool:
        """Whether a batch of ``n`` solves of ``flow`` on ``path`` goes to the workers."""
        return (
            self._executor is not None
            and path is self.path
            and flow is self.flow
            and n >= 2 * MIN_SLICE
        )

    def log_terms(
        self, t: float, r: float, y: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(log a, b, errors)`` of the batch ``y`` ``(n, d)`` (``errors``: the nodes'
        relative error estimates), its contiguous slices solved by the workers
        (:meth:`._data_side.DataSide.log_terms`); the failures of all slices raised
        together, as one process would."""
        assert self._executor is not None
        n = len(y)
        parts = min(self.workers, n // MIN_SLICE)
        bounds = np.linspace(0, n, parts + 1).astype(int)
        with warnings.catch_warnings():
            # Python ≥ 3.12 warns on forking a process with threads (BLAS pools among
            # them); the workers run NumPy only, whose BLAS re-initializes after a fork
            warnings.filterwarnings("ignore", "This process .* is multi-threaded")
            futures = [
                self._executor.submit(_solve_slice, (t, r, y[a:b], int(a), n))
                for a, b in itertools.pairwise(bounds)
            ]
            wait(futures)
        errors = [f.exception() for f in futures if f.exception() is not None]
        failures = [e for e in errors if isinstance(e, SolverFailure)]
        if failures and len(failures) == len(errors):
            merged = {
                int(i): why for e in failures for i, why in zip(e.indices, e.reasons, strict=True)
            }
            raise SolverFailure.of(merged, n)
        if errors:
            raise errors[0]
        done = [f.result() for f in futures]
        for message, category, filename, lineno in (w for part in done for w in part[3]):
            warnings.warn_explicit(message, category, filename, lineno)
        log_a = np.concatenate([part[0] for part in done])
        b = np.concatenate([part[1] for part in done])
        return log_a, b, np.concatenate([part[2] for part in done])
