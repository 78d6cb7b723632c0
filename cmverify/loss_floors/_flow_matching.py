"""The flow-matching loss floor ``E ‖v_c − v(t, x_t)‖²`` of a mixture path.

With ``v_c = α̇ x0 + σ̇ x1`` (the conditional target a flow-matching loss regresses on) and
``v`` the exact velocity, ``E ‖v_θ − v_c‖² = E ‖v_θ − v‖² + E ‖v_c − v‖²`` for any model
``v_θ(t, x_t)`` (the cross term vanishes because ``E[v_c | x_t] = v``): the second term is
the **floor**, what the exact velocity itself scores, and the first the model's excess.
The floor is ``E_{x ~ p_t} tr Cov(v_c | x_t = x)``, whose integrand is closed form per
point (:meth:`~cmverify.exact.MixturePath.velocity_target_variance`:
``W² Σ_k r_k Σ_i λ_k,i / c_k,i + Σ_k r_k |m_k − v|²``).

**How it is integrated.** The integrand is smooth, but where components of different
scales meet, the responsibilities switch over a short distance, far out in the tails of
the broader component. In ``d = 1``: adaptive composite Gauss–Legendre from a partition
that follows every component's own scale (:func:`~cmverify.loss_floors._rules.line_rule`),
to an error estimate ≤ ``rtol`` (default 1e-9; measured against adaptive quadrature:
≤ 1e-14 relative on seed_bimodal and mild_bimodal). In ``d ≥ 2``: over ``p_t = Σ_j w_j N(α μ_j, C_j)`` by a tensor
Gauss–Hermite rule per component (:func:`cmverify.reference.marginal_expectation`),
the nodes per axis doubled until two rules agree to ``rtol``; fast where the components
have similar scales (eight_gaussians: 128–1024 nodes per axis for 1e-10), slow where a
narrow and a broad one meet, and then the warning says so. The returned value is the
finer rule's and the difference is its error estimate (:class:`FloorQuadrature`). At ``t = 0`` the floor is ``d σ̇_0²``
and at ``t = 1`` ``α̇_1² tr Cov(x0)``, exactly (the integrand is constant there).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from .._validation import as_times
from ..exact import MixturePath
from ..reference import AccuracyWarning
from ._rules import hermite_rule, line_rule

__all__ = ["FloorQuadrature", "flow_matching", "flow_matching_quadrature"]

#: First Gauss–Hermite order per axis, by dimension (d ≥ 2); doubled until converged.
FIRST_ORDER = {1: 16, 2: 8, 3: 8}
#: The largest dimension the floor's rules reach (tensor rules: ``q^d`` nodes).
MAX_DIM = max(FIRST_ORDER)
#: The largest rule tried: nodes per component (``q^d``), and per axis.
MAX_NODES_PER_COMPONENT = 2**20
MAX_ORDER = 2048
#: Default relative agreement of two successive rules (the finer one is then far closer:
#: the rules converge spectrally once they resolve the modes' boundaries).
RTOL = 1e-9


@dataclass(frozen=True)
class FloorQuadrature:
    """A loss floor with its quadrature record.

    Attributes:
        t: the time.
        value: the floor (the finer rule's value).
        error_estimate: ``|I_q − I_{q/2}|`` of the last two rules in ``d ≥ 2``, the sum
            of the panels' ``|G16 − G8|`` in ``d = 1`` (upper estimates of the finer
            rule's error where the rules converge).
        order: nodes per axis of the finer rule (Gauss–Hermite; in d = 1 the 16 Gauss–
            Legendre nodes of a panel).
        nodes: integrand evaluations (``K q^d`` of the finer rule in ``d ≥ 2``; all of
            the adaptive refinement in ``d = 1``).
        converged: whether ``error_estimate ≤ rtol · value`` was reached.
        r: the MeanFlow floor's second time (``None`` for the flow-matching floor).
    """

    t: float
    value: float
    error_estimate: float
    order: int
    nodes: int
    converged: bool
    r: float | None = None


def _check(path: object) -> MixturePath:
    if not isinstance(path, MixturePath):
        raise TypeError(f"path must be a MixturePath, got {type(path).__name__}")
    if path.dim not in FIRST_ORDER:
        raise ValueError(
            f"the floor's tensor Gauss–Hermite rules are limited to d ≤ {MAX_DIM}, "
            f"got d = {path.dim}"
        )
    return path


def _one(path: MixturePath, t: float, rtol: float) -> FloorQuadrature:
    def g(x: np.ndarray) -> np.ndarray:
        return path.velocity_target_variance(t, x)

    if path.dim == 1:
        rule = line_rule(path, t, g, rtol)
    else:
        rule = hermite_rule(
            path, t, g, rtol, FIRST_ORDER[path.dim], MAX_NODES_PER_COMPONENT, MAX_ORDER
        )
    return FloorQuadrature(
        t, rule.value, rule.error_estimate, rule.order, rule.nodes, rule.converged
    )


def flow_matching_quadrature(
    path: MixturePath, t: object, *, rtol: float = RTOL
) -> list[FloorQuadrature]:
    """The floor at each time of ``t`` (a float or a 1-d array in ``[0, 1]``) with its
    quadrature record (module docstring); an :class:`~cmverify.reference.AccuracyWarning`
    where two rules did not agree to ``rtol`` before :data:`MAX_NODES_PER_COMPONENT`."""
    path = _check(path)
    if not (isinstance(rtol, float | int) and not isinstance(rtol, bool) and 0 < rtol < 1):
        raise ValueError(f"rtol must be a number in (0, 1), got {rtol!r}")
    times = np.atleast_1d(as_times(t))
    if times.ndim != 1:
        raise ValueError(f"t must be a float or a 1-d array, got shape {np.shape(t)}")
    records = [_one(path, float(ti), float(rtol)) for ti in times]
    for r in records:
        if not r.converged:
            warnings.warn(
                f"flow-matching floor at t = {r.t:g}: two Gauss–Hermite rules ({r.order // 2} "
                f"and {r.order} nodes per axis) differ by {r.error_estimate:.2e}, above "
                f"rtol = {rtol:g} of the value {r.value:.6g}",
                AccuracyWarning,
                stacklevel=2,
            )
    return records


def flow_matching(path: MixturePath, t: object) -> float | np.ndarray:
    """``E ‖v_c − v(t, x_t)‖²`` with ``v_c = α̇ x0 + σ̇ x1``: the flow-matching loss of the
    exact velocity at time ``t`` (a float, or a 1-d array of times: then an array),
    within 1e-9 relative by the agreement of two rules (module docstring; :func:`flow_matching_quadrature` gives
    each value's error estimate and nodes). A model's flow-matching loss at ``t`` minus
    this floor is ``E ‖v_θ − v‖²``, its excess (up to sampling)."""
    records = flow_matching_quadrature(path, t)
    values = np.array([r.value for r in records])
    return float(values[0]) if np.ndim(as_times(t)) == 0 else values
