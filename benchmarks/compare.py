"""Benchmark of ``cmverify.compare`` (issue 5): a 2-d model on 10,000 points at 11 times.

Run:  python benchmarks/compare.py [--write]

Times the first comparison (which builds the reference: x_t, f*(t, x_t) and
X_{t→s}(x_t) for every t) and a second comparison of another model on the same path,
grid, size and seed (which reuses it).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import datetime
import platform
import time

import numpy as np
from _results import write_section

import cmverify as cmv
from cmverify.compare import compare

MARKER = "## compare"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    path = cmv.MixturePath(cmv.mixtures.eight_gaussians(), cmv.Interpolant.linear())
    rng = np.random.default_rng(0)
    w1, b1, w2 = rng.normal(size=(2, 64)), rng.normal(size=64), rng.normal(size=(64, 2)) / 8

    def mlp(t, x):  # a stand-in 2-d model: x + small MLP correction
        return x * (1 - t) + np.tanh(x @ w1 + b1 + t) @ w2

    start = time.perf_counter()
    first = compare(mlp, path, n=args.n, name="mlp")
    t_first = time.perf_counter() - start
    start = time.perf_counter()
    compare(lambda t, x: mlp(t, x) * 0.9, path, n=args.n, name="mlp2")
    t_second = time.perf_counter() - start
    section = "\n".join(
        [
            MARKER,
            "",
            f"`python benchmarks/compare.py` — {datetime.date.today().isoformat()}, "
            f"{platform.machine()}, {os.cpu_count()} cores, OPENBLAS_NUM_THREADS=1.",
            "",
            f"2-d model (numpy MLP) on `eight_gaussians`, {args.n:,} points at each of "
            f"{len(first.per_time)} times, with self-consistency, boundary and sample quality "
            "(1-, 2- and 4-step samplers on 2,000 samples):",
            "",
            "| run | wall time |",
            "|---|---|",
            f"| first comparison (builds the reference: {len(first.per_time)} × {args.n:,} "
            f"consistency solves and maps to the previous time) | {t_first:.1f} s |",
            f"| second comparison, reference reused | {t_second:.1f} s |",
            "",
            "Target: under 20 s with the reference computed once and reused.",
            "",
        ]
    )
    print(section)
    if args.write:
        write_section(MARKER, section)


if __name__ == "__main__":
    main()
