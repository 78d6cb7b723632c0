"""cmverify's reference flow against the ODE solvers a user would pick instead (issue 16,
item 1): torchdiffeq, torchode and diffrax, at equal **max** error.

Run:  pip install torchdiffeq torchode diffrax      (for this script only, preferably in a
                                                    separate environment: jaxtyping and
                                                    typeguard register pytest plugins)
      python benchmarks/peers.py [--big 100000] [--rounds 3] [--write]

Each peer integrates the same mixture velocity, re-implemented in its library from the
same formula (eigenbasis form; the rotation skipped where every ``U_k = I``, as cmverify
does), float64, linear interpolant, ``x1 ~ N(0, I)`` from ``t = 1`` to ``t = 0``:

- torchdiffeq ``dopri8``, one batched solve (one step size for the whole batch);
- torchode ``dopri5`` (per-trajectory step control, not compiled);
- diffrax ``Dopri8`` under ``jax.vmap`` and ``jax.jit`` (per-trajectory steps).

A peer's tolerance (``rtol = atol``) is tuned down from the target by factors of
``√10`` until its max error over all trajectories (Euclidean, against cmverify at rtol
1e-12) meets the target; cmverify runs at its contract ``rtol = atol = target`` and its
measured max error is shown too (it is certified, not tuned). Wall times are paired per
interleaved round (cmverify, then each peer) and the median of the per-round ratios
``peer / cmverify`` is reported: below 1 means the peer is faster. Everything runs on
one thread (torch ``set_num_threads(1)``, XLA's CPU threads off, BLAS limited), so the
ratios compare the solvers, not their threading. JIT compilation is excluded (a warm-up
solve first). The work-precision figure ``docs/work_precision.png`` plots wall time
against max error over a range of tolerances for the first problem.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault(
    "XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
)

import argparse
import datetime
import pathlib
import platform
import time

import numpy as np
from _results import emit

import cmverify as cmv
from cmverify.reference import ReferenceFlow

MARKER = "## Peers: torchdiffeq, torchode, diffrax at equal max error"
ROOT = pathlib.Path(__file__).resolve().parents[1]


def problems(big: int) -> list[tuple[str, cmv.GaussianMixture, int, float]]:
    eight = cmv.mixtures.eight_gaussians()
    random8 = cmv.mixtures.random_mixture(8, 6, 0)
    return [
        ("eight_gaussians", eight, 1_000, 1e-9),
        ("eight_gaussians", eight, big, 1e-9),
        ("eight_gaussians", eight, big, 1e-6),
        ("random 8-d (K = 6)", random8, 1_000, 1e-6),
    ]


def mixture_arrays(mix: cmv.GaussianMixture) -> dict[str, np.ndarray]:
    u = mix.eigvecs
    return {
        "logw": np.log(mix.weights),
        "mu": mix.means,
        "lam": mix.eigvals,
        "u": np.ascontiguousarray(u),
        "mu_eig": np.einsum("kde,kd->ke", u, mix.means),
        "identity": np.array(bool(np.array_equal(u, np.broadcast_to(np.eye(mix.dim), u.shape)))),
    }


# -- the velocity in each library (same formula as cmverify.exact._path) ----------------------
def torch_velocity(arrays: dict[str, np.ndarray]):
    import torch

    a = {k: torch.tensor(v, dtype=torch.float64) for k, v in arrays.items() if k != "identity"}
    identity = bool(arrays["identity"])

    def velocity(t, x):  # t: () or (n,); x: (n, d)
        t = t.reshape(-1, 1, 1) if t.ndim else t
        alpha, sigma = 1.0 - t, t  # linear: α̇ = −1, σ̇ = 1
        c = alpha * alpha * a["lam"] + sigma * sigma  # (K, d) or (n, K, d)
        if identity:
            y = x[:, None, :] - alpha * a["mu"]
        else:
            y = torch.einsum("kde,nd->nke", a["u"], x) - alpha * a["mu_eig"]
        logit = a["logw"] - 0.5 * torch.log(c).sum(-1) - 0.5 * (y * y / c).sum(-1)
        r = torch.softmax(logit, dim=1)  # (n, K)
        g = (-alpha * a["lam"] + sigma) / c
        inner = g * y if identity else torch.einsum("kde,nke->nkd", a["u"], g * y)
        return torch.einsum("nk,nkd->nd", r, inner - a["mu"])

    return velocity


def jax_velocity(arrays: dict[str, np.ndarray]):
    import jax.numpy as jnp
    from jax.nn import softmax

    a = {k: jnp.asarray(v) for k, v in arrays.items() if k != "identity"}
    identity = bool(arrays["identity"])

    def velocity(t, x):  # one trajectory: t scalar, x (d,)
        alpha, sigma = 1.0 - t, t
        c = alpha * alpha * a["lam"] + sigma * sigma  # (K, d)
        y = (
            x - alpha * a["mu"]
            if identity
            else jnp.einsum("kde,d->ke", a["u"], x) - alpha * a["mu_eig"]
        )
        logit = a["logw"] - 0.5 * jnp.log(c).sum(-1) - 0.5 * (y * y / c).sum(-1)
        r = softmax(logit)
        g = (-alpha * a["lam"] + sigma) / c
        inner = g * y if identity else jnp.einsum("kde,ke->kd", a["u"], g * y)
        return r @ (inner - a["mu"])

    return velocity


# -- the solvers: each returns X_{1→0}(x1) as a numpy array -----------------------------------
def run_cmverify(mix, x1, tol):
    return ReferenceFlow(cmv.MixturePath(mix), rtol=tol, atol=tol).map(x1, 1.0, 0.0)


def make_torchdiffeq(arrays):
    import torch
    from torchdiffeq import odeint

    velocity = torch_velocity(arrays)
    times = torch.tensor([1.0, 0.0], dtype=torch.float64)

    def run(x1, tol):
        y0 = torch.as_tensor(x1)
        out = odeint(velocity, y0, times, method="dopri8", rtol=tol, atol=tol)
        return out[-1].numpy()

    return run


def make_torchode(arrays):
    import torch
    import torchode as to

    velocity = torch_velocity(arrays)
    term = to.ODETerm(velocity)

    def run(x1, tol):
        y0 = torch.as_tensor(x1)
        n = y0.shape[0]
        step = to.Dopri5(term=term)
        control = to.IntegralController(atol=tol, rtol=tol, term=term)
        solver = to.AutoDiffAdjoint(step, control)
        t_eval = torch.tensor([[1.0, 0.0]], dtype=torch.float64).expand(n, 2)
        sol = solver.solve(to.InitialValueProblem(y0=y0, t_eval=t_eval))
        return sol.ys[:, -1].numpy()

    return run


def make_diffrax(arrays):
    import diffrax
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    velocity = jax_velocity(arrays)
    term = diffrax.ODETerm(lambda t, y, args: velocity(t, y))
    compiled = {}

    def solver_for(tol):
        if tol not in compiled:

            def one(y0):
                sol = diffrax.diffeqsolve(
                    term,
                    diffrax.Dopri8(),
                    t0=1.0,
                    t1=0.0,
                    dt0=-0.01,
                    y0=y0,
                    stepsize_controller=diffrax.PIDController(rtol=tol, atol=tol),
                    max_steps=100_000,
                )
                return sol.ys[-1]

            compiled[tol] = jax.jit(jax.vmap(one))
        return compiled[tol]

    def run(x1, tol):
        out = solver_for(tol)(jnp.asarray(x1))
        return np.asarray(out.block_until_ready())

    return run


def timed(run, x1, tol):
    start = time.perf_counter()
    out = run(x1, tol)
    return time.perf_counter() - start, out


def max_error(x, truth):
    return float(np.max(np.linalg.norm(x - truth, axis=1)))


def tune(run, x1, truth, target, tune_rows):
    """The loosest tolerance ``target · 10^(−j/2)`` whose max error on the first
    ``tune_rows`` trajectories meets the target (warm-up included)."""
    tol = target
    sub, sub_truth = x1[:tune_rows], truth[:tune_rows]
    for _ in range(12):
        err = max_error(run(sub, tol), sub_truth)
        if err <= target:
            return tol
        tol /= np.sqrt(10.0)
    raise RuntimeError(f"no tolerance down to {tol:.1e} met {target:.0e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tune-rows", type=int, default=10_000)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    peers = {
        "torchdiffeq dopri8": make_torchdiffeq,
        "torchode dopri5": make_torchode,
        "diffrax Dopri8 (vmap, jit)": make_diffrax,
    }
    lines = [
        MARKER,
        "",
        f"`python benchmarks/peers.py --big {args.big} --rounds {args.rounds}` — "
        f"{datetime.date.today()}, {platform.machine()}, {os.cpu_count()} cores (one thread "
        f"each), Python {platform.python_version()}, NumPy {np.__version__}, torch "
        f"{torch.__version__}.",
        "",
        "Ratio = peer wall / cmverify wall, median over paired interleaved rounds (below 1: "
        "the peer is faster); each peer at the loosest tolerance whose max error met the "
        "target (tuned on the first "
        f"{args.tune_rows:,} trajectories; its max error over all is shown).",
        "",
        "| problem, n, target | cmverify (rtol = target) | " + " | ".join(peers) + " |",
        "|---|---|" + "---|" * len(peers),
    ]
    with threadpool_limits(1):
        for name, mix, n, target in problems(args.big):
            x1 = np.random.default_rng(0).standard_normal((n, mix.dim))
            truth = run_cmverify(mix, x1, 1e-12)
            arrays = mixture_arrays(mix)
            runs = {p: make(arrays) for p, make in peers.items()}
            tols = {p: tune(run, x1, truth, target, args.tune_rows) for p, run in runs.items()}
            # JIT specializes on shapes: one untimed solve of the full batch first; a peer
            # whose max error over all trajectories misses the target (tuned on a subset)
            # is tightened and warmed up again before the timed rounds.
            for p, run in runs.items():
                while max_error(run(x1, tols[p]), truth) > target:
                    tols[p] /= np.sqrt(10.0)
            ratios = {p: [] for p in peers}
            errors, cm_walls = {}, []
            for _ in range(args.rounds):
                wall, out = timed(lambda x, tol, m=mix: run_cmverify(m, x, tol), x1, target)
                cm_walls.append(wall)
                errors["cmverify"] = max_error(out, truth)
                for p, run in runs.items():
                    pw, pout = timed(run, x1, tols[p])
                    ratios[p].append(pw / wall)
                    errors[p] = max_error(pout, truth)
            cells = [
                f"{np.median(ratios[p]):.2f} (tol {tols[p]:.0e}, max err {errors[p]:.1e})"
                for p in peers
            ]
            lines.append(
                f"| {name}, {n:,}, {target:.0e} | {np.median(cm_walls):.3g} s (max err "
                f"{errors['cmverify']:.1e}) | " + " | ".join(cells) + " |"
            )
            print(lines[-1], flush=True)
        figure_line = work_precision(peers)
    lines += ["", figure_line]
    emit(MARKER, lines, args.write)


def work_precision(peers) -> str:
    """Wall time against max error over tolerances 1e-4 … 1e-11, eight_gaussians, 1,000
    trajectories; writes docs/work_precision.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mix = cmv.mixtures.eight_gaussians()
    x1 = np.random.default_rng(1).standard_normal((1_000, 2))
    truth = run_cmverify(mix, x1, 1e-12)
    arrays = mixture_arrays(mix)
    runs = {"cmverify ReferenceFlow": lambda x, tol: run_cmverify(mix, x, tol)}
    runs.update({p: make(arrays) for p, make in peers.items()})
    fig, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
    for label, run in runs.items():
        points = []
        for tol in 10.0 ** -np.arange(4.0, 11.5, 1.0):
            run(x1, tol)
            walls, out = [], None
            for _ in range(3):
                wall, out = timed(run, x1, tol)
                walls.append(wall)
            points.append((max_error(out, truth), min(walls)))
        err, wall = np.array(points).T
        ax.loglog(err, wall, "o-", label=label)
    ax.set_xlabel("max error over 1,000 trajectories (Euclidean)")
    ax.set_ylabel("wall time (s), best of 3")
    ax.set_title("eight_gaussians, X_{1→0}, float64, one thread")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    out = ROOT / "docs" / "work_precision.png"
    fig.savefig(out, dpi=120)
    return "Work-precision figure: `docs/work_precision.png` (tolerances 1e-4 … 1e-11)."


if __name__ == "__main__":
    main()
