"""Benchmark of the reference flow (issue 3): batched per-trajectory DOP853 against a
per-trajectory ``solve_ivp`` loop and against the seed figure's fixed-step midpoint rule.

Run:  python benchmarks/reference_flow.py [--n 10000] [--big 100000] [--loop 50]

Writes a Markdown section to stdout; ``--write`` also replaces the section in
``benchmarks/RESULTS.md``. All ratios are measured in one run on one machine.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import datetime
import platform
import time

import numpy as np
import scipy
from _results import write_section
from scipy.integrate import solve_ivp

import cmverify as cmv
from cmverify.reference import ReferenceFlow

MARKER = "## Reference flow"


def timed(fn, *args, repeat=1):
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn(*args)
        best = min(best, time.perf_counter() - start)
    return best, out


def midpoint(path, x, steps=2048):
    """The seed figure's method: explicit midpoint, fixed steps, from t = 1 to 0."""
    h = -1.0 / steps
    t = 1.0
    for _ in range(steps):
        k = path.velocity(t, x)
        x = x + h * path.velocity(t + h / 2, x + (h / 2) * k)
        t = max(t + h, 0.0)
    return x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--big", type=int, default=100_000)
    parser.add_argument("--loop", type=int, default=50)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()

    path = cmv.MixturePath(cmv.mixtures.eight_gaussians(), cmv.Interpolant.linear())
    x1 = path.sample(1.0, args.n, rng=0)
    flow = ReferenceFlow(path)  # rtol = 1e-10, max_step = 1/32
    truth = ReferenceFlow(path, rtol=1e-12, max_step=1 / 128).map(x1, 1.0, 0.0)  # local 1e-14
    print("reference solution done", flush=True)

    wall, sol = timed(lambda: flow.solve(x1, 1.0, 0.0))
    err = np.linalg.norm(sol.x - truth, axis=1)
    t_eval, _ = timed(path.velocity, np.full(args.n, 0.5), x1, repeat=20)
    t_row = t_eval / args.n
    print(f"batched: {wall:.2f} s", flush=True)

    sub = x1[: args.loop]

    def loop(rtol):
        out = np.empty_like(sub)
        for i, x in enumerate(sub):
            r = solve_ivp(
                lambda t, y: path.velocity(t, y[None])[0],
                (1.0, 0.0),
                x,
                method="DOP853",
                rtol=rtol,
                atol=rtol,
            )
            out[i] = r.y[:, -1]
        return out

    wall_loop, loop_x = timed(loop, 1e-10)
    loop_err = np.linalg.norm(loop_x - truth[: args.loop], axis=1)
    wall_loop12, loop_x12 = timed(loop, 1e-12)
    loop_err12 = np.linalg.norm(loop_x12 - truth[: args.loop], axis=1)
    print(f"solve_ivp loops: {wall_loop:.2f} s, {wall_loop12:.2f} s", flush=True)

    wall_mid, mid_x = timed(midpoint, path, x1)
    mid_err = np.linalg.norm(mid_x - truth, axis=1)
    print(f"midpoint: {wall_mid:.2f} s", flush=True)

    big = path.sample(1.0, args.big, rng=1)
    wall_big, big_sol = timed(lambda: flow.solve(big, 1.0, 0.0))
    print(f"{args.big} trajectories: {wall_big:.2f} s", flush=True)

    per_batched = wall / args.n
    per_loop = wall_loop / args.loop
    lines = [
        MARKER,
        "",
        f"`python benchmarks/reference_flow.py` — {datetime.date.today().isoformat()}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, NumPy {np.__version__}, SciPy {scipy.__version__}, "
        "OPENBLAS_NUM_THREADS=1.",
        "",
        f"`eight_gaussians`, linear interpolant, {args.n:,} trajectories from `x1 ~ N(0, I)` "
        "at t = 1 to t = 0; errors against a solve at local tolerance 1e-14 (max step 1/128).",
        "",
        "| method | wall time | per trajectory | velocity evaluations | max error |",
        "|---|---|---|---|---|",
        f"| ReferenceFlow, rtol 1e-10 (batched, per-trajectory control, local tolerance 1e-12) | {wall:.2f} s | "
        f"{per_batched * 1e6:.0f} µs | {sol.n_calls} batched calls, "
        f"{sol.n_row_evaluations / args.n:.0f} per trajectory | {err.max():.1e} |",
        f"| (a) `solve_ivp` DOP853 rtol 1e-10, one trajectory at a time ({args.loop} of them) | "
        f"{wall_loop:.2f} s | {per_loop * 1e6:.0f} µs | — | {loop_err.max():.1e} |",
        f"| (a') the same loop at rtol 1e-12 | {wall_loop12:.2f} s | "
        f"{wall_loop12 / args.loop * 1e6:.0f} µs | — | {loop_err12.max():.1e} |",
        f"| (b) seed figure's method: explicit midpoint, 2048 fixed steps (batched) | "
        f"{wall_mid:.2f} s | {wall_mid / args.n * 1e6:.0f} µs | 4096 batched calls | "
        f"{mid_err.max():.1e} |",
        "",
        f"- Speed-up per trajectory over (a): **{per_loop / per_batched:.0f}×**, at "
        f"{'better' if err[: args.loop].max() <= loop_err.max() else 'WORSE'} accuracy on "
        f"the common subset (max error {err[: args.loop].max():.1e} vs {loop_err.max():.1e}); "
        f"over (a') **{wall_loop12 / args.loop / per_batched:.0f}×** "
        f"(its max error {loop_err12.max():.1e}).",
        f"- One batched velocity evaluation on all {args.n:,} points: {t_eval * 1e3:.2f} ms. "
        f"Solver time / (batched calls × that) = {wall / (sol.n_calls * t_eval):.2f}; "
        f"solver time / (row evaluations × per-row cost {t_row * 1e6:.2f} µs) = "
        f"{wall / (sol.n_row_evaluations * t_row):.2f} (target ≤ 2: the solver adds "
        "little beyond the physics).",
        f"- {args.big:,} trajectories in d = 2: **{wall_big:.1f} s** (target < 30 s), "
        f"{big_sol.n_row_evaluations / args.big:.0f} evaluations per trajectory.",
        "",
    ]
    section = "\n".join(lines)
    print(section)
    if args.write:
        write_section(MARKER, section)


if __name__ == "__main__":
    main()
