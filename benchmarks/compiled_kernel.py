"""Does a compiled kernel pay? numba against the numpy solver (issue 16, item 1).

Run:  python benchmarks/compiled_kernel.py [--n 1000] [--write]

numba is **not** a dependency of cmverify: install it for this script only
(``pip install numba``). The script compiles, with numba, the mixture velocity of the
direct eigenbasis route (one point at a time, fused: the ``K`` quadratic forms, the
responsibilities ``w_k det(C_k)^{-1/2} exp(−½ (q_k − min q))`` — ``K`` exponentials and
``K`` square roots, no logarithm — and the weighted component velocities) and a
per-trajectory DOP853 with the step-size rule of ``cmverify.reference._batched_rk``, run
as cmverify's certificate runs it: levels 0 and 1 of ``cmverify.reference._flow.LEVELS``
(local tolerances ``1e-2 rtol`` and ``1e-4 rtol``, step caps ``1/32`` and ``1/64``, the
second first step halved). The linear interpolant only (``α = 1 − t``, ``σ = t``).

It measures, in one process with one thread: the velocity per point (numba, and numpy's
``MixturePath.velocity_trusted`` on the same points and per-point times); the certified
solve ``X_{1→0}`` (``ReferenceFlow.solve`` against the two numba levels; the maps
compared); the machine's ``exp`` rate; and the floor that ``exp`` alone sets on the
certified solve, ``evaluations per trajectory × K × time per exp``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import datetime
import math
import platform

import numba as nb
import numpy as np
from _results import best_of, emit
from scipy.integrate._ivp import dop853_coefficients as tableau

import cmverify as cmv
from cmverify.reference import ReferenceFlow
from cmverify.reference._flow import DEFAULT_MAX_STEP, LEVELS

MARKER = "## Compiled kernel (numba): measured, not adopted"
STAGES = tableau.N_STAGES
A = np.ascontiguousarray(tableau.A[:STAGES, :STAGES])
B, C, E3, E5 = tableau.B.copy(), tableau.C[:STAGES].copy(), tableau.E3.copy(), tableau.E5.copy()


@nb.njit(fastmath=True)
def velocity(t, x, out, w, mu, u, lam, quad, factor, comp):
    """``v(t, x)`` of ``Σ w_k N(μ_k, U_k diag(λ_k) U_kᵀ)`` on the linear path, one point."""
    k_count, d = mu.shape
    a, s = 1.0 - t, t
    ad, aad, s2, ssd = -1.0, -a, s * s, s
    q_min = np.inf
    for k in range(k_count):
        q, det = 0.0, 1.0
        for j in range(d):
            c = a * a * lam[k, j] + s2
            y = 0.0
            for i in range(d):
                y += u[k, i, j] * (x[i] - a * mu[k, i])
            q += y * y / c
            det *= c
            comp[k, j] = (aad * lam[k, j] + ssd) / c * y
        quad[k] = q
        factor[k] = w[k] / math.sqrt(det)
        q_min = min(q_min, q)
    total = 0.0
    for k in range(k_count):
        factor[k] *= math.exp(-0.5 * (quad[k] - q_min))
        total += factor[k]
    for i in range(d):
        out[i] = 0.0
    for k in range(k_count):
        r = factor[k] / total
        for i in range(d):
            z = ad * mu[k, i]
            for j in range(d):
                z += u[k, i, j] * comp[k, j]
            out[i] += r * z


@nb.njit
def velocities(ts, xs, out, w, mu, u, lam):
    k_count, d = mu.shape
    quad, factor, comp = np.empty(k_count), np.empty(k_count), np.empty((k_count, d))
    for p in range(xs.shape[0]):
        velocity(ts[p], xs[p], out[p], w, mu, u, lam, quad, factor, comp)


@nb.njit
def dop853(y0, t0, t1, rtol, cap, first, w, mu, u, lam, a_, b_, c_, e3_, e5_):
    """Per-trajectory DOP853 (atol = rtol); final states and evaluations per row."""
    n, d = y0.shape
    k_count = mu.shape[0]
    out, evals = np.empty_like(y0), np.zeros(n, np.int64)
    ks = np.empty((STAGES + 1, d))
    y, y_new, ys, f, f1 = np.empty(d), np.empty(d), np.empty(d), np.empty(d), np.empty(d)
    quad, factor, comp = np.empty(k_count), np.empty(k_count), np.empty((k_count, d))
    for p in range(n):
        t, end, tol = t0[p], t1[p], rtol[p]
        y[:] = y0[p]
        sign = 1.0 if end > t else -1.0
        velocity(t, y, f, w, mu, u, lam, quad, factor, comp)
        d0, d1 = 0.0, 0.0
        for i in range(d):
            sc = tol + abs(y[i]) * tol
            d0 += (y[i] / sc) ** 2
            d1 += (f[i] / sc) ** 2
        d0, d1 = math.sqrt(d0 / d), math.sqrt(d1 / d)
        h0 = 1e-6 if (d0 < 1e-5 or d1 < 1e-5) else 0.01 * d0 / d1
        h0 = min(h0, abs(end - t))
        for i in range(d):
            ys[i] = y[i] + h0 * sign * f[i]
        velocity(t + h0 * sign, ys, f1, w, mu, u, lam, quad, factor, comp)
        d2 = 0.0
        for i in range(d):
            d2 += ((f1[i] - f[i]) / (tol + abs(y[i]) * tol)) ** 2
        d2 = math.sqrt(d2 / d) / h0
        dm = max(d1, d2)
        h1 = max(1e-6, h0 * 1e-3) if dm <= 1e-15 else (0.01 / dm) ** (1 / 8)
        h_abs = min(min(100 * h0, h1), abs(end - t)) * first[p]
        count, rejected = 2, False
        while t != end:
            h = min(h_abs, cap[p]) * sign
            t_new = t + h
            if sign * (t_new - end) > 0:
                t_new = end
            h = t_new - t
            ks[0] = f
            for s in range(1, STAGES):
                for i in range(d):
                    acc = 0.0
                    for q in range(s):
                        acc += a_[s, q] * ks[q, i]
                    ys[i] = y[i] + h * acc
                velocity(t + c_[s] * h, ys, ks[s], w, mu, u, lam, quad, factor, comp)
            for i in range(d):
                acc = 0.0
                for q in range(STAGES):
                    acc += b_[q] * ks[q, i]
                y_new[i] = y[i] + h * acc
            velocity(t_new, y_new, ks[STAGES], w, mu, u, lam, quad, factor, comp)
            count += STAGES
            err5, err3 = 0.0, 0.0
            for i in range(d):
                sc = tol + max(abs(y[i]), abs(y_new[i])) * tol
                a5, a3 = 0.0, 0.0
                for q in range(STAGES + 1):
                    a5 += e5_[q] * ks[q, i]
                    a3 += e3_[q] * ks[q, i]
                err5 += (a5 / sc) ** 2
                err3 += (a3 / sc) ** 2
            err = 0.0 if err5 == 0 else abs(h) * err5 / math.sqrt((err5 + 0.01 * err3) * d)
            grow = 10.0 if err == 0 else 0.9 * err ** (-1 / 8)
            if err < 1:
                h_abs = abs(h) * (min(1.0, grow) if rejected else min(10.0, grow))
                t, rejected = t_new, False
                y[:] = y_new
                f[:] = ks[STAGES]
            else:
                h_abs, rejected = abs(h) * max(0.2, grow), True
        out[p] = y
        evals[p] = count
    return out, evals


def parameters(mixture: cmv.GaussianMixture) -> tuple[np.ndarray, ...]:
    lam, u = np.linalg.eigh(mixture.covs)
    return mixture.weights.copy(), np.ascontiguousarray(mixture.means), u.copy(), lam.copy()


def certified_numba(x: np.ndarray, rtol: float, params: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Levels 0 and 1 of the certificate, every trajectory twice in one call."""
    n = len(x)
    (tol0, cap0), (tol1, cap1) = LEVELS[0], LEVELS[1]
    tols = np.r_[np.full(n, max(rtol * tol0, 1e-14)), np.full(n, max(rtol * tol1, 1e-14))]
    caps = np.r_[np.full(n, DEFAULT_MAX_STEP * cap0), np.full(n, min(DEFAULT_MAX_STEP, 1) * cap1)]
    first = np.r_[np.full(n, cap0), np.full(n, cap1)]
    y, evals = dop853(
        np.concatenate([x, x]), np.ones(2 * n), np.zeros(2 * n), tols, caps, first, *params,
        A, B, C, E3, E5,
    )  # fmt: skip
    return y[n:], evals.reshape(2, n).sum(axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="trajectories per problem")
    parser.add_argument("--write", action="store_true", help="write benchmarks/RESULTS.md")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    xs = -rng.uniform(0.0, 30.0, 10**6)
    exp_ns = best_of(lambda: np.exp(xs), 5) / xs.size * 1e9
    problems = {  # the rtol of the Peers section's rows
        "eight_gaussians (K = 8, d = 2)": (cmv.mixtures.eight_gaussians(), 1e-9),
        "random 8-d (K = 6)": (cmv.mixtures.random_mixture(8, 6, 0), 1e-6),
    }
    lines = [
        MARKER,
        "",
        f"`python benchmarks/compiled_kernel.py --n {args.n} --write` — "
        f"{datetime.date.today()}, {platform.machine()}, {os.cpu_count()} cores (one thread), "
        f"Python {platform.python_version()}, NumPy {np.__version__}, numba {nb.__version__}; "
        "linear interpolant, X_(1→0) at the rtol of the Peers section's rows, best of 3.",
        "",
        "| mixture, rtol | velocity per point: numpy / numba (ns) | certified solve: numpy / numba "
        "(µs per trajectory) | speed-up | evaluations per trajectory | exp floor (µs) "
        "| max difference of the maps |",
        "|---|---|---|---|---|---|---|",
    ]
    shares = []
    for label, (mixture, rtol) in problems.items():
        path = cmv.MixturePath(mixture)
        params = parameters(mixture)
        pts = rng.standard_normal((100_000, mixture.dim))
        times = rng.uniform(0.0, 1.0, len(pts))
        out = np.empty_like(pts)
        velocities(times[:2], pts[:2], out[:2], *params)  # compile
        t_nb = best_of(lambda: velocities(times, pts, out, *params), 3) / len(pts) * 1e9  # noqa: B023
        t_np = best_of(lambda: path.velocity_trusted(times, pts), 3) / len(pts) * 1e9  # noqa: B023
        assert np.max(np.abs(out - path.velocity(times, pts))) < 1e-10
        x = rng.standard_normal((args.n, mixture.dim))
        flow = ReferenceFlow(path, rtol=rtol)
        certified_numba(x[:2], rtol, params)  # compile
        s_np = best_of(lambda: flow.solve(x, 1.0, 0.0), 3) / args.n * 1e6  # noqa: B023
        s_nb = best_of(lambda: certified_numba(x, rtol, params), 3) / args.n * 1e6  # noqa: B023
        y_nb, evals = certified_numba(x, rtol, params)
        diff = float(np.max(np.abs(y_nb - flow.map(x, 1.0, 0.0))))
        floor = float(np.mean(evals)) * mixture.n_components * exp_ns / 1e3
        lines.append(
            f"| {label}, {rtol:g} | {t_np:.0f} / {t_nb:.0f} | {s_np:.0f} / {s_nb:.0f} | "
            f"{s_np / s_nb:.2f} | {np.mean(evals):.0f} | {floor:.0f} | {diff:.1e} |"
        )
        shares.append((s_nb / s_np, floor / s_np))
    lines += [
        "",
        f"exp: {exp_ns:.1f} ns per element (numpy, 10⁶ elements; libm's scalar exp in "
        "numba runs at the same rate). The exp floor is the certified solve's evaluations "
        "per trajectory × K × that time: what the exponentials alone cost, whatever the "
        "rest of the kernel does.",
        "",
        "What it means for issue 16's target (cmverify ≥ 1.5× faster than the fastest peer; "
        "diffrax took 0.22 and 0.18 of cmverify's time on these two rows of the Peers "
        "section): cmverify would need 0.15 and 0.12 of its time. The compiled solver takes "
        + " and ".join(f"{a:.2f}" for a, _ in shares)
        + " of it, and the exponentials alone "
        + " and ".join(f"{b:.2f}" for _, b in shares)
        + ". On eight_gaussians the certified solve's evaluations (two levels, steps capped "
        "at 1/32 and 1/64) at this machine's scalar exp leave almost nothing for the rest; "
        "on the random 8-d mixture the two d × d products per component and evaluation "
        "(4 K d² = 1,536 flops) would have to run at about 15 GFLOP/s in one thread, where "
        "the fused scalar loops reach about 3. diffrax's XLA kernel is vectorized across "
        "trajectories (a SIMD exp) and runs one uncertified solve. Not adopted: a 1.55× gain "
        "does not pay for a compiled dependency, a second implementation of the kernel to "
        "keep in step, and its compile time (2.5 s per signature), and it does not reach "
        "the target.",
    ]
    emit(MARKER, lines, args.write)


if __name__ == "__main__":
    main()
