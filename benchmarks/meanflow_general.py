"""The MeanFlow floor of mixtures that do not reduce (different covariances, means spanning
``d``), in d = 3 and 4: error estimate, solves and time against the budget of Jacobian
solves (issue 14: the floor to ≤ 1e-6 relative in d ≤ 4, with its error stated).

Run:  python benchmarks/meanflow_general.py [--budgets default 16 17] [--cases 0 1 2]
      [--workers N] [--write]

Cases: ``random_mixture(d, K, seed)`` (components of different covariances), the linear
interpolant, ``meanflow_quadrature(path, t, r, max_solves=2**b, workers=N)`` at the default
rtol 1e-6 for each ``b`` of ``--budgets`` (``default``: ``max_solves`` left to the floor;
``N`` processes share the solves, default 1). Reported
per budget: the value, its relative error estimate, the rule, the solves and the time,
and the value's distance to the last budget's (a check of consistency, not an error: the
estimates state the errors). Progress lines go to stderr.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import datetime
import platform
import sys
import time
import warnings

import numpy as np
from _results import emit

import cmverify as cmv
from cmverify import loss_floors

MARKER = "## MeanFlow floor: mixtures that do not reduce, d = 3 and 4"
CASES = [
    (3, 3, 0, 0.8, 0.4),
    (3, 2, 0, 0.5, 0.1),
    (4, 2, 0, 0.8, 0.4),
    (4, 3, 0, 0.8, 0.6),
    (4, 3, 0, 0.8, 0.4),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--budgets", nargs="+", default=["default"], help="exponents b of 2^b, or 'default'"
    )
    parser.add_argument(
        "--cases", type=int, nargs="+", default=[0, 1, 2], help="indices into CASES"
    )
    parser.add_argument("--workers", type=int, default=1, help="processes sharing the solves")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    budgets = [None if b == "default" else int(b) for b in args.budgets]
    command = " ".join(["python benchmarks/meanflow_general.py", *sys.argv[1:]])
    lines = [
        MARKER,
        "",
        f"`{command}` — {datetime.date.today()}, {platform.machine()}, "
        f"{os.cpu_count()} cores ({args.workers} process(es), one thread each), Python {platform.python_version()}, NumPy {np.__version__}.",
        "",
        "| mixture, (t, r) | max_solves | value | error estimate | rule, solves | time | "
        "distance to the last row's value |",
        "|---|---|---|---|---|---|---|",
    ]
    for case in args.cases:
        d, k, seed, t, r = CASES[case]
        path = cmv.MixturePath(cmv.mixtures.random_mixture(d, k, seed), cmv.Interpolant.linear())
        rows = []
        for b in budgets:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                begin = time.perf_counter()
                (rec,) = loss_floors.meanflow_quadrature(
                    path,
                    t,
                    r,
                    max_solves=None if b is None else 2**b,
                    progress=lambda s: print(s, file=sys.stderr),
                    workers=args.workers,
                )
                wall = time.perf_counter() - begin
            rows.append((b, rec, wall))
            print(
                f"{CASES[case]} {_budget(b)}: {rec.value!r}, {rec.error_estimate / rec.value:.2e}"
            )
        last = rows[-1][1].value
        for b, rec, wall in rows:
            lines.append(
                f"| random_mixture({d}, {k}, {seed}), ({t}, {r}) | {_budget(b)} | {rec.value:.10g} | "
                f"{rec.error_estimate / rec.value:.1e} | {rec.rule}, {rec.nodes:,} | "
                f"{wall:.0f} s | {abs(rec.value - last) / last:.1e} |"
            )
            print(lines[-1], flush=True)
    emit(MARKER, lines, args.write)


def _budget(b: int | None) -> str:
    return "default" if b is None else f"2^{b}"


if __name__ == "__main__":
    main()
