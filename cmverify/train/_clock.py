"""Elapsed time and ETA of a training run, and its evaluation lines (progress output)."""

from __future__ import annotations

import pathlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Clock", "duration", "tell_evaluation"]


def duration(seconds: float) -> str:
    """``"42 s"``, ``"3 min 05 s"``, ``"1 h 02 min"`` (rounded to the second)."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


@dataclass
class Clock:
    """Elapsed time and ETA of a run. Training steps and evaluations are timed apart (an
    evaluation can cost as much as hundreds of steps): ETA = remaining steps × mean step
    time + remaining evaluations × mean evaluation time; before the first evaluation its
    cost is unknown, and the line says how many are still to come instead.

    ``config`` needs ``steps`` and ``eval_every`` (a :class:`~cmverify.train.TrainConfig`).
    """

    config: Any
    start: float = field(default_factory=time.perf_counter)
    eval_seconds: float = 0.0  # total time spent evaluating so far
    evals: int = 0  # evaluations done

    def evaluations(self, step: int) -> int:
        """The number of evaluations in the first ``step`` steps (the last step has one)."""
        every, steps = self.config.eval_every, self.config.steps
        return step // every + (step == steps and steps % every != 0)

    def line(self, done: int, now: float | None = None) -> str:
        """``elapsed 12 s, ETA 1 min 05 s`` after ``done`` steps."""
        elapsed = (time.perf_counter() if now is None else now) - self.start
        left = self.evaluations(self.config.steps) - self.evals
        eta = (elapsed - self.eval_seconds) / done * (self.config.steps - done)
        if self.evals:
            eta += self.eval_seconds / self.evals * left
        more = f" + {left} evaluation{'s' * (left > 1)}" if left and not self.evals else ""
        return f"elapsed {duration(elapsed)}, ETA {duration(eta)}{more}"


def tell_evaluation(
    progress: Callable[[str], None],
    config: Any,
    entry: dict[str, Any],
    times: str,
    out: pathlib.Path | None,
) -> None:
    """The evaluation's progress line (and MeanFlow's JVP line)."""
    nan = float("nan")
    errors = f"one-step rel RMSE {entry.get('one_step_rel_rmse', nan):.4f}"
    if "N" in entry:
        errors = f"N {entry['N']}  " + errors
    if config.method in ("meanflow", "shortcut"):
        errors += (
            f", 2-step {entry.get('two_step_rel_rmse', nan):.4f}, "
            f"4-step {entry.get('four_step_rel_rmse', nan):.4f}"
        )
    saved = f"  (checkpoint in {out})" if out is not None else ""
    progress(
        f"step {entry['step']}/{config.steps}  loss {entry['loss']:.4g}  {errors}  {times}{saved}"
    )
    jvp = entry.get("jvp")
    if jvp:
        progress(
            f"  JVP at (t, r) = (0.8, 0.3): {jvp['error']}"
            if "error" in jvp
            else f"  JVP at (t, r) = (0.8, 0.3): float32 target off float64 by "
            f"{jvp['target_float32']:.1e}; tangent off the exact by {jvp['tangent']:.2e}"
        )
