"""Shared helpers of the benchmark scripts: replace (or append) one section of RESULTS.md;
time a call at its best."""

from __future__ import annotations

import pathlib
import time

RESULTS = pathlib.Path(__file__).with_name("RESULTS.md")


def write_section(marker: str, section: str) -> None:
    """Put ``section`` (which starts with the heading ``marker``) into RESULTS.md, replacing
    the section with that heading if there is one."""
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\n"
    if marker in text:
        head, _, rest = text.partition(marker)
        tail = rest[rest.find("\n## ") + 1 :] if "\n## " in rest else ""
        text = head + section + ("\n" + tail if tail else "")
    else:
        text = text.rstrip() + "\n\n" + section
    RESULTS.write_text(text)


def emit(marker: str, lines: list[str], write: bool) -> None:
    """Print the section made of ``lines`` and, with ``write``, put it into RESULTS.md."""
    text = "\n".join(lines)
    print(text)
    if write:
        write_section(marker, text)


def best_of(fn, repeat: int = 7) -> float:
    """The shortest wall time of ``repeat`` calls of ``fn`` after one warm-up call."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best
