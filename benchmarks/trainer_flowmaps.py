"""The defaults study of the flow-map methods in the compact trainer (MeanFlow, shortcut):
eight_gaussians, linear interpolant, 15,000 steps of 512, judged by the exact flow map.

Run:  python benchmarks/trainer_flowmaps.py [--stage NAME ...] [--write] [--steps 15000]

Each stage is a list of configurations (changes from the defaults of
:class:`cmverify.train.TrainConfig`); every finished run is appended to
``trainer_flowmaps_runs.jsonl`` at once (an interrupted study keeps what it ran, and a
run already in the file is not run again). ``--write`` puts the table of all runs into
RESULTS.md. Two runs at a time (one process per core, one torch thread each).

Targets (the torch issue): MeanFlow one-step relative RMSE ≤ 0.06 with 2-step ≤ one-step;
shortcut one-step ≤ 0.08; each run ≤ 3 minutes on 2 cores.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import dataclasses
import datetime
import json
import pathlib
import platform
from concurrent.futures import ProcessPoolExecutor, as_completed

from _results import emit

MARKER = "## Trainer: flow-map methods"
RUNS = pathlib.Path(__file__).with_name("trainer_flowmaps_runs.jsonl")

PAPER = {"mf_times": "logit_normal", "adaptive_p": 1.0}  # MeanFlow's ImageNet recipe
RELEASED = {"target_mu": 0.95, "sc_bootstrap_fraction": 0.125}  # shortcut's first defaults

STAGES: dict[str, list[dict]] = {
    "meanflow": [
        {"method": "meanflow"},
        {"method": "meanflow", "teacher": "exact"},
        {"method": "meanflow", **PAPER},
        {"method": "meanflow", **PAPER, "adaptive_p": 0.5},
        {"method": "meanflow", **PAPER, "frequencies": 8},
        {"method": "meanflow", **PAPER, "adaptive_p": 0.0},
        {"method": "meanflow", "mf_times": "uniform"},
        {"method": "meanflow", "mf_ratio": 0.5},
        {"method": "meanflow", "mf_ratio": 0.125},
        {"method": "meanflow", "lr": 1e-3},
        {"method": "meanflow", "frequencies": 2},
        {"method": "meanflow", "eval_ema": 0.995},
    ],
    # shortcut: the bootstrap's target network and fraction, the base case
    "shortcut": [
        {"method": "shortcut", "target_mu": mu, "sc_bootstrap_fraction": f}
        for mu in (0.95, 0.0, 0.999)
        for f in (0.125, 0.25)
    ]
    + [
        {"method": "shortcut", "sc_base": "zero", **RELEASED},
        {"method": "shortcut", "frequencies": 4, **RELEASED},
        {"method": "shortcut", "teacher": "exact", **RELEASED},
    ],
    # distillation with the defaults
    "distill": [{"method": "shortcut", "teacher": "exact"}],
    # how much a result moves with the seed alone (the defaults)
    "seeds": [{"method": m, "seed": s} for m in ("meanflow", "shortcut") for s in (1, 2)],
}


def run(changes: dict, steps: int) -> dict:
    import time

    import torch

    torch.set_num_threads(1)
    from cmverify.train import TrainConfig, train

    config = TrainConfig(**{"steps": steps, "eval_every": steps // 3, **changes})
    start = time.perf_counter()
    result = train(config)
    metrics = {k: v for k, v in result.metrics.items() if k != "comparison"}
    return {
        "changes": changes,
        "config": dataclasses.asdict(result.config),  # resolved: what ran
        "steps": steps,
        "metrics": metrics,
        "history": result.history,
        "wall_seconds": time.perf_counter() - start,
    }


def _done() -> list[dict]:
    if not RUNS.exists():
        return []
    return [json.loads(line) for line in RUNS.read_text().splitlines() if line.strip()]


def _key(changes: dict, steps: int) -> str:
    return json.dumps({"changes": changes, "steps": steps}, sort_keys=True)


def table(runs: list[dict]) -> list[str]:
    lines = [
        MARKER,
        "",
        f"`python benchmarks/trainer_flowmaps.py --write` — {datetime.date.today().isoformat()}, "
        f"{platform.machine()}, {os.cpu_count()} cores (two runs at a time, one torch thread "
        "each); eight_gaussians, linear, batch 512. Relative RMSE against the exact "
        "`X_{1→0}` of the k-step chain from the noise; `X(½→0)` on `x ~ p_½`; mean over "
        "the default pair grid; JVP: float32 target against float64 and the tangent against "
        "the exact one at `(t, r) = (0.8, 0.3)`. Changes from the defaults of `TrainConfig` "
        "(MeanFlow: `mf_times='nested'`, `adaptive_p=0`, `mf_ratio=0.25`, 4 frequencies; "
        "shortcut: `target_mu=0`, `sc_bootstrap_fraction=0.25`, `d_min=1/128`). Wall: two "
        "runs sharing the 2 cores (the seed rows shared them with other work too); a run "
        "alone takes less (README's trainer table).",
        "",
        "| method | changes | steps | one-step | 2-step | 4-step | X(½→0) | pair grid | JVP f32, tangent | wall |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]

    def cell(m: dict, key: str) -> str:
        return f"{m[key]:.4f}" if isinstance(m.get(key), float) else "failed"

    for r in runs:
        m, c = r["metrics"], dict(r["changes"])
        method = c.pop("method")
        jvp = m.get("jvp") or {}
        jvp_cell = f"{jvp['target_float32']:.1e}, {jvp['tangent']:.2f}" if "tangent" in jvp else "—"
        changes = ", ".join(f"{k}={v}" for k, v in c.items()) or "defaults"
        lines.append(
            f"| {method} | {changes} | {r['steps']} | {cell(m, 'one_step_rel_rmse')} | "
            f"{cell(m, 'two_step_rel_rmse')} | {cell(m, 'four_step_rel_rmse')} | "
            f"{cell(m, 'half_rel_rmse')} | {cell(m, 'flow_map_rel_rmse')} | {jvp_cell} | "
            f"{r['wall_seconds']:.0f} s |"
        )
    return [*lines, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", action="append", choices=sorted(STAGES))
    parser.add_argument("--steps", type=int, default=15000)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    done = {_key(r["changes"], r["steps"]) for r in _done()}
    jobs = [
        changes
        for stage in args.stage or []
        for changes in STAGES[stage]
        if _key(changes, args.steps) not in done
    ]
    with ProcessPoolExecutor(max_workers=2) as pool:
        futures = {pool.submit(run, changes, args.steps): changes for changes in jobs}
        for future in as_completed(futures):
            result = future.result()
            with RUNS.open("a") as f:
                f.write(json.dumps(result, default=float) + "\n")
            m = result["metrics"]
            print(
                f"{result['changes']}: one-step {m.get('one_step_rel_rmse')}, 2-step "
                f"{m.get('two_step_rel_rmse')}, {result['wall_seconds']:.0f} s",
                flush=True,
            )
    emit(MARKER, table(_done()), args.write)


if __name__ == "__main__":
    main()
