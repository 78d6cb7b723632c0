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
from :meth:`~cmverify.reference.ReferenceFlow.solve_jacobian` (per trajectory to
``rtol/100`` relative in Frobenius norm, within 1e-10 … :data:`NODE_RTOL`; the nodes' own
error estimates are added to the rule's: ``ε |value|`` for the worst node's relative error
``ε`` in the Gauss–Hermite and iterated rules, each node's weighed by its weight in the
cubature: :func:`~._cubature.cubature_rule`), one batched solve per refinement of the rule (:mod:`cmverify.loss_floors._rules`:
adaptive composite Gauss–Legendre in ``d = 1``).
In ``d = 2 … 4`` exact reductions come first (:mod:`._reduction`, one covariance shared by
all components): a product of 1-d mixtures (a grid of modes) is the sum of their floors
(``"gauss-legendre-product"``); means in a subspace that the covariance maps into itself
(two modes of one shape; isotropic modes on a line or in a plane) reduce to an integral
over it with a ``d``-dimensional Jacobian solve per node — on a line the adaptive rule of
``d = 1`` (``"gauss-legendre-line"``, across gaps of any depth), else the rules below
(``"…-subspace"``). Otherwise the rules integrate on the **data side** (below), in turn:
doubled tensor Gauss–Hermite over the components of ``p_r``, within :data:`HERMITE_NODES`
per component and three quarters of ``max_solves`` (not trusted where a component of
``p_r`` is much narrower than another or far out in its tail, :func:`~cmverify.
loss_floors._flow_matching.tensor_rules_apply`; its first three rules only where the
next rule applies); for two components, neither much narrower than the other, the
**iterated rule** (:mod:`._iterated`: adaptive Gauss–Legendre along lines parallel to the
one between the components, tensor Gauss–Hermite across) within three quarters of what
is left; then adaptive Genz–Malik cubature (:mod:`._cubature`) with the rest (default
:data:`DEFAULT_MAX_SOLVES`), from the finest starting partition that fits in it with
half as much again to refine (``8^d`` boxes of ``2^d + 2d² + 2d + 1`` solves per
component, else 4 intervals per axis, halved where sharp sheets cross; not from coarser
ones, whose estimates were measured to fail: :data:`~._cubature.COARSER_EDGES`), each
component's boxes turned to face its nearest neighbour. Where the mixture
does not reduce, the integrand is a ridge along the curved boundaries between components
of ``p_r``, where ``∇X_{t→r}`` stretches (random_mixture(3, 3, 0) at (0.8, 0.4): 30
times its size inside the components), that no tensor rule in all ``d`` directions aligns
with (Gauss–Hermite moved by 1e-3 from 16 to 24 nodes per axis), and the cubature's
estimate falls only 4–8 times per doubling of its solves. Lines across the sheet
integrate the ridge out, and the rule across converges spectrally: random_mixture(3, 2,
0) at (0.5, 0.1) to 5.2e-8 in 217,192 solves (135 s; the cubature took 1.6e6 solves, 9
min, to 1e-6), random_mixture(4, 2, 0) at (0.8, 0.4) to 1.3e-7 in 329,120 (277 s; the
cubature: 7.2e-6 after 8.4e6 solves, 52 min). Three components or more take the
cubature: 1e-6 in d = 3 within the default budget (random_mixture(3, 3, 0) at (0.8,
0.4): 2.0e6 solves, 8 min); in d = 4 with 64 times the default budget
(random_mixture(4, 3, 0) at (0.8, 0.6): 8.2e-7 after 3.37e7 solves, 63 min with
``workers=2`` on 2 cores; benchmarks/meanflow_general.py, RESULTS.md). Where no rule converges, the smallest
trusted estimate's value is returned, warned.

**The data side.** With ``y = X_{t→r}(x)`` (distributed as ``p_r``) and ``A = ∇X_{r→t}(y)
= ∇X_{t→r}(x)⁻¹``, the floor is ``E_{y ~ p_r} tr(A⁻¹ C(X_{r→t}(y)) A⁻ᵀ)``. Where ``p_r``
has a low-density region (a gap between modes), ``X_{t→r}`` stretches a thin sheet of
``x`` across it and the x-side integrand is a tall narrow ridge; on the data side the
same mass is spread over the whole gap, weighted by ``p_r`` there: a broad bump (two modes
``N(±e + b, 0.3² I)`` in d = 2 at ``(0.6, 0.3)``: x-side Gauss–Hermite unconverged at 4,096
nodes per component, data-side 1.6e-12 off with 64 per axis; eight_gaussians at
``(0.5, 0.25)``: the cubature 1.6e-3 with 15,000 solves against 1.6e-2 with 94,000, before
the sheet refinement of :mod:`._cubature`).
``A⁻¹`` is formed as ``adj(A) / det A`` with ``det A = p_r(y) / p_t(x)`` (mass
conservation, in log densities): in a gap ``A`` is singular to working precision (the
flow squeezes the gap into a sheet; ``numpy.linalg.solve`` raised ``LinAlgError`` there)
while its cofactors are accurate, so each node's error is that of the cofactors and of
``x`` (:func:`._adjugate.node_error`), not ``κ(A)`` times ``A``'s. A gap farther than the rules'
boxes reach from every component is not integrated: its Laplace estimate
(:mod:`cmverify.loss_floors._gaps`) is added to the error estimate.

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
from each, ``ρ ≈ 7e-4``) has a floor of 1089.3 at ``t = 0.5`` that the default budget
reaches only to an estimate of 1.1e-1 relative (the cubature, 63,226 solves, 25 s; most of
the estimate is the Laplace estimate of the ring's interior, :mod:`._gaps`; the record
says so).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable

import numpy as np

from .._validation import as_times
from ..exact import MixturePath
from ..reference import AccuracyWarning, ReferenceFlow
from . import _reduction
from ._arguments import check_options, check_times
from ._cubature import COARSER_EDGES, cubature_needs, cubature_rule, starting_edges
from ._data_side import DataSide
from ._flow_matching import DEFAULT_RTOL as FM_RTOL
from ._flow_matching import (
    FloorQuadrature,
    flow_matching_quadrature,
    tensor_rules_apply,
)
from ._gaps import gaps_beyond_reach
from ._iterated import iterated_applies, iterated_rule
from ._one_dimensional import data_side_floor
from ._progress import throttled
from ._rules import hermite_rule, velocity_slope
from ._workers import SolvePool, check_workers

__all__ = ["meanflow", "meanflow_quadrature"]

#: Default relative error estimate of the MeanFlow floor, by dimension (each node of
#: ``d ≥ 2`` is a Jacobian solve, to rtol/100: 0.2–0.8 ms on this machine).
DEFAULT_RTOL = {1: 1e-7, 2: 1e-6, 3: 1e-6, 4: 1e-6}
#: Kept for compatibility: the default in ``d = 1``.
RTOL = DEFAULT_RTOL[1]
#: Budgets of Jacobian solves in ``d ≥ 2``: Gauss–Hermite nodes per component and per
#: axis (tried first; at most 128² in d = 2, 32³ in d = 3, 8⁴ in d = 4, and within three
#: quarters of ``max_solves``: with the default and two components, 16³ in d = 3), then
#: evaluations of the adaptive cubature.
HERMITE_NODES, MAX_ORDER = 2**15, 128
#: First Gauss–Hermite order per axis, by dimension (each node a Jacobian solve).
FIRST_ORDER = {2: 8, 3: 4, 4: 2}
#: The loosest tolerance of a node's Jacobian solve (``rtol/100``, at most this): 0.23 ms a
#: solve against 0.35 at 1e-10 in d = 3, its error ≤ 2e-8 of the floor.
NODE_RTOL = 1e-8
#: Default budget of Jacobian solves of one floor (``max_solves``) where its rules run in
#: ``d = 2`` (and on a line), and by the rules' dimension: in d = 3 what 1e-6 took the
#: cubature for three components that do not reduce (2.0e6 solves, 8 min), in d = 4 room
#: for the iterated rule's three first rules across (329,120 solves for random_mixture(4,
#: 2, 0) at (0.8, 0.4)); the cubature with three components there: 3.4e7 solves.
CUBATURE_NODES = 2**16
DEFAULT_MAX_SOLVES = {2: CUBATURE_NODES, 3: 2**21, 4: 2**19}


def _one(path, flow: ReferenceFlow, t: float, r: float, rtol: float, budget, progress, pool):
    # ∇X_{t→t} = I: the flow-matching floor; also within 64 spacings of t, below what a
    # solve can step (SolverFailure at t − r = 1e-15, t = ½). There ∇X = I − (t − r) ∇v + …
    # moves the floor by ≤ 2 (t − r) ‖∇v‖ of it, added to the estimate with ‖∇v‖'s
    # per-component part (:func:`._rules.velocity_slope`). (A threshold t − r ≤ 1e-13 returned
    # 20% off, "converged", at (t, r) = (1e-13, 0) for data of std 1e-6, the sqrt
    # interpolant, where ‖∇v‖ ~ 1/t: found in review.)
    if t - r <= 64 * np.spacing(t):
        (fm,) = flow_matching_quadrature(path, t, rtol=min(rtol, FM_RTOL[path.dim]))
        shift = 2.0 * (t - r) * velocity_slope(path, t) * abs(fm.value) if t > r else 0.0
        error = fm.error_estimate + shift
        converged = bool(error <= rtol * abs(fm.value))
        return FloorQuadrature(t, fm.value, error, fm.order, fm.nodes, converged, r, fm.rule)

    factors = _reduction.product_factors(path.mixture) if path.dim > 1 else None
    if factors is not None:  # a product of 1-d mixtures: the sum of their floors
        paths = [MixturePath(factor, path.interpolant) for factor in factors]
        parts = [_one(p, ReferenceFlow(p), t, r, rtol, budget, progress, None) for p in paths]
        return _reduction.sum_of_floors(parts, rtol)
    if path.dim == 1:
        rule = data_side_floor(path, flow, t, r, rtol)
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
    max_solves = CUBATURE_NODES if budget is None else budget
    side = DataSide(path, flow, t, r, pool)
    h, log_terms, log_f = side.h, side.log_terms, side.log_f

    def record(value: float, error: float, order: int, nodes: int, rule: str):
        error += gap
        converged = error <= rtol * abs(value)
        return FloorQuadrature(t, value, error, order, nodes + gap_nodes, converged, r, rule)

    # the rules run in the subspace of the means where the floor reduces to it (._reduction)
    k, rules_path, embed, suffix = path.mixture.n_components, path, (lambda y: y), ""
    reduction = _reduction.subspace_reduction(path.mixture)
    if reduction is not None:
        offset, basis = reduction
        rules_path = _reduction.reduced_path(path, basis)
        at_r = float(path.interpolant.at(r).alpha) * offset
        embed, suffix = (lambda s: at_r + s @ basis.T), "-subspace"

    def log_f_of(s: np.ndarray) -> np.ndarray:
        """``log(p_r^B h)`` at ``s`` in the subspace: ``log_f`` with the density of ``s``."""
        y = embed(s)
        return log_f(y) + rules_path.log_prob(r, s) - path.log_prob(r, y)

    if rules_path.dim == 1:  # a line: the adaptive rule of d = 1
        if budget is None:  # the default: room for the line rule's start (90 modes: 69,120)
            max_solves = max(max_solves, 2 * _reduction.line_start(k))
        rule = _reduction.line_rule_floor(rules_path, r, embed, log_terms, rtol, max_solves)
        if rule is not None:
            error = rule.error_estimate + side.worst * abs(rule.value)
            converged = error <= rtol * abs(rule.value)
            return FloorQuadrature(
                t, rule.value, error, rule.order, rule.nodes, converged, r, "gauss-legendre-line"
            )
        raise ValueError(
            f"max_solves = {max_solves} is below what the line rule needs for this path: "
            f"{_reduction.line_start(k)} Jacobian solves (its starting partition)"
        )
    m = rules_path.dim
    if budget is None:
        max_solves = DEFAULT_MAX_SOLVES[m]
    need = cubature_needs(rules_path, r, COARSER_EDGES[-1])
    # three Gauss–Hermite rules (the fewest that can converge) at the first orders
    three = k * sum((FIRST_ORDER[m] * 2**i) ** m for i in range(3))
    # what lies in gaps of p_r beyond every rule's reach is added to the estimate (a solve
    # probes each such gap: charged to the budget first)
    gap, gap_nodes = gaps_beyond_reach(rules_path, r, log_f if reduction is None else log_f_of)
    if max_solves - gap_nodes < min(three, need):
        probes = f", with the {gap_nodes} that probed gaps" if gap_nodes else ""
        raise ValueError(
            f"max_solves = {max_solves} is below what either rule needs for this path"
            f"{probes}: {three + gap_nodes} Jacobian solves (three Gauss–Hermite rules) or "
            f"{need + gap_nodes} (the cubature's coarsest starting partition and half as much "
            "again)"
        )
    max_solves -= gap_nodes
    trusted = tensor_rules_apply(rules_path, r)  # else tensor nodes may miss what matters
    h_rules = h if reduction is None else (lambda s: h(embed(s)))
    lines = iterated_applies(rules_path, r)  # two components: the iterated rule next
    hermite, spent = None, 0
    if trusted or need > max_solves:
        # within max_solves: the rules' nodes per component, all rules together ≤ 4/3 q^d
        # (the largest rule ≤ 9/16 of the budget per component: three components in d = 2
        # had spent 65,472 of 65,536 on 8 … 128 per axis, the cubature none; review);
        # before the iterated rule, the three first rules only
        per_component = min(HERMITE_NODES, (9 * max_solves) // (16 * k))
        if lines:
            per_component = min(per_component, (4 * FIRST_ORDER[m]) ** m)
        if progress is not None:
            progress(f"MeanFlow floor at (t, r) = ({t:g}, {r:g}): Gauss–Hermite rules first")
        rule = hermite_rule(rules_path, r, h_rules, rtol, FIRST_ORDER[m], per_component, MAX_ORDER)
        error = rule.error_estimate + side.worst * abs(rule.value)
        hermite = record(rule.value, error, rule.order, rule.nodes, "gauss-hermite" + suffix)
        if not trusted:  # no tensor node sees the narrow component: not converged
            hermite = dataclasses.replace(hermite, converged=False)
        if hermite.converged or (
            not lines and starting_edges(rules_path, r, max_solves - rule.nodes) is None
        ):
            return hermite
        spent, side.worst = rule.nodes, 0.0
    # a rule that did not converge is kept where its estimate may be trusted
    best = hermite if hermite is not None and trusted else None
    if lines:  # within three quarters of what is left, unless the cubature cannot start
        share = max_solves - spent
        if starting_edges(rules_path, r, share // 4) is not None:
            share -= share // 4
        label = f"MeanFlow floor at (t, r) = ({t:g}, {r:g}), iterated rule"
        report = _report(throttled(progress, label, rtol), gap, side, spent)
        # the pilot: the flow-matching integrand at r, whose ridge lies on the same sheet
        pilot = lambda s: rules_path.velocity_target_variance(r, s)  # noqa: E731
        rule = iterated_rule(rules_path, r, h_rules, rtol, share, report, pilot)
        if rule.nodes > 0:  # else not tried, or not even its first rule fitted
            error = rule.error_estimate + side.worst * abs(rule.value)
            found = record(rule.value, error, rule.order, spent + rule.nodes, "iterated" + suffix)
            spent, side.worst = spent + rule.nodes, 0.0
            if found.converged:
                return found
            if starting_edges(rules_path, r, max_solves - spent) is None:  # no cubature: the better
                if best is None or found.error_estimate < best.error_estimate:
                    best = found
                return dataclasses.replace(best, nodes=found.nodes)

    edges = starting_edges(rules_path, r, max_solves - spent)
    if edges is None:  # the iterated rule's first rule did not fit either
        return hermite
    label = f"MeanFlow floor at (t, r) = ({t:g}, {r:g}), cubature"
    report = _report(throttled(progress, label, rtol), gap, side, spent, weighed=True)
    cub = cubature_rule(
        rules_path, r, h_rules, rtol, max_solves - spent, edges, report, lambda: side.errors
    )  # the nodes' errors weighed into its estimate
    result = record(cub.value, cub.error_estimate, 7, spent + cub.nodes, "genz-malik" + suffix)
    if best is not None and best.error_estimate < result.error_estimate:
        return dataclasses.replace(best, nodes=result.nodes)  # none converged
    return result


def _report(lines, gap: float, side: DataSide, spent: int, weighed: bool = False):
    """A rule's ``report(nodes, value, estimate)`` to the throttled progress ``lines``: the
    solves of the floor so far (``spent`` by the rules before), the estimate with its
    other terms as recorded (the worst node's error unless the rule ``weighed`` each
    node's into its estimate; ``None`` without progress)."""
    if weighed:
        return lines and (lambda n, v, e: lines(spent + n, v, e + gap))
    return lines and (lambda n, v, e: lines(spent + n, v, e + gap + side.worst * abs(v)))


def meanflow_quadrature(
    path: MixturePath,
    t: object,
    r: object,
    *,
    rtol: float | None = None,
    max_solves: int | None = None,
    progress: Callable[[str], None] | None = None,
    workers: int = 1,
) -> list[FloorQuadrature]:
    """The MeanFlow floor at each ``(t, r)`` (floats or 1-d arrays, broadcast; ``r ≤ t``)
    with its quadrature record (module docstring); ``rtol`` defaults to
    :data:`DEFAULT_RTOL` of the dimension, ``max_solves`` bounds the Jacobian solves of
    each floor in ``d ≥ 2``, all its rules together and the solves that probe gaps (default
    :data:`DEFAULT_MAX_SOLVES` by the rules' dimension — 2^16, 2^21, 2^19 in d = 2, 3, 4 —
    or on a line twice the rule's starting partition where that is more: 768 solves per
    component; a larger budget buys accuracy where the default does not reach ``rtol``:
    about 0.2–2.5 ms a solve here, 6 ms for ill-conditioned components (it bounds solves,
    not time);
    the cubature runs only where its starting partition and half as much again fit in what
    is left). An
    :class:`~cmverify.reference.AccuracyWarning` where the error estimate stayed above
    ``rtol`` within the budget. ``nodes`` counts integrand evaluations: where none is a
    Jacobian solve (``d = 1``, products, ``t − r`` within 64 spacings of ``t``) the budget
    does not apply. ``progress``: called with a line when the Gauss–Hermite rules start
    and every few seconds while the iterated rule or the cubature runs, with the floor's
    solves so far (``d ≥ 2``; what it raises propagates). ``workers``: processes that
    share each large batch of Jacobian solves (Linux; at most the usable cores; forked at
    the first such batch and stopped on return; the same records to rounding:
    :mod:`._workers`; twice as fast with 2 on 2 cores: random_mixture(4, 3, 0) at (0.8,
    0.6), default budget, 55 s against 110 s)."""
    path, t_arr, r_arr = check_times(path, t, r)
    rtol = DEFAULT_RTOL[path.dim] if rtol is None else rtol
    check_options(rtol, max_solves, progress)
    workers = check_workers(workers)
    path = _reduction.centred(path)
    flow = ReferenceFlow(path, rtol=max(1e-10, min(NODE_RTOL, rtol / 100)))
    with SolvePool(path, flow, workers) as pool:
        records = [
            _one(path, flow, float(ti), float(ri), float(rtol), max_solves, progress, pool)
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


def meanflow(
    path: MixturePath,
    t: object,
    r: object,
    *,
    rtol: float | None = None,
    max_solves: int | None = None,
    progress: Callable[[str], None] | None = None,
    workers: int = 1,
) -> float | np.ndarray:
    """``E ‖∇X_{t→r}(x_t)(v_c − v(t, x_t))‖²``: the unweighted MeanFlow loss of the exact
    average velocity ``u(·, r, t)`` (module docstring), to an error estimate ≤ 1e-7
    relative in ``d = 1`` and 1e-6 in ``d = 2 … 4`` where the rules reach it within their
    budgets of Jacobian solves, with an :class:`~cmverify.reference.AccuracyWarning` where
    they do not (:func:`meanflow_quadrature` gives each value's record; ``rtol``,
    ``max_solves``, ``progress`` and ``workers`` as there). A float for float ``t`` and
    ``r``, else an array over their broadcast."""
    records = meanflow_quadrature(
        path, t, r, rtol=rtol, max_solves=max_solves, progress=progress, workers=workers
    )
    values = np.array([rec.value for rec in records])
    scalar = np.ndim(as_times(t, name="t")) == 0 and np.ndim(as_times(r, name="r")) == 0
    return float(values[0]) if scalar else values
