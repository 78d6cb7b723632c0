"""Iterated quadrature of ``E_{p_t}[g]`` for two components in ``d ≥ 2``: an adaptive rule
along the line between them inside, tensor Gauss–Hermite across (loss-floors floor).

``E_{p_t}[g] = Σ_j w_j ∫ φ(z) g(m_j + F_j z) dz`` with ``F_j = A_j Q_j``: component
``j``'s whitening map turned so that the first axis points at the other component's centre
(:func:`~cmverify.loss_floors._cubature.aligned_rotations`). With ``z = (s, u)``,

    ``∫ φ(z) g dz = ∫ φ(u) G_j(u) du``,   ``G_j(u) = ∫ φ(s) g(m_j + F_j (s, u)) ds``.

Where the responsibilities switch between the two components, the MeanFlow floor's
integrand is a ridge along a curved sheet (a quadric: the components' covariances
differ), narrow across it (``~1/D`` in whitened units, ``D`` the separation) and smooth
along it. A line ``u = const`` crosses the sheet once where the sheet is about normal to
the lines, and integrating the ridge out along it leaves ``G_j`` smooth in ``u``: a tensor
Gauss–Hermite rule in the ``d − 1`` directions across converges spectrally where the same
rule in all ``d`` directions stalls, and the adaptive cubature (which resolves the sheet
with boxes in all ``d`` directions) falls only 4–8 times per doubling of its nodes.
MeanFlow floor, data side, random_mixture(4, 2, 0) at (0.8, 0.4): 4, 6, 8 and 10 nodes per
axis across gave 8.48628175, 8.48626602, 8.486266086, 8.486266086 (the last two 2e-11
apart), where the cubature had an estimate of 7.2e-6 after 8,352,968 solves; random_mixture
(3, 2, 0) at (0.5, 0.1): 8, 12 and 16 nodes across within 3e-7, 2e-8 and 2e-8 of the
cubature's 1e-6 value (a fixed 288-node rule along the lines).

**Along a line** ``G_j(u)`` is taken over ``s ∈ [−R, R]`` (``R = 9``: the Gaussian mass
outside, ``2 Φ(−9) ≈ 2.3e-19``) by composite Gauss–Legendre: each panel by the
:data:`PANEL_NODES`-node rule on it and on its two halves, the halves' sum its value and
``|G − G on the halves|`` its error estimate (an upper estimate of the halves' error where
the rule converges: ``2^{−2n}`` of it asymptotically). The starting panels are
:data:`START_EDGES`, plus edges at ``s* ± δ`` and ``s* ± 4δ`` around each place ``s*``
where the log-odds ``ℓ = log w_j N_j − log w_l N_l`` of ``p_t``'s components changes sign
on the line (found on a grid of spacing 1/4, no evaluation of ``g``; ``δ = 1/|dℓ/ds|``,
at least 1/64): the ridge is there. The panels of all lines of a rule form one pool,
weighted by ``w_j`` and the outer weight; in each round the panels with the largest
weighted estimates are halved until what is left is a quarter of the target (one batched
call of ``g`` a round), until the estimate is at most :data:`INNER_SHARE` of ``rtol``
times the value, the budget is spent, or the panels' estimates are at rounding.

**Across**, tensor Gauss–Hermite rules of :data:`ORDERS` nodes per axis (by ``d − 1``),
until three agree as in :func:`~cmverify.loss_floors._rules.hermite_rule` (the estimate
:data:`~cmverify.loss_floors._rules.DECAY_FACTOR` times the last difference where it is 4
times smaller than the one before, else times the larger of the two), plus the last
rule's inner estimate. Three rules can agree by accident: for elongated components
(condition 1e3, d = 2) the sheet leaves the lines' Gaussian window at ``|u| ≈ 4``, and
8, 12 and 16 nodes across agreed to 5e-13 while 8.3e-8 off (found in review; 24 nodes
and more moved to the truth). So a **pilot** runs first: a cheap integrand whose ridge
lies on the same sheet (the MeanFlow floor's: the flow-matching integrand at the same
time, whose between-component spread peaks where the responsibilities switch), by the
same lines at every order, a second or two in ``d = 4``. Its relative distance to its own
finest rule at each order joins the estimate (times the value), and where its two finest
rules differ by more than ``rtol/8`` the rule is not tried. Not for one component much
narrower than the other (:func:`~cmverify.loss_floors._rules.narrowest_contrast` below
:data:`MIN_CONTRAST`): the sheet then wraps around the narrow one, lines graze it and
``G_j`` has features on the narrow one's scale that no tensor rule across sees.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ..exact import MixturePath
from ..reference import gauss_hermite
from ._cubature import aligned_rotations
from ._flow_matching import MIN_CONTRAST
from ._rules import (
    CHUNK,
    DECAY_FACTOR,
    ROUNDING,
    RuleResult,
    component_frames,
    narrowest_contrast,
)

__all__ = ["ORDERS", "iterated_applies", "iterated_rule"]

#: Half-width of each line in the component's whitened coordinates.
SPAN = 9.0
#: The starting panels of every line (edges at the ridge's crossings are added).
START_EDGES = (-SPAN, -3.0, 0.0, 3.0, SPAN)
#: Gauss–Legendre nodes of a panel's rule (and of each half's).
PANEL_NODES = 8
#: Nodes per axis across the lines of the successive Gauss–Hermite rules, by ``d − 1``.
ORDERS = {1: (8, 12, 16, 24, 32, 48, 64), 2: (4, 6, 8, 12, 16, 24, 32), 3: (4, 6, 8, 12, 16)}
#: The lines' share of the error estimate: each rule's inner estimate is refined to at most
#: this fraction of ``rtol · |value|`` (so that the rules' differences measure the rule
#: across).
INNER_SHARE = 1.0 / 32.0
#: Evaluations of the pilot allowed to each of its rules across (a bound on memory; it
#: stops at rounding well before, 2.6e6 evaluations in all in d = 4 at rtol 1e-6).
PILOT_NODES = 2**24
#: Grid spacing (whitened units) on which the log-odds' sign changes are looked for.
GRID_STEP = 0.25
#: Edges added around each crossing ``s*``: ``s* + δ · offset``.
CROSSING_OFFSETS = np.array([-4.0, -1.0, 1.0, 4.0])


def iterated_applies(path: MixturePath, t: float) -> bool:
    """Whether :func:`iterated_rule` is meant for ``p_t``: two components, neither much
    narrower than the other where it sits (module docstring)."""
    return path.mixture.n_components == 2 and narrowest_contrast(path, t) >= MIN_CONTRAST


def _crossing_edges(marginal, mean, frame, u: np.ndarray, j: int) -> list[np.ndarray]:
    """Per line ``u`` (rows), the extra panel edges around the places where the log-odds
    of component ``j`` against the other changes sign (module docstring)."""
    grid = np.arange(-SPAN, SPAN + GRID_STEP / 2, GRID_STEP)
    z = np.concatenate(
        [
            np.broadcast_to(grid[None, :, None], (len(u), grid.size, 1)),
            np.broadcast_to(u[:, None, :], (len(u), grid.size, u.shape[1])),
        ],
        axis=2,
    ).reshape(-1, frame.shape[0])
    logs = marginal.component_log_prob(mean + z @ frame.T)
    with np.errstate(invalid="ignore"):  # a component of weight 0: −inf, no crossing
        odds = (logs[:, j] - logs[:, 1 - j]).reshape(len(u), grid.size)
    out = []
    for row in odds:
        edges = []
        for i in np.flatnonzero(np.sign(row[:-1]) * np.sign(row[1:]) <= 0):
            slope = (row[i + 1] - row[i]) / GRID_STEP
            if not (np.isfinite(slope) and slope != 0):
                continue
            at = grid[i] - row[i] / slope
            width = max(1.0 / abs(slope), 1.0 / 64.0)
            edges.extend(at + width * CROSSING_OFFSETS)
        out.append(np.clip(np.asarray(edges), -SPAN, SPAN))
    return out


def _line_panels(extra: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(line, lo, hi)`` of the starting panels of every line."""
    line, lo, hi = [], [], []
    for i, more in enumerate(extra):
        edges = np.unique(np.concatenate([START_EDGES, more]))
        edges = edges[np.concatenate([[True], np.diff(edges) > 1e-12])]
        line.append(np.full(edges.size - 1, i))
        lo.append(edges[:-1])
        hi.append(edges[1:])
    return np.concatenate(line), np.concatenate(lo), np.concatenate(hi)


def _rule_across(
    path: MixturePath,
    t: float,
    g: Callable[[np.ndarray], np.ndarray],
    order: int,
    tolerance: float,
    max_nodes: int,
) -> tuple[float, float, int] | None:
    """One rule across: ``(value, inner estimate, nodes)``, the lines refined until the
    inner estimate is ≤ ``tolerance · |value|``; ``None`` where ``max_nodes`` evaluations
    would not hold the starting panels."""
    d = path.dim
    weights, means, frames = component_frames(path, t)
    frames = frames @ aligned_rotations(path, t)
    marginal = path.marginal(t)
    u, wu = gauss_hermite(order, d - 1)
    x8, w8 = np.polynomial.legendre.leggauss(PANEL_NODES)
    halves = np.concatenate([0.5 * (x8 - 1.0), 0.5 * (x8 + 1.0)])
    log_norm = -0.5 * math.log(2.0 * math.pi)

    comp, line, lo, hi = [], [], [], []
    for j in range(2):
        li, a, b = _line_panels(_crossing_edges(marginal, means[j], frames[j], u, j))
        comp.append(np.full(li.size, j))
        line.append(li)
        lo.append(a)
        hi.append(b)
    comp, line, lo, hi = map(np.concatenate, (comp, line, lo, hi))
    if 3 * PANEL_NODES * lo.size > max_nodes:
        return None

    def sums(comp, line, lo, hi, nodes):
        """``Σ_i w_i φ(s_i) g`` on each panel for the unit-interval ``nodes`` (stacked
        rules of PANEL_NODES each), scaled to the panel: ``(n, len(nodes)/PANEL_NODES)``."""
        half, mid = 0.5 * (hi - lo), 0.5 * (hi + lo)
        s = mid[:, None] + half[:, None] * nodes[None]
        z = np.concatenate(
            [s[..., None], np.broadcast_to(u[line][:, None, :], (*s.shape, d - 1))], axis=2
        )
        y = means[comp][:, None, :] + np.einsum("nab,npb->npa", frames[comp], z)
        flat = y.reshape(-1, d)
        values = np.concatenate(
            [
                np.asarray(g(flat[i : i + CHUNK]), dtype=np.float64)
                for i in range(0, len(flat), CHUNK)
            ]
        ).reshape(s.shape)
        f = np.exp(log_norm - 0.5 * s * s) * values
        return half[:, None] * (f.reshape(len(lo), -1, PANEL_NODES) @ w8)

    def panels(comp, line, lo, hi, whole=None):
        """Values (the rule on the halves), estimates and the halves' own sums."""
        if whole is None:
            parts = sums(comp, line, lo, hi, np.concatenate([x8, halves]))
            whole, parts = parts[:, 0], 0.5 * parts[:, 1:]
        else:
            parts = 0.5 * sums(comp, line, lo, hi, halves)
        value = parts.sum(axis=1)
        return value, np.abs(whole - value), parts

    scale = weights[comp] * wu[line]
    value, error, parts = panels(comp, line, lo, hi)
    nodes = 3 * PANEL_NODES * lo.size
    while True:
        total = float(scale @ value)
        estimate = float(scale @ error) + ROUNDING * float(scale @ np.abs(value))
        if not (np.isfinite(total) and np.isfinite(estimate)):
            raise ValueError("the integrand is not finite at a node of the iterated rule")
        # halve the panels with the largest estimates until what is left is ≤ a quarter
        # of the tolerance (few rounds of large batches: each round is one batched solve)
        weighted = scale * error
        ranked = np.argsort(weighted)[::-1]
        left = estimate - np.cumsum(weighted[ranked])
        split = ranked[: int(np.searchsorted(-left, -0.25 * tolerance * abs(total))) + 1]
        split = split[: (max_nodes - nodes) // (4 * PANEL_NODES)]  # what the budget holds
        # done, out of budget, or at rounding (a tolerance below it: the panels' own
        # estimates are below what is left to refine, review)
        rounding = ROUNDING * float(scale @ np.abs(value))
        at_rounding = weighted.sum() <= max(0.25 * tolerance * abs(total), rounding)
        if estimate <= tolerance * abs(total) or split.size == 0 or at_rounding:
            return total, estimate, nodes
        keep = np.ones(lo.size, dtype=bool)
        keep[split] = False
        mid = 0.5 * (lo[split] + hi[split])
        new = (
            np.concatenate([comp[split]] * 2),
            np.concatenate([line[split]] * 2),
            np.concatenate([lo[split], mid]),
            np.concatenate([mid, hi[split]]),
        )
        new_value, new_error, new_parts = panels(
            *new, whole=np.concatenate([parts[split, 0], parts[split, 1]])
        )
        nodes += 2 * PANEL_NODES * new[2].size
        comp, line, lo, hi = (
            np.concatenate([a[keep], b]) for a, b in zip((comp, line, lo, hi), new, strict=True)
        )
        value = np.concatenate([value[keep], new_value])
        error = np.concatenate([error[keep], new_error])
        parts = np.concatenate([parts[keep], new_parts])
        scale = weights[comp] * wu[line]


def _pilot_errors(
    path: MixturePath, t: float, pilot: Callable[[np.ndarray], np.ndarray], rtol: float
) -> dict[int, float] | None:
    """The ``pilot``'s relative distance to its finest rule across, by order (``None``
    where its two finest rules differ by more than ``rtol/8``: the rules across do not
    converge on this geometry; also where a rule's start passes :data:`PILOT_NODES` or
    the finest value is 0 or not finite: nothing to measure against)."""
    orders = ORDERS[path.dim - 1]
    tolerance = INNER_SHARE * rtol / 8
    steps = [_rule_across(path, t, pilot, q, tolerance, PILOT_NODES) for q in orders]
    if any(step is None for step in steps):
        return None
    values = np.array([step[0] for step in steps])
    if not (np.isfinite(values[-1]) and values[-1] != 0.0):
        return None
    errors = dict(zip(orders, np.abs(values - values[-1]) / abs(values[-1]), strict=True))
    return None if not errors[orders[-2]] <= rtol / 8 else errors


def iterated_rule(
    path: MixturePath,
    t: float,
    g: Callable[[np.ndarray], np.ndarray],
    rtol: float,
    max_nodes: int,
    report: Callable[[int, float, float], None] | None = None,
    pilot: Callable[[np.ndarray], np.ndarray] | None = None,
) -> RuleResult:
    """``E_{p_t}[g]`` for two components in ``d ≥ 2`` by the iterated rule (module
    docstring), within ``max_nodes`` evaluations of ``g`` (points ``(m, d)`` to values
    ``(m,)``, called on at most :data:`~cmverify.loss_floors._rules.CHUNK` at a time).
    ``report(nodes, value, estimate)`` after each rule across. ``pilot``: a cheap integrand
    whose ridge lies on the same sheet (module docstring): its relative error at each
    order (against its finest rule, :func:`_pilot_errors`) is added to the estimate, and
    the rule is not tried (no node spent, not converged) where the pilot's rules do not
    converge."""
    orders = ORDERS[path.dim - 1]
    pilot_errors = {} if pilot is None else _pilot_errors(path, t, pilot, rtol)
    if pilot_errors is None:
        return RuleResult(math.nan, math.inf, orders[0], 0, False)
    values: list[float] = []
    nodes, error, done, inner = 0, math.inf, orders[0], math.inf
    for order in orders:
        step = _rule_across(path, t, g, order, INNER_SHARE * rtol, max_nodes - nodes)
        if step is None:
            break
        value, inner, spent = step
        values.append(value)
        nodes, done = nodes + spent, order
        if len(values) >= 3:
            last, prev = abs(values[-1] - values[-2]), abs(values[-2] - values[-3])
            error = DECAY_FACTOR * (max(last, prev) if last > prev / 4 else last)
            error += inner + ROUNDING * abs(value)
        elif len(values) == 2:
            error = DECAY_FACTOR * abs(values[-1] - values[-2]) + inner
        error += pilot_errors.get(order, 0.0) * abs(value)
        if report is not None:
            report(nodes, values[-1], error)
        if _converged(values, error, rtol):
            break
    if not values:
        return RuleResult(math.nan, math.inf, done, nodes, False)
    return RuleResult(values[-1], error, done, nodes, _converged(values, error, rtol))


def _converged(values: list[float], error: float, rtol: float) -> bool:
    """Three rules across, and the estimate within ``rtol`` of the last value."""
    return len(values) >= 3 and error <= rtol * abs(values[-1])
