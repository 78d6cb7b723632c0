"""Adaptive cubature of ``E_{x ~ p_t}[g(x)]`` in ``d ≥ 2`` (loss-floors floor).

``p_t = Σ_j w_j N(m_j, C_j)``, so ``E_{p_t}[g] = Σ_j w_j ∫ φ(z) g(m_j + A_j z) dz`` with
``A_j = U_j diag(√λ_j)`` (``C_j = U_j diag(λ_j) U_jᵀ``) and ``φ`` the standard normal
density in ``d`` dimensions. A control variate takes out what the Gaussian weight makes
hard for a polynomial rule: ``∫ φ(z) g dz = g(m_j) + ∫ φ(z) (g − g(m_j)) dz`` (the
residual vanishes at the centre, where ``φ`` is largest; a constant ``g`` is exact). Each
residual is integrated over the box ``[−R, R]^d`` of the component's whitened coordinates
(``R = 9``: the mass outside is ``≤ 2 d Φ(−9) ≈ 2.3e-19 d``, far below any tolerance
while ``g`` grows at most polynomially), by the Genz–Malik rule of degree 7 with its
embedded rule of degree 5 (Genz & Malik 1980; ``2^d + 2d² + 2d + 1`` nodes per box: 17
in ``d = 2``, 33 in ``d = 3``, 57 in ``d = 4``). The boxes of all components form one pool; the boxes that
hold the larger half of the estimate are halved, each along the axis of its largest
fourth difference, until the estimates add up to at most ``rtol`` of the value or the
node budget is spent. Before any evaluation, the box holding another component's centre
is halved down to that component's own scale, so that a narrow component inside a broad
one is seen.

**A box's error estimate.** ``|I₇ − I₅|`` alone (the error of the degree-5 value, an
upper estimate of the degree-7 value's where the rules converge) can vanish by accident:
measured, a box whose ``|I₇ − I₅|`` was 7e-13 held an error of 8.6e-9 (d = 2, the sqrt
interpolant, four components of standard deviation 0.83 at t = 0.3), and the whole
cubature stopped 2.1e-9 off at an estimate of 8.2e-10 (rtol 1e-9). So each box also
applies null rules of lower degree on the same nodes (:class:`GenzMalik`; the approach of
DCUHRE, Berntsen, Espelid & Genz 1991, with its own constants here): ``n₅`` (degree 5,
``κ n₅ = |I₇ − I₅|``), ``n₃`` (degree 3), ``n₁`` (degree 1). Where the integrand's
Taylor series converges on the box, the terms fall by a ratio ``q`` per two degrees and
``n₅ ≈ q n₃ ≈ q² n₁``; the estimate is ``κ max(n₅, q₃ n₃) · min(1, 10 max(q₃, q₅))``
with ``q₃ = n₃/n₁`` and ``q₅ = n₅/n₃`` (each ≤ 1): the degree-5 level, or what the lower
degrees predict for it if that is larger (the accident above: ``n₃`` was 6e-6), times
the next ratio with a safety factor of 10 (the degree-7 error is one ratio below the
degree-5 level). Measured on 226 random collinear mixtures in d = 2–4 (1-d truths; the
linear, trig and sqrt interpolants; the floors' default rtol; ``t`` in [0.02, 0.98]):
every error within its estimate, the worst at 0.019 of it; ``|I₇ − I₅|`` alone failed
on one (2.6×, the case above) and came within 0.97 of failing on another, with 13–15%
fewer nodes.

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
from functools import cache

import numpy as np

from ..exact import MixturePath
from ._rules import ROUNDING, component_frames, landmarks

__all__ = [
    "CubatureResult",
    "GenzMalik",
    "cubature_rule",
    "genz_malik",
    "starting_edges",
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
#: Coarser starts, finest first, for budgets where twice :data:`COARSE_EDGES`' partition
#: does not fit (``8^d`` boxes per component: 50,688 solves for three components in
#: ``d = 3``); the refinement then finds the features (the boxes holding other components'
#: centres are still halved to their scale before any evaluation).
COARSER_EDGES = (
    (-SPAN, -3.0, 0.0, 3.0, SPAN),
    (-SPAN, -3.0, 3.0, SPAN),
    (-SPAN, 0.0, SPAN),
)
#: Safety factor on the convergence ratio of the null rules in a box's estimate
#: (:func:`box_estimate`).
RATIO_SAFETY = 10.0
#: Nodes of ``g`` evaluated per call (bounds the memory of one call).
CHUNK = 2**15


@dataclass(frozen=True)
class GenzMalik:
    """The Genz–Malik nodes of ``[−1, 1]^d`` and the weights of the degree-7 and degree-5
    rules, normalized so that ``vol · Σ_p w_p f(u_p)`` is the integral over a box of
    volume ``vol`` (``Σ_p w_p = 1``). ``axis_near``/``axis_far`` index the nodes
    ``±λ₂ e_i`` and ``±λ₄ e_i`` (shape ``(d, 2)``) for the fourth differences.

    ``nulls`` (shape ``(4, p)``): fully symmetric **null rules** on the same nodes, each
    of the Euclidean norm of ``w7`` and orthogonal to the others — one of degree 5 (it
    integrates every polynomial of degree ≤ 5 to zero: ``w7 − w5`` up to a factor), two
    of degree 3, one of degree 1 (Berntsen, Espelid & Genz 1991). ``kappa`` is
    ``‖w7 − w5‖ / ‖w7‖``, so that ``kappa · |nulls[0] · f|`` is ``|I₇ − I₅|``."""

    nodes: np.ndarray
    w7: np.ndarray
    w5: np.ndarray
    axis_near: np.ndarray
    axis_far: np.ndarray
    nulls: np.ndarray
    kappa: float


@cache
def genz_malik(d: int) -> GenzMalik:
    """The rule in ``d ≥ 2`` dimensions: the centre; ``±λ₂ e_i`` and ``±λ₄ e_i``;
    ``±λ₄ e_i ± λ₄ e_j`` (``i < j``); the ``2^d`` corners ``(±λ₅, …, ±λ₅)``, with
    ``λ₂ = √(9/70)``, ``λ₄ = √(9/10)``, ``λ₅ = √(9/19)``."""
    l2, l4, l5 = math.sqrt(9 / 70), math.sqrt(9 / 10), math.sqrt(9 / 19)
    eye = np.eye(d)
    near = np.stack([eye * l2, -eye * l2], axis=1).reshape(2 * d, d)
    far = np.stack([eye * l4, -eye * l4], axis=1).reshape(2 * d, d)
    pairs = []
    for i in range(d):
        for j in range(i + 1, d):
            for si in (1.0, -1.0):
                for sj in (1.0, -1.0):
                    p = np.zeros(d)
                    p[i], p[j] = si * l4, sj * l4
                    pairs.append(p)
    signs = np.array(np.meshgrid(*([[1.0, -1.0]] * d), indexing="ij")).reshape(d, -1).T
    nodes = np.concatenate([np.zeros((1, d)), near, far, np.array(pairs), l5 * signs])
    n_pairs, n_corners = 2 * d * (d - 1), 2**d
    w7 = np.concatenate(
        [
            [(12824 - 9120 * d + 400 * d * d) / 19683],
            np.full(2 * d, 980 / 6561),
            np.full(2 * d, (1820 - 400 * d) / 19683),
            np.full(n_pairs, 200 / 19683),
            np.full(n_corners, 6859 / 19683 / 2**d),
        ]
    )
    w5 = np.concatenate(
        [
            [(729 - 950 * d + 50 * d * d) / 729],
            np.full(2 * d, 245 / 486),
            np.full(2 * d, (265 - 100 * d) / 1458),
            np.full(n_pairs, 25 / 729),
            np.zeros(n_corners),
        ]
    )
    index = np.arange(2 * d).reshape(d, 2)
    orbit = np.repeat(np.arange(5), [1, 2 * d, 2 * d, n_pairs, n_corners])
    nulls = _null_rules(nodes, orbit, w7)
    kappa = float(np.linalg.norm(w7 - w5) / np.linalg.norm(w7))
    return GenzMalik(nodes, w7, w5, 1 + index, 1 + 2 * d + index, nulls, kappa)


def starting_solves(n_components: int, d: int, edges: tuple[float, ...]) -> int:
    """Evaluations of the starting partition ``edges`` (per axis of each component's box):
    ``(len(edges) − 1)^d`` boxes of ``2^d + 2d² + 2d + 1`` nodes per component (before the
    halving at other components' centres)."""
    return n_components * (len(edges) - 1) ** d * len(genz_malik(d).w7)


def starting_edges(n_components: int, d: int, solves: int) -> tuple[float, ...] | None:
    """The finest of :data:`COARSE_EDGES` and :data:`COARSER_EDGES` whose starting
    partition fits twice in ``solves`` (half of them left for the refinement), else
    ``None``."""
    for edges in (COARSE_EDGES, *COARSER_EDGES):
        if 2 * starting_solves(n_components, d, edges) <= solves:
            return edges
    return None


def _null_rules(nodes: np.ndarray, orbit: np.ndarray, w7: np.ndarray) -> np.ndarray:
    """Fully symmetric null rules on ``nodes`` (one weight per ``orbit``) of degrees 5, 3,
    3, 1, orthonormalized in that order and scaled to ``‖w7‖`` (see :class:`GenzMalik`).

    A fully symmetric rule integrates every odd monomial to zero; it is of degree ``k`` when
    it also integrates the even symmetric monomials of degree ≤ ``k`` exactly: ``1``,
    ``x₁²`` (degree 3), ``x₁⁴`` and ``x₁² x₂²`` (degree 5). A null rule integrates them to
    zero: the null space of these moment conditions on the five orbit weights, of
    dimension 1 (degree 5), 3 (degree 3, the degree-5 rule among them), 4 (degree 1)."""
    to_nodes = (orbit[:, None] == np.arange(orbit.max() + 1)).astype(np.float64)
    x1, x2 = nodes[:, 0], nodes[:, 1]
    moments = [np.ones(len(nodes)), x1**2, x1**4, x1**2 * x2**2]
    rules: list[np.ndarray] = []
    for n_conditions in (4, 2, 2, 1):  # degree 5, 3, 3, 1
        conditions = np.array(moments[:n_conditions]) @ to_nodes
        space = np.linalg.svd(conditions)[2][np.linalg.matrix_rank(conditions) :]
        for weights in space @ to_nodes.T:  # candidate rules, per node
            for rule in rules:
                weights = weights - (weights @ rule) * rule
            if np.linalg.norm(weights) > 1e-8 and len(rules) < {4: 1, 2: 3, 1: 4}[n_conditions]:
                rules.append(weights / np.linalg.norm(weights))
    return np.array(rules) * np.linalg.norm(w7)


@dataclass(frozen=True)
class CubatureResult:
    """``value`` with its ``error_estimate`` (the sum of the boxes' estimates,
    :func:`box_estimate`), the
    integrand ``nodes`` evaluated, the number of ``boxes`` of the final partition, and
    whether ``error_estimate ≤ rtol · |value|`` was reached."""

    value: float
    error_estimate: float
    nodes: int
    boxes: int
    converged: bool


#: Landmark refinement (:func:`_refine_at_landmarks`), for components whose smallest
#: standard deviation in another's whitened coordinates is below ``LANDMARK_BELOW`` (the
#: starting boxes are 0.75 wide there): the boxes within ``REACH`` of those standard
#: deviations of its centre, down to half-widths of ``FINE`` of one.
LANDMARK_BELOW, LANDMARK_REACH, LANDMARK_FINE = 0.5, 4.0, 1.0


def box_estimate(rule: GenzMalik, nulls: np.ndarray) -> np.ndarray:
    """Error estimates of boxes from the magnitudes of their null rules ``|N_i · f| · vol``
    (shape ``(n, 4)``: degrees 5, 3, 3, 1; module docstring).

    With ``n₅``, ``n₃`` (the RMS of the two of degree 3) and ``n₁``, and the ratios
    ``q₃ = n₃/n₁``, ``q₅ = n₅/n₃`` (each at most 1): ``κ · max(n₅, q₃ n₃) · min(1,
    RATIO_SAFETY · max(q₃, q₅))`` (``κ n₅ = |I₇ − I₅|``)."""
    n5, n1 = nulls[:, 0], nulls[:, 3]
    n3 = np.sqrt(0.5 * (nulls[:, 1] ** 2 + nulls[:, 2] ** 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        q3 = np.where(n1 > 0, np.minimum(1.0, n3 / n1), 1.0)
        q5 = np.where(n3 > 0, np.minimum(1.0, n5 / n3), 1.0)
    level = np.maximum(n5, q3 * n3)  # |I₇ − I₅|, unless it vanished by accident
    return rule.kappa * level * np.minimum(1.0, RATIO_SAFETY * np.maximum(q3, q5))


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


def cubature_rule(
    path: MixturePath,
    t: float,
    g: Callable[[np.ndarray], np.ndarray],
    rtol: float,
    max_nodes: int,
    first_edges: tuple[float, ...] = FIRST_EDGES,
    report: Callable[[int, float, float], None] | None = None,
) -> CubatureResult:
    """``E_{p_t}[g]`` by adaptive Genz–Malik cubature over every component's whitened box
    (module docstring), refined until the error estimates add up to ``≤ rtol · |value|``
    or the next refinement would pass ``max_nodes`` evaluations of ``g``. ``g`` maps
    points ``(m, d)`` to values ``(m,)``; it is called on at most :data:`CHUNK` points at a
    time. ``first_edges``: the initial partition of each axis of ``[−R, R]``. The starting
    partition is evaluated whole, even beyond ``max_nodes`` (callers check its size).
    ``report(nodes, value, estimate)`` is called after each round of refinement."""
    d = path.dim
    rule = genz_malik(d)
    weights, means, frames = component_frames(path, t)
    rotations = aligned_rotations(path, t)
    frames = frames @ rotations

    # control variate: E_{N_j}[g] = g(m_j) + E_{N_j}[g − g(m_j)]; the residual vanishes at
    # the centre, where the Gaussian weight is largest
    offset = np.asarray(g(means), dtype=np.float64)
    log_norm = -0.5 * d * math.log(2 * math.pi)

    def evaluate(comp: np.ndarray, centre: np.ndarray, half: np.ndarray):
        """Degree-7 values, error estimates and split axes of the boxes ``(n,)``."""
        z = centre[:, None, :] + half[:, None, :] * rule.nodes[None]  # (n, p, d)
        x = means[comp][:, None, :] + np.einsum("nab,npb->npa", frames[comp], z)
        flat = x.reshape(-1, d)
        values = np.concatenate(
            [
                np.asarray(g(flat[i : i + CHUNK]), dtype=np.float64)
                for i in range(0, len(flat), CHUNK)
            ]
        ).reshape(z.shape[:2])
        f = np.exp(log_norm - 0.5 * np.sum(z * z, axis=2)) * (values - offset[comp][:, None])
        scale = weights[comp] * np.prod(2.0 * half, axis=1)
        i7 = scale * (f @ rule.w7)
        centre_value = f[:, :1]
        near = f[:, rule.axis_near].sum(axis=2) - 2.0 * centre_value
        far = f[:, rule.axis_far].sum(axis=2) - 2.0 * centre_value
        fourth = np.abs(near - far / 7.0)  # (λ₂/λ₄)² = 1/7
        # ties (a symmetric integrand) are broken towards the widest axis
        axis = np.argmax(fourth * (1.0 + 1e-9 * half / half.max(axis=1, keepdims=True)), axis=1)
        return i7, box_estimate(rule, scale[:, None] * np.abs(f @ rule.nulls.T)), axis

    edges = np.asarray(first_edges)
    mids, halves = 0.5 * (edges[1:] + edges[:-1]), 0.5 * (edges[1:] - edges[:-1])
    grid = np.array(np.meshgrid(*([np.arange(mids.size)] * d), indexing="ij")).reshape(d, -1).T
    k = weights.size
    comp = np.repeat(np.arange(k), len(grid))
    centre, half = np.tile(mids[grid], (k, 1)), np.tile(halves[grid], (k, 1))
    comp, centre, half = _refine_at_landmarks(path, t, comp, centre, half, rotations)
    value, error, axis = evaluate(comp, centre, half)
    nodes = len(comp) * len(rule.w7) + k
    base = float(weights @ offset)
    while True:
        total = base + float(np.sum(value))
        estimate = float(np.sum(error)) + ROUNDING * (abs(base) + float(np.sum(np.abs(value))))
        if not (np.isfinite(total) and np.isfinite(estimate)):
            raise ValueError("the integrand is not finite at a cubature node")
        if report is not None:
            report(nodes, total, estimate)
        # halve the boxes holding the larger half of the estimate (all boxes at once would
        # spend the budget on boxes already accurate)
        order = np.argsort(error)[::-1]
        split = order[: int(np.searchsorted(np.cumsum(error[order]), 0.5 * estimate)) + 1]
        if estimate <= rtol * abs(total) or nodes + 2 * split.size * len(rule.w7) > max_nodes:
            break
        keep = np.ones(comp.size, dtype=bool)
        keep[split] = False
        new_comp = np.concatenate([comp[split], comp[split]])
        new_centre, new_half = _halve(centre[split], half[split], axis[split])
        new_value, new_error, new_axis = evaluate(new_comp, new_centre, new_half)
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
    return CubatureResult(total, estimate, nodes, comp.size, estimate <= rtol * abs(total))
