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
(:mod:`cmverify.loss_floors._rules`: adaptive composite Gauss–Legendre in ``d = 1``,
doubled tensor Gauss–Hermite in ``d = 2, 3``).

**Separated modes.** In ``d = 1`` mass conservation gives ``∇X_{t→r}(x) = p_t(x) /
p_r(X_{t→r}(x))``: where ``x`` lies between two modes at time ``t`` and its image at ``r``
in the gap of ``p_r``, the Jacobian is large, and so is ``Cov(v_c | x_t)`` (the posterior is
split between the modes). The floor's integrand ``p_t tr(∇X C ∇Xᵀ)`` then peaks in the gap,
and as ``r → 0`` the peak grows like ``1/p_r`` at the image: the floor of well-separated
modes is dominated by the few points that the map sends across the gap. In ``d = 1`` the
integral is taken on the data side, ``∫ p_t(x(y))² C(x(y)) / p_r(y) dy`` (``x(y) =
X_{r→t}(y)``): there the peak is the smooth bump ``1/p_r`` across the gap, which the
adaptive rule resolves; for seed_bimodal (``p_0`` ≈ 1e-49 between its modes) the floor
at ``r = 0`` is astronomically large — finite, but no training loss can show it.
"""

from __future__ import annotations

import warnings

import numpy as np

from .._validation import as_times
from ..exact import MixturePath
from ..reference import AccuracyWarning, ReferenceFlow
from ._flow_matching import FIRST_ORDER, MAX_DIM, FloorQuadrature, flow_matching_quadrature
from ._flow_matching import RTOL as FM_RTOL
from ._rules import hermite_rule, line_integral

__all__ = ["meanflow", "meanflow_quadrature"]

#: Default relative error estimate of the MeanFlow floor (each node needs a Jacobian
#: solve, accurate to ~1e-10: the rules aim well above that).
RTOL = 1e-7
#: Node budget per component of the Gauss–Hermite rules (each node a Jacobian solve).
MAX_NODES_PER_COMPONENT = 2**14
MAX_ORDER = 256


def _check(path: object, t: object, r: object) -> tuple[MixturePath, np.ndarray, np.ndarray]:
    if not isinstance(path, MixturePath):
        raise TypeError(f"path must be a MixturePath, got {type(path).__name__}")
    if path.dim > MAX_DIM:
        raise ValueError(
            f"the floor's tensor Gauss–Hermite rules are limited to d ≤ {MAX_DIM}, got d = {path.dim}"
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


def _one(path: MixturePath, flow: ReferenceFlow, t: float, r: float, rtol: float):
    # ∇X_{t→t} = I: the flow-matching floor. Also for t − r ≤ 1e-13, where ∇X = I + O(t − r)
    # is below every tolerance and the Jacobian solves would fail on a step below rounding
    # (SolverFailure at t − r = 1e-15, found in review).
    if t - r <= 1e-13:
        (fm,) = flow_matching_quadrature(path, t, rtol=min(rtol, FM_RTOL))
        return FloorQuadrature(
            fm.t, fm.value, fm.error_estimate, fm.order, fm.nodes, fm.converged, r
        )

    if path.dim == 1:
        rule = _one_d(path, flow, t, r, rtol)
        return FloorQuadrature(
            t, rule.value, rule.error_estimate, rule.order, rule.nodes, rule.converged, r
        )
    worst = [0.0]  # the largest relative error estimate of a node's Jacobian

    def g(x: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AccuracyWarning)  # folded into the estimate
            sol = flow.solve_jacobian(x, t, r)
        size = np.linalg.norm(sol.jacobian, axis=(1, 2))
        worst[0] = max(worst[0], float(np.max(sol.jacobian_error_estimate / size)))
        cov = path.velocity_target_covariance(t, x)
        return np.einsum("nab,nbc,nac->n", sol.jacobian, cov, sol.jacobian)

    rule = hermite_rule(path, t, g, rtol, FIRST_ORDER[path.dim], MAX_NODES_PER_COMPONENT, MAX_ORDER)
    # g ≥ 0 is quadratic in ∇X: a relative error ε per node moves the value by ≤ ~2ε of it
    error = rule.error_estimate + 2.0 * worst[0] * abs(rule.value)
    return FloorQuadrature(
        t, rule.value, error, rule.order, rule.nodes, error <= rtol * abs(rule.value), r
    )


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
    path: MixturePath, t: object, r: object, *, rtol: float = RTOL
) -> list[FloorQuadrature]:
    """The MeanFlow floor at each ``(t, r)`` (floats or 1-d arrays, broadcast; ``r ≤ t``)
    with its quadrature record (module docstring); an
    :class:`~cmverify.reference.AccuracyWarning` where the rule's error estimate stayed
    above ``rtol`` within its budget."""
    path, t_arr, r_arr = _check(path, t, r)
    if not (isinstance(rtol, float | int) and not isinstance(rtol, bool) and 0 < rtol < 1):
        raise ValueError(f"rtol must be a number in (0, 1), got {rtol!r}")
    flow = ReferenceFlow(path)
    records = [
        _one(path, flow, float(ti), float(ri), float(rtol))
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
    relative (:func:`meanflow_quadrature` gives each value's record). A float for float
    ``t`` and ``r``, else an array over their broadcast."""
    records = meanflow_quadrature(path, t, r)
    values = np.array([rec.value for rec in records])
    scalar = np.ndim(as_times(t, name="t")) == 0 and np.ndim(as_times(r, name="r")) == 0
    return float(values[0]) if scalar else values
