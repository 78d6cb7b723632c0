"""The velocity and flow-map claims (claims layer), one case at a time.

- FLOW-VELOCITY: the closed-form velocity satisfies the continuity equation; the
  closed-form score is ``∇ log p_t``; ``α D + σ E[x1 | x_t] = x``; ``v = α̇ D + σ̇ E[x1 |
  x_t]``; everything finite at ``t = 0``, ``t = 1`` and at ``|x| = 1e3``; and the
  velocity's two other forms (:func:`cmverify.claims.flow_velocity_forms`).
- FLOW-GAUSS: the reference flow against the Gaussian closed form, and that closed form's
  linear case ``μ + Σ^{1/2} x1``.
- FLOW-QUANTILE: the reference flow of a 1-d path against ``F_data⁻¹(Φ(x1))``.
- FLOW-MAP: ``f*(0, x) = x``, round trip, semigroup, and ``∂_t f* + (∇f*) v = 0``.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

from ..exact import (
    VelocityField,
    continuity_residual,
    decomposition_residual,
    score_gradient_residual,
    velocity_decomposition_residual,
)
from ..reference import ReferenceFlow, gaussian_flow_map, quantile_flow_map
from ..symbolic import Interpolant, jacobian, time_derivative
from ._batch import FlowCalls, batched_solves
from ._case import BatteryConfig, Case
from ._local import bulk_points
from ._results import Check
from ._velocity import flow_velocity_forms

__all__ = ["flow_gauss", "flow_map", "flow_quantile", "flow_velocity", "transport_residual"]

#: Tolerances with their budgets (see :mod:`cmverify.exact._identities`).
CONTINUITY_TOLERANCE = 1e-8
SCORE_TOLERANCE = 1e-9
DECOMPOSITION_TOLERANCE = 1e-12
#: The reference flow's target accuracy (its rtol): |X − X_exact| ≤ 1e-10 (1 + |x|).
FLOW_TOLERANCE = 1e-10
#: ∂_t f* + (∇f*) v, relative to |∂_t f*| + |(∇f*) v|, by 6th-order differences of
#: reference solves with step h = TRANSPORT_STEP, at x_t = X_{0→t}(x0) for x0 within 2
#: standard deviations of its mode (in the gaps between modes f* is too steep for
#: differences). Budget at h = 5e-4: the solves' noise (≲ 1e-12, their step sequences
#: differ from point to point) times the stencil's weights (Σ|w| ≈ 1.8) over h, relative
#: to terms ≳ 0.3 (the smallest measured), gives ≲ 1.2e-8; truncation (h/ℓ)^6, with ℓ the
#: scale on which f* varies, ≈ 0.014 at the steepest bulk point measured (eight_gaussians,
#: linear, t = 0.5, x0 at 2 std from its mode), gives ≲ 2e-9. With h = 1e-3 that point's
#: truncation alone was 1.4e-7 (it scales as h^6: 9.7e-6 at h = 2e-3). Measured at
#: h = 5e-4 over 4 draws of 64 bulk points each for eight_gaussians (linear, trig) and
#: seed_bimodal (linear): ≤ 4.5e-10 (noise-dominated, seed_bimodal); the steep point 2.1e-9.
TRANSPORT_STEP = 5e-4
TRANSPORT_TOLERANCE = 1e-7
#: FLOW-VELOCITY's forms are compared inside [0.05, 0.95] (λ and g² grow like 1/α).
FORMS_RANGE = (0.05, 0.95)


def _relative(got: np.ndarray, exact: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``|got − exact| / (1 + |x|)`` per row."""
    return np.linalg.norm(got - exact, axis=1) / (1 + np.linalg.norm(x, axis=1))


def flow_velocity(case: Case, settings: BatteryConfig, rng: np.random.Generator) -> list[Check]:
    """FLOW-VELOCITY on one case, at ``settings.n_points`` samples of ``p_t`` for each ``t``
    of ``settings.times``."""
    path = case.path
    cont, score, decomp, vdec = [], [], [], []
    finite = True
    far = 1e3 * np.vstack([np.eye(path.dim), -np.eye(path.dim)])
    for t in settings.times:
        x = path.sample(t, settings.n_points, rng)
        cont.append(continuity_residual(path, t, x).max())
        score.append(score_gradient_residual(path, t, x).max())
        decomp.append(decomposition_residual(path, t, x).max())
        vdec.append(velocity_decomposition_residual(path, t, x).max())
        for fn in (path.velocity, path.denoiser, path.expected_noise, path.score, path.log_prob):
            finite = finite and bool(np.all(np.isfinite(fn(t, far))))
    inner = [t for t in settings.times if FORMS_RANGE[0] <= t <= FORMS_RANGE[1]]
    return [
        Check(
            "continuity equation, relative residual",
            "",
            max(cont),
            CONTINUITY_TOLERANCE,
            "6th-order differences: truncation ≲ 1e-10, rounding ≲ 3e-10",
        ),
        Check(
            "score = ∇ log p, relative residual",
            "",
            max(score),
            SCORE_TOLERANCE,
            "6th-order differences with h = 1e-3 std: ≲ 1e-11",
        ),
        Check(
            "α D + σ E[x1|x] = x, relative residual",
            "",
            max(decomp),
            DECOMPOSITION_TOLERANCE,
            "rounding only",
        ),
        Check(
            "v = α̇ D + σ̇ E[x1|x], relative residual",
            "",
            max(vdec),
            DECOMPOSITION_TOLERANCE,
            "rounding only",
        ),
        Check(
            "non-finite values at t ∈ grid (incl. 0, 1) and |x| = 1e3",
            "",
            0.0 if finite else 1.0,
            0.0,
            "exact",
        ),
        *flow_velocity_forms(
            path, np.array(inner), [path.sample(t, settings.n_points, rng) for t in inner]
        ),
    ]


def flow_gauss(case: Case, settings: BatteryConfig, rng: np.random.Generator) -> list[Check]:
    """FLOW-GAUSS on a one-component case: the reference flow ``X_{1→0}`` at
    ``settings.n_points`` samples of ``p_1`` against the closed form; for the linear
    interpolant also the closed form against ``μ + Σ^{1/2} x1``."""
    path = case.path
    mix, interp = path.mixture, path.interpolant
    if mix.n_components != 1:
        raise ValueError(f"FLOW-GAUSS needs Gaussian (one-component) data, case {case.name!r}")
    x1 = path.sample(1.0, settings.n_points, rng)
    exact = gaussian_flow_map(mix.means[0], mix.covs[0], interp, x1, 1.0, 0.0)
    got = ReferenceFlow(path).consistency(1.0, x1)
    checks = [
        Check(
            "reference flow vs closed form, |ΔX|/(1+|x|)",
            "",
            float(np.max(_relative(got, exact, x1))),
            FLOW_TOLERANCE,
            "the reference flow's target accuracy rtol = 1e-10",
        )
    ]
    if interp == Interpolant.linear():
        root = np.real(linalg.sqrtm(mix.covs[0]))
        checks.append(
            Check(
                "closed form X_{1→0}(x1) = μ + Σ^{1/2} x1",
                "",
                float(np.max(_relative(exact, mix.means[0] + x1 @ root.T, x1))),
                1e-12,
                "rounding (eigen- vs Schur-based square roots)",
            )
        )
    return checks


def flow_quantile(case: Case, settings: BatteryConfig, rng: np.random.Generator) -> list[Check]:
    """FLOW-QUANTILE on a 1-d case: the reference flow ``X_{1→0}`` on ``settings.n_points``
    grid points of ``[−4, 4]`` against ``F_data⁻¹(Φ(x1))`` (no randomness)."""
    path = case.path
    if path.dim != 1:
        raise ValueError(f"FLOW-QUANTILE needs a 1-d path, case {case.name!r} has d = {path.dim}")
    grid = np.linspace(-4.0, 4.0, settings.n_points)[:, None]
    got = ReferenceFlow(path).consistency(1.0, grid)
    return [
        Check(
            "reference flow vs F_data⁻¹(Φ(x1)), |ΔX|",
            "",
            float(np.max(np.abs(got - quantile_flow_map(path, grid, 1.0, 0.0)))),
            FLOW_TOLERANCE,
            "the reference flow's target accuracy rtol = 1e-10",
        )
    ]


def _transport_terms(
    flow: ReferenceFlow | FlowCalls, t: float, xt: np.ndarray, h: float
) -> tuple[np.ndarray, np.ndarray]:
    """``∂_t f*`` ``(n, d)`` and ``∇f*`` ``(n, d, d)`` at ``(t, xt)`` by 6th-order
    differences with step ``h`` of ``flow.consistency``."""
    dt = time_derivative(lambda s: flow.consistency(s, xt), t, h)
    jac = jacobian(lambda z: flow.consistency(t, z), xt, h)
    return dt, jac


def _transport_ratio(
    path: VelocityField, t: float, xt: np.ndarray, dt: np.ndarray, jac: np.ndarray
) -> np.ndarray:
    """``|∂_t f* + (∇f*) v| / (|∂_t f*| + |(∇f*) v|)`` per row."""
    jv = np.einsum("nij,nj->ni", jac, path.velocity(t, xt))
    return np.linalg.norm(dt + jv, axis=1) / (
        np.linalg.norm(dt, axis=1) + np.linalg.norm(jv, axis=1)
    )


def transport_residual(
    flow: ReferenceFlow, t: float, xt: np.ndarray, h: float = TRANSPORT_STEP
) -> np.ndarray:
    """``|∂_t f* + (∇f*) v| / (|∂_t f*| + |(∇f*) v|)`` per row of ``xt`` (shape ``(n, d)``)
    at time ``t``, by 6th-order differences with step ``h`` of the reference flow's
    consistency function (all stencil points in one batched solve); shape ``(n,)``."""
    dt, jac = batched_solves(flow, lambda f: _transport_terms(f, t, xt, h))
    return _transport_ratio(flow.path, t, xt, dt, jac)


def flow_map(case: Case, settings: BatteryConfig, rng: np.random.Generator) -> list[Check]:
    """FLOW-MAP on one case: ``f*(0, x) = x`` and the round trip ``X_{1→0}∘X_{0→1}`` at
    ``settings.n_points`` data points, the semigroup at as many points of ``p_0.8``, the
    transport equation at ``t = 0.5`` at up to 64 points from the data's bulk.

    The reference solves run as two batched solves (:func:`batched_solves`): the first
    legs (``X_{0→1}``, ``X_{0.8→0.1}``, ``X_{0.8→0.45}``, ``X_{0→0.5}``), then what starts
    from their ends (``X_{1→0}``, ``X_{0.45→0.1}``, the transport stencil)."""
    path = case.path
    n = settings.n_points
    flow = ReferenceFlow(path)
    x0 = path.sample(0.0, n, rng)
    x = path.sample(0.8, n, rng)
    bulk = bulk_points(path.mixture, min(n // 4, 64), rng)
    identity = float(np.max(np.abs(flow.consistency(0.0, x0) - x0)))
    t = 0.5
    forward, direct, half, xt = batched_solves(
        flow,
        lambda f: (
            f.map(x0, 0.0, 1.0),
            f.map(x, 0.8, 0.1),
            f.map(x, 0.8, 0.45),
            f.map(bulk, 0.0, t),
        ),
    )
    back, composed, (dt, jac) = batched_solves(
        flow,
        lambda f: (
            f.map(forward, 1.0, 0.0),
            f.map(half, 0.45, 0.1),
            _transport_terms(f, t, xt, TRANSPORT_STEP),
        ),
    )
    transport = _transport_ratio(path, t, xt, dt, jac)
    return [
        Check("f*(0, x) = x, max |Δ|", "", identity, 0.0, "exact: no integration"),
        Check(
            "X_{1→0}∘X_{0→1} = id, |Δ|/(1+|x|)",
            "",
            float(np.max(_relative(back, x0, x0))),
            2 * FLOW_TOLERANCE,
            "two reference solves at rtol = 1e-10",
        ),
        Check(
            "X_{0.45→0.1}∘X_{0.8→0.45} = X_{0.8→0.1}, |Δ|/(1+|x|)",
            "",
            float(np.max(_relative(composed, direct, x))),
            3 * FLOW_TOLERANCE,
            "three reference solves at rtol = 1e-10",
        ),
        Check(
            "∂_t f* + (∇f*) v = 0 at t = 0.5, relative",
            "",
            float(np.max(transport)),
            TRANSPORT_TOLERANCE,
            f"6th-order differences, h = {TRANSPORT_STEP:g}, of reference solves from the "
            "data's bulk: noise ≲ 1.2e-8, truncation ≲ 2e-9",
        ),
    ]
