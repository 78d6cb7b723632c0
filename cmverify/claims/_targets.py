"""Where the flow-map methods' training targets converge (claims layer), one case at a time.

- MEANFLOW-FLOOR: at the exact average velocity ``u``, MeanFlow's target
  ``u_tgt = v_c − (t − r)(∂_t u + ∇_z u · v_c)`` has error ``u_tgt − u = ∇X_{t→r}(z)(v_c −
  v)`` — linear in ``v_c − v`` — so its conditional mean given ``x_t`` is zero (the
  semi-gradient vanishes at ``u``) and the unweighted loss at ``u`` is the floor
  :func:`cmverify.loss_floors.meanflow`. Measured: ``E[v_c | x_t] − v`` by Gauss–Hermite
  quadrature over the posterior, mapped by ``∇X_{t→r}`` (rounding), and the loss at ``u``
  by Monte Carlo of ``(x0, x1)`` against the floor by quadrature (a z-score).
- SHORTCUT-BASE: with the flow-matching base case at ``d_min`` (``s(x, τ, d_min) = v``,
  the optimum of that loss), the self-consistency target ``s(x, τ, 2d) = ½[s(x, τ, d) +
  s(x + d s(x, τ, d), τ + d, d)]`` has the fixed point ``x + D s(x, τ, D) = (D/d_min)
  Euler steps of size d_min`` (induction on ``D = 2^k d_min``: two steps of size ``d``
  are one of size ``2d`` with the average velocity). Its error against ``X_{t→t−D}`` is
  Euler's global error ``d_min E + O(d_min²)``, ``E`` solving the linearized error
  equation ``dE/dσ = −∇v E − ½ a`` (``σ = t − τ``, ``E = 0`` at ``σ = 0``, ``a = ∂_t v +
  ∇v v``) along the exact trajectory: order 1 in ``d_min``, and exact with a ``d = 0``
  base case (the limit ``d_min → 0``). Measured: the order over ``d_min = 2^-4 …`` and the
  coefficient ratio at the smallest ``d_min``.
- MEANFLOW-WEIGHTING: at ``r = t`` the target is ``v_c`` and the adaptively weighted loss
  ``sg(w) ‖u − v_c‖²``, ``w = (‖u − v_c‖² + ε)^{−p}``, has its semi-gradient zero where
  ``E[(u − v_c) w | x_t] = 0`` — an M-estimate of the law of ``v_c`` given ``x_t``, not its
  mean: ``u = v`` for ``p = 0`` and for laws symmetric about ``v`` (Gaussian data), biased
  otherwise. For large ``ε``, ``w = ε^{−p}(1 − p‖Δ‖²/ε + O(ε⁻²))`` gives ``u − v =
  −(p/ε) E[Δ ‖Δ‖² | x_t] + O(ε⁻²)`` (``Δ = v_c − v``; ``u − v = O(1/ε)`` moves ``w`` at
  ``O(ε⁻²)`` only). Measured: the M-estimation equation solved to rounding (its bias
  reported), the symmetric case, and the expansion's order and coefficient.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
from scipy.integrate import solve_ivp

from ..exact import MixturePath, acceleration
from ..loss_floors import FloorQuadrature, meanflow_quadrature
from ..reference import AccuracyWarning, ReferenceFlow, conditional_expectation, fit_order
from ._case import BatteryConfig, Case
from ._local import bulk_points
from ._results import Check

__all__ = [
    "measure_meanflow_floor",
    "measure_meanflow_weighting",
    "measure_shortcut_base",
    "order_and_ratio",
    "shortcut_fixed_point",
    "weighted_fixed_point",
]

#: ``(t, r)`` of MEANFLOW-FLOOR per dimension: in d = 2 pairs where the floor's
#: Gauss–Hermite rules converge within their budget (near the data they do not: the
#: Jacobian peaks between the modes).
MEANFLOW_PAIRS = {1: ((0.7, 0.2), (1.0, 0.0)), 2: ((0.9, 0.7),)}
#: The Monte Carlo z-score bound: |mean − floor| ≤ 4.4 standard errors (two-sided normal
#: false alarm 1e-5 per check).
Z_BOUND = 4.4
#: The floor's quadrature error estimate, relative: the contract's 1e-6 (at 1e-7 the d = 2
#: rules need order 64, four times the nodes and 7 s instead of 1.7 s per case).
FLOOR_RTOL = 1e-6
#: ``E[v_c | x] − v`` mapped by ``∇X``, relative to ``|∇X| |v|``: posterior quadrature
#: and rounding.
SEMI_GRADIENT_TOLERANCE = 1e-10
#: SHORTCUT-BASE: the base step sizes ``d_min = 2^-4 … 2^-(4 + K − 1)``.
SHORTCUT_FIRST, SHORTCUT_LEVELS = 4, 8
ORDER_TOLERANCE, RATIO_TOLERANCE = 0.05, 0.02
#: MEANFLOW-WEIGHTING: the powers of the adaptive weight, MeanFlow's ε, the large-ε ladder
#: of the expansion, the time (r = t), and the rounding bounds.
WEIGHT_POWERS, WEIGHT_EPS = (0.0, 0.5, 1.0), 0.01
LARGE_EPS = 10.0 ** np.arange(3.0, 5.01, 0.5)
WEIGHTING_TIME = 0.5
STATIONARY_TOLERANCE, SYMMETRIC_TOLERANCE = 1e-10, 1e-12


def measure_meanflow_floor(
    case: Case,
    settings: BatteryConfig,
    rng: np.random.Generator,
    *,
    floor: Callable[..., list[FloorQuadrature]] = meanflow_quadrature,
) -> list[Check]:
    """MEANFLOW-FLOOR on one case (module docstring); ``floor(path, t, r, rtol=…)`` replaces
    the floor's quadrature, to inject a wrong one."""
    path = case.path
    flow = ReferenceFlow(path)
    at_pairs = MEANFLOW_PAIRS.get(path.dim, MEANFLOW_PAIRS[2])
    # Jacobian solves: 5,000 (d = 1) and 2,500 (d = 2) pairs put a floor without ∇X at
    # z = 27–52 and 21–41 (bound 4.4)
    n = settings.n_samples // (4 if path.dim == 1 else 8)
    checks = []
    for t, r in at_pairs:
        where = f"(t, r) = ({t:g}, {r:g})"
        at = path.interpolant.at(t)
        da, ds = float(at.dalpha), float(at.dsigma)
        z = flow.map(bulk_points(path.mixture, max(8, settings.local_points), rng), 0.0, t)
        mean_target = conditional_expectation(
            path, t, z, lambda x0, x1, da=da, ds=ds: da * x0 + ds * x1
        )
        v = path.velocity(t, z)
        jac = flow.jacobian(z, t, r)
        residual = np.linalg.norm(np.einsum("nab,nb->na", jac, mean_target - v), axis=1)
        scale = np.linalg.norm(jac, axis=(1, 2)) * np.linalg.norm(v, axis=1)
        checks.append(
            Check(
                f"E[u_tgt − u | x_t] = ∇X (E[v_c | x_t] − v) at {where}, relative",
                "",
                float(np.max(residual / scale)),
                SEMI_GRADIENT_TOLERANCE,
                "Gauss–Hermite quadrature over the posterior (exact for the linear v_c) and "
                "rounding",
            )
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AccuracyWarning)  # the record says it
            (record,) = floor(path, t, r, rtol=FLOOR_RTOL)
        checks.append(
            Check(
                f"floor quadrature at {where}: error estimate / value",
                "",
                record.error_estimate / record.value,
                FLOOR_RTOL,
                "the rule's own estimate (loss_floors.meanflow_quadrature)",
                value=record.value,
            )
        )
        x0 = path.mixture.sample(n, rng)
        x1 = rng.standard_normal(x0.shape)
        xt = float(at.alpha) * x0 + float(at.sigma) * x1
        error = da * x0 + ds * x1 - path.velocity(t, xt)
        target_error = np.einsum("nab,nb->na", flow.jacobian(xt, t, r), error)
        sq = np.sum(target_error**2, axis=1)
        se = float(np.std(sq, ddof=1) / math.sqrt(n))
        checks.append(
            Check(
                f"MeanFlow loss at the exact u = floor at {where}: |mean − floor| / s.e.",
                "",
                abs(float(np.mean(sq)) - record.value) / se,
                Z_BOUND,
                f"Monte Carlo over {n} pairs (x0, x1), ∇X by the variational equation; "
                f"two-sided normal false alarm 1e-5; floor {record.value:.6g}",
                value=float(np.mean(sq)),
                expected=record.value,
            )
        )
    return checks


def order_and_ratio(
    names: tuple[str, str],
    steps: np.ndarray,
    differences: np.ndarray,
    predicted: np.ndarray,
    expected_order: float,
    budget: str,
    detail: str = "",
) -> list[Check]:
    """Two checks of a measured expansion ``differences[j] ≈ C steps[j]^q``: the order (the
    least-squares slope on the five smallest steps, against ``expected_order`` ±
    :data:`ORDER_TOLERANCE`) and the leading coefficient (the projection of the last,
    smallest-step difference on ``predicted``, against 1 ± :data:`RATIO_TOLERANCE`)."""
    fit = fit_order(steps, [np.linalg.norm(dd) for dd in differences], points=5)
    ratio = float(np.sum(differences[-1] * predicted) / np.sum(predicted * predicted))
    order_detail = fit.describe() + (f"; {detail}" if detail else "")
    return [
        Check.against(
            names[0], "", fit.order, expected_order, ORDER_TOLERANCE, budget, detail=order_detail
        ),
        Check.against(names[1], "", ratio, 1.0, RATIO_TOLERANCE, budget),
    ]


def shortcut_fixed_point(
    path: MixturePath,
    x: np.ndarray,
    t: float,
    span: float,
    d_min: float,
    base: Callable[[float, np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """``x + D s(x, 1 − t, D)`` at the fixed point of the shortcut recursion with the
    flow-matching base case at ``d_min`` (``D = span``, a multiple of ``d_min``): the
    composition of ``D/d_min`` Euler steps of size ``d_min`` of the exact velocity from
    ``t`` towards ``t − D``, shape ``(n, d)``. ``base(t, x)`` replaces the velocity the
    base case learned (default the exact ``v``: flow matching's optimum)."""
    velocity = path.velocity if base is None else base
    steps = round(span / d_min)
    y = np.array(x, dtype=np.float64)
    for i in range(steps):
        y = y - d_min * velocity(t - i * d_min, y)
    return y


def _euler_error_coefficient(path: MixturePath, x: np.ndarray, t: float, span: float):
    """``E`` at ``σ = span`` of ``dE/dσ = −∇v E − ½ a`` along ``dX/dσ = −v`` (module
    docstring), shape ``(n, d)``; DOP853 at rtol 1e-10."""
    n, d = x.shape

    def rhs(sigma: float, state: np.ndarray) -> np.ndarray:
        tau = t - sigma
        point, e = state[: n * d].reshape(n, d), state[n * d :].reshape(n, d)
        grad = path.velocity_jacobian(tau, point)
        de = -np.einsum("nij,nj->ni", grad, e) - 0.5 * acceleration(path, tau, point)
        return np.concatenate([-path.velocity(tau, point).ravel(), de.ravel()])

    start = np.concatenate([x.ravel(), np.zeros(n * d)])
    sol = solve_ivp(rhs, (0.0, span), start, method="DOP853", rtol=1e-10, atol=1e-12)
    return sol.y[n * d :, -1].reshape(n, d)


def measure_shortcut_base(
    case: Case,
    settings: BatteryConfig,
    rng: np.random.Generator,
    *,
    base: Callable[[float, np.ndarray], np.ndarray] | None = None,
) -> list[Check]:
    """SHORTCUT-BASE on one case: ``D = 1`` from ``t = 1`` (the one-step generator) at
    ``settings.local_points`` noise points (module docstring); ``base`` replaces the base
    case's velocity, to inject a biased one."""
    path = case.path
    t, span = 1.0, 1.0
    x = rng.standard_normal((settings.local_points, path.dim))
    exact = ReferenceFlow(path).map(x, t, t - span)
    levels = SHORTCUT_LEVELS - (1 if settings.quick else 0)
    d_mins = 2.0 ** -np.arange(SHORTCUT_FIRST, SHORTCUT_FIRST + levels)
    differences = np.array(
        [shortcut_fixed_point(path, x, t, span, h, base) - exact for h in d_mins]
    )
    predicted = d_mins[-1] * _euler_error_coefficient(path, x, t, span)
    budget = (
        "relative O(d_min) correction ≈ d_min·O(1) at the smallest d_min; E by DOP853 at "
        "rtol 1e-10 with a by 6th-order differences (≲ 1e-7); X_{1→0} to 1e-10"
    )
    names = (
        "fixed point − X_{1→0}: order in d_min",
        f"leading coefficient d_min·E, measured/predicted at d_min = 1/{round(1 / d_mins[-1])}",
    )
    return order_and_ratio(names, d_mins, differences, predicted, 1.0, budget)


def weighted_fixed_point(
    path: MixturePath, t: float, x: np.ndarray, p: float, eps: float, *, iterations: int = 4000
) -> tuple[np.ndarray, np.ndarray]:
    """The fixed point ``u(x)`` of MeanFlow's adaptively weighted loss at ``r = t``, where
    the target is ``v_c``: the zero of ``F(u) = E[(u − v_c) w | x_t = x]``, ``w = (‖u − v_c‖²
    + ε)^{−p}`` (the semi-gradient of ``sg(w) ‖u − v_c‖²``), reached from ``u = v`` by
    iteratively reweighted averaging ``u ← E[w v_c]/E[w]`` and polished by Newton steps
    (``∇F = E[w] I − 2p E[(‖Δ‖² + ε)^{−p−1} ΔΔᵀ]``, ``Δ = u − v_c``), the expectations by
    Gauss–Hermite quadrature over the posterior. Returns ``u`` (shape ``(n, d)``) and the
    stationarity residual ``|F(u)| / E[w]`` per point."""
    at = path.interpolant.at(t)
    da, ds = float(at.dalpha), float(at.dsigma)
    n, d = x.shape

    def moments(u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        def g(x0: np.ndarray, x1: np.ndarray) -> np.ndarray:
            diff = u[:, None, :] - (da * x0 + ds * x1)
            base = np.sum(diff**2, axis=2) + eps
            w = base**-p
            outer = (
                (-2 * p * base ** (-p - 1))[..., None, None]
                * diff[..., :, None]
                * diff[..., None, :]
            )
            return np.concatenate(
                [w[..., None] * diff, w[..., None], outer.reshape(*w.shape, d * d)], axis=2
            )

        out = conditional_expectation(path, t, x, g)
        return out[:, :d], out[:, d], out[:, d + 1 :].reshape(n, d, d)

    u = path.velocity(t, x)
    for _ in range(iterations):
        f, w, _ = moments(u)
        step = f / w[:, None]
        u = u - step
        if np.max(np.abs(step)) <= 1e-9 * (1.0 + np.max(np.abs(u))):
            break
    for _ in range(4):  # Newton: quadratic from here
        f, w, outer = moments(u)
        u = u - np.linalg.solve(w[:, None, None] * np.eye(d) + outer, f[..., None])[..., 0]
    f, w, _ = moments(u)
    return u, np.linalg.norm(f, axis=1) / w


def measure_meanflow_weighting(
    case: Case, settings: BatteryConfig, rng: np.random.Generator
) -> list[Check]:
    """MEANFLOW-WEIGHTING on one case at ``t = r =`` :data:`WEIGHTING_TIME` (module
    docstring of the claim in the catalogue): the fixed point for ``p = 0, ½, 1`` at
    MeanFlow's ``ε = 0.01``, and its large-``ε`` expansion."""
    path = case.path
    t = WEIGHTING_TIME
    x = path.sample(t, max(4, settings.local_points // 2), rng)
    v = path.velocity(t, x)
    spread = np.sqrt(path.velocity_target_variance(t, x))
    checks, fixed = [], {}
    for p in WEIGHT_POWERS:
        u, residual = fixed[p] = weighted_fixed_point(path, t, x, p, WEIGHT_EPS)
        bias = float(np.max(np.linalg.norm(u - v, axis=1) / spread))
        checks.append(
            Check(
                f"p = {p:g}, ε = {WEIGHT_EPS:g}: E[(u − v_c) w | x_t] = 0 solved, |F|/(E[w] spread)",
                "",
                float(np.max(residual / spread)),
                STATIONARY_TOLERANCE,
                "Newton's method on the quadrature's M-estimation equation, to rounding",
                value=bias,
                detail=f"fixed point off v by max |u − v| / spread = {bias:.3g}",
            )
        )
        if p == 0.0:
            checks.append(
                Check("p = 0: u = v, |u − v| / spread", "", bias, SYMMETRIC_TOLERANCE, "rounding")
            )
    at = path.interpolant.at(t)
    da, ds = float(at.dalpha), float(at.dsigma)
    third = conditional_expectation(
        path,
        t,
        x,
        lambda x0, x1: (
            (da * x0 + ds * x1 - v[:, None])
            * np.sum((da * x0 + ds * x1 - v[:, None]) ** 2, axis=2)[..., None]
        ),
    )
    size = float(np.linalg.norm(third))
    if size <= SYMMETRIC_TOLERANCE * float(np.linalg.norm(spread)) ** 3:  # symmetric law
        u, _ = fixed[1.0]
        checks.append(
            Check(
                "symmetric posterior of v_c (third moment 0): u = v for p = 1, |u − v| / spread",
                "",
                float(np.max(np.linalg.norm(u - v, axis=1) / spread)),
                SYMMETRIC_TOLERANCE,
                "rounding: the weighted average of a symmetric law is its centre",
            )
        )
        return checks
    differences = np.array([weighted_fixed_point(path, t, x, 1.0, eps)[0] - v for eps in LARGE_EPS])
    predicted = -third / LARGE_EPS[-1]
    budget = "relative O(1/ε) correction ≈ Var(v_c | x_t)/ε ≲ 1e-2 at the largest ε"
    names = (
        "p = 1, large ε: order of u − v in 1/ε",
        f"u − v = −(p/ε) E[Δ |Δ|² | x_t]: measured/predicted at ε = {LARGE_EPS[-1]:g}",
    )
    checks += order_and_ratio(names, 1.0 / LARGE_EPS, differences, predicted, 1.0, budget)
    return checks
