"""The MeanFlow loss floor ``E ‖∇X_{t→r}(x_t) (v_c − v(t, x_t))‖²`` of a mixture path.

MeanFlow (Geng et al. 2025) regresses ``u_θ(z, r, t)`` on the target
``u_tgt = v_c − (t − r)(∂_t u + ∇_z u · v_c)`` at ``z = x_t`` (``v_c = α̇ x0 + σ̇ x1``, the
derivatives of the network under stop-gradient). At the exact average velocity
``u = (z − X_{t→r}(z))/(t − r)``, which satisfies the MeanFlow identity
``u = v − (t − r)(∂_t u + ∇_z u · v)`` (claim MEANFLOW-IDENTITY), the target's error is
linear in ``v_c − v``:

    ``u_tgt − u = (I − (t − r) ∇_z u)(v_c − v) = ∇X_{t→r}(z) (v_c − v)``

(``X_{t→r}(z) = z − (t − r) u``). Its conditional mean given ``x_t`` vanishes
(``E[v_c | x_t] = v``: the semi-gradient is zero at ``u``), and the unweighted loss at
``u`` is the **floor**

    ``E ‖u_tgt − u‖² = E_{x ~ p_t} tr(∇X_{t→r}(x) Cov(v_c | x_t = x) ∇X_{t→r}(x)ᵀ)``,

the flow-matching floor at ``r = t`` (``∇X_{t→t} = I``). ``Cov(v_c | x_t)`` is closed form
(:meth:`~cmverify.exact.MixturePath.velocity_target_covariance`) and ``∇X_{t→r}`` comes
from :meth:`~cmverify.reference.ReferenceFlow.solve_jacobian` (per trajectory to 1e-10
relative in Frobenius norm where float64 resolves it; each node's own error estimate is
added to the rule's, ``2 ε |value|`` for the worst relative node error ``ε``), one batched
solve per refinement of the rule
(:mod:`cmverify.loss_floors._rules`: adaptive composite Gauss–Legendre in ``d = 1``;
in ``d = 2 … 4`` doubled tensor Gauss–Hermite within :data:`HERMITE_NODES` per
component; where that does not reach ``rtol``, adaptive Genz–Malik cubature
(:mod:`cmverify.loss_floors._cubature`) on the data side, below, within ``max_solves``
solves in all (default :data:`CUBATURE_NODES`, 30–60 s) — if its starting partition,
``8^d`` boxes of ``2^d + 2d² + 2d + 1`` solves per component, fits in half of what is left:
by default in ``d = 2`` only; otherwise the Gauss–Hermite value is returned with its
estimate and a warning).

**The data side.** With ``y = X_{t→r}(x)`` (distributed as ``p_r``) and ``A = ∇X_{r→t}(y)
= ∇X_{t→r}(x)⁻¹``, the floor is ``E_{y ~ p_r} tr(A⁻¹ C(X_{r→t}(y)) A⁻ᵀ)``. Where ``p_r``
has a low-density region (a gap between modes), ``X_{t→r}`` stretches a thin sheet of
``x`` across it and the x-side integrand is a tall narrow ridge; on the data side the
same mass is spread over the whole gap, weighted by ``p_r`` there: a broad bump, which
an adaptive rule resolves with far fewer nodes (eight_gaussians at ``(t, r) = (0.5,
0.25)``: 1.6e-3 relative with 15,000 solves, against 1.6e-2 with 94,000 on the x side).
The error of ``A⁻¹`` is bounded by ``κ(A)`` times ``A``'s relative error estimate.

**Separated modes.** In ``d = 1`` mass conservation gives ``∇X_{t→r}(x) = p_t(x) /
p_r(X_{t→r}(x))``: where ``x`` lies between two modes at time ``t`` and its image at ``r``
in the gap of ``p_r``, the Jacobian is large, and so is ``Cov(v_c | x_t)`` (the posterior is
split between the modes). The floor's integrand ``p_t tr(∇X C ∇Xᵀ)`` then peaks in the gap,
and as ``r → 0`` the peak grows like ``1/p_r`` at the image: the floor of well-separated
modes is dominated by the few points that the map sends across the gap. In ``d = 1`` the
integral is taken on the data side, ``∫ p_t(x(y))² C(x(y)) / p_r(y) dy`` (``x(y) =
X_{r→t}(y)``): there the peak is the smooth bump ``1/p_r`` across the gap, which the
adaptive rule resolves; for seed_bimodal (``p_0`` ≈ 1e-49 between its modes) the floor
at ``r = 0`` is astronomically large — finite, but no training loss can show it. In
``d`` dimensions the same count gives, for a region of ``p_r`` whose density is ``ρ``
times the density ``q`` it is mapped from, with ``X_{t→r}`` stretching ``k`` directions
by ``ρ^{−1/k}`` each (``det ∇X = 1/ρ``), a contribution ``~ ρ^{1 − 2/k} q V C`` (``V``
the region's volume at ``r``, ``C`` the size of ``Cov(v_c | x_t)``): a gap between two
modes (``k = 1``) contributes ``~ 1/ρ`` as in ``d = 1``, a hole surrounded by modes in
``d = 2`` (``k = 2``) ``O(1)``, and in ``d ≥ 3`` a hole contributes less the emptier it is.
eight_gaussians at ``r = 0`` (the midpoint between adjacent modes 3.8 standard deviations
from each, ``ρ ≈ 7e-4``) has a floor near 1e3 that the ``d = 2`` rules reach only to
about 2e-2 within their budget (measured at ``t = 0.5``; the record says so).
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np

from .._validation import as_times
from ..exact import MixturePath
from ..reference import AccuracyWarning, ReferenceFlow
from ._cubature import COARSE_EDGES, cubature_rule, genz_malik
from ._flow_matching import DEFAULT_RTOL as FM_RTOL
from ._flow_matching import MAX_DIM, MIN_CONTRAST, FloorQuadrature, flow_matching_quadrature
from ._rules import hermite_rule, line_integral, narrowest_contrast

__all__ = ["meanflow", "meanflow_quadrature"]

#: Default relative error estimate of the MeanFlow floor, by dimension (each node of
#: ``d ≥ 2`` is a Jacobian solve, accurate to ~1e-10: 0.4–0.8 ms on this machine).
DEFAULT_RTOL = {1: 1e-7, 2: 1e-6, 3: 1e-6, 4: 1e-6}
#: Kept for compatibility: the default in ``d = 1``.
RTOL = DEFAULT_RTOL[1]
#: Budgets of Jacobian solves in ``d ≥ 2``: Gauss–Hermite nodes per component and per
#: axis (tried first), then evaluations of the adaptive cubature.
HERMITE_NODES, MAX_ORDER = 2**12, 32
#: First Gauss–Hermite order per axis, by dimension (each node a Jacobian solve).
FIRST_ORDER = {2: 8, 3: 4, 4: 2}
#: Default budget of Jacobian solves of one floor (``max_solves``).
CUBATURE_NODES = 2**15


def _check(path: object, t: object, r: object) -> tuple[MixturePath, np.ndarray, np.ndarray]:
    if not isinstance(path, MixturePath):
        raise TypeError(f"path must be a MixturePath, got {type(path).__name__}")
    if path.dim > MAX_DIM:
        raise ValueError(
            f"the floors' quadrature rules are limited to d ≤ {MAX_DIM} (adaptive cubature "
            f"costs 2^d nodes a box), got d = {path.dim}"
        )
    t_arr, r_arr = np.atleast_1d(as_times(t, name="t")), np.atleast_1d(as_times(r, name="r"))
    if t_arr.ndim != 1 or r_arr.ndim != 1:
        raise ValueError("t and r must be floats or 1-d arrays")
    t_arr, r_arr = np.broadcast_arrays(t_arr, r_arr)
    bad = r_arr > t_arr
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"MeanFlow's u(z, r, t) has r ≤ t (X_{{t→r}} towards the data), got r = "
            f"{float(r_arr[i])!r} > t = {float(t_arr[i])!r}"
        )
    return path, t_arr.astype(np.float64), r_arr.astype(np.float64)


def _one(path: MixturePath, flow: ReferenceFlow, t: float, r: float, rtol: float, max_solves: int):
    # ∇X_{t→t} = I: the flow-matching floor. Also for t − r ≤ 1e-13, where ∇X = I + O(t − r)
    # is below every tolerance and the Jacobian solves would fail on a step below rounding
    # (SolverFailure at t − r = 1e-15, found in review).
    if t - r <= 1e-13:
        (fm,) = flow_matching_quadrature(path, t, rtol=min(rtol, FM_RTOL[path.dim]))
        return FloorQuadrature(
            fm.t, fm.value, fm.error_estimate, fm.order, fm.nodes, fm.converged, r, fm.rule
        )

    if path.dim == 1:
        rule = _one_d(path, flow, t, r, rtol)
        return FloorQuadrature(
            t,
            rule.value,
            rule.error_estimate,
            rule.order,
            rule.nodes,
            rule.converged,
            r,
            "gauss-legendre",
        )
    worst = [0.0]  # the largest relative error estimate of a node's value

    def g(x: np.ndarray) -> np.ndarray:
        """x side: ``tr(∇X C ∇Xᵀ)`` at ``x ~ p_t``, ``∇X = ∇X_{t→r}(x)``."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AccuracyWarning)  # folded into the estimate
            sol = flow.solve_jacobian(x, t, r)
        size = np.linalg.norm(sol.jacobian, axis=(1, 2))
        # g is quadratic in ∇X: a relative error ε moves it by ≤ ~2ε of it
        worst[0] = max(worst[0], 2.0 * float(np.max(sol.jacobian_error_estimate / size)))
        cov = path.velocity_target_covariance(t, x)
        return np.einsum("nab,nbc,nac->n", sol.jacobian, cov, sol.jacobian)

    k = path.mixture.n_components
    # the cubature's starting partition: 8^d boxes of 2^d + 2d² + 2d + 1 solves per component
    start = k * (len(COARSE_EDGES) - 1) ** path.dim * len(genz_malik(path.dim).w7)
    spent, fits = 0, 2 * start <= max_solves
    # three Gauss–Hermite rules (the fewest that can converge) at the first orders
    three = k * sum((FIRST_ORDER[path.dim] * 2**i) ** path.dim for i in range(3))
    if max_solves < min(three, 2 * start):
        raise ValueError(
            f"max_solves = {max_solves} is below what either rule needs for this path: "
            f"{three} Jacobian solves (three Gauss–Hermite rules) or {2 * start} (twice "
            "the cubature's starting partition)"
        )
    trusted = narrowest_contrast(path, t) >= MIN_CONTRAST  # else no tensor node sees it
    if trusted or not fits:
        # within max_solves: the rules' nodes per component, all rules together ≤ 4/3 q^d
        per_component = min(HERMITE_NODES, (3 * max_solves) // (4 * k))
        rule = hermite_rule(path, t, g, rtol, FIRST_ORDER[path.dim], per_component, MAX_ORDER)
        error = rule.error_estimate + worst[0] * abs(rule.value)
        converged = trusted and error <= rtol * abs(rule.value)
        if converged or 2 * start > max_solves - rule.nodes:
            return FloorQuadrature(
                t, rule.value, error, rule.order, rule.nodes, converged, r, "gauss-hermite"
            )
        spent, worst[0] = rule.nodes, 0.0

    def h(y: np.ndarray) -> np.ndarray:
        """Data side: ``tr(A⁻¹ C A⁻ᵀ)`` at ``y ~ p_r``, ``A = ∇X_{r→t}(y) = ∇X_{t→r}(x)⁻¹``,
        ``C = Cov(v_c | x_t = x)`` at ``x = X_{r→t}(y)``."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AccuracyWarning)  # folded into the estimate
            sol = flow.solve_jacobian(y, r, t)
        a = sol.jacobian
        inner = np.linalg.solve(a, path.velocity_target_covariance(t, sol.x))  # A⁻¹ C
        value = np.trace(np.linalg.solve(a, np.swapaxes(inner, 1, 2)), axis1=1, axis2=2)
        # A⁻¹ moves by ≤ ~κ(A) ε of it for a relative error ε of A; h is quadratic in A⁻¹
        size = np.linalg.norm(a, axis=(1, 2))
        eps = sol.jacobian_error_estimate / size * np.linalg.cond(a)
        worst[0] = max(worst[0], 2.0 * float(np.max(eps)))
        return value

    cub = cubature_rule(path, r, h, rtol, max_solves - spent, COARSE_EDGES)
    error = cub.error_estimate + worst[0] * abs(cub.value)
    converged = error <= rtol * abs(cub.value)
    return FloorQuadrature(t, cub.value, error, 7, spent + cub.nodes, converged, r, "genz-malik")


def _one_d(path: MixturePath, flow: ReferenceFlow, t: float, r: float, rtol: float):
    """d = 1 on the data side: with ``y = X_{t→r}(x)``, ``dy = ∇X dx`` and ``∇X = p_t(x) /
    p_r(y)`` (mass conservation), the floor is ``∫ p_t(x(y))² C(x(y)) / p_r(y) dy`` with
    ``x(y) = X_{r→t}(y)``, a contraction towards the noise (well conditioned where
    ``X_{t→r}`` is not: in the gap between modes), and no Jacobian to solve."""

    def log_f(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        points = y[:, None]
        x = flow.map(points, r, t)
        log_ratio = 2.0 * path.log_prob(t, x) - path.log_prob(r, points)
        return log_ratio, path.velocity_target_variance(t, x)

    return line_integral(path.marginal(r), log_f, rtol)


def meanflow_quadrature(
    path: MixturePath,
    t: object,
    r: object,
    *,
    rtol: float | None = None,
    max_solves: int = CUBATURE_NODES,
) -> list[FloorQuadrature]:
    """The MeanFlow floor at each ``(t, r)`` (floats or 1-d arrays, broadcast; ``r ≤ t``)
    with its quadrature record (module docstring); ``rtol`` defaults to
    :data:`DEFAULT_RTOL` of the dimension, ``max_solves`` bounds the Jacobian solves of
    each floor in ``d ≥ 2``, Gauss–Hermite and cubature together (a larger budget buys
    accuracy where the default does not reach ``rtol``: about 0.5–2.5 ms a solve here;
    the cubature runs only where twice its starting partition fits in what is left). An
    :class:`~cmverify.reference.AccuracyWarning` where the error estimate stayed above
    ``rtol`` within the budget."""
    path, t_arr, r_arr = _check(path, t, r)
    if rtol is None:
        rtol = DEFAULT_RTOL[path.dim]
    if not (isinstance(rtol, numbers.Real) and not isinstance(rtol, bool) and 0 < rtol < 1):
        raise ValueError(f"rtol must be a number in (0, 1), got {rtol!r}")
    if (
        isinstance(max_solves, bool)
        or not isinstance(max_solves, int | np.integer)
        or max_solves < 1
    ):
        raise ValueError(f"max_solves must be a whole number ≥ 1, got {max_solves!r}")
    flow = ReferenceFlow(path)
    records = [
        _one(path, flow, float(ti), float(ri), float(rtol), max_solves)
        for ti, ri in zip(t_arr, r_arr, strict=True)
    ]
    for rec in records:
        if not rec.converged:
            warnings.warn(
                f"MeanFlow floor at t = {rec.t:g}, r = {rec.r:g}: quadrature error estimate "
                f"{rec.error_estimate:.2e} above rtol = {rtol:g} of the value {rec.value:.6g}",
                AccuracyWarning,
                stacklevel=2,
            )
    return records


def meanflow(path: MixturePath, t: object, r: object) -> float | np.ndarray:
    """``E ‖∇X_{t→r}(x_t)(v_c − v(t, x_t))‖²``: the unweighted MeanFlow loss of the exact
    average velocity ``u(·, r, t)`` (module docstring), to an error estimate ≤ 1e-7
    relative in ``d = 1`` and 1e-6 in ``d = 2 … 4`` where the rules reach it within their
    budgets of Jacobian solves, with an :class:`~cmverify.reference.AccuracyWarning` where
    they do not (:func:`meanflow_quadrature` gives each value's record). A float for float
    ``t`` and ``r``, else an array over their broadcast."""
    records = meanflow_quadrature(path, t, r)
    values = np.array([rec.value for rec in records])
    scalar = np.ndim(as_times(t, name="t")) == 0 and np.ndim(as_times(r, name="r")) == 0
    return float(values[0]) if scalar else values
