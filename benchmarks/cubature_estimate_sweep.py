"""The adaptive cubature's error estimate against truths computed another way, from each
starting partition: the worst ``error / estimate`` over random collinear mixtures.

Run:  python benchmarks/cubature_estimate_sweep.py [--cases 400] [--starts 0 1 2 3 4] [--write]

The integrand is the flow-matching floor's ``Var(v_c | x_t)`` (cheap, closed form); the truth
is its 1-d reduction (``tests/test_loss_floor_cubature.py``: the 1-d floor along the line of
the means at rtol 1e-12 plus the transverse closed form). Mixtures from
``cmverify.testing.strategies.collinear_mixtures`` (d = 2 … 4, 2 … 4 isotropic components,
standard deviations ≥ 0.05), the linear, trig, quadratic and cos-linear interpolants, ``t``
in [0.02, 0.98]; Hypothesis derandomized (measured: the draws still differ between some
calls and after edits of the library, whose constants Hypothesis also draws on, so compare
worst cases, not cases). The components
share one isotropic covariance, so every sheet between them is a plane: curved sheets
(unequal covariances) are not covered. For each
start (the flow-matching floor's ``FIRST_EDGES``, the MeanFlow floor's ``COARSE_EDGES`` and
``COARSER_EDGES``, and two coarser partitions the floors do not use) and each rtol (the
floors' default by dimension, and a hundredth of it): the cases, the worst ratio
``error / (estimate + 1e-13 · truth)`` (the truth's own accuracy), and how many exceed 1.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import datetime
import platform
import sys
import time

import hypothesis
import numpy as np
from _results import emit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cmverify as cmv
from cmverify.loss_floors._cubature import (
    COARSE_EDGES,
    COARSER_EDGES,
    FIRST_EDGES,
    cubature_rule,
)
from cmverify.loss_floors._flow_matching import DEFAULT_RTOL
from cmverify.testing import strategies as cst

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from test_loss_floor_cubature import _collinear_truth

MARKER = "## Cubature error estimate: from each starting partition"
STARTS = {
    "FIRST_EDGES (flow-matching floor)": FIRST_EDGES,
    "COARSE_EDGES (MeanFlow floor)": COARSE_EDGES,
    "COARSER_EDGES[0] (MeanFlow floor, small budgets)": COARSER_EDGES[0],
    "(−9, −3, 3, 9) (not used)": (-9.0, -3.0, 3.0, 9.0),
    "(−9, 0, 9) (not used)": (-9.0, 0.0, 9.0),
}


def sweep(edges: tuple[float, ...], factor: float, cases: int) -> tuple[list[float], str]:
    """The ratios ``error / (estimate + 1e-13 truth)`` of ``cases`` draws, and the worst
    case described."""
    ratios: list[float] = []
    worst = [0.0, ""]

    @settings(
        max_examples=cases,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        mixture=cst.collinear_mixtures(dims=st.integers(2, 4), min_std=0.05),
        interpolant=cst.interpolants(include_singular=False),
        t=cst.times(0.02, 0.98, endpoints=False),
    )
    def case(mixture, interpolant, t):
        path = cmv.MixturePath(mixture, interpolant)
        rtol = factor * DEFAULT_RTOL[mixture.dim]
        g = lambda x: path.velocity_target_variance(t, x)  # noqa: E731
        cub = cubature_rule(path, t, g, rtol, 2**22, edges)
        truth = _collinear_truth(path, t)
        ratio = abs(cub.value - truth) / (cub.error_estimate + 1e-13 * truth)
        ratios.append(ratio)
        if ratio > worst[0]:
            worst[:] = [
                ratio,
                f"d = {mixture.dim}, {mixture.n_components} modes, t = {t:.3g}, rtol {rtol:g}: "
                f"{abs(cub.value - truth) / truth:.1e} off at an estimate of "
                f"{cub.error_estimate / truth:.1e}",
            ]

    case()
    return ratios, str(worst[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=400, help="cases per start and rtol")
    parser.add_argument(
        "--starts", type=int, nargs="+", default=list(range(len(STARTS))), help="indices"
    )
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    command = " ".join(["python benchmarks/cubature_estimate_sweep.py", *sys.argv[1:]])
    lines = [
        MARKER,
        "",
        f"`{command}` — {datetime.date.today()}, {platform.machine()}, Python "
        f"{platform.python_version()}, NumPy {np.__version__}, Hypothesis "
        f"{hypothesis.__version__} (derandomized).",
        "",
        "| start | rtol | cases | worst error / estimate | over 1 | the worst case |",
        "|---|---|---|---|---|---|",
    ]
    for name, edges in [list(STARTS.items())[i] for i in args.starts]:
        for factor, label in ((1.0, "default"), (0.01, "default / 100")):
            began = time.perf_counter()
            ratios, worst = sweep(edges, factor, args.cases)
            r = np.array(ratios)
            lines.append(
                f"| {name} | {label} | {r.size} | {r.max():.3g} | {int(np.sum(r > 1))} | {worst} |"
            )
            print(f"{name}, {label}: {time.perf_counter() - began:.0f} s", file=sys.stderr)
    emit(MARKER, lines, args.write)


if __name__ == "__main__":
    main()
