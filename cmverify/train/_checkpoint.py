"""Checkpoints of a training run: ``model.pt``, ``config.json``, ``metrics.json``.

A checkpoint is written at every evaluation (and at the end), so an interrupted run keeps
its last evaluated model. Each file is written to a temporary file in the same folder and
moved into place with :func:`os.replace` (atomic on POSIX and Windows), so a reader — or
a run killed mid-write — never sees a half-written file; SIGINT is held back while the
three files are moved, so they always belong to the same step.

- ``model.pt``: the evaluation (EMA) model's ``state_dict()``, loadable with
  ``torch.load(..., weights_only=True)``;
- ``config.json``: the :class:`~cmverify.train.TrainConfig` as a dict;
- ``metrics.json``: ``complete`` (false until the run finished), ``step`` (of the saved
  model), the metrics of its evaluation, and ``history`` (every evaluation so far).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pathlib
import secrets
import signal
import threading
from collections.abc import Iterator
from typing import Any

import torch

__all__ = ["CHECKPOINT_FILES", "TrainingInterrupted", "interrupts_held", "write_checkpoint"]

CHECKPOINT_FILES = ("model.pt", "config.json", "metrics.json")


class TrainingInterrupted(KeyboardInterrupt):
    """Raised by :func:`~cmverify.train.train` when a ``KeyboardInterrupt`` (Ctrl-C) stops it.

    A ``KeyboardInterrupt``, so ``except KeyboardInterrupt`` still catches it; it also says
    how far the run got and what it saved: ``step`` (optimizer steps completed),
    ``steps`` (planned), ``saved_step`` (the step of the last checkpoint, ``None`` when none
    was written) and ``checkpoint_dir`` (``None`` when :func:`~cmverify.train.train` had
    none).
    """

    def __init__(
        self,
        step: int,
        steps: int,
        saved_step: int | None,
        checkpoint_dir: pathlib.Path | None,
    ) -> None:
        super().__init__(step, steps, saved_step, checkpoint_dir)
        self.step = step
        self.steps = steps
        self.saved_step = saved_step
        self.checkpoint_dir = checkpoint_dir

    def __str__(self) -> str:
        where = f"interrupted at step {self.step}/{self.steps}"
        if self.checkpoint_dir is None:
            return f"{where}; no checkpoint folder was given, nothing saved"
        if self.saved_step is None:
            return f"{where}, before the first checkpoint; nothing saved in {self.checkpoint_dir}"
        files = ", ".join(CHECKPOINT_FILES)
        return f"{where}; the model of step {self.saved_step} is saved in {self.checkpoint_dir} ({files})"


@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) back until the block ends, then deliver it to the handler that
    was in place (by default: ``KeyboardInterrupt`` raised after the block). Nests.

    Swaps the Python-level handler rather than masking the signal: a mask set in the
    main thread does not hold a signal that the kernel delivers to another thread (torch's
    and BLAS's worker threads), and Python then still raises in the main thread. A no-op
    outside the main thread, where handlers cannot be changed.
    """
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.getsignal(signal.SIGINT)
    if previous is None:  # not the main thread, or a handler not installed from Python
        yield
        return
    received: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            if callable(previous):
                previous(signal.SIGINT, None)  # default_int_handler: KeyboardInterrupt
            elif previous == signal.SIG_DFL:
                os.kill(os.getpid(), signal.SIGINT)  # what the signal would have done


def _temporary(out: pathlib.Path, name: str) -> pathlib.Path:
    """A new hidden file beside ``out / name`` (created with the usual permissions, not
    ``mkstemp``'s owner-only ones, since it becomes the checkpoint file)."""
    tmp = out / f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    tmp.open("xb").close()
    return tmp


def write_checkpoint(
    folder: str | os.PathLike[str],
    model: torch.nn.Module,
    config: Any,
    metrics: dict[str, Any],
) -> list[pathlib.Path]:
    """Write ``model.pt`` (``model.state_dict()``), ``config.json`` (the dataclass
    ``config``) and ``metrics.json`` (``metrics``, JSON-serializable) into ``folder``,
    each atomically; return the three paths."""
    out = pathlib.Path(folder)
    texts = {
        "config.json": json.dumps(dataclasses.asdict(config), indent=2),
        "metrics.json": json.dumps(metrics, indent=2),
    }
    staged: dict[str, pathlib.Path] = {}
    try:
        for name in CHECKPOINT_FILES:
            staged[name] = _temporary(out, name)
            if name == "model.pt":
                torch.save(model.state_dict(), staged[name])
            else:
                staged[name].write_text(texts[name])
        with interrupts_held():
            for name, tmp in staged.items():
                os.replace(tmp, out / name)
    finally:
        for tmp in staged.values():
            tmp.unlink(missing_ok=True)
    return [out / name for name in CHECKPOINT_FILES]
