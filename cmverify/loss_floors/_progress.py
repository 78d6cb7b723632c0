"""Progress lines of floors that run for minutes (loss-floors layer)."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["PROGRESS_SECONDS", "throttled"]

#: Least time between two progress lines of one floor.
PROGRESS_SECONDS = 5.0


def throttled(
    progress: Callable[[str], None] | None, label: str, rtol: float
) -> Callable[[int, float, float], None] | None:
    """A cubature's ``report(nodes, value, estimate)`` that calls ``progress`` with a line
    at most every :data:`PROGRESS_SECONDS` (``None`` where ``progress`` is)."""
    if progress is None:
        return None
    last = [time.monotonic()]

    def report(nodes: int, value: float, estimate: float) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_SECONDS:
            last[0] = now
            relative = estimate / abs(value) if value else float("inf")
            progress(
                f"{label}: {nodes:,} evaluations, value {value:.10g}, error estimate "
                f"{relative:.1e} of it (target {rtol:g})"
            )

    return report
