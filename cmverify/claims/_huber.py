"""PSEUDO-HUBER: where consistency training converges under iCT/ECT's pseudo-Huber loss
``ρ_c(r) = √(‖r‖² + c²) − c`` (claims layer).

One CT step from ``s − Δ`` to ``s`` with target network ``F`` (``F = f*(s − Δ, ·)`` in the
induction): the online value at ``y = x_s`` minimizes ``E[ρ_c(a − Z) | x_s = y]`` over
``a``, ``Z = F(x_{s−Δ})`` with ``x_{s−Δ} = α' x0 + σ' x1`` of the same pair. Its
estimating equation is ``E[ψ_c(a − Z) | y] = 0``, ``ψ_c(r) = r/√(‖r‖² + c²)``. With ``T =
F(X_{s→s−Δ}(y))`` and ``δ = α̇ x0 + σ̇ x1``, ``Z − T = Δ W + O(Δ²)``, ``W = ∇F(y)(v − δ)``,
``E[W | y] = 0``.

- ``c > 0`` fixed: for ``Δ‖W‖ ≪ c``, ``ψ_c(r) = r/c − r‖r‖²/(2c³) + O(r⁵/c⁵)``, so the
  fixed point ``a_c`` differs from the squared loss's ``a_2 = E[Z | y]`` by ``a_c − a_2 =
  −Δ³ E[W‖W‖² | y]/(2c²) + O(Δ⁴/c²) + O(Δ⁵/c⁴)``: order 3, below CT's own local
  ``O(Δ²)`` (CT-LOCAL), so the induction stays consistent (``O(Δ)`` globally). The
  expansion needs ``Δ‖W‖ ≲ c/8`` (the measured ladder starts there): for iCT's ``c =
  0.00054 √d`` that is ``Δ ≲ 6e-5`` here; at coarser steps the fixed point moves towards the
  ``c = 0`` median.
- ``c = 0`` (the plain norm): ``a_0`` is the (geometric) median of ``Z``, ``a_0 − T = Δ
  med(W | y) + O(Δ²)``: a local bias of order 1, not 2, wherever the law of ``W`` is not
  symmetric about 0 (mixture data). Summed over ``1/Δ`` steps it does not vanish. In
  ``d = 1`` the whole induction is explicit: ``f_t`` stays increasing, the median
  commutes with it, and one step is ``f_{s}(y) = f_{s−Δ}(med(x_{s−Δ} | x_s = y))`` with
  ``med(x_{s−Δ} | y) = (σ'/σ) y + ((α'σ − σ'α)/σ) m(s, y)``, ``m`` the posterior median of
  ``x0``: DDIM with the median denoiser. As ``Δ → 0`` it converges at order 1 to the
  flow of the *median velocity* ``ṽ = α̇ m + σ̇ (x − α m)/σ``, not of ``v``: its
  one-step map ``f^med(1, ·)`` is off ``f*(1, ·)`` by ``O(1)``.

Measured at ``s = 0.5`` on points of the data's bulk mapped to ``s``, all expectations by
Gauss–Hermite rules over the posterior (:func:`~cmverify.reference.conditional_nodes`);
``F = f*`` (quantile map) in ``d = 1``, a fixed tanh network in ``d = 2``.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from scipy.integrate import solve_ivp
from scipy.special import ndtri

from ..exact import MixturePath
from ..reference import ReferenceFlow, conditional_nodes, fit_order, quantile_flow_map
from ..symbolic import jacobian
from ._case import BatteryConfig, Case
from ._functions import TanhNetwork
from ._local import DEFAULT_DELTAS, F_STEP, LOCAL_TIME, bulk_points
from ._medians import THETA_POINTS, geometric_median_2d, posterior_median, pseudo_huber_estimate
from ._results import Check
from ._targets import order_and_ratio

__all__ = ["ict_c", "measure_pseudo_huber", "median_chain", "median_flow"]

#: A fixed ``c`` (iCT's value for CIFAR-10, ``0.00054 √3072``).
FIXED_C = 0.03
#: The ``c > 0`` ladder: ``Δ ‖W‖_max / c = 2^-3 … 2^-10``.
HUBER_LADDER = 2.0 ** -np.arange(3, 11)
#: The ``d = 1`` chain's step counts (``Δ = 1/N``) and the median flow's tolerance.
CHAIN_STEPS, CHAIN_STEPS_QUICK = 2 ** np.arange(4, 9), 2 ** np.arange(3, 8)
FLOW_RTOL, FLOW_END = 1e-11, 1e-6
#: Noise quantiles at which the d = 1 c = 0 limit is compared with f*.
GLOBAL_POINTS = 64
ORDER_TOLERANCE = 0.05
#: Stationarity of the node estimate (relative), and the bias resolution bound.
STATIONARY_TOLERANCE, RESOLVED, GMED_TOLERANCE = 1e-9, 1e-3, 1e-10


def ict_c(dim: int) -> float:
    """iCT's pseudo-Huber constant ``0.00054 √d``."""
    return 0.00054 * math.sqrt(dim)


def _coefficients(path: MixturePath, t: float) -> tuple[float, float, float, float]:
    at = path.interpolant.at(t)
    return float(at.alpha), float(at.sigma), float(at.dalpha), float(at.dsigma)


def median_chain(path: MixturePath, x: np.ndarray, steps: int) -> np.ndarray:
    """The fixed point of ``c = 0`` consistency training in ``d = 1`` with ``steps`` equal
    steps, as a map of ``x1`` (shape ``(n, 1)``): ``f(1, x)`` by ``y ← (σ'/σ) y + ((α'σ −
    σ'α)/σ) m(t, y)`` from ``t = 1`` down to 0 (module docstring)."""
    grid = np.linspace(1.0, 0.0, steps + 1)
    y = np.array(x, dtype=np.float64)
    for hi, lo in itertools.pairwise(grid):
        a, s, _, _ = _coefficients(path, hi)
        a2, s2, _, _ = _coefficients(path, lo)
        y = (s2 / s) * y + ((a2 * s - s2 * a) / s) * posterior_median(path, hi, y)
    return y


def median_flow(path: MixturePath, x: np.ndarray) -> np.ndarray:
    """``f^med(1, x)``: the flow of the median velocity ``ṽ = α̇ m + σ̇ (x − α m)/σ`` from
    ``t = 1`` to :data:`FLOW_END` (DOP853 at rtol :data:`FLOW_RTOL`), then one median step
    to 0 (error ``O(FLOW_END²)``). ``x`` of shape ``(n, 1)``."""

    def rhs(t: float, state: np.ndarray) -> np.ndarray:
        a, s, da, ds = _coefficients(path, t)
        point = state[:, None]
        m = posterior_median(path, t, point)
        return (da * m + ds * (point - a * m) / s)[:, 0]

    sol = solve_ivp(rhs, (1.0, FLOW_END), np.ravel(x), method="DOP853", rtol=FLOW_RTOL, atol=1e-13)
    if not sol.success:
        raise RuntimeError(f"median flow failed: {sol.message}")
    # The last step, FLOW_END → 0, is the median denoiser (σ' = 0, α' = 1).
    return posterior_median(path, FLOW_END, sol.y[:, -1][:, None])


def _nodes(path: MixturePath, s: float, y: np.ndarray, order: int | None):
    """Posterior rule at ``(s, y)``: ``x0``, ``x1``, weights and ``δ = α̇ x0 + σ̇ x1``."""
    x0, x1, w = conditional_nodes(path, s, y, order=order)
    _, _, da, ds = _coefficients(path, s)
    return x0, x1, w, da * x0 + ds * x1


def _targets_at_nodes(path, s, x0, x1, delta, F) -> np.ndarray:
    """``Z = F(x_{s−Δ})`` at the nodes, shape ``(n, M, m)``."""
    a, sg, _, _ = _coefficients(path, s - delta)
    n, big_m, d = x0.shape
    return F(delta, (a * x0 + sg * x1).reshape(-1, d)).reshape(n, big_m, -1)


def _huber_checks(path, s, y, nodes, jac, c, F, label) -> list[Check]:
    """``a_c − a_2`` on the ladder ``Δ = (c/ω) 2^-j``: order 3 and coefficient."""
    x0, x1, w, dlt = nodes
    v = path.velocity(s, y)
    big_w = np.einsum("nab,njb->nja", jac, v[:, None] - dlt)  # W at the nodes
    sq = np.sum(big_w * big_w, axis=2)
    omega = float(np.sqrt(np.max(np.einsum("nj,nj->n", w, sq))))
    third = np.einsum("nj,nja->na", w, big_w * sq[..., None])
    deltas = (c / omega) * HUBER_LADDER
    offsets, worst = [], 0.0
    for delta in deltas:
        _, offset, residual = pseudo_huber_estimate(
            _targets_at_nodes(path, s, x0, x1, delta, F), w, c
        )
        offsets.append(offset)
        worst = float(np.max([worst, *np.ravel(residual)]))  # NaN stays NaN
    predicted = -(deltas[-1] ** 3) * third / (2 * c * c)
    budget = (
        "relative corrections O(Δ) (Taylor) and O((Δω/c)²) ≤ 1e-6 (ψ's next term) at the "
        "smallest Δ; Gauss–Hermite nodes shared by a_c and a_2 (the rule's error cancels "
        "to the third moment's); offset computed on centred values"
    )
    names = (
        f"c = {label}: order of a_c − a_2 in Δ",
        f"c = {label}: a_c − a_2 = −Δ³ E[W‖W‖² | y]/(2c²), measured/predicted at "
        f"Δ = {deltas[-1]:.2e}",
    )
    detail = f"Δ from {deltas[0]:.2e} (Δω/c = 1/8, ω = {omega:.3g}); stationarity ≤ {worst:.1e}"
    checks = order_and_ratio(names, deltas, np.array(offsets), predicted, 3.0, budget, detail)
    checks.append(
        Check(
            f"c = {label}: pseudo-Huber estimating equation solved, ‖E ψ_c‖/E‖ψ_c‖",
            "",
            worst,
            STATIONARY_TOLERANCE,
            "Newton's method on the rule's estimating equation, to rounding",
        )
    )
    return checks


def _median_local_1d(path, s, y, flow_map_at) -> list[Check]:
    """``c = 0``, ``d = 1``, ``F = f*(s − Δ, ·)``: ``a_0 = f*(s − Δ, med(x_{s−Δ} | y))``
    against ``T = f*(s, y)``, predicted ``Δ ∂f*(s, y)(v − ṽ)``."""
    a, sg, da, ds = _coefficients(path, s)
    m = posterior_median(path, s, y)
    target = flow_map_at(s, y)
    differences = []
    for delta in DEFAULT_DELTAS:
        a2, s2, _, _ = _coefficients(path, s - delta)
        med = (s2 / sg) * y + ((a2 * sg - s2 * a) / sg) * m
        differences.append(flow_map_at(s - delta, med) - target)
    slope = np.exp(path.log_prob(s, y) - path.mixture.log_prob(target))[:, None]
    v_med = da * m + ds * (y - a * m) / sg
    predicted = DEFAULT_DELTAS[-1] * slope * (path.velocity(s, y) - v_med)
    budget = (
        "relative O(Δ) correction ≈ Δ·O(1) at Δ = 1/2048; medians by Newton to 1e-15, f* by "
        "the quantile map to 1e-15, ∂f* = p_s/p_0 exact"
    )
    names = (
        "c = 0: order of a_0 − f*(s, y) in Δ",
        "c = 0: a_0 − f* = Δ ∂f* (v − ṽ), ṽ the median velocity, measured/predicted at "
        f"Δ = 1/{round(1 / DEFAULT_DELTAS[-1])}",
    )
    return order_and_ratio(names, DEFAULT_DELTAS, np.array(differences), predicted, 1.0, budget)


def _affine_law(post, matrix: np.ndarray, scale: float, shift: np.ndarray):
    """The law of ``shift + scale · A x0`` for ``x0`` from the posterior ``post``, ``A =
    matrix`` per point: weights ``(n, K)``, means ``(n, K, m)``, covariances ``(n, K, m,
    m)``."""
    cov0 = np.einsum("kab,nkb,kcb->nkac", post.eigvecs, post.eigvals, post.eigvecs)
    means = shift[:, None] + scale * np.einsum("nab,nkb->nka", matrix, post.means)
    covs = scale**2 * np.einsum("nab,nkbc,ndc->nkad", matrix, cov0, matrix)
    return post.weights, means, covs


def _median_local_2d(path, s, y, flow: ReferenceFlow) -> list[Check]:
    """``c = 0``, ``d = 2``, an affine target ``F(x) = A x`` per point, ``A = ∇f*(s, y)``
    (``f*``'s linearization): the law of ``Z = A x_{s−Δ}`` given ``y`` is a Gaussian
    mixture, so ``a_0 = gmed(Z)`` is exact (:func:`geometric_median_2d`); against ``T = A
    X_{s→s−Δ}(y)``, predicted ``Δ gmed(W)``, ``W = A(v − δ)``. (A tanh network's Jacobian
    can be nearly singular — condition 7.5e5 at one bulk point — which makes the law of
    ``W`` a needle no θ grid resolves.)"""
    matrix = flow.jacobian(y, s, 0.0)
    a, sg, da, ds = _coefficients(path, s)
    n = y.shape[0]
    post = path.posterior(s, y)
    ends = flow.map(np.tile(y, (len(DEFAULT_DELTAS), 1)), s, np.repeat(s - DEFAULT_DELTAS, n))
    ends = ends.reshape(len(DEFAULT_DELTAS), n, -1)
    differences, worst = [], 0.0
    for j, delta in enumerate(DEFAULT_DELTAS):
        a2, s2, _, _ = _coefficients(path, s - delta)
        kappa = (a2 * sg - s2 * a) / sg
        med, residual = geometric_median_2d(*_affine_law(post, matrix, kappa, np.zeros((n, 2))))
        worst = float(np.max([worst, *np.ravel(residual)]))  # NaN stays NaN
        moved = np.einsum("nab,nb->na", matrix, (s2 / sg) * y - ends[j])
        differences.append(moved + med)
    v = path.velocity(s, y)
    k = da - ds * a / sg  # δ = (σ̇/σ) y + k x0
    law = _affine_law(post, matrix, -k, np.einsum("nab,nb->na", matrix, v - (ds / sg) * y))
    coefficient, residual = geometric_median_2d(*law)
    finer, _ = geometric_median_2d(*law, points=4 * THETA_POINTS)
    spread = np.sqrt(
        np.einsum("nk,nkaa->n", law[0], law[2])
        + np.einsum(
            "nk,nka->n",
            law[0],
            (law[1] - np.einsum("nk,nka->na", law[0], law[1])[:, None]) ** 2,
        )
    )
    grid = float(np.max(np.linalg.norm(finer - coefficient, axis=1) / spread))
    worst = float(np.max([worst, *np.ravel(residual)]))  # NaN stays NaN
    size = float(np.min(np.linalg.norm(coefficient, axis=1) / spread))
    predicted = DEFAULT_DELTAS[-1] * coefficient
    budget = (
        "relative O(Δ) correction at Δ = 1/2048; X to 1e-10; medians exact up to the θ "
        "grid and Newton's residual (checked below)"
    )
    names = (
        "c = 0: order of a_0 − F(X_{s→s−Δ}(y)) in Δ (F affine)",
        "c = 0: a_0 − F(X) = Δ gmed(W | y), measured/predicted at "
        f"Δ = 1/{round(1 / DEFAULT_DELTAS[-1])}",
    )
    detail = f"|gmed W| ≥ {size:.3g} × RMS spread of W: W's law is not symmetric"
    checks = order_and_ratio(
        names, DEFAULT_DELTAS, np.array(differences), predicted, 1.0, budget, detail
    )
    return [
        *checks,
        Check(
            f"c = 0: geometric medians resolved: θ grid {THETA_POINTS} vs {4 * THETA_POINTS} "
            "(relative to the spread), and Newton's residual",
            "",
            float(np.max([grid, worst])),
            GMED_TOLERANCE,
            "trapezoid rule of an analytic periodic integrand; Newton to rounding",
            detail=f"grid {grid:.1e}, residual {worst:.1e}",
        ),
    ]


def _median_global_1d(path: MixturePath, x: np.ndarray, quick: bool) -> list[Check]:
    """``c = 0``, ``d = 1``: the chain's order towards ``f^med`` and the limit's bias."""
    limit = median_flow(path, x)
    steps = CHAIN_STEPS_QUICK if quick else CHAIN_STEPS
    errors = [float(np.sqrt(np.mean((median_chain(path, x, k) - limit) ** 2))) for k in steps]
    fit = fit_order(1.0 / steps, errors, points=5)
    exact = quantile_flow_map(path, x, 1.0, 0.0)
    spread = float(
        np.sqrt(
            np.sum(path.mixture.weights * path.mixture.covs[:, 0, 0])
            + np.var(path.mixture.means[:, 0], ddof=0)
        )
    )
    bias = float(np.sqrt(np.mean((limit - exact) ** 2)))
    resolution = 1e3 * FLOW_RTOL * (1 + float(np.max(np.abs(limit))))
    return [
        Check.against(
            "c = 0 induction (N steps) → f^med(1, ·), the median velocity's flow: order in 1/N",
            "",
            fit.order,
            1.0,
            ORDER_TOLERANCE,
            f"f^med by DOP853 at rtol {FLOW_RTOL:g} (≲ {resolution:.0e}) against chain errors "
            f"≥ {errors[-1]:.1e}",
            detail=fit.describe(),
        ),
        Check(
            "c = 0 limit is not f*: (f^med's error bound) / RMS |f^med(1, x) − f*(1, x)|",
            "",
            resolution / bias,
            RESOLVED,
            "the bias is resolved when it exceeds the limit's error bound 1000-fold",
            value=bias,
            detail=f"RMS bias {bias:.4g} = {bias / spread:.3g} × the data's standard "
            f"deviation, at the noise's {x.shape[0]} midpoint quantiles",
        ),
    ]


def measure_pseudo_huber(
    case: Case, settings: BatteryConfig, rng: np.random.Generator
) -> list[Check]:
    """PSEUDO-HUBER on one case at ``s = 0.5`` (module docstring)."""
    path = case.path
    d = path.dim
    s = LOCAL_TIME
    flow = ReferenceFlow(path)
    n = max(4, settings.local_points // 2)
    y = flow.map(bulk_points(path.mixture, n, rng), 0.0, s)
    order = None if d == 1 else 12
    nodes = _nodes(path, s, y, order)
    if d == 1:

        def flow_map_at(t: float, x: np.ndarray) -> np.ndarray:
            return quantile_flow_map(path, x, t, 0.0)

        def F(delta: float, x: np.ndarray) -> np.ndarray:
            return flow_map_at(s - delta, x)

        target = flow_map_at(s, y)
        jac = np.exp(path.log_prob(s, y) - path.mixture.log_prob(target))[:, None, None]
    else:
        network = TanhNetwork(d, seed=1)

        def F(delta: float, x: np.ndarray) -> np.ndarray:
            return network(x)

        jac = jacobian(network, y, F_STEP)
    checks = []
    for c, label in ((FIXED_C, f"{FIXED_C:g}"), (ict_c(d), f"0.00054√{d} = {ict_c(d):.2e}")):
        checks += _huber_checks(path, s, y, nodes, jac, c, F, label)
    if d == 1:
        checks += _median_local_1d(path, s, y, flow_map_at)
        # the noise's quantiles Φ⁻¹((i + ½)/64): the RMS bias is a midpoint rule over p_1,
        # not a 16-point sample of it (0.051–0.055 by sampling, 0.0561 exactly)
        x1 = ndtri((np.arange(GLOBAL_POINTS) + 0.5) / GLOBAL_POINTS)[:, None]
        checks += _median_global_1d(path, x1, settings.quick)
    else:
        checks += _median_local_2d(path, s, y, flow)
    return checks
