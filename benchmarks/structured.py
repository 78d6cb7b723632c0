"""Benchmark of structured covariances (issue 16, items 2–3): the velocity's cost per point
by route, its operation count against the machine's measured rates, and exact reference
trajectories of high-dimensional mixtures.

Run:  python benchmarks/structured.py [--big 100000] [--wide 1000] [--write]

- Per point: the velocity of one mixture (K = 10) given five ways — full covariances
  (eigenbasis route, ``O(K d²)``), isotropic (product route, ``4 d K`` flops), diagonal
  (``O(K d)``), low-rank-plus-diagonal with a
  general diagonal (Woodbury, ``O(K d r)``; per-point times add an ``r × r`` matrix per
  point and component, ``O(K d r²)``) and with an isotropic one (probabilistic PCA: the
  product route, ``4 d K (r + 1)`` flops) — at one time for the whole batch and at one
  time per point (what the solver asks).
- The product route's flops per point against the measured rate of the same matrix
  products on this machine (the route is within 2× of what its count allows when the
  ratio is ≤ 2).
- ``digits`` (d = 64, K = 10, r = 12): ``--big`` trajectories ``X_{1→0}`` at the default
  rtol 1e-10, on 2 processes (two shards, one BLAS thread each).
- A random PPCA mixture with d = 3072 (CIFAR-sized), K = 10, r = 32: ``--wide``
  trajectories at rtol 1e-6 with 2 BLAS threads.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import datetime
import multiprocessing
import platform
import time

import numpy as np
from _results import emit
from threadpoolctl import threadpool_limits

import cmverify as cmv
from cmverify.exact import GaussianMixture
from cmverify.reference import ReferenceFlow

MARKER = "## Structured covariances and high-dimensional mixtures"


def random_mixtures(d: int, k: int, r: int, seed: int = 0) -> dict[str, GaussianMixture]:
    """One random mixture in the four forms (full only for d ≤ 256)."""
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.full(k, 5.0))
    means = rng.normal(size=(k, d)) * 0.7
    factors = rng.normal(size=(k, d, r)) / np.sqrt(d) * 2.0
    # κ₀ = 1 + ‖F_k‖²/min D_k ≤ 100 keeps the uneven diagonal on the Woodbury route (≈ 45 at
    # d = 3072, 83 at d = 64; the first measurements, D in [0.02, 0.05], had κ₀ 220–410)
    diag = rng.uniform(0.1, 0.25, size=(k, d))
    iso = np.repeat(diag[:, :1], d, axis=1)
    out = {
        "isotropic (products)": GaussianMixture.isotropic(weights, means, diag[:, 0]),
        "diagonal": GaussianMixture.diagonal(weights, means, diag),
        "low rank, general D (Woodbury)": GaussianMixture.low_rank(weights, means, factors, diag),
        "low rank, D = s I (products)": GaussianMixture.low_rank(weights, means, factors, iso),
    }
    if d <= 256:
        lr = out["low rank, general D (Woodbury)"]
        out = {"full (eigenbasis)": GaussianMixture(weights, means, lr.covs), **out}
    return out


def per_point_cost(mix: GaussianMixture, n: int, per_point: bool) -> float:
    """Seconds per point of ``velocity`` (best of 3)."""
    path = cmv.MixturePath(mix)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(n, mix.dim))
    t = rng.uniform(0.05, 0.95, n) if per_point else np.asarray(0.5)
    path.velocity_trusted(t, x)
    best = np.inf
    for _ in range(3):
        start = time.perf_counter()
        path.velocity_trusted(t, x)
        best = min(best, time.perf_counter() - start)
    return best / n


def matmul_rate(d: int, k: int, r: int, n: int) -> float:
    """FLOP/s of the product route's two matrix products on ``n`` points."""
    rng = np.random.default_rng(2)
    basis = rng.normal(size=(d, k * (r + 1)))
    x = rng.normal(size=(n, d))
    basis_t = np.ascontiguousarray(basis.T)
    basis @ (basis_t @ x.T)
    best = np.inf
    for _ in range(5):
        start = time.perf_counter()
        basis @ (basis_t @ x.T)
        best = min(best, time.perf_counter() - start)
    return 4 * d * k * (r + 1) * n / best


def _shard(args: tuple[int, int, float]) -> tuple[float, int, float, int]:
    seed, n, rtol = args
    with threadpool_limits(1):
        path = cmv.MixturePath(cmv.mixtures.digits())
        x = np.random.default_rng(seed).standard_normal((n, 64))
        start = time.perf_counter()
        sol = ReferenceFlow(path, rtol=rtol).solve(x, 1.0, 0.0)
        wall = time.perf_counter() - start
    return (
        wall,
        sol.n_row_evaluations,
        float(np.max(sol.error_estimate / sol.target)),
        sol.unresolved.size,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big", type=int, default=100_000)
    parser.add_argument("--wide", type=int, default=1_000)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    lines = [
        MARKER,
        "",
        f"`python benchmarks/structured.py --big {args.big} --wide {args.wide}` — "
        f"{datetime.date.today()}, {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, NumPy {np.__version__}.",
        "",
        "Velocity per point (µs), K = 10, linear interpolant, best of 3; per-point times are",
        "what the batched solver asks (one time per trajectory).",
        "",
        "| d, r | form | one time | per-point times |",
        "|---|---|---|---|",
    ]
    for d, r, n in ((64, 12, 4000), (3072, 32, 400)):
        with threadpool_limits(1):
            for name, mix in random_mixtures(d, 10, r).items():
                one = per_point_cost(mix, n, False) * 1e6
                many = per_point_cost(mix, n, True) * 1e6
                lines.append(f"| {d}, {r} | {name} | {one:.2f} | {many:.2f} |")
    lines += ["", "Product route (D = s I) against the rate of its own matrix products:", ""]
    lines += [
        "| d, r | flops per point 4dK(r+1) | achieved | matmul rate | ratio |",
        "|---|---|---|---|---|",
    ]
    for d, r, n in ((64, 12, 4000), (3072, 32, 400)):
        with threadpool_limits(1):
            mix = random_mixtures(d, 10, r)["low rank, D = s I (products)"]
            cost = per_point_cost(mix, n, True)
            rate = matmul_rate(d, 10, r, n)
        flops = 4 * d * 10 * (r + 1)
        lines.append(
            f"| {d}, {r} | {flops:,} | {flops / cost / 1e9:.1f} GFLOP/s | {rate / 1e9:.1f} GFLOP/s "
            f"| {rate / (flops / cost):.2f} |"
        )

    half = args.big // 2
    start = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        shards = pool.map(_shard, [(0, half, 1e-10), (1, args.big - half, 1e-10)])
    wall = time.perf_counter() - start
    rows = sum(s[1] for s in shards)
    lines += [
        "",
        f"`digits` (d = 64, K = 10, r = 12), {args.big:,} trajectories X_{{1→0}} at rtol 1e-10, "
        f"2 processes: **{wall:.1f} s** wall (target < 60 s), {rows / args.big:.0f} velocity rows "
        f"per trajectory, worst error estimate {max(s[2] for s in shards):.3f} of the target, "
        f"{sum(s[3] for s in shards)} unresolved.",
    ]

    with threadpool_limits(2):
        mix = random_mixtures(3072, 10, 32)["low rank, D = s I (products)"]
        path = cmv.MixturePath(mix)
        x = np.random.default_rng(3).standard_normal((args.wide, 3072))
        start = time.perf_counter()
        sol = ReferenceFlow(path, rtol=1e-6, threads=None).solve(x, 1.0, 0.0)
        wide = time.perf_counter() - start
    per = wide / args.wide
    lines += [
        "",
        f"Random PPCA mixture, d = 3072, K = 10, r = 32, {args.wide:,} trajectories at rtol 1e-6, "
        f"2 BLAS threads: {wide:.1f} s ({per * 1e3:.0f} ms per trajectory, "
        f"{sol.n_row_evaluations / args.wide:.0f} velocity rows each; worst error estimate "
        f"{np.max(sol.error_estimate / sol.target):.3f} of the target); 10,000 at this rate: "
        f"{per * 1e4 / 60:.1f} min (target < 10 min; the solve is linear in the number of "
        "trajectories).",
    ]
    emit(MARKER, lines, args.write)


if __name__ == "__main__":
    main()
