"""Deliberate thread counts for BLAS and torch (private; used by the CLI and the trainer).

cmverify's heavy work is many *small* operations: an MLP of width 128 on batches of 512,
and velocities of mixtures whose BLAS calls are ``(n, d) @ (d, d)`` products with
``d ≤ a few hundred``. For these, worker threads cost more to wake and synchronize than
they save, and on a machine whose cores are shared (CI runners, parallel test workers,
several jobs) they oversubscribe the cores: measured on 2 shared cores, ``cmverify train
--steps 500`` took 136 s with torch's default threads and 11 s with one (identical
results). So the CLI runs with **one thread** unless ``--threads N`` says otherwise.

:class:`limit_threads` limits, for the duration of a ``with`` block,

- every BLAS library loaded in the process (OpenBLAS, MKL, BLIS: NumPy's and SciPy's,
  which may be two distinct copies) through ``threadpoolctl`` — the documented way to
  change a loaded BLAS's thread count; environment variables such as
  ``OPENBLAS_NUM_THREADS`` are read only once, when the library loads;
- torch's intra-op thread count (``torch.set_num_threads``), when torch is already
  imported — this module never imports torch itself (importing it costs seconds);

and restores both on exit. A library loaded *inside* the block (a user's model file that
imports torch, SciPy imported late) is brought under the limit by :func:`refresh_limits`,
which a nested context's exit also calls: the innermost open context governs.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any

__all__ = ["DEFAULT_THREADS", "limit_threads", "refresh_limits"]

#: The CLI's default: one thread (see the module docstring for the measurements).
DEFAULT_THREADS = 1

_ACTIVE: list[limit_threads] = []  # the open contexts, innermost last


def _check_count(threads: Any) -> int | None:
    if threads is None:
        return None
    import numbers

    if isinstance(threads, bool) or not isinstance(threads, numbers.Integral):
        raise TypeError(f"threads must be a positive int or None, got {type(threads).__name__}")
    threads = int(threads)
    if threads < 1:
        raise ValueError(f"threads must be ≥ 1, got {threads}")
    return threads


class limit_threads:
    """Context manager: at most ``threads`` BLAS threads and torch intra-op threads.

    ``threads = None`` leaves every setting as it is (a no-op context), so library code
    can write ``with limit_threads(threads):`` for an optional argument. Contexts nest;
    each restores what it found on entry. Entering costs one scan of the loaded shared
    libraries by threadpoolctl (about a millisecond), so wrap whole computations, not
    calls in an inner loop.
    """

    def __init__(self, threads: int | None) -> None:
        self.threads = _check_count(threads)
        self._blas: list[Any] = []  # threadpoolctl limiters to restore, in entry order
        self._limited: set[str] = set()  # their libraries' file paths
        self._torch_before: int | None = None

    def __enter__(self) -> limit_threads:
        _ACTIVE.append(self)
        if self.threads is not None:
            try:
                self._apply()
            except BaseException:
                self.__exit__(None, None, None)
                raise
        return self

    def _apply(self) -> None:
        from threadpoolctl import ThreadpoolController

        # One scan of the loaded libraries; a library this context already limits keeps
        # its limiter, so a refresh only acts when a BLAS was loaded since.
        blas = ThreadpoolController().select(user_api="blas")
        paths = {lib.filepath for lib in blas.lib_controllers}
        if paths - self._limited:
            self._blas.append(blas.limit(limits=self.threads))
            self._limited |= paths
        torch = sys.modules.get("torch")
        if torch is not None and self._torch_before is None:
            self._torch_before = torch.get_num_threads()
            torch.set_num_threads(self.threads)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._torch_before is not None:
                sys.modules["torch"].set_num_threads(self._torch_before)
            for limiter in reversed(self._blas):
                limiter.restore_original_limits()
        finally:
            self._blas.clear()
            self._limited.clear()
            self._torch_before = None
            _ACTIVE.remove(self)
        # An enclosing context entered before torch was imported now takes over torch.
        refresh_limits()


def refresh_limits() -> None:
    """Apply the innermost open :class:`limit_threads` to libraries loaded since it was
    entered (torch imported by a user's file, a BLAS loaded late); no-op outside one."""
    if _ACTIVE and _ACTIVE[-1].threads is not None:
        _ACTIVE[-1]._apply()
