"""Flow-map derivatives of the reference: cost of ``ReferenceFlow.jacobian`` against
``map``, and where ``average_velocity`` needs its direct integration.

    python benchmarks/flowmaps.py [--n 10000] [--rounds 3]

1. ``jacobian`` and ``map`` of ``X_{1→0}`` for ``n`` points of eight_gaussians (linear and
   trig), interleaved rounds in one process, single-threaded; the ratio per round and its
   median (issue 12's bound: under 3×). Velocity-row evaluations are counted too.
2. ``u(x; s→s+h)`` for ``|h|`` from 0.5 to 1e-12, by the direct integration and by the
   difference quotient ``(X_{s→s+h}(x) − x)/h`` of two reference maps, both against a
   Gauss–Legendre truth ``(1/h) ∫ v(τ, X_τ) dτ`` (8 nodes on solves at rtol 1e-12): the
   quotient's error grows like ``1e-10/|h|``; the direct one stays at ``rtol |u|``. The
   ``h`` where the quotient's error passes 1e-9 is where a switch between the two would
   have to happen; the direct integration is used for every ``h`` (its cost is printed).

Results go to RESULTS.md ("Flow maps: Jacobian and average velocity").
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import os
import platform
import time

import numpy as np
from _results import write_section
from threadpoolctl import threadpool_limits

import cmverify as cmv

MARKER = "## Flow maps: Jacobian and average velocity"


def _timed(fun):
    start = time.process_time()
    out = fun()
    return time.process_time() - start, out


def jacobian_cost(n: int, rounds: int) -> list[str]:
    rows = []
    for name in ("linear", "trig"):
        path = cmv.MixturePath(cmv.mixtures.eight_gaussians(), cmv.interpolants.by_name(name))
        flow = cmv.ReferenceFlow(path)
        x = path.sample(1.0, n, rng=0)
        flow.jacobian(x[:50], 1.0, 0.0)  # warm up
        ratios, maps, jacs = [], [], []
        for _ in range(rounds):
            t_map, sol = _timed(lambda f=flow, x=x: f.solve(x, 1.0, 0.0))
            t_jac, jsol = _timed(lambda f=flow, x=x: f.solve_jacobian(x, 1.0, 0.0))
            ratios.append(t_jac / t_map)
            maps.append(t_map)
            jacs.append(t_jac)
        print(
            f"{name}: map {np.median(maps):.2f} s, jacobian {np.median(jacs):.2f} s, "
            f"ratio per round {[round(r, 2) for r in ratios]}"
        )
        rows.append(
            f"| eight_gaussians/{name} | {n:,} | {np.median(maps):.2f} s | "
            f"{np.median(jacs):.2f} s | {np.median(ratios):.2f} "
            f"({min(ratios):.2f}–{max(ratios):.2f}) | "
            f"{jsol.n_row_evaluations / sol.n_row_evaluations:.2f} | "
            f"{float(np.max(jsol.jacobian_error_estimate / jsol.jacobian_target)):.2g} |"
        )
    return rows


def average_velocity_switch() -> list[str]:
    path = cmv.MixturePath(cmv.mixtures.eight_gaussians(), cmv.Interpolant.linear())
    flow, tight = cmv.ReferenceFlow(path), cmv.ReferenceFlow(path, rtol=1e-12)
    s = 0.5
    x = flow.map(path.sample(0.0, 200, rng=1), 0.0, s)
    nodes, weights = np.polynomial.legendre.leggauss(8)
    rows, crossover = [], None
    for h in (0.5, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-10, 1e-12):
        # composite Gauss–Legendre, panels of length ≤ 0.02 (8 nodes each: error ≪ 1e-13),
        # all nodes in one tight solve with per-row end times
        panels = max(1, int(np.ceil(abs(h) / 0.02)))
        edges = np.linspace(0.0, 1.0, panels + 1)
        theta = np.concatenate(
            [a + (b - a) * (nodes + 1) / 2 for a, b in itertools.pairwise(edges)]
        )
        w_all = np.concatenate([(b - a) * weights / 2 for a, b in itertools.pairwise(edges)])
        taus = np.repeat(s + h * theta, len(x))
        ends = tight.map(np.tile(x, (len(theta), 1)), s, taus)
        vel = path.velocity(taus, ends).reshape(len(theta), len(x), -1)
        truth = np.tensordot(w_all, vel, axes=(0, 0))
        t_direct, direct = _timed(lambda h=h: flow.average_velocity(x, s, s + h))
        t_quotient, mapped = _timed(lambda h=h: flow.map(x, s, s + h))
        quotient = (mapped - x) / h
        e_direct = float(np.max(np.abs(direct - truth)))
        e_quotient = float(np.max(np.abs(quotient - truth)))
        print(f"h = {h:g}: direct {e_direct:.2e} ({t_direct:.2f} s), quotient {e_quotient:.2e}")
        if crossover is None and e_quotient > 1e-9:
            crossover = h
        rows.append(
            f"| {h:g} | {e_direct:.1e} | {e_quotient:.1e} | {t_direct:.2f} s | {t_quotient:.2f} s |"
        )
    return rows, crossover


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    with threadpool_limits(1):
        jac_rows = jacobian_cost(args.n, args.rounds)
        avg_rows, crossover = average_velocity_switch()
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    section = f"""{MARKER}

`benchmarks/flowmaps.py`, {datetime.date.today()}, {machine}; CPU time in one process,
single-threaded BLAS; the cores are shared, so ratios of interleaved rounds are what
carries.

**Jacobian.** `ReferenceFlow.solve_jacobian` (variational equation, `d + d²` numbers per
trajectory, the Jacobian certified as its own block) against `ReferenceFlow.solve` for
`X_{{1→0}}` (issue 12's bound: under 3×):

| path | n | map | jacobian | ratio: median (range over rounds) | velocity rows, jacobian / map | max Jacobian estimate / target |
|---|---|---|---|---|---|---|
{chr(10).join(jac_rows)}

The Jacobian's own error control takes about 1.2× the velocity rows of the map; the rest
of the ratio is the per-row work of `∇v` (the covariance over components,
`Σ_k r_k (m_k − v)(s_k − s̄)ᵀ`) and of `∇v J`, summed entry by entry with the points
last (a batched `matmul` of 2×2 matrices was 3× slower).

**Average velocity near `t = s`.** `u(x; s→s+h)` at 200 points of `p_{{0.5}}`
(eight_gaussians, linear), max error against `(1/h) ∫ v(τ, X_τ) dτ` (composite Gauss–Legendre,
8 nodes per panel of length ≤ 0.02, solves at rtol 1e-12), by the direct integration (`average_velocity`) and by the
quotient `(X_{{s→s+h}}(x) − x)/h` of the reference map:

| h | direct | quotient | time, direct | time, map |
|---|---|---|---|---|
{chr(10).join(avg_rows)}

The quotient loses `≈ eps |x| / |h|` (for short intervals the map itself is far more
accurate than its target; the cancellation of `X − x` is what is left) and first exceeds
1e-9 at `|h| = {crossover:g}`: a switch would have to happen there, with a second method
below it. The direct
integration of `U(θ) = (X_{{s+θh}} − x)/h` holds its relative target at every `h` (down to
`h = 0`, where it returns `v(s, x)` to rounding), so `average_velocity` uses it for all
`h`, at a cost that falls with `|h|` (the step cap is the map's divided by `|h|`).
"""
    write_section(MARKER, section)
    print(f"wrote {MARKER!r} to RESULTS.md")


if __name__ == "__main__":
    main()
