"""Worst case of ReferenceFlow's per-trajectory accuracy over 10⁶ trajectories.

Run:  python benchmarks/flow_worst_case.py [--n 100000] [--jobs 2] [--write]

For each configuration (mixture, interpolant, rtol), ``n`` points ``x1 ~ p_1`` are mapped
to ``t = 0`` by ``ReferenceFlow(path, rtol)`` with its defaults, and by the fine solve
alone (the pre-check behaviour: local error ≤ rtol/100 per step, steps ≤ 1/32). Truth:

- tier 1, every trajectory: DOP853 at local rtol = atol = 1e-14 with steps ≤ 1/128
  (100× tighter and a 4× shorter step cap than the fine solve: its error is below a
  hundredth of the fine solve's, including where the flow amplifies it);
- tier 2, for every refined trajectory and the 300 worst against tier 1 by each of
  err/target, err/estimate and the fine solve's err/target: the extended-precision flow
  map of ``cmverify._extended`` (80-bit long double, local 1e-16, steps ≤ 1/128). Float64
  solves of trajectories that amplify perturbations by 10⁴–10⁵ scatter by ~1e-10 among
  themselves from rounding alone, so no float64 solve can serve as their truth;
- seed_bimodal also against the quantile map ``F_0⁻¹(Φ(x1))`` (FLOW-QUANTILE), whose own
  error is ``≈ |∂x0/∂x1| · 1e-16`` (the flow's condition number times rounding).

Reported per configuration: the worst ``|X − X_true| / (atol + rtol |X_true|)`` and the
worst ``|X − X_true|`` (Euclidean), for ReferenceFlow and for the fine solve alone;
trajectories refined and unresolved; whether the error estimate ever fell below the true
error; velocity evaluations per trajectory (the fix's cost is the ratio to the fine solve).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import datetime
import platform
import time
import warnings
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from _results import write_section

import cmverify as cmv
from cmverify._extended import extended_flow_map
from cmverify.batched_rk import solve_batched
from cmverify.flow import DEFAULT_MAX_STEP, LOCAL_FACTOR, AccuracyWarning
from cmverify.quantile import quantile_flow_map

MARKER = "## Reference flow: worst case over 10⁶ trajectories"

CONFIGS = [
    ("eight_gaussians", "linear", 1e-10),
    ("eight_gaussians", "trig", 1e-10),
    ("eight_gaussians", "linear", 1e-9),
    ("random_mixture(2, 4, rng=1)", "linear", 1e-10),
    ("random_mixture(2, 4, rng=1)", "trig", 1e-10),
    ("random_mixture(3, 5, rng=2)", "linear", 1e-10),
    ("random_mixture(3, 5, rng=2)", "trig", 1e-10),
    ("random_mixture(8, 6, rng=0)", "linear", 1e-10),
    ("random_mixture(8, 6, rng=0)", "trig", 1e-10),
    ("seed_bimodal", "linear", 1e-10),
    ("seed_bimodal", "trig", 1e-10),
]


def build(name: str) -> cmv.GaussianMixture:
    if name.startswith("random_mixture"):
        return eval("cmv.mixtures." + name)  # a literal from CONFIGS
    return getattr(cmv.mixtures, name)()


def backward(path, x, rtol, max_step):
    n = len(x)
    return solve_batched(
        path.velocity, x, np.ones(n), np.zeros(n), rtol=rtol, atol=rtol, max_step=max_step
    )


def run(config: tuple[str, str, float], n: int, seed: int) -> dict:
    name, interp_name, rtol = config
    path = cmv.MixturePath(build(name), getattr(cmv.Interpolant, interp_name)())
    x1 = path.sample(1.0, n, rng=seed)
    flow = cmv.ReferenceFlow(path, rtol=rtol)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", AccuracyWarning)
        sol = flow.solve(x1, 1.0, 0.0)
    seconds = time.perf_counter() - start
    fine = backward(path, x1, rtol * LOCAL_FACTOR, DEFAULT_MAX_STEP)
    truth = backward(path, x1, 1e-14, 1 / 128).y
    target = rtol + rtol * np.linalg.norm(truth, axis=1)
    err = np.linalg.norm(sol.x - truth, axis=1)
    err_fine = np.linalg.norm(fine.y - truth, axis=1)
    suspects = [
        np.flatnonzero(sol.n_refinements),
        np.argsort(err / target)[-300:],
        np.argsort(err / np.maximum(sol.error_estimate, 1e-300))[-300:],
        np.argsort(err_fine / target)[-300:],
    ]
    tier2 = np.unique(np.concatenate(suspects))
    truth[tier2] = extended_flow_map(path, x1[tier2], 1.0, 0.0, rtol=1e-16, max_step=1 / 128)
    if name == "seed_bimodal":
        quantile = quantile_flow_map(path, x1, 1.0, 0.0)
        gap = np.abs(quantile - truth)[:, 0]
        quantile_gap = float(gap.max())
    else:
        quantile_gap = None
    target = rtol + rtol * np.linalg.norm(truth, axis=1)
    err = np.linalg.norm(sol.x - truth, axis=1)
    err_fine = np.linalg.norm(fine.y - truth, axis=1)
    resolved = np.setdiff1d(np.arange(n), sol.unresolved)
    under = err[resolved] > sol.error_estimate[resolved]
    return {
        "config": f"{name}, {interp_name}, rtol {rtol:g}",
        "n": n,
        "tier2": int(tier2.size),
        "worst_ratio": float((err / target)[resolved].max()),
        "worst_err": float(err[resolved].max()),
        "worst_ratio_fine": float((err_fine / target).max()),
        "worst_err_fine": float(err_fine.max()),
        "over_target_fine": int(np.sum(err_fine > target)),
        "refined": int(np.count_nonzero(sol.n_refinements)),
        "unresolved": int(sol.unresolved.size),
        "unresolved_worst_err": float(err[sol.unresolved].max()) if sol.unresolved.size else None,
        "estimate_below_truth": int(np.sum(under & (err[resolved] > 1e-3 * target[resolved]))),
        "worst_err_over_estimate": float(
            np.max(
                (err / np.maximum(sol.error_estimate, 1e-300))[resolved][
                    err[resolved] > 1e-3 * target[resolved]
                ],
                initial=0.0,
            )
        ),
        "evals": sol.n_row_evaluations / n,
        "evals_fine": fine.n_row_evaluations / n,
        "seconds": seconds,
        "quantile_gap": quantile_gap,
        "warnings": len(caught),
    }


def table(rows: list[dict]) -> str:
    lines = [
        "| configuration | n | worst err/target | worst err | fine alone: worst err/target (over target) | refined | unresolved | estimate < true error (worst true/estimate) | evals/traj (fine alone) | cost |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        unresolved = str(r["unresolved"])
        if r["unresolved"]:
            unresolved += f" (worst err {r['unresolved_worst_err']:.1e})"
        lines.append(
            f"| {r['config']} | {r['n']:,} | {r['worst_ratio']:.3f} | {r['worst_err']:.1e} | "
            f"{r['worst_ratio_fine']:.2f} ({r['over_target_fine']}) | {r['refined']} | "
            f"{unresolved} | {r['estimate_below_truth']} ({r['worst_err_over_estimate']:.2f}) | "
            f"{r['evals']:.0f} "
            f"({r['evals_fine']:.0f}) | {r['evals'] / r['evals_fine']:.2f}× |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="trajectories per configuration")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--write", action="store_true", help="write benchmarks/RESULTS.md")
    args = parser.parse_args()
    start = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(run, c, args.n, 1000 + i) for i, c in enumerate(CONFIGS)]
        rows = []
        for f in futures:
            rows.append(f.result())
            r = rows[-1]
            print(
                f"{r['config']}: worst err/target {r['worst_ratio']:.3f} (fine alone "
                f"{r['worst_ratio_fine']:.2f}), refined {r['refined']}, unresolved "
                f"{r['unresolved']}, evals {r['evals']:.0f} vs {r['evals_fine']:.0f}, "
                f"quantile gap {r['quantile_gap']}, extended truths {r['tier2']}",
                flush=True,
            )
    text = table(rows)
    total = sum(r["n"] for r in rows)
    print(text)
    print(f"{total:,} trajectories in {time.perf_counter() - start:.0f} s")
    if args.write:
        write_section(
            MARKER,
            f"{MARKER}\n\n"
            f"{datetime.date.today()}, {platform.machine()} ({os.cpu_count()} cores), "
            f"`python benchmarks/flow_worst_case.py --n {args.n}`: {total:,} trajectories "
            "`x1 ~ p_1` mapped to `t = 0` with `ReferenceFlow(path, rtol)` defaults; truth and "
            "method in the script's docstring. err = `|X − X_true|` (Euclidean), target = "
            "`atol + rtol |X_true|` (atol = rtol). 'fine alone' is the solve before the "
            "check existed (local error ≤ rtol/100 per step, steps ≤ 1/32); 'estimate < true "
            "error' counts resolved trajectories whose `error_estimate` fell below their true "
            "error (ignoring errors under 1e-3 × target, where the truth's own error is "
            "comparable); cost = velocity evaluations per trajectory of ReferenceFlow over "
            "those of the fine solve alone.\n\n" + text + "\n",
        )


if __name__ == "__main__":
    main()
