"""The ``verify`` battery: each implemented claim measured on the named mixtures and
interpolants, returned as :class:`~cmverify.claims.ClaimResult` objects.

Claims implemented so far (the rest of DESIGN.md's catalogue arrives with the
reference and claims layers):

- INT-BOUNDARY: the boundary conditions proven symbolically for each interpolant, and
  the sampled ``x_t`` matching the closed-form marginal in its first two moments;
- FLOW-VELOCITY: the closed-form velocity satisfies the continuity equation; the
  closed-form score is ``∇ log p_t``; ``α D + σ E[x1 | x_t] = x``; ``v = α̇ D + σ̇ E[x1 |
  x_t]``; everything finite at ``t = 0``, ``t = 1`` and at ``|x| = 1e3``;
- FLOW-GAUSS: the reference flow against the Gaussian closed form, and that closed form's
  linear case ``μ + Σ^{1/2} x1``;
- FLOW-QUANTILE: the reference flow of ``seed_bimodal`` against ``F_data⁻¹(Φ(x1))``;
- FLOW-MAP: ``f*(0, x) = x``, round trip, semigroup, and ``∂_t f* + (∇f*) v = 0``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import linalg, stats

from ..exact import (
    MixturePath,
    continuity_residual,
    decomposition_residual,
    mixtures,
    score_gradient_residual,
    velocity_decomposition_residual,
)
from ..reference import ReferenceFlow, gaussian_flow_map, quantile_flow_map
from ..symbolic import Interpolant, jacobian, prove_boundary_conditions, time_derivative
from ._functions import CubicMap, TanhNetwork, TimeTanhNetwork
from ._induction import ct_gauss, ct_global, song_t1
from ._local import bulk_points, ct_local, ct_local_target, euler_local, swap_local
from ._losses import song_t2
from ._multistep import multistep
from ._results import Check, ClaimResult
from ._velocity import flow_velocity_forms

__all__ = ["BatteryConfig", "battery_cases", "run_battery"]

#: Tolerances with their budgets (see :mod:`cmverify.exact._identities`).
CONTINUITY_TOLERANCE = 1e-8
SCORE_TOLERANCE = 1e-9
DECOMPOSITION_TOLERANCE = 1e-12
#: False-alarm probability of each moment test in INT-BOUNDARY.
FALSE_ALARM = 1e-6
#: The reference flow's target accuracy (its rtol): |X − X_exact| ≤ 1e-10 (1 + |x|).
FLOW_TOLERANCE = 1e-10
#: ∂_t f* + (∇f*) v, relative to |∂_t f*| + |(∇f*) v|, by 6th-order differences of
#: reference solves with step h = 1e-3, at x_t = X_{0→t}(x0) for x0 within 2 standard
#: deviations of its mode (in the gaps between modes f* is too steep for differences).
#: Budget: the solves' noise (≲ 1e-12, their step sequences differ from point to point)
#: times the stencil's weights (Σ|w| ≈ 1.8) over h, relative to terms of size ≳ 0.1,
#: gives ≲ 3e-8; truncation (h/ℓ)^6 with the scale ℓ ≈ 0.02 measured for
#: eight_gaussians at t = 0.5 gives ≈ 5e-9. Measured: ≤ 2.4e-8.
TRANSPORT_TOLERANCE = 1e-7


@dataclass(frozen=True)
class BatteryConfig:
    """How hard the battery works.

    ``quick`` runs each mixture under one interpolant only (both interpolants still
    appear), with fewer points, times and step counts.
    """

    n_points: int = 256
    times: tuple[float, ...] = tuple(np.round(np.linspace(0.0, 1.0, 11), 12))
    n_samples: int = 20_000
    local_points: int = 16
    global_ns: tuple[int, ...] = (16, 32, 64, 128, 256)
    multistep_samples: int = 4000
    seed: int = 20231
    quick: bool = False

    @classmethod
    def quick_config(cls) -> BatteryConfig:
        return cls(
            n_points=64,
            times=(0.0, 0.05, 0.5, 0.95, 1.0),
            n_samples=5_000,
            local_points=8,
            global_ns=(16, 32, 64, 128),
            multistep_samples=2000,
            quick=True,
        )


MIXTURES = ("seed_bimodal", "eight_gaussians", "gaussian")


def battery_cases(config: BatteryConfig | None = None) -> list[tuple[str, MixturePath]]:
    """``(name, path)`` for the named mixtures under the linear and trig interpolants (in
    quick mode one interpolant per mixture: seed_bimodal/trig, eight_gaussians/linear,
    gaussian/trig)."""
    interps = (Interpolant.linear(), Interpolant.trig())
    cases = []
    for i, mix_name in enumerate(MIXTURES):
        chosen = (interps[(i + 1) % 2],) if config is not None and config.quick else interps
        for interp in chosen:
            cases.append(
                (f"{mix_name}/{interp.name}", MixturePath(mixtures.by_name(mix_name), interp))
            )
    return cases


Progress = Callable[[str], None]


def _boundary(config: BatteryConfig, progress: Progress | None) -> ClaimResult:
    checks = []
    for interp in (Interpolant.linear(), Interpolant.trig()):
        e = interp.expressions
        try:
            proven = len(prove_boundary_conditions(e.alpha, e.sigma, e.t))
        except ValueError:
            proven = 0
        checks.append(
            Check(
                "boundary conditions left unproven (of 4)",
                interp.name,
                4.0 - proven,
                0.0,
                "symbolic proof",
            )
        )
    rng = np.random.default_rng(config.seed)
    n = config.n_samples
    for name, path in battery_cases(config):
        for t in (0.3, 0.7):
            xt = path.sample(t, n, rng)
            marginal = path.marginal(t)
            diff = xt.mean(axis=0) - marginal.mean()
            cov = marginal.covariance()
            chi2 = float(n * diff @ np.linalg.solve(cov, diff))
            # n |x̄ − m|²_{Cov⁻¹} is asymptotically χ²_d; tolerance at the stated false-alarm rate.
            threshold = float(stats.chi2.isf(FALSE_ALARM, path.dim))
            checks.append(
                Check(
                    f"sample mean of x_t vs closed-form marginal (χ², t={t})",
                    name,
                    chi2,
                    threshold,
                    f"χ²_{path.dim} quantile at false-alarm rate {FALSE_ALARM:g}",
                )
            )
        if progress:
            progress(f"INT-BOUNDARY {name}")
    return ClaimResult(
        "INT-BOUNDARY",
        "α_0 = σ_1 = 1, α_1 = σ_0 = 0; x_t ~ Σ w_k N(α μ_k, α² Σ_k + σ² I)",
        tuple(checks),
    )


def _flow_velocity(config: BatteryConfig, progress: Progress | None) -> ClaimResult:
    checks = []
    rng = np.random.default_rng(config.seed + 1)
    for name, path in battery_cases(config):
        start = time.perf_counter()
        cont, score, decomp, vdec = [], [], [], []
        finite = True
        for t in config.times:
            x = path.sample(t, config.n_points, rng)
            cont.append(continuity_residual(path, t, x).max())
            score.append(score_gradient_residual(path, t, x).max())
            decomp.append(decomposition_residual(path, t, x).max())
            vdec.append(velocity_decomposition_residual(path, t, x).max())
            far = 1e3 * np.vstack([np.eye(path.dim), -np.eye(path.dim)])
            for fn in (
                path.velocity,
                path.denoiser,
                path.expected_noise,
                path.score,
                path.log_prob,
            ):
                finite = finite and bool(np.all(np.isfinite(fn(t, far))))
        checks += [
            Check(
                "continuity equation, relative residual",
                name,
                max(cont),
                CONTINUITY_TOLERANCE,
                "6th-order differences: truncation ≲ 1e-10, rounding ≲ 3e-10",
            ),
            Check(
                "score = ∇ log p, relative residual",
                name,
                max(score),
                SCORE_TOLERANCE,
                "6th-order differences with h = 1e-3 std: ≲ 1e-11",
            ),
            Check(
                "α D + σ E[x1|x] = x, relative residual",
                name,
                max(decomp),
                DECOMPOSITION_TOLERANCE,
                "rounding only",
            ),
            Check(
                "v = α̇ D + σ̇ E[x1|x], relative residual",
                name,
                max(vdec),
                DECOMPOSITION_TOLERANCE,
                "rounding only",
            ),
            Check(
                "non-finite values at t ∈ grid (incl. 0, 1) and |x| = 1e3",
                name,
                0.0 if finite else 1.0,
                0.0,
                "exact",
            ),
        ]
        inner = [t for t in config.times if 0.05 <= t <= 0.95]
        checks += flow_velocity_forms(
            path, np.array(inner), [path.sample(t, config.n_points, rng) for t in inner], case=name
        )
        if progress:
            progress(f"FLOW-VELOCITY {name} ({time.perf_counter() - start:.2f} s)")
    return ClaimResult(
        "FLOW-VELOCITY",
        "v = E[α̇ x0 + σ̇ x1 | x_t] in closed form solves the continuity equation; conversions; finite on [0, 1]",
        tuple(checks),
    )


def _flow_gauss(config: BatteryConfig, progress: Progress | None) -> ClaimResult:
    checks = []
    rng = np.random.default_rng(config.seed + 2)
    for interp in (Interpolant.linear(), Interpolant.trig()):
        mix = mixtures.gaussian()
        path = MixturePath(mix, interp)
        x1 = path.sample(1.0, config.n_points, rng)
        exact = gaussian_flow_map(mix.means[0], mix.covs[0], interp, x1, 1.0, 0.0)
        got = ReferenceFlow(path).consistency(1.0, x1)
        checks.append(
            Check(
                "reference flow vs closed form, |ΔX|/(1+|x|)",
                f"gaussian/{interp.name}",
                float(np.max(_relative(got, exact, x1))),
                FLOW_TOLERANCE,
                "the reference flow's target accuracy rtol = 1e-10",
            )
        )
        if interp.name == "linear":
            root = np.real(linalg.sqrtm(mix.covs[0]))
            checks.append(
                Check(
                    "closed form X_{1→0}(x1) = μ + Σ^{1/2} x1",
                    "gaussian/linear",
                    float(np.max(_relative(exact, mix.means[0] + x1 @ root.T, x1))),
                    1e-12,
                    "rounding (eigen- vs Schur-based square roots)",
                )
            )
        if progress:
            progress(f"FLOW-GAUSS gaussian/{interp.name}")
    return ClaimResult(
        "FLOW-GAUSS",
        "Gaussian data: X_{s→t}(x) = α_t μ + C_t^{1/2} C_s^{-1/2} (x − α_s μ)",
        tuple(checks),
    )


def _flow_quantile(config: BatteryConfig, progress: Progress | None) -> ClaimResult:
    checks = []
    for interp in (Interpolant.linear(), Interpolant.trig()):
        path = MixturePath(mixtures.seed_bimodal(), interp)
        grid = np.linspace(-4.0, 4.0, config.n_points)[:, None]
        got = ReferenceFlow(path).consistency(1.0, grid)
        checks.append(
            Check(
                "reference flow vs F_data⁻¹(Φ(x1)), |ΔX|",
                f"seed_bimodal/{interp.name}",
                float(np.max(np.abs(got - quantile_flow_map(path, grid, 1.0, 0.0)))),
                FLOW_TOLERANCE,
                "the reference flow's target accuracy rtol = 1e-10",
            )
        )
        if progress:
            progress(f"FLOW-QUANTILE seed_bimodal/{interp.name}")
    return ClaimResult("FLOW-QUANTILE", "d = 1: X_{1→0}(x1) = F_data⁻¹(Φ(x1))", tuple(checks))


def _flow_map(config: BatteryConfig, progress: Progress | None) -> ClaimResult:
    n = config.n_points
    rng = np.random.default_rng(config.seed + 6)
    flow_map = []
    for name, path in battery_cases(config):
        if name.startswith("gaussian"):
            continue
        flow = ReferenceFlow(path)
        x0 = path.sample(0.0, n, rng)
        identity = float(np.max(np.abs(flow.consistency(0.0, x0) - x0)))
        back = flow.map(flow.map(x0, 0.0, 1.0), 1.0, 0.0)
        x = path.sample(0.8, n, rng)
        direct = flow.map(x, 0.8, 0.1)
        composed = flow.map(flow.map(x, 0.8, 0.45), 0.45, 0.1)
        t, h = 0.5, 1e-3
        xt = flow.map(bulk_points(path.mixture, min(n // 4, 64), rng), 0.0, t)
        dt = time_derivative(lambda s, xt=xt, flow=flow: flow.consistency(s, xt), t, h)
        jac = jacobian(lambda z, flow=flow, t=t: flow.consistency(t, z), xt, h)
        jv = np.einsum("nij,nj->ni", jac, path.velocity(t, xt))
        transport = np.linalg.norm(dt + jv, axis=1) / (
            np.linalg.norm(dt, axis=1) + np.linalg.norm(jv, axis=1)
        )
        flow_map += [
            Check("f*(0, x) = x, max |Δ|", name, identity, 0.0, "exact: no integration"),
            Check(
                "X_{1→0}∘X_{0→1} = id, |Δ|/(1+|x|)",
                name,
                float(np.max(_relative(back, x0, x0))),
                2 * FLOW_TOLERANCE,
                "two reference solves at rtol = 1e-10",
            ),
            Check(
                "X_{0.45→0.1}∘X_{0.8→0.45} = X_{0.8→0.1}, |Δ|/(1+|x|)",
                name,
                float(np.max(_relative(composed, direct, x))),
                3 * FLOW_TOLERANCE,
                "three reference solves at rtol = 1e-10",
            ),
            Check(
                "∂_t f* + (∇f*) v = 0 at t = 0.5, relative",
                name,
                float(np.max(transport)),
                TRANSPORT_TOLERANCE,
                "6th-order differences, h = 1e-3, of reference solves from the data's bulk",
            ),
        ]
        if progress:
            progress(f"FLOW-MAP {name}")
    return ClaimResult(
        "FLOW-MAP", "semigroup, inverse, f*(0, x) = x, ∂_t f* + (∇f*) v = 0", tuple(flow_map)
    )


def _relative(got: np.ndarray, exact: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``|got − exact| / (1 + |x|)`` per row."""
    return np.linalg.norm(got - exact, axis=1) / (1 + np.linalg.norm(x, axis=1))


def _local_points(
    path: MixturePath, s: float, n: int, rng: np.random.Generator, flow: ReferenceFlow
):
    return flow.map(bulk_points(path.mixture, n, rng), 0.0, s)


LOCAL_TIME = 0.5


def _euler_local(config: BatteryConfig, progress: Progress | None, **options) -> ClaimResult:
    checks = []
    rng = np.random.default_rng(config.seed + 3)
    for name, path in battery_cases(config):
        flow = ReferenceFlow(path)
        y = _local_points(path, LOCAL_TIME, config.local_points, rng, flow)
        checks += euler_local(path, LOCAL_TIME, y, flow=flow, case=name, **options)
        if progress:
            progress(f"EULER-LOCAL {name}")
    return ClaimResult(
        "EULER-LOCAL", "X_{s→s−Δ}(y) − (y − vΔ) = ½Δ² a(s, y) + O(Δ³)", tuple(checks)
    )


def _swap_local(config: BatteryConfig, progress: Progress | None, **options) -> ClaimResult:
    checks = []
    rng = np.random.default_rng(config.seed + 4)
    for name, path in battery_cases(config):
        flow = ReferenceFlow(path)
        y = _local_points(path, LOCAL_TIME, config.local_points, rng, flow)
        for F in (CubicMap(path.dim), TanhNetwork(path.dim)):
            checks += swap_local(path, LOCAL_TIME, y, F, case=f"{name}, F = {F.name}", **options)
        if progress:
            progress(f"SWAP-LOCAL {name}")
    return ClaimResult(
        "SWAP-LOCAL", "E[F(y − δΔ) | y] − F(y − vΔ) = ½Δ² tr(∇²F Cov(δ | y)) + O(Δ³)", tuple(checks)
    )


def _ct_local(config: BatteryConfig, progress: Progress | None) -> ClaimResult:
    checks = []
    rng = np.random.default_rng(config.seed + 5)
    for name, path in battery_cases(config):
        flow = ReferenceFlow(path)
        y = _local_points(path, LOCAL_TIME, config.local_points, rng, flow)
        F = TanhNetwork(path.dim, seed=1)
        checks += ct_local(path, LOCAL_TIME, y, F, flow=flow, case=f"{name}, F = {F.name}")
        order = None if path.dim == 1 else 8
        if config.quick and path.dim > 1:
            # F = f* in d = 2 takes 5–15 s (reference solves at every quadrature node);
            # the full battery runs it.
            continue
        checks += ct_local_target(
            path,
            LOCAL_TIME,
            y[: max(4, config.local_points // 2)],
            flow=flow,
            case=f"{name}, F = f*",
            order=order,
        )
        if progress:
            progress(f"CT-LOCAL {name}")
    return ClaimResult(
        "CT-LOCAL",
        "CT optimum − f*(s, y) = ½Δ²[tr(∇²F Cov(δ|y)) + ∇F(E[γ|y] − a)]; Euler distillation: −½Δ²∇F a",
        tuple(checks),
    )


def _interpolants(config: BatteryConfig) -> tuple[Interpolant, ...]:
    return (Interpolant.linear(),) if config.quick else (Interpolant.linear(), Interpolant.trig())


def _ct_global(config: BatteryConfig, progress: Progress | None, **options) -> ClaimResult:
    checks = []
    for interp in _interpolants(config):
        path = MixturePath(mixtures.mild_bimodal(), interp)
        checks += ct_global(
            path, ns=config.global_ns, case=f"mild_bimodal/{interp.name}", **options
        )
        if progress:
            progress(f"CT-GLOBAL mild_bimodal/{interp.name}")
    return ClaimResult(
        "CT-GLOBAL",
        "the CT and CD recursions reach f*(1, ·) with error O(Δ) (d = 1, exact grid)",
        tuple(checks),
    )


def _ct_gauss(config: BatteryConfig, progress: Progress | None, **options) -> ClaimResult:
    checks = []
    ns = (64, 128, 256) if config.quick else (64, 128, 256, 512)
    for interp in (Interpolant.linear(), Interpolant.trig()):
        path = MixturePath(mixtures.gaussian(), interp)
        checks += ct_gauss(path, ns=ns, case=f"gaussian/{interp.name}", **options)
        if progress:
            progress(f"CT-GAUSS gaussian/{interp.name}")
    return ClaimResult(
        "CT-GAUSS",
        "Gaussian data: CT recursion = DDIM distillation; global error −½Δ U diag(√λ I(λ)) Uᵀ y",
        tuple(checks),
    )


def _song_t1(config: BatteryConfig, progress: Progress | None) -> ClaimResult:
    checks = []
    grid = np.linspace(-3.0, 3.0, 21)
    plane = np.stack(np.meshgrid(grid, grid), axis=-1).reshape(-1, 2)
    rng = np.random.default_rng(config.seed + 7)
    for interp in _interpolants(config):
        eight = MixturePath(mixtures.eight_gaussians(), interp)
        # eight_gaussians: f*(1, ·) is singular at the origin and on the rays between the
        # modes (separatrices, where the reference itself is ill-conditioned); the sup is
        # taken over starting points whose trajectories end within 2 std of a mode.
        bulk = ReferenceFlow(eight).map(bulk_points(eight.mixture, 441, rng), 0.0, 1.0)
        for mix_name, x in (
            ("mild_bimodal", np.linspace(-4.0, 4.0, 201)[:, None]),
            ("gaussian", plane),
            ("eight_gaussians", bulk),
        ):
            path = (
                eight
                if mix_name == "eight_gaussians"
                else MixturePath(mixtures.by_name(mix_name), interp)
            )
            checks += song_t1(path, x, case=f"{mix_name}/{interp.name}")
            if progress:
                progress(f"SONG-T1 {mix_name}/{interp.name}")
    return ClaimResult(
        "SONG-T1",
        "zero-loss distillation with a solver of order p: sup error O(Δ^p) (Euler 1, Heun 2)",
        tuple(checks),
    )


def _song_t2(config: BatteryConfig, progress: Progress | None) -> ClaimResult:
    checks = []
    for name, path in battery_cases(config):
        student, target = TimeTanhNetwork(path.dim, seed=1), TimeTanhNetwork(path.dim, seed=2)
        checks += song_t2(path, student, target, case=f"{name}, f, g = tanh networks")
        if progress:
            progress(f"SONG-T2 {name}")
    return ClaimResult(
        "SONG-T2", "L_CD − L_CT = o(Δ) for fixed smooth student and target", tuple(checks)
    )


def _multistep(config: BatteryConfig, progress: Progress | None) -> ClaimResult:
    checks = []
    for i, (name, path) in enumerate(battery_cases(config)):
        checks += multistep(path, n=config.multistep_samples, seed=config.seed + 10 + i, case=name)
        if progress:
            progress(f"MULTISTEP {name}")
    return ClaimResult(
        "MULTISTEP",
        "with f*, the multistep sampler leaves each x_{t_i} distributed as p_{t_i}",
        tuple(checks),
    )


ClaimBuilder = Callable[[BatteryConfig, "Progress | None"], ClaimResult]

#: The battery, in the order of DESIGN.md's catalogue. Tests replace entries to inject
#: wrong predictions.
CLAIMS: dict[str, ClaimBuilder] = {
    "INT-BOUNDARY": _boundary,
    "FLOW-VELOCITY": _flow_velocity,
    "FLOW-GAUSS": _flow_gauss,
    "FLOW-QUANTILE": _flow_quantile,
    "FLOW-MAP": _flow_map,
    "EULER-LOCAL": _euler_local,
    "SWAP-LOCAL": _swap_local,
    "CT-LOCAL": _ct_local,
    "CT-GLOBAL": _ct_global,
    "CT-GAUSS": _ct_gauss,
    "SONG-T1": _song_t1,
    "SONG-T2": _song_t2,
    "MULTISTEP": _multistep,
}


def run_battery(
    config: BatteryConfig | None = None,
    progress: Progress | None = None,
    *,
    only: tuple[str, ...] | None = None,
) -> list[ClaimResult]:
    """Measure the claims (all, or the IDs in ``only``); ``progress`` receives one line per
    finished case."""
    config = config or BatteryConfig()
    unknown = set(only or ()) - set(CLAIMS)
    if unknown:
        raise ValueError(f"unknown claim id(s) {sorted(unknown)}; known: {', '.join(CLAIMS)}")
    results = []
    for claim_id, build in CLAIMS.items():
        if only and claim_id not in only:
            continue
        start = time.perf_counter()
        result = build(config, progress)
        if progress:
            progress(
                f"{claim_id}: {'PASS' if result.passed else 'FAIL'} ({time.perf_counter() - start:.1f} s)"
            )
        results.append(result)
    return results
