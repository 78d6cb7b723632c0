"""Adaptive cubature of ``E_{x ~ p_t}[g(x)]`` in ``d ≥ 2`` (loss-floors floor).

``p_t = Σ_j w_j N(m_j, C_j)``, so ``E_{p_t}[g] = Σ_j w_j ∫ φ(z) g(m_j + A_j z) dz`` with
``A_j = U_j diag(√λ_j)`` (``C_j = U_j diag(λ_j) U_jᵀ``) and ``φ`` the standard normal
density in ``d`` dimensions. A control variate takes out what the Gaussian weight makes
hard for a polynomial rule: ``∫ φ(z) g dz = g(m_j) + ∫ φ(z) (g − g(m_j)) dz`` (the
residual vanishes at the centre, where ``φ`` is largest; a constant ``g`` is exact). Each
residual is integrated over the box ``[−R, R]^d`` of the component's whitened coordinates
(``R = 9``: the mass outside is ``≤ 2 d Φ(−9) ≈ 2.3e-19 d``, far below any tolerance
while ``g`` grows at most polynomially), by the Genz–Malik rule of degree 7 with its
embedded rule of degree 5 and null rules for each box's error estimate
(:mod:`._genz_malik`; Genz & Malik 1980; ``2^d + 2d² + 2d + 1`` nodes per box: 17
in ``d = 2``, 33 in ``d = 3``, 57 in ``d = 4``). The boxes of all components form one pool; the boxes that
hold the larger half of the estimate are halved, each along the axis of its largest
fourth difference, until the estimates add up to at most ``rtol`` of the value or the
node budget is spent. Before any evaluation, the box holding another component's centre
is halved down to that component's own scale, so that a narrow component inside a broad
one is seen, and every box within 6 standard deviations that a sharp **sheet** crosses
(its corners and centre not all owned by one component of ``p_t``) is halved down to 1.5
standard deviations, so that the switch of responsibilities is seen: from the coarse
starts of the MeanFlow floor, without it, the estimate fell short of the error (1.5 times,
2 cases of 400 from each of :data:`COARSE_EDGES` and :data:`COARSER_EDGES`, random
collinear mixtures at the default rtol); with it every error is within 0.74 of its
estimate (0.10 at the default rtol; benchmarks/cubature_estimate_sweep.py, RESULTS.md).

Why not only a tensor rule: where components of different scales or far apart meet, the
responsibilities switch across a surface of width ``~1/D`` (whitened units, ``D`` the
separation) out in a component's tail. A tensor Gauss–Hermite rule must resolve that
width along every axis at once (``q ~ D²`` nodes per axis, ``q^d`` in all: beyond reach in
``d = 3`` already), while the adaptive rule refines only the boxes the surface crosses and
only as far as their share of the error requires. Where the integrand is smooth on the
components' scale (overlapping components), Gauss–Hermite converges spectrally and is
cheaper: the floors try it first (:func:`~cmverify.loss_floors._rules.hermite_rule`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..exact import MixturePath
from ._genz_malik import box_estimate, corners, genz_malik
from ._rules import ROUNDING, component_frames, landmarks, whitening_inverses

__all__ = [
    "CubatureResult",
    "cubature_needs",
    "cubature_rule",
    "genz_malik",
    "starting_edges",
    "starting_partition",
    "starting_solves",
]

#: Half-width of each component's box in its whitened coordinates.
SPAN = 9.0
#: Initial partition of each axis of a component's box: 1.5 standard deviations wide to
#: ±6. A sheet where responsibilities switch sits ``D/2`` out with width ``~1/D``; in
#: boxes several standard deviations wide the rule's nodes can straddle it unseen (a
#: partition ``(−9, −2.5, 0, 2.5, 9)`` stopped 3.9e-8 off at an estimate of 9e-10 in
#: ``d = 3``; this one 5e-11 off). The MeanFlow floor, whose nodes are Jacobian solves,
#: starts from :data:`COARSE_EDGES`.
FIRST_EDGES = (-SPAN, -6.0, -4.5, -3.0, -1.5, 0.0, 1.5, 3.0, 4.5, 6.0, SPAN)
COARSE_EDGES = (-SPAN, -4.5, -3.0, -1.5, 0.0, 1.5, 3.0, 4.5, SPAN)
#: The coarser start, for budgets where :data:`COARSE_EDGES`' partition does not fit
#: (``8^d`` boxes per component: 50,688 solves for three components in ``d = 3``); the
#: refinement then finds the features (the boxes holding other components' centres and
#: those a sharp sheet crosses are still halved before any evaluation). Coarser starts are
#: not used: from ``(−9, 0, 9)`` the cubature stopped 2.3 times its estimate off, and
#: beyond rtol (d = 3, two modes, t = 0.02, rtol 1e-7), 381 times before the sheet
#: refinement; from ``(−9, −3, 3, 9)`` within 0.73 of it, but 3.7 times off before (an
#: earlier random sweep: d = 2, three modes, two of them coincident, 10.6 standard
#: deviations from the third at t = 0.1, rtol 1e-9; the sheet between them fell between
#: the nodes of a tail box 6 wide). From this start and from :data:`COARSE_EDGES` every
#: error within 0.74 of its estimate, 0.10 at the default rtol (random collinear mixtures,
#: two runs of 400 each, 1-d truths, at the default rtol and at a hundredth of it:
#: benchmarks/cubature_estimate_sweep.py, RESULTS.md).
COARSER_EDGES = ((-SPAN, -3.0, 0.0, 3.0, SPAN),)
#: Nodes of ``g`` evaluated per call (bounds the memory of one call).
CHUNK = 2**15


def starting_partition(
    path: MixturePath, t: float, edges: tuple[float, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The boxes the cubature evaluates first, ``(component, centre, half-width)`` in each
    component's turned whitened coordinates: the grid ``edges`` on every axis of each
    component's box, halved at other components' centres
    (:func:`_refine_at_landmarks`) and where sheets cross (:func:`_refine_at_sheets`)."""
    d = path.dim
    _, means, frames = component_frames(path, t)
    rotations = aligned_rotations(path, t)
    grid_edges = np.asarray(edges)
    mids = 0.5 * (grid_edges[1:] + grid_edges[:-1])
    halves = 0.5 * (grid_edges[1:] - grid_edges[:-1])
    grid = np.array(np.meshgrid(*([np.arange(mids.size)] * d), indexing="ij")).reshape(d, -1).T
    k = means.shape[0]
    comp = np.repeat(np.arange(k), len(grid))
    centre, half = np.tile(mids[grid], (k, 1)), np.tile(halves[grid], (k, 1))
    comp, centre, half = _refine_at_landmarks(path, t, comp, centre, half, rotations)
    return _refine_at_sheets(path, t, comp, centre, half, means, frames @ rotations)


def starting_solves(path: MixturePath, t: float, edges: tuple[float, ...]) -> int:
    """Evaluations of the starting partition from ``edges`` (:func:`starting_partition`):
    its boxes times the rule's ``2^d + 2d² + 2d + 1`` nodes, and one per component (the
    control variate)."""
    comp = starting_partition(path, t, edges)[0]
    return comp.size * len(genz_malik(path.dim).w7) + path.mixture.n_components


def cubature_needs(path: MixturePath, t: float, edges: tuple[float, ...]) -> int:
    """The fewest evaluations worth a cubature from ``edges``: its starting partition and
    half as much again for the refinement."""
    return -(-3 * starting_solves(path, t, edges) // 2)


def starting_edges(path: MixturePath, t: float, solves: int) -> tuple[float, ...] | None:
    """The finest of :data:`COARSE_EDGES` and :data:`COARSER_EDGES` whose cubature fits in
    ``solves`` (:func:`cubature_needs`), else ``None``."""
    for edges in (COARSE_EDGES, *COARSER_EDGES):
        if cubature_needs(path, t, edges) <= solves:
            return edges
    return None


@dataclass(frozen=True)
class CubatureResult:
    """``value`` with its ``error_estimate`` (the sum of the boxes' estimates,
    :func:`box_estimate`, and ``node_error``), the integrand ``nodes`` evaluated, the
    number of ``boxes`` of the final partition, whether ``error_estimate ≤ rtol · |value|``
    was reached, and ``node_error``: what the errors of ``g``'s values can move the value
    by (``Σ |w_p| φ_p |g_p| ε_p`` over the nodes, each box's rule weights ``w_p`` and
    Gaussian weights ``φ_p``, with ``ε_p`` the relative errors ``node_errors`` gave, and
    twice ``Σ_j w_j |g(m_j)| ε_j`` for the control variate; 0 without ``node_errors``)."""

    value: float
    error_estimate: float
    nodes: int
    boxes: int
    converged: bool
    node_error: float = 0.0


#: Landmark refinement (:func:`_refine_at_landmarks`), for components whose smallest
#: standard deviation in another's whitened coordinates is below ``LANDMARK_BELOW`` (the
#: starting boxes are 0.75 wide there): the boxes within ``REACH`` of those standard
#: deviations of its centre, down to half-widths of ``FINE`` of one.
LANDMARK_BELOW, LANDMARK_REACH, LANDMARK_FINE = 0.5, 4.0, 1.0


def _halve(centre: np.ndarray, half: np.ndarray, axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two halves of each box ``centre ± half`` (rows) along its ``axis``: centres and
    half-widths of shape ``(2n, d)``, the lower halves first."""
    rows = np.arange(len(axis))
    new_half = half.copy()
    new_half[rows, axis] *= 0.5
    shift = np.zeros_like(new_half)
    shift[rows, axis] = new_half[rows, axis]
    return np.concatenate([centre - shift, centre + shift]), np.concatenate([new_half, new_half])


def aligned_rotations(path: MixturePath, t: float) -> np.ndarray:
    """Orthogonal ``Q_j`` ``(K, d, d)`` turning each component's whitened coordinates so that
    the first axis points at the nearest other component's centre (not one that coincides
    with its own; the first of equals) (:func:`~cmverify.loss_floors.
    _rules.landmarks`): where responsibilities switch between the two, a sheet about normal
    to that direction (exactly, for equal covariances), the boxes then split along one axis
    instead of resolving an oblique sheet along all (``N(0, I)`` is invariant, the box keeps
    its mass bound). MeanFlow floor of random_mixture(3, 2, 0) at (0.5, 0.1): estimates
    9.3e-3, 2.2e-3, 5.6e-4 against 1.7e-2, 3.4e-3, 1.1e-3 at 2^15, 2^16, 2^17 solves."""
    d = path.dim
    rotations = np.broadcast_to(np.eye(d), (path.mixture.n_components, d, d)).copy()
    nearest: dict[int, np.ndarray] = {}
    for j, z, _ in landmarks(path, t):
        if np.linalg.norm(z) > 0 and (j not in nearest or z @ z < nearest[j] @ nearest[j]):
            nearest[j] = z
    for j, z in nearest.items():
        q, _ = np.linalg.qr(np.column_stack([z, np.eye(d)]))
        rotations[j] = q[:, :d]  # orthogonal, its first column ±z/|z|
    return rotations


def _refine_at_landmarks(
    path: MixturePath,
    t: float,
    comp: np.ndarray,
    centre: np.ndarray,
    half: np.ndarray,
    rotations: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Halve the boxes of component ``j`` within :data:`LANDMARK_REACH` standard deviations
    of another component's centre (in ``j``'s whitened coordinates; the other's smallest
    standard deviation there, :func:`~cmverify.loss_floors._rules.landmarks`), each along
    its widest axis, until their half-widths are at most :data:`LANDMARK_FINE` of it.
    Without this a narrow component inside a broad one's box is seen by no node, and every
    estimate is small: 5.9e-7 off at an estimate of 1e-9 (``N(0, 0.03² I)`` and
    ``N((2.19, 0), 4 I)`` at t = 0.03, found in review)."""
    for j, z, s in landmarks(path, t):
        z = rotations[j].T @ z  # in the boxes' coordinates
        if not (np.max(np.abs(z)) <= SPAN and 0 < s < LANDMARK_BELOW):
            continue
        reach, fine = LANDMARK_REACH * s, LANDMARK_FINE * s
        while True:  # the boxes of j within reach of z (sup norm), still too wide
            near = (comp == j) & np.all(np.abs(centre - z) <= half + reach, axis=1)
            coarse = near & (half.max(axis=1) > fine)
            if not coarse.any():
                break
            children = _halve(centre[coarse], half[coarse], np.argmax(half[coarse], axis=1))
            comp = np.concatenate([comp[~coarse], np.repeat(comp[coarse], 2)])
            centre = np.concatenate([centre[~coarse], children[0]])
            half = np.concatenate([half[~coarse], children[1]])
    return comp, centre, half


#: Sheet refinement (:func:`_refine_at_sheets`): boxes that meet ``(−SHEET_REACH,
#: SHEET_REACH)^d`` and that a sharp sheet crosses are halved down to half-widths of
#: ``SHEET_FINE`` (the resolution of :data:`FIRST_EDGES` there); sharp: the top two
#: components' log densities differ by more than ``SHEET_GAP`` at a corner or the centre.
SHEET_REACH, SHEET_FINE, SHEET_GAP = 6.0, 0.75, 8.0


def _refine_at_sheets(
    path: MixturePath,
    t: float,
    comp: np.ndarray,
    centre: np.ndarray,
    half: np.ndarray,
    means: np.ndarray,
    frames: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Halve, each along its widest axis, the boxes within :data:`SHEET_REACH` with a
    half-width above :data:`SHEET_FINE` whose corners and centre are not all owned by one
    component of ``p_t`` (the largest ``w_k N_k(x)``: a sheet where the responsibilities
    switch crosses the box, exactly so where the sheet is a plane, for equal covariances)
    and where the owner's log density exceeds the next one's by more than
    :data:`SHEET_GAP` at one of those points (the switch is sharp on the box's scale). The sheet's
    width is ``~1/D`` (``D`` the separation, whitened): between the nodes of a wider box it
    went unseen, and the estimate with it (module docstring, :data:`COARSER_EDGES`)."""
    marginal = path.marginal(t)
    if marginal.n_components < 2:  # no sheet
        return comp, centre, half
    inverses = whitening_inverses(marginal)
    log_w = marginal.log_weights - 0.5 * np.sum(np.log(marginal.eigvals), axis=1)
    d = centre.shape[1]
    points = np.concatenate([np.zeros((1, d)), corners(d)])  # (2^d + 1, d)
    per_chunk = max(1, 4096 // marginal.n_components)
    fresh = np.ones(comp.size, dtype=bool)  # boxes not tested yet
    while True:
        meets = np.all(np.abs(centre) < SHEET_REACH + half, axis=1)
        candidates = np.flatnonzero(fresh & meets & (half.max(axis=1) > SHEET_FINE))
        crossed = np.zeros(comp.size, dtype=bool)
        for start in range(0, candidates.size, per_chunk):
            chunk = candidates[start : start + per_chunk]
            z = centre[chunk, None, :] + half[chunk, None, :] * points[None]
            x = means[comp[chunk], None, :] + np.einsum("nab,npb->npa", frames[comp[chunk]], z)
            white = np.einsum("kab,npkb->npka", inverses, x[:, :, None, :] - marginal.means)
            log_f = log_w - 0.5 * np.sum(white * white, axis=3)  # (n, points, K)
            owner = np.argmax(log_f, axis=2)
            top_two = np.sort(log_f, axis=2)[:, :, -2:]
            sharp = np.max(top_two[:, :, 1] - top_two[:, :, 0], axis=1) > SHEET_GAP
            crossed[chunk] = sharp & np.any(owner != owner[:, :1], axis=1)
        if not crossed.any():
            return comp, centre, half
        children = _halve(centre[crossed], half[crossed], np.argmax(half[crossed], axis=1))
        comp = np.concatenate([comp[~crossed], comp[crossed], comp[crossed]])  # as _halve
        centre = np.concatenate([centre[~crossed], children[0]])
        half = np.concatenate([half[~crossed], children[1]])
        fresh = np.concatenate(
            [np.zeros((~crossed).sum(), dtype=bool), np.ones(2 * crossed.sum(), dtype=bool)]
        )


def _moves(weight: np.ndarray, values: np.ndarray, relative: np.ndarray) -> np.ndarray:
    """``weight · |values| · relative`` elementwise, ``inf`` where a value's error is
    unknown (``relative`` infinite, also against a zero weight or value)."""
    with np.errstate(invalid="ignore", over="ignore"):
        return np.nan_to_num(weight * np.abs(values) * relative, nan=np.inf, posinf=np.inf)


def cubature_rule(
    path: MixturePath,
    t: float,
    g: Callable[[np.ndarray], np.ndarray],
    rtol: float,
    max_nodes: int,
    first_edges: tuple[float, ...] = FIRST_EDGES,
    report: Callable[[int, float, float], None] | None = None,
    node_errors: Callable[[], np.ndarray] | None = None,
) -> CubatureResult:
    """``E_{p_t}[g]`` by adaptive Genz–Malik cubature over every component's whitened box
    (module docstring), refined until the error estimates add up to ``≤ rtol · |value|``
    or the next refinement would pass ``max_nodes`` evaluations of ``g``. ``g`` maps
    points ``(m, d)`` to values ``(m,)``; it is called on at most :data:`CHUNK` points at a
    time. ``first_edges``: the initial partition of each axis of ``[−R, R]``. The starting
    partition is evaluated whole, even beyond ``max_nodes`` (callers check its size).
    ``report(nodes, value, estimate)`` is called after each round of refinement.
    ``node_errors()``: the relative error estimates ``(m,)`` of the values of ``g``'s last
    call, where they are not negligible (the MeanFlow floor's Jacobian solves); each
    node's is weighed into the estimate (:class:`CubatureResult`), not the worst one times
    the value (MeanFlow floor of random_mixture(4, 3, 0) at (0.8, 0.6), the default budget,
    after the cubature's 488,664 solves: 3.6e-10 of the value against 3.1e-8). Where the
    nodes' part alone exceeds ``rtol``, halving cannot help: the refinement stops there,
    not converged."""
    d = path.dim
    rule = genz_malik(d)
    weights, means, frames = component_frames(path, t)
    rotations = aligned_rotations(path, t)
    frames = frames @ rotations

    # control variate: E_{N_j}[g] = g(m_j) + E_{N_j}[g − g(m_j)]; the residual vanishes at
    # the centre, where the Gaussian weight is largest
    offset = np.asarray(g(means), dtype=np.float64)
    offset_error = 0.0
    if node_errors is not None:
        with np.errstate(over="ignore"):  # inf: an unknown error
            offset_error = 2.0 * float(np.sum(_moves(weights, offset, node_errors())))
    log_norm = -0.5 * d * math.log(2 * math.pi)
    w7_size = np.abs(rule.w7)

    def evaluate(comp: np.ndarray, centre: np.ndarray, half: np.ndarray):
        """Degree-7 values, error estimates, split axes and node errors of the boxes
        ``(n,)``."""
        z = centre[:, None, :] + half[:, None, :] * rule.nodes[None]  # (n, p, d)
        x = means[comp][:, None, :] + np.einsum("nab,npb->npa", frames[comp], z)
        flat = x.reshape(-1, d)
        values, errors = [], []
        for i in range(0, len(flat), CHUNK):
            values.append(np.asarray(g(flat[i : i + CHUNK]), dtype=np.float64))
            if node_errors is not None:
                errors.append(node_errors())
        values = np.concatenate(values).reshape(z.shape[:2])
        phi = np.exp(log_norm - 0.5 * np.sum(z * z, axis=2))
        f = phi * (values - offset[comp][:, None])
        scale = weights[comp] * np.prod(2.0 * half, axis=1)
        moved = np.zeros(len(comp))
        if node_errors is not None:
            relative = np.concatenate(errors).reshape(z.shape[:2])
            with np.errstate(over="ignore"):  # inf: an unknown error
                moved = scale * (_moves(phi, values, relative) @ w7_size)
        i7 = scale * (f @ rule.w7)
        centre_value = f[:, :1]
        near = f[:, rule.axis_near].sum(axis=2) - 2.0 * centre_value
        far = f[:, rule.axis_far].sum(axis=2) - 2.0 * centre_value
        fourth = np.abs(near - far / 7.0)  # (λ₂/λ₄)² = 1/7
        # ties (a symmetric integrand) are broken towards the widest axis
        axis = np.argmax(fourth * (1.0 + 1e-9 * half / half.max(axis=1, keepdims=True)), axis=1)
        return i7, box_estimate(rule, scale[:, None] * np.abs(f @ rule.nulls.T)), axis, moved

    comp, centre, half = starting_partition(path, t, first_edges)
    k = weights.size
    value, error, axis, moved = evaluate(comp, centre, half)
    nodes = len(comp) * len(rule.w7) + k
    base = float(weights @ offset)
    while True:
        total = base + float(np.sum(value))
        rule_error = float(np.sum(error)) + ROUNDING * (abs(base) + float(np.sum(np.abs(value))))
        if not (np.isfinite(total) and np.isfinite(rule_error)):
            raise ValueError("the integrand is not finite at a cubature node")
        with np.errstate(over="ignore"):  # inf where a node's error is unknown
            node_error = offset_error + float(np.sum(moved))
        estimate = rule_error + node_error
        if report is not None:
            report(nodes, total, estimate)
        # halve the boxes holding the larger half of the rule's estimate (all boxes at once
        # would spend the budget on boxes already accurate; halving does not shrink what
        # the nodes' own errors add)
        order = np.argsort(error)[::-1]
        split = order[: int(np.searchsorted(np.cumsum(error[order]), 0.5 * rule_error)) + 1]
        if estimate <= rtol * abs(total) or nodes + 2 * split.size * len(rule.w7) > max_nodes:
            break
        if not node_error <= rtol * abs(total):  # refining cannot shrink it: stop here
            break
        keep = np.ones(comp.size, dtype=bool)
        keep[split] = False
        new_comp = np.concatenate([comp[split], comp[split]])
        new_centre, new_half = _halve(centre[split], half[split], axis[split])
        new_value, new_error, new_axis, new_moved = evaluate(new_comp, new_centre, new_half)
        nodes += new_comp.size * len(rule.w7)
        comp, centre = (
            np.concatenate([comp[keep], new_comp]),
            np.concatenate([centre[keep], new_centre]),
        )
        half = np.concatenate([half[keep], new_half])
        value, error = (
            np.concatenate([value[keep], new_value]),
            np.concatenate([error[keep], new_error]),
        )
        axis = np.concatenate([axis[keep], new_axis])
        moved = np.concatenate([moved[keep], new_moved])
    converged = estimate <= rtol * abs(total)
    return CubatureResult(total, estimate, nodes, comp.size, converged, node_error)
