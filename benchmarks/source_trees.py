"""Paired timings of two source trees of cmverify (e.g. before and after a refactor):
a 100,000-trajectory ``ReferenceFlow`` solve and ``cmverify verify`` (quick or full), run
alternately in fresh interpreters so that both see the same machine load.

    git worktree add /tmp/before <commit>
    python benchmarks/source_trees.py /tmp/before . [--n 100000] [--full] [--repeats 2]

Each tree is put first on ``sys.path`` of its subprocess; the flow solves must return the
same numbers (their checksums are printed), and the verify runs must pass. Ratios, not
absolute times, are what carries across machines.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import subprocess
import sys
import time

FLOW = """
import sys, time
sys.path.insert(0, {tree!r})
import numpy as np
from threadpoolctl import threadpool_limits
import cmverify as cmv
assert cmv.__file__.startswith({tree!r}), cmv.__file__
path = cmv.MixturePath(cmv.mixtures.eight_gaussians(), cmv.Interpolant.linear())
x = np.random.default_rng(0).standard_normal(({n}, 2))
with threadpool_limits(1):
    flow = cmv.ReferenceFlow(path)
    flow.consistency(1.0, x[:100])
    start = time.process_time()
    y = flow.consistency(1.0, x)
    print(time.process_time() - start, repr(float(y.sum())))
"""

VERIFY = """
import sys
sys.path.insert(0, {tree!r})
from cmverify.cli import main
sys.exit(main(["verify"{quick}]))
"""


def _run(code: str) -> tuple[float, str]:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    ).stdout
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=pathlib.Path)
    parser.add_argument("after", type=pathlib.Path)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--full", action="store_true", help="the full battery, not --quick")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    trees = {"before": str(args.before.resolve()), "after": str(args.after.resolve())}
    for _ in range(args.repeats):
        for label, tree in trees.items():
            _, out = _run(FLOW.format(tree=tree, n=args.n))
            cpu, checksum = out.split()
            print(f"flow   {label:6s} n={args.n}: cpu {float(cpu):7.2f} s  checksum {checksum}")
    quick = "" if args.full else ', "--quick"'
    for label, tree in trees.items():
        wall, _ = _run(VERIFY.format(tree=tree, quick=quick))
        print(f"verify {label:6s} {'full' if args.full else 'quick'}: wall {wall:7.1f} s")


if __name__ == "__main__":
    main()
