"""Small helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import math
import sys
import time


def _format_number(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    return f"{value:.2e}"


def _positive_int(text: str) -> int:
    """argparse type: an integer ≥ 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be ≥ 1, got {value}")
    return value


def _stderr_progress(start: float):
    """A progress callback printing ``[elapsed s] line`` to stderr."""

    def progress(line: str) -> None:
        print(f"[{time.perf_counter() - start:6.1f} s] {line}", file=sys.stderr, flush=True)

    return progress


def _one_line(exc: BaseException) -> str:
    """``Type: first line of the message`` (user code's errors, for a one-line report)."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
