"""SCM-TANGENT: the continuous-time consistency tangent of sCM (Lu & Song 2024) at the
exact consistency function ``f*(t, x) = X_{t→0}(x)`` (claims layer).

sCM trains ``f_θ`` with the tangent ``g = ∂_t f* + ∇f* · dx/dt`` of the target network
along the path, ``dx/dt = v`` (sCD, distillation) or ``v_c = α̇ x0 + σ̇ x1`` (sCT, training),
normalized as ``g/(‖g‖ + c)`` (``c = 0.1``). At ``f*``:

- with ``dx/dt = v`` the tangent is zero (E of FLOWMAP-IDENTITIES): ``f*`` is a fixed
  point of sCD, normalized or not (``0/(0 + c) = 0``);
- with ``dx/dt = v_c`` it is ``g_c = ∇f* (v_c − v)``, of conditional mean zero: the
  unnormalized sCT keeps ``f*``; the normalized one has the semi-gradient ``E[g_c/(‖g_c‖ +
  c) | x_t]``, zero where the law of ``g_c`` is symmetric (Gaussian data), otherwise not:
  ``f*`` is then not its fixed point. For large ``c``, ``E[g_c] = 0`` leaves
  ``E[g_c/(‖g_c‖ + c)] = −E[g_c ‖g_c‖]/c² + O(c⁻³)``;
- the discrete-time consistency gradient ``(f*(t, x_t) − f*(t − Δ, x_{t−Δ}))/Δ`` of a
  pair ``(x0, x1)`` tends to ``g_c`` at order ``Δ``: with ``φ(Δ) = f*(t − Δ, x_{t−Δ})`` it
  is ``−φ'(0) − ½ φ''(0) Δ + O(Δ²)`` and ``−φ'(0) = g_c``.

Measured at ``t = 0.5`` on points of the data's bulk mapped to ``t``: the sCD tangent by
6th-order time differences of reference solves (FLOW-MAP's transport budget), the
normalized sCT mean by Gauss–Hermite quadrature over the posterior (its size at
``c = 0.1``, the symmetric case, the large-``c`` expansion's order and coefficient), and
the discrete gradient's order and coefficient (``φ''(0)`` by a 5-point stencil) on the
pairs, of 16 times as many drawn, whose ``x_t`` one component explains best (near
eight_gaussians' separatrices, e.g. the origin, ``f*`` is so steep that the asymptotic
regime starts below ``Δ = 6e-5``: measured slopes 0.6–1.6 there).
"""

from __future__ import annotations

import numpy as np
from sympy import finite_diff_weights

from ..reference import ReferenceFlow, conditional_expectation
from ..symbolic import time_stencil
from ._case import BatteryConfig, Case
from ._local import bulk_points
from ._results import Check
from ._targets import order_and_ratio

__all__ = ["measure_scm_tangent"]

TIME, C_SCM = 0.5, 0.1
#: sCD's tangent by 6th-order time differences: FLOW-MAP's transport budget.
TIME_STEP, TIME_TOLERANCE = 5e-4, 1e-7
#: The normalized mean's large-c ladder, and rounding of a symmetric law's mean.
LARGE_C = 10.0 ** np.arange(2.0, 4.01, 0.5)
SYMMETRIC_TOLERANCE = 1e-12
#: The discrete gradient's steps, and φ''(0)'s 5-point stencil step.
DELTAS = 2.0 ** -np.arange(8, 15)
SECOND_STEP = 2e-3
#: The 5-point second-derivative weights on offsets −2 … 2 (SymPy, exact rationals).
_SECOND_WEIGHTS = tuple(float(w) for w in finite_diff_weights(2, [-2, -1, 0, 1, 2], 0)[2][-1])


def _rows(v: np.ndarray) -> np.ndarray:
    return np.linalg.norm(v, axis=-1)


def measure_scm_tangent(
    case: Case, settings: BatteryConfig, rng: np.random.Generator
) -> list[Check]:
    """SCM-TANGENT on one case (module docstring)."""
    path, t = case.path, TIME
    flow = ReferenceFlow(path)
    z = flow.map(bulk_points(path.mixture, max(8, settings.local_points), rng), 0.0, t)
    d_t = _time_derivative(flow, z, t)
    jac = flow.jacobian(z, t, 0.0)
    v = path.velocity(t, z)
    flow_term = np.einsum("nab,nb->na", jac, v)
    checks = [
        Check(
            "sCD: ∂_t f* + ∇f* v = 0, |g| / |∇f* v|",
            "",
            float(np.max(_rows(d_t + flow_term) / _rows(flow_term))),
            TIME_TOLERANCE,
            f"6th-order time differences, h = {TIME_STEP:g}, of reference solves (FLOW-MAP's "
            "transport budget)",
        )
    ]
    at = path.interpolant.at(t)
    da, ds = float(at.dalpha), float(at.dsigma)

    def normalized(c: float) -> np.ndarray:
        def g(x0: np.ndarray, x1: np.ndarray) -> np.ndarray:
            tangent = np.einsum("nab,nmb->nma", jac, da * x0 + ds * x1 - v[:, None])
            return tangent / (_rows(tangent)[..., None] + c)

        return conditional_expectation(path, t, z, g)

    def skew(x0: np.ndarray, x1: np.ndarray) -> np.ndarray:
        tangent = np.einsum("nab,nmb->nma", jac, da * x0 + ds * x1 - v[:, None])
        return tangent * _rows(tangent)[..., None]

    third = conditional_expectation(path, t, z, skew)
    scale = float(np.max(_rows(flow_term))) + 1.0
    mean_at_c = float(np.max(_rows(normalized(C_SCM))))
    if float(np.max(_rows(third))) <= SYMMETRIC_TOLERANCE * scale**2:  # a symmetric law
        checks.append(
            Check(
                f"sCT, symmetric law of g_c: E[g_c/(|g_c| + {C_SCM:g}) | x_t] = 0",
                "",
                mean_at_c,
                SYMMETRIC_TOLERANCE,
                "rounding: the normalized tangent of a symmetric law has mean 0",
            )
        )
    else:
        means = np.array([normalized(c) for c in LARGE_C])
        predicted = -third / LARGE_C[-1] ** 2
        budget = "relative O(|g_c|/c) correction ≲ 1e-2 at the largest c"
        names = (
            "sCT normalized: order of E[g_c/(|g_c| + c)] in 1/c",
            f"E[g_c/(|g_c| + c)] = −E[g_c|g_c|]/c²: measured/predicted at c = {LARGE_C[-1]:g}",
        )
        detail = f"at sCM's c = {C_SCM:g}: |E[ĝ]| up to {mean_at_c:.3g}"
        checks += order_and_ratio(names, 1.0 / LARGE_C, means, predicted, 2.0, budget, detail)
    return checks + _discrete_gradient(path, flow, t, rng, settings)


def _time_derivative(flow: ReferenceFlow, z: np.ndarray, t: float) -> np.ndarray:
    """``∂_t f*(t, z)`` by 6th-order time differences of reference solves (one batch)."""
    n = len(z)
    times, weights = time_stencil(t, TIME_STEP)
    stacked = flow.map(np.tile(z, (len(times), 1)), np.repeat(times, n), 0.0)
    return np.einsum("j,jnd->nd", weights, stacked.reshape(len(times), n, -1))


def _discrete_gradient(path, flow, t, rng, settings) -> list[Check]:
    """The CT pair's difference quotient against ``g_c`` as ``Δ → 0`` (module docstring)."""
    k = max(4, settings.local_points // 2)
    x0 = bulk_points(path.mixture, 16 * k, rng)
    x1 = rng.standard_normal(x0.shape)
    at = path.interpolant.at(t)
    # the k of 16k pairs whose x_t one component explains best (largest posterior weight):
    # where f* varies on the components' scale, away from the separatrices between them
    clear = np.max(path.posterior(t, float(at.alpha) * x0 + float(at.sigma) * x1).weights, axis=1)
    keep = np.argsort(-clear, kind="stable")[:k]
    x0, x1 = x0[keep], x1[keep]
    n = len(x0)

    def pair_points(times: np.ndarray) -> np.ndarray:
        co = path.interpolant.at(times)
        return np.asarray(co.alpha)[:, None, None] * x0 + np.asarray(co.sigma)[:, None, None] * x1

    # φ(Δ) = f*(t − Δ, x_{t−Δ}) at the ladder, at 0, and on the stencil of φ''(0)
    offsets = np.concatenate([DELTAS, [0.0], SECOND_STEP * np.array([-2, -1, 1, 2])])
    times = t - offsets
    points = pair_points(times).reshape(-1, path.dim)
    phi = flow.map(points, np.repeat(times, n), 0.0).reshape(len(offsets), n, -1)
    v_c = float(at.dalpha) * x0 + float(at.dsigma) * x1
    z = pair_points(np.array([t]))[0]
    g_c = _time_derivative(flow, z, t) + np.einsum("nab,nb->na", flow.jacobian(z, t, 0.0), v_c)
    base = phi[len(DELTAS)]
    quotients = (base[None] - phi[: len(DELTAS)]) / DELTAS[:, None, None]
    differences = quotients - g_c[None]
    m2, m1, p1, p2 = phi[len(DELTAS) + 1 :]
    w = _SECOND_WEIGHTS
    second = (w[0] * m2 + w[1] * m1 + w[2] * base + w[3] * p1 + w[4] * p2) / SECOND_STEP**2
    predicted = -0.5 * second * DELTAS[-1]
    budget = (
        f"O(Δ) relative correction at Δ = 1/{round(1 / DELTAS[-1])}; φ'' by a 5-point "
        f"stencil, h = {SECOND_STEP:g} (noise ≲ 1e-10/h², truncation h⁴); g_c by 6th-order "
        "time differences"
    )
    names = (
        "discrete CT gradient → g_c: order in Δ",
        f"leading term −½ φ''(0) Δ, measured/predicted at Δ = 1/{round(1 / DELTAS[-1])}",
    )
    return order_and_ratio(names, DELTAS, differences, predicted, 1.0, budget)
