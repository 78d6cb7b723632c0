"""Benchmark of the compact trainer (issue 6): CT and CD judged by the exact flow map.

Run:  python benchmarks/trainer.py [--write] [--steps 15000]

1. CT and CD with the defaults on eight_gaussians and seed_bimodal: one- and two-step
   relative RMSE (against f*) along training.
2. Final one-step error against N (fixed-N runs, CT and CD, eight_gaussians): CT's O(1/N)
   bias against its variance.
3. At equal network evaluations (1, 2, 4): the trained models' samplers against Euler
   and Heun sampling of the exact velocity (energy distance to the data, i.i.d. floor).

Two runs at a time (one process per core, one torch thread each).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import datetime
import json
import pathlib
import platform
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from _results import write_section

MARKER = "## Trainer"


def run(kwargs: dict) -> dict:
    import torch

    torch.set_num_threads(1)
    from cmverify.train import TrainConfig, train

    config = TrainConfig(**kwargs)
    result = train(config)
    return {"config": kwargs, "metrics": result.metrics, "history": result.history}


def exact_solvers(mixture: str) -> list[dict]:
    import cmverify as cmv
    from cmverify.compare import energy_distance

    path = cmv.MixturePath(cmv.mixtures.by_name(mixture))
    rng = np.random.default_rng(7)
    data = path.mixture.sample(2000, rng)
    x1 = rng.standard_normal((2000, path.dim))
    rows = []
    for evals in (1, 2, 4):
        for name in ("Euler", "Heun"):
            steps = evals if name == "Euler" else max(evals // 2, 1)
            if name == "Heun" and evals == 1:
                continue
            h = 1.0 / steps
            x = x1.copy()
            for n in range(steps, 0, -1):
                t = n * h
                k1 = path.velocity(t, x)
                if name == "Euler":
                    x = x - h * k1
                else:
                    pred = x - h * k1
                    x = x - 0.5 * h * (k1 + path.velocity(t - h, pred))
            rows.append(
                {"solver": name, "evaluations": evals, "energy_distance": energy_distance(x, data)}
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=15000)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    jobs = []
    for mixture in ("eight_gaussians", "seed_bimodal"):
        for method in ("cd", "ct"):
            jobs.append(
                {
                    "mixture": mixture,
                    "method": method,
                    "steps": args.steps,
                    "eval_every": args.steps // 5,
                }
            )
    for n in (16, 32, 128):
        for method in ("cd", "ct"):
            jobs.append(
                {
                    "mixture": "eight_gaussians",
                    "method": method,
                    "steps": args.steps,
                    "n_min": n,
                    "n_max": n,
                    "eval_every": args.steps,
                }
            )
    with ProcessPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(run, jobs))
    lines = [
        MARKER,
        "",
        f"`python benchmarks/trainer.py` — {datetime.date.today().isoformat()}, {platform.machine()}, "
        f"{os.cpu_count()} cores (two runs at a time, one torch thread each); {args.steps:,} steps of 512.",
        "",
        "### 1. Along training (defaults: N = 64, μ = 0.95, pseudo-Huber, 1/Δt, lognormal t)",
        "",
        "| mixture | method | step | one-step rel. RMSE | rel. RMSE at t = 0.5 | energy distance (floor) | 2-step energy distance | wall |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results[:4]:
        c, m = r["config"], r["metrics"]
        for h in r["history"]:
            lines.append(
                f"| {c['mixture']} | {c['method'].upper()} | {h['step']} | {h['one_step_rel_rmse']:.4f} | "
                f"{h['half_rel_rmse']:.4f} | {h['energy_distance']:.2e} ({h['energy_distance_floor']:.1e}) | "
                f"{h['two_step_energy_distance']:.2e} | {m['wall_seconds']:.0f} s |"
            )
    lines += [
        "",
        "### 2. Final one-step relative RMSE against N (eight_gaussians)",
        "",
        "| N | CD | CT |",
        "|---|---|---|",
    ]
    by_n: dict[int, dict[str, float]] = {}
    for r in results[4:] + results[:2]:
        c = r["config"]
        by_n.setdefault(c.get("n_min", 64), {})[c["method"]] = r["metrics"]["one_step_rel_rmse"]
    for n in sorted(by_n):
        lines.append(
            f"| {n} | {by_n[n].get('cd', float('nan')):.4f} | {by_n[n].get('ct', float('nan')):.4f} |"
        )
    lines += [
        "",
        "### 3. Equal network evaluations (eight_gaussians): energy distance to the data",
        "",
        "| sampler | 1 | 2 | 4 |",
        "|---|---|---|---|",
    ]
    solvers = exact_solvers("eight_gaussians")
    for name in ("Euler", "Heun"):
        cells = [
            next(
                (
                    f"{s['energy_distance']:.2e}"
                    for s in solvers
                    if s["solver"] == name and s["evaluations"] == e
                ),
                "—",
            )
            for e in (1, 2, 4)
        ]
        lines.append(f"| {name} on the exact velocity | " + " | ".join(cells) + " |")
    for r in results[:2]:
        h = r["history"][-1]
        lines.append(
            f"| {r['config']['method'].upper()} model (one-step, two-step) | {h['energy_distance']:.2e} | "
            f"{h['two_step_energy_distance']:.2e} | — |"
        )
    lines += ["", "The i.i.d. floor (two data samples of 2,000) is about 9e-4.", ""]
    section = "\n".join(lines)
    print(section)
    (pathlib.Path(__file__).with_name("trainer_runs.json")).write_text(
        json.dumps(results, indent=1, default=float)
    )
    if args.write:
        write_section(MARKER, section)


if __name__ == "__main__":
    main()
