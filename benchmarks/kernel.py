"""The velocity kernel's operation count against this machine's measured rates (issue 16,
item 1).

Run:  python benchmarks/kernel.py [--n 10000] [--write]

The direct (eigenbasis) route of ``MixturePath.velocity_trusted`` with one time per point
(what the batched solver asks), counted per point from ``cmverify/exact/_evaluation.py``:

- over the ``K d`` entries of ``y_k``: ``α μ_k`` and ``x − α μ_k`` (2), ``y_k / sqrt(c)`` and
  its square (2), the sum over coordinates (1); the velocity's ``g ⊙ y_k``, ``α̇ μ_k`` and
  their sum (3), the weighting by ``r_k`` and the sum over components (2): **10 passes**;
- over the ``K`` exponents: ``b_k − ½ q_k`` (2), the maximum, the shift, the sum and the
  division of the log-sum-exp (4): **6 passes and K exponentials**;
- over the ``d`` coordinates: ``c = α² λ + σ²`` (3), ``1/c``, ``sqrt`` (2), ``log det`` (1
  pass and a log), the velocity's scale ``(α α̇ λ + σ σ̇)/c`` (3), the transposed copy of
  the result (1): **10 passes** (``K' d`` each where the components' spectra differ);
- rotated components (``U_k ≠ I``): two batched ``d × d`` products per component,
  ``4 K d²`` flops.

Temporaries are reused, not page-faulted anew (glibc's thresholds raised, as every
``MixturePath`` does; without it the eight_gaussians kernel ran 3.5× its bound). The
machine's rates are measured on arrays of one block's size (in cache): a multiply
``a * b → c``, an ``exp``, a sum over the leading axis, and the batched ``d × d`` products.
The bound is ``passes / multiply rate + exponentials / exp rate + flops / product rate``;
the ratio measured / bound says how far the kernel is from what its count allows
(target ≤ 2).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import datetime
import platform

import numpy as np
from _results import best_of, emit
from threadpoolctl import threadpool_limits

import cmverify as cmv

MARKER = "## Velocity kernel: operation count against the machine"


def rates(entries: int, k: int, d: int, n: int) -> dict[str, float]:
    """Elements (or flops) per second of the kernel's building blocks on ``entries``-sized
    arrays and on ``(k, d, d) @ (k, d, n)`` products."""
    rng = np.random.default_rng(0)
    a, b = rng.random(entries), rng.random(entries)
    out = np.empty(entries)
    u, y = rng.random((k, d, d)), rng.random((k, d, n))
    return {
        "multiply": entries / best_of(lambda: np.multiply(a, b, out=out)),
        "exp": entries / best_of(lambda: np.exp(a, out=out)),
        "sum": entries / best_of(lambda: np.add.reduce(a.reshape(8, -1), axis=0)),
        "matmul": 2 * k * d * d * n / best_of(lambda: np.matmul(u, y)),
    }


def count(mix: cmv.GaussianMixture) -> dict[str, float]:
    k, d = mix.n_components, mix.dim
    shared = bool(np.all(mix.eigvals == mix.eigvals[:1]))
    identity = bool(np.array_equal(mix.eigvecs, np.broadcast_to(np.eye(d), mix.eigvecs.shape)))
    return {
        "passes": 10 * k * d + 6 * k + 10 * (1 if shared else k) * d,
        "exp": k,
        "flops": 0 if identity else 4 * k * d * d,
    }


def per_point(mix: cmv.GaussianMixture, n: int) -> float:
    path = cmv.MixturePath(mix)
    rng = np.random.default_rng(1)
    x, t = rng.standard_normal((n, mix.dim)), rng.uniform(0.0, 1.0, n)
    return best_of(lambda: path.velocity_trusted(t, x)) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    cases = [
        ("eight_gaussians (K = 8, d = 2)", cmv.mixtures.eight_gaussians()),
        ("random 8-d (K = 6, rotated)", cmv.mixtures.random_mixture(8, 6, 0)),
    ]
    lines = [
        MARKER,
        "",
        f"`python benchmarks/kernel.py --n {args.n}` — {datetime.date.today()}, "
        f"{platform.machine()}, {os.cpu_count()} cores (one thread), Python "
        f"{platform.python_version()}, NumPy {np.__version__}.",
        "",
        "| mixture | passes / exp / flops per point | measured per point | bound from the rates "
        "| ratio | rates (multiply, exp, sum: Gelem/s; products: GFLOP/s) |",
        "|---|---|---|---|---|---|",
    ]
    with threadpool_limits(1):
        for name, mix in cases:
            path = cmv.MixturePath(mix)
            block = min(args.n, path._evaluator.block_rows)
            k, d = mix.n_components, mix.dim
            r = rates(k * d * block, k, d, block)
            c = count(mix)
            bound = c["passes"] / r["multiply"] + c["exp"] / r["exp"] + c["flops"] / r["matmul"]
            measured = per_point(mix, args.n)
            lines.append(
                f"| {name} | {c['passes']} / {c['exp']} / {c['flops']} | {measured * 1e9:.0f} ns "
                f"| {bound * 1e9:.0f} ns | {measured / bound:.2f} | {r['multiply'] / 1e9:.2f}, "
                f"{r['exp'] / 1e9:.2f}, {r['sum'] / 1e9:.2f}; {r['matmul'] / 1e9:.2f} |"
            )
    lines += [
        "",
        f"Blocks of {cmv.MixturePath(cases[0][1])._evaluator.block_rows} rows for eight_gaussians "
        "(about 128k array entries). The bound counts every pass at the multiply's rate, which "
        "flatters reductions and divisions; what remains above it is memory traffic of the "
        "temporaries and per-call overhead.",
    ]
    emit(MARKER, lines, args.write)


if __name__ == "__main__":
    main()
