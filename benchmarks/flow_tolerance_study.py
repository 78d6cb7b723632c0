"""Why ReferenceFlow runs each step at rtol/100 with steps ≤ 1/32: global error and cost
of the batched DOP853 for several (local tolerance, max step) pairs.

Run:  python benchmarks/flow_tolerance_study.py [--write]

Two test sets: (1) random Gaussians (d = 1, 2, 8; linear and trig) against the closed
form FLOW-GAUSS and seed_bimodal against the quantile map FLOW-QUANTILE; (2) random
mixtures (d = 1–3, K = 1–4, variances down to 0.01) under the five interpolants of
cmverify.strategies against solves at local tolerance 1e-13 with steps ≤ 1/256.
Error: max over trajectories of |X − X_exact| / (1 + |x|).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import datetime

import numpy as np
from _results import write_section
from cmverify.strategies import named_interpolants

import cmverify as cmv
from cmverify.reference import gaussian_flow_map, quantile_flow_map, solve_batched

MARKER = "## Reference flow: local tolerance and step cap"
SETTINGS = [
    (1e-10, np.inf),
    (1e-10, 1 / 32),
    (1e-10, 1 / 64),
    (1e-11, 1 / 32),
    (1e-12, 1 / 16),
    (1e-12, 1 / 32),
]


def backward(path, x, rtol, max_step):
    n = len(x)
    return solve_batched(
        path.velocity, x, np.ones(n), np.zeros(n), rtol=rtol, atol=rtol, max_step=max_step
    )


def test_sets():
    closed, mixtures = [], []
    for d in (1, 2, 8):
        for seed in range(4):
            mix = cmv.mixtures.random_mixture(d, 1, rng=100 * d + seed)
            for interp in (cmv.Interpolant.linear(), cmv.Interpolant.trig()):
                path = cmv.MixturePath(mix, interp)
                x = path.sample(1.0, 2000, seed)
                closed.append(
                    (path, x, gaussian_flow_map(mix.means[0], mix.covs[0], interp, x, 1.0, 0.0))
                )
    for interp in (cmv.Interpolant.linear(), cmv.Interpolant.trig()):
        path = cmv.MixturePath(cmv.mixtures.seed_bimodal(), interp)
        x = np.linspace(-4, 4, 2001)[:, None]
        closed.append((path, x, quantile_flow_map(path, x, 1.0, 0.0)))
    for d in (1, 2, 3):
        for seed in range(6):
            mix = cmv.mixtures.random_mixture(
                d, 1 + seed % 4, rng=1000 * d + seed, min_variance=0.01
            )
            for interp in named_interpolants().values():
                path = cmv.MixturePath(mix, interp)
                x = path.sample(1.0, 300, seed)
                mixtures.append((path, x, backward(path, x, 1e-13, 1 / 256).y))
    return {
        "Gaussians + seed_bimodal (closed forms)": closed,
        "random mixtures (tight solves)": mixtures,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    sets = test_sets()
    header = (
        "| local rtol = atol | max step | "
        + " | ".join(f"{name}: worst error | evaluations per trajectory" for name in sets)
        + " |"
    )
    rows = [header, "|" + "---|" * (2 + 2 * len(sets))]
    for rtol, max_step in SETTINGS:
        cells = []
        for cases in sets.values():
            worst, evaluations, count = 0.0, 0, 0
            for path, x, exact in cases:
                sol = backward(path, x, rtol, max_step)
                err = np.linalg.norm(sol.y - exact, axis=1) / (1 + np.linalg.norm(x, axis=1))
                worst = max(worst, float(err.max()))
                evaluations += sol.n_row_evaluations
                count += len(x)
            cells += [f"{worst:.1e}", f"{evaluations / count:.0f}"]
        step = "none" if np.isinf(max_step) else f"1/{round(1 / max_step)}"
        rows.append(f"| {rtol:g} | {step} | " + " | ".join(cells) + " |")
        print(rows[-1], flush=True)
    n_closed = sum(len(x) for _, x, _ in next(iter(sets.values())))
    n_mix = sum(len(x) for _, x, _ in list(sets.values())[1])
    section = "\n".join(
        [
            MARKER,
            "",
            f"`python benchmarks/flow_tolerance_study.py` — {datetime.date.today().isoformat()}, "
            f"{os.cpu_count()} cores. {n_closed:,} trajectories against closed forms and "
            f"{n_mix:,} against tight solves, all from t = 1 to t = 0.",
            "",
            *rows,
            "",
            "ReferenceFlow's default (rtol 1e-10) is the last row: local tolerance rtol/100 "
            "and steps ≤ 1/32.",
            "",
        ]
    )
    print(section)
    if args.write:
        write_section(MARKER, section)


if __name__ == "__main__":
    main()
