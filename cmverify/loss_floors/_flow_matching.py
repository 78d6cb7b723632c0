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
to an error estimate ≤ ``rtol`` (measured against adaptive quadrature: ≤ 1e-14 relative
on seed_bimodal and mild_bimodal). In ``d = 2 … 4``: first a tensor Gauss–Hermite rule
per component of ``p_t = Σ_j w_j N(α μ_j, C_j)``
(:func:`~cmverify.loss_floors._rules.hermite_rule`), the nodes per axis doubled until
three rules agree (eight_gaussians: 128–256 nodes per axis for 1e-9) within
:data:`HERMITE_NODES` per component; where they do not (well-separated modes in
``d ≥ 3``), where a component is more than ``1/MIN_CONTRAST`` times narrower than
another inside that one's Gaussian (no tensor node lands in its region), and where
components lie more than :data:`MAX_SEPARATION` standard deviations apart (the sheet
between them lies in a tail that tensor rules of every order tried may miss alike), adaptive
Genz–Malik cubature over each component's whitened box
(:func:`~cmverify.loss_floors._cubature.cubature_rule`, within :data:`CUBATURE_NODES`
evaluations). The default ``rtol`` (:data:`DEFAULT_RTOL`) is 1e-9 in ``d ≤ 2``, 1e-7 in
``d = 3`` and 1e-6 in ``d = 4``, where the adaptive rule's cost grows fastest. The record
(:class:`FloorQuadrature`) names the rule, its error estimate and its evaluations; an
:class:`~cmverify.reference.AccuracyWarning` says where the estimate stayed above ``rtol``.
At ``t = 0`` the floor is ``d σ̇_0²`` and at ``t = 1`` ``α̇_1² tr Cov(x0)``, exactly (the
integrand is constant there).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .._validation import as_times
from ..exact import MixturePath
from ..reference import AccuracyWarning
from ._arguments import check_path, check_rtol
from ._cubature import FIRST_EDGES, cubature_rule
from ._rules import (
    RuleResult,
    hermite_rule,
    line_rule,
    narrowest_contrast,
    widest_separation,
)

__all__ = ["FloorQuadrature", "flow_matching", "flow_matching_quadrature"]

#: First Gauss–Hermite order per axis, by dimension; doubled until converged.
FIRST_ORDER = {2: 8, 3: 8, 4: 8}
#: The Gauss–Hermite rules tried first: nodes per component (``q^d``), and per axis.
HERMITE_NODES = 2**20
MAX_ORDER = 1024
#: The adaptive cubature's budget of integrand evaluations (about 15 s in ``d = 4``).
CUBATURE_NODES = 2**25
#: Gauss–Hermite is skipped where a component is narrower than this many standard
#: deviations of another, at a place that one weighs (:func:`narrowest_contrast`): three
#: rules up to 256 nodes per axis agreed while 4.1e-7 off (0.01 inside 2, d = 2, review).
MIN_CONTRAST = 0.1
#: ... and where another component's centre lies farther than this many standard
#: deviations from a component's (:func:`widest_separation`): three rules (8, 16, 32 per
#: axis) agreed while 5.1e-7 off (the 16 and 32 rules 8.6e-12 apart, both missing the
#: sheet between modes 7.2 standard deviations apart; d = 3, t = 0.02, rtol 1e-7; found in
#: an 800-case sweep), where the cubature was 5.9e-10 off in 0.05 s.
MAX_SEPARATION = 6.0


def tensor_rules_apply(path: MixturePath, t: float) -> bool:
    """Whether tensor Gauss–Hermite rules may be trusted on ``p_t``'s components: no
    component much narrower than another (:data:`MIN_CONTRAST`), none far out in
    another's tail (:data:`MAX_SEPARATION`)."""
    return (
        narrowest_contrast(path, t) >= MIN_CONTRAST and widest_separation(path, t) <= MAX_SEPARATION
    )


#: Default relative error estimate, by dimension.
DEFAULT_RTOL = {1: 1e-9, 2: 1e-9, 3: 1e-7, 4: 1e-6}
#: Kept for compatibility: the default in ``d ≤ 2``.
RTOL = DEFAULT_RTOL[1]


@dataclass(frozen=True)
class FloorQuadrature:
    """A loss floor with its quadrature record.

    Attributes:
        t: the time.
        value: the floor (the finer rule's value).
        error_estimate: 8 times the last difference of three Gauss–Hermite rules (or
            of the larger of the last two, :func:`~cmverify.loss_floors._rules.
            hermite_rule`), the sum of the panels' ``|G16 − G16 on the halves|`` in
            ``d = 1``, the sum of the boxes' null-rule estimates of the cubature
            (:func:`~cmverify.loss_floors._genz_malik.box_estimate`), for the MeanFlow
            floor's iterated rule (two components) 8 times the last difference of three
            rules across plus the lines' estimates (:mod:`~cmverify.loss_floors.
            _iterated`); each at least the rounding of its sum; for the MeanFlow floor plus
            its nodes' own errors and the estimate of gaps of ``p_r`` beyond the rules'
            reach (:mod:`~cmverify.loss_floors._gaps`; ``inf`` where a gap could not be
            probed). Upper estimates of the returned value's error where the rules
            converge.
        order: nodes per axis of the finer Gauss–Hermite rule (for the iterated rule: of
            the last rule across); 16 (the Gauss–Legendre nodes of a panel) in ``d = 1``; 7
            (the degree) for the cubature.
        nodes: integrand evaluations, every rule tried counted (``K Σ q^d`` over the
            Gauss–Hermite rules; all of the adaptive refinement for the others).
        converged: whether ``error_estimate ≤ rtol · value`` was reached.
        r: the MeanFlow floor's second time (``None`` for the flow-matching floor).
        rule: ``"gauss-legendre"`` (``d = 1``), ``"gauss-hermite"`` or ``"genz-malik"``
            (``d ≥ 2``), for the MeanFlow floor also ``"iterated"``; for a MeanFlow floor
            that reduces exactly (:mod:`~cmverify.loss_floors._reduction`)
            ``"gauss-legendre-product"`` (a sum of 1-d floors) or ``"gauss-legendre-line"``
            (order 16 as in ``d = 1``), else the rule's name with ``"-subspace"`` (its
            order per axis of the subspace).
    """

    t: float
    value: float
    error_estimate: float
    order: int
    nodes: int
    converged: bool
    r: float | None = None
    rule: str = ""

    def __post_init__(self) -> None:
        # plain Python numbers, whichever rule produced them (review: one rule gave
        # np.float64 / np.bool_, another float / bool, so ``converged is True`` differed)
        for name, kind in (("t", float), ("value", float), ("error_estimate", float)):
            object.__setattr__(self, name, kind(getattr(self, name)))
        for name, kind in (("order", int), ("nodes", int), ("converged", bool)):
            object.__setattr__(self, name, kind(getattr(self, name)))
        if self.r is not None:
            object.__setattr__(self, "r", float(self.r))


def expectation(
    path: MixturePath,
    t: float,
    g: Callable[[np.ndarray], np.ndarray],
    rtol: float,
    *,
    hermite_nodes: int = HERMITE_NODES,
    cubature_nodes: int = CUBATURE_NODES,
    first_edges: tuple[float, ...] = FIRST_EDGES,
) -> tuple[RuleResult, str]:
    """``E_{p_t}[g]`` by the rules of the module docstring, with the rule's name."""
    if path.dim == 1:
        return line_rule(path, t, g, rtol), "gauss-legendre"
    spent = 0
    if path.dim in FIRST_ORDER and tensor_rules_apply(path, t):
        rule = hermite_rule(path, t, g, rtol, FIRST_ORDER[path.dim], hermite_nodes, MAX_ORDER)
        if rule.converged:
            return rule, "gauss-hermite"
        spent = rule.nodes
    cub = cubature_rule(path, t, g, rtol, cubature_nodes, first_edges)
    return RuleResult(cub.value, cub.error_estimate, 7, spent + cub.nodes, cub.converged), (
        "genz-malik"
    )


def _one(path: MixturePath, t: float, rtol: float) -> FloorQuadrature:
    def g(x: np.ndarray) -> np.ndarray:
        return path.velocity_target_variance(t, x)

    rule, name = expectation(path, t, g, rtol)
    return FloorQuadrature(
        t, rule.value, rule.error_estimate, rule.order, rule.nodes, rule.converged, rule=name
    )


def _rtol(path: MixturePath, rtol: object) -> float:
    if rtol is None:
        return DEFAULT_RTOL[path.dim]
    return check_rtol(rtol)


def flow_matching_quadrature(
    path: MixturePath, t: object, *, rtol: float | None = None
) -> list[FloorQuadrature]:
    """The floor at each time of ``t`` (a float or a 1-d array in ``[0, 1]``) with its
    quadrature record (module docstring); ``rtol`` defaults to :data:`DEFAULT_RTOL` of the
    path's dimension. An :class:`~cmverify.reference.AccuracyWarning` where the error
    estimate stayed above ``rtol`` within the rules' budgets."""
    path = check_path(path)
    rtol = _rtol(path, rtol)
    times = np.atleast_1d(as_times(t))
    if times.ndim != 1:
        raise ValueError(f"t must be a float or a 1-d array, got shape {np.shape(t)}")
    records = [_one(path, float(ti), float(rtol)) for ti in times]
    for r in records:
        if not r.converged:
            warnings.warn(
                f"flow-matching floor at t = {r.t:g}: quadrature error estimate "
                f"{r.error_estimate:.2e} ({r.rule}, {r.nodes} evaluations) above rtol = "
                f"{rtol:g} of the value {r.value:.6g}",
                AccuracyWarning,
                stacklevel=2,
            )
    return records


def flow_matching(path: MixturePath, t: object) -> float | np.ndarray:
    """``E ‖v_c − v(t, x_t)‖²`` with ``v_c = α̇ x0 + σ̇ x1``: the flow-matching loss of the
    exact velocity at time ``t`` (a float, or a 1-d array of times: then an array),
    to an error estimate within 1e-9 relative in ``d ≤ 2``, 1e-7 in ``d = 3``, 1e-6 in
    ``d = 4`` (module docstring; :func:`flow_matching_quadrature` gives each value's error
    estimate, rule and evaluations). A model's flow-matching loss at ``t`` minus
    this floor is ``E ‖v_θ − v‖²``, its excess (up to sampling)."""
    records = flow_matching_quadrature(path, t)
    values = np.array([r.value for r in records])
    return float(values[0]) if np.ndim(as_times(t)) == 0 else values
