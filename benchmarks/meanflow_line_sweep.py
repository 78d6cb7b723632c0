"""The MeanFlow floor of mixtures that reduce to a line, against their 1-d reductions, over
random cases (issue 14: the floor to ≤ 1e-6 relative in d ≤ 4 with its error stated).

Run:  python benchmarks/meanflow_line_sweep.py [--n 300] [--seed 0] [--write]

Each case: ``d`` in 2–4, ``K`` in 2–4 components ``N(a_k e + b, s² I)`` (``a_k`` uniform in
``[−3, 3]``, ``e`` Haar-random, ``b ⊥ e`` with entries up to 1, ``s`` log-uniform in
``[0.05, 1]``, Dirichlet(1) weights), one of the five interpolants, ``t`` uniform in
``[0.02, 0.98]``, ``r = 0`` for one case in five, else ``t`` times a uniform in
``[0, 0.95]``. The floor by ``loss_floors.meanflow_quadrature`` at its defaults with the
product rule ruled out (isotropic modes on any line are also a product, which the floor
takes first since the grid axes are found from the means; this sweep measures the line
rule's d-dimensional Jacobian solves: ``loss_floors._reduction``), the truth by the 1-d reduction — the 1-d floor along ``e``
(the data side with the density-ratio Jacobian and ``ReferenceFlow.map``, rtol 1e-10; no
Jacobian solve, no adjugate) plus ``(d − 1) W_t² s² c_r / c_t²`` across. Reported: how
many converged, the worst error relative to the floor and to the stated estimate, and
the time per floor. Cases whose floor is beyond float64 (a ``ValueError`` from both) are
counted apart.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import datetime
import platform
import time
import warnings
from unittest import mock

import numpy as np
from _results import emit

import cmverify as cmv
from cmverify import loss_floors
from cmverify.loss_floors import _reduction

MARKER = "## MeanFlow floor: mixtures on a line against their 1-d reductions"


def random_case(rng: np.random.Generator) -> tuple[cmv.MixturePath, float, float, float, str]:
    """One path of the docstring's family, its ``(t, r)``, its truth and a description."""
    d, k = int(rng.integers(2, 5)), int(rng.integers(2, 5))
    frame = np.linalg.qr(rng.standard_normal((d, d)))[0]
    positions = rng.uniform(-3.0, 3.0, k)
    offset = frame[:, 1:] @ rng.uniform(-1.0, 1.0, d - 1)
    s2 = (10.0 ** rng.uniform(np.log10(0.05), 0.0)) ** 2
    weights = rng.dirichlet(np.ones(k))
    means = positions[:, None] * frame[:, 0] + offset
    interpolant = cmv.interpolants.by_name(str(rng.choice(cmv.interpolants.names())))
    path = cmv.MixturePath(
        cmv.GaussianMixture(weights, means, np.broadcast_to(s2 * np.eye(d), (k, d, d))),
        interpolant,
    )
    t = float(rng.uniform(0.02, 0.98))
    r = 0.0 if rng.uniform() < 0.2 else t * float(rng.uniform(0.0, 0.95))
    line = cmv.GaussianMixture(weights, positions[:, None], np.full((k, 1, 1), s2))
    (one_d,) = loss_floors.meanflow_quadrature(cmv.MixturePath(line, interpolant), t, r, rtol=1e-10)
    at, ar = interpolant.at(t), interpolant.at(r)
    c_t, c_r = (float(a.alpha) ** 2 * s2 + float(a.sigma) ** 2 for a in (at, ar))
    truth = one_d.value + (d - 1) * float(at.wronskian) ** 2 * s2 * c_r / c_t**2
    about = (
        f"d = {d}, K = {k}, s = {np.sqrt(s2):.3g}, a = {np.round(np.sort(positions), 2).tolist()}, "
        f"{interpolant.name}, (t, r) = ({t:.3f}, {r:.3f})"
    )
    return path, t, r, truth, about


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    rows, beyond, rules, notes, slowest = [], 0, set(), [], [0.0, ""]
    start = time.perf_counter()
    for i in range(args.n):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                path, t, r, truth, about = random_case(rng)
            except ValueError:
                beyond += 1
                continue
            begin = time.perf_counter()
            with mock.patch.object(_reduction, "product_factors", lambda mixture: None):
                (rec,) = loss_floors.meanflow_quadrature(path, t, r)
            wall = time.perf_counter() - begin
        error = abs(rec.value - truth)
        rules.add(rec.rule)
        rows.append((path.dim, error / truth, error / rec.error_estimate, rec.converged, wall))
        if not rec.converged:
            notes.append(
                f"- not converged: {about}: floor {truth:.4g}, error {error / truth:.1e}, "
                f"estimate {rec.error_estimate / rec.value:.1e} relative, {rec.nodes} solves"
            )
        if wall > slowest[0]:
            slowest[:] = [wall, f"- slowest: {about}: {wall:.1f} s, {rec.nodes} solves"]
        if (i + 1) % 25 == 0:
            print(f"{i + 1}/{args.n} cases, {time.perf_counter() - start:.0f} s", flush=True)
    data = np.array([row[1:] for row in rows])
    dims = np.array([row[0] for row in rows])
    lines = [
        MARKER,
        "",
        f"`python benchmarks/meanflow_line_sweep.py --n {args.n} --seed {args.seed}` — "
        f"{datetime.date.today()}, {platform.machine()}, 2 cores (one thread), Python "
        f"{platform.python_version()}, NumPy {np.__version__}.",
        "",
        f"{len(rows)} random cases (family in the script's docstring; {beyond} more beyond "
        f"float64, refused by both), rule(s): {', '.join(sorted(rules))}.",
        "",
        "| d | cases | converged (default rtol 1e-6) | worst error / floor | median | "
        "worst error / estimate | time per floor: median, worst |",
        "|---|---|---|---|---|---|---|",
    ]
    for d in (2, 3, 4):
        sub = data[dims == d]
        if not len(sub):
            continue
        lines.append(
            f"| {d} | {len(sub)} | {int(np.sum(sub[:, 2]))} | {np.max(sub[:, 0]):.1e} | "
            f"{np.median(sub[:, 0]):.1e} | {np.max(sub[:, 1]):.2f} | "
            f"{np.median(sub[:, 3]):.1f} s, {np.max(sub[:, 3]):.1f} s |"
        )
    lines += ["", *notes, slowest[1]]
    emit(MARKER, lines, args.write)


if __name__ == "__main__":
    main()
