"""The quadrature rules of the loss floors: ``E_{x ~ p_t}[g(x)]`` for a mixture path, with
an error estimate (loss-floors floor).

- ``d = 1``: :func:`line_rule` — adaptive composite Gauss–Legendre. The starting
  partition follows every component of ``p_t`` on its own scale (``μ_j ± s_j · 5 i``,
  ``|i| ≤ 8``: 40 standard deviations, beyond which the tails are below ``e^{-800}``);
  each panel is integrated by the 16-node rule on it and on its two halves, the halves'
  sum is its value and ``|G16 − G16 on the halves|`` its error estimate (an upper estimate
  of the halves' error wherever the rule converges; the 8- and 16-node pair used before
  missed an error of 6.7e-7 at an estimate of 4.3e-8 on one smooth panel, found in
  review), and the panels with the largest estimates are halved until the estimates add up to at
  most ``rtol`` of the value. Sharp features that no component's scale announces — the
  MeanFlow floor's peak in the gap between modes, where ``∇X_{t→r}`` is large — are
  found by the refinement.
- ``d ≥ 2``: :func:`hermite_rule` — a tensor Gauss–Hermite rule per component of
  ``p_t`` (each in its own eigenbasis), the nodes per axis doubled until three rules
  agree, within a node budget (the error estimate: :data:`DECAY_FACTOR` times the last
  difference where the rules visibly converge, else times the larger of the last two).
  Not tried where one component is much narrower than another at a place the other
  weighs (:func:`narrowest_contrast`): no tensor node lands in the narrow one's region.
  Where it is not tried or does not converge: :mod:`cmverify.loss_floors._cubature`.

``g`` maps points of shape ``(m, d)`` to values of shape ``(m,)``; it is called once per
refinement on all new nodes (the MeanFlow floor's ``g`` solves a Jacobian per node: one
batched solve per call).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..exact import GaussianMixture, MixturePath
from ..reference import gauss_hermite

__all__ = [
    "RuleResult",
    "component_frames",
    "hermite_rule",
    "landmarks",
    "line_integral",
    "line_rule",
    "narrowest_contrast",
    "velocity_slope",
    "whitening_inverses",
    "widest_separation",
]

#: The starting partition of :func:`line_rule`: ``±SPAN`` standard deviations of each
#: component in ``2 · STEPS`` panels.
SPAN, STEPS = 40.0, 8
#: The most panels :func:`line_rule` refines to.
MAX_PANELS = 2**14
#: :func:`hermite_rule`'s error estimate in units of the rules' differences: errors up to
#: 3.4 times the last difference were measured (random collinear mixtures, ``d = 2``,
#: ``t = 0.02``, against 1-d truths).
DECAY_FACTOR = 8.0
#: Nodes of ``g`` per call of :func:`hermite_rule` (bounds the memory of one call).
CHUNK = 2**16


@dataclass(frozen=True)
class RuleResult:
    """``value`` with its ``error_estimate``, the ``order`` (16 for the line rule's
    panels; nodes per axis of the finer Gauss–Hermite rule), the integrand ``nodes`` of the
    final rule, and whether ``error_estimate ≤ rtol · |value|`` was reached."""

    value: float
    error_estimate: float
    order: int
    nodes: int
    converged: bool


#: The rounding of a rule's sum, relative to its value: no estimate is below it (rules
#: that agreed to the last bit gave estimates of 0 at errors of 1e-16 relative).
ROUNDING = 4.0 * np.finfo(np.float64).eps


def line_rule(
    path: MixturePath, t: float, g: Callable[[np.ndarray], np.ndarray], rtol: float
) -> RuleResult:
    """``∫ p_t(x) g(x) dx`` in ``d = 1`` by adaptive composite Gauss–Legendre (module
    docstring)."""

    def log_f(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return path.log_prob(t, x[:, None]), g(x[:, None])

    return line_integral(path.marginal(t), log_f, rtol)


def line_integral(
    partition: GaussianMixture,
    log_f: Callable[[np.ndarray], tuple[np.ndarray, ...]],
    rtol: float,
    max_evaluations: int | None = None,
) -> RuleResult:
    """``∫ exp(a(y)) b(y) dy`` over the line, ``(a, b) = log_f(y)`` for nodes ``y`` of shape
    ``(m,)``, ``b ≥ 0`` (or ``(a, b, δ)``: each node's value known only to a relative error
    ``δ ≥ 0``, and ``∫ exp(a) b δ`` by the same rule is added to the error estimate once the
    rule has converged: refining cannot reduce it): adaptive composite Gauss–Legendre from
    the partition that follows every component of the 1-d mixture ``partition`` on its own
    scale (module docstring),
    refined while the evaluations stay within ``max_evaluations`` (``None``: up to
    :data:`MAX_PANELS` panels; the starting partition, 48 evaluations a panel, always; a
    split panel's halves reuse its sums on them, 32 new evaluations each).
    The values are scaled by ``exp(−max a)`` over the first nodes, so that an integrand
    beyond float64 (the MeanFlow floor of well-separated modes) is integrated as well;
    ``ValueError`` when the integral itself is not representable."""
    means, stds = partition.means[:, 0], np.sqrt(partition.covs[:, 0, 0])
    steps = np.linspace(-SPAN, SPAN, 2 * STEPS + 1)
    edges = np.unique(np.concatenate([mu + sd * steps for mu, sd in zip(means, stds, strict=True)]))
    z, w = np.polynomial.legendre.leggauss(16)
    # a panel's 16 nodes, then those of its two halves
    z3 = np.concatenate([z, 0.5 * (z - 1.0), 0.5 * (z + 1.0)])
    shift = [None]

    def panels(
        lo: np.ndarray, hi: np.ndarray, whole: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The panels' values (the 16-node rule on their two halves), error estimates
        ``|G16 − G16 on the halves|`` and the halves' 16-node sums ``(n, 2)``; ``whole``: the
        panels' own 16-node sums where known (a split panel's halves: not evaluated again)."""
        half, mid = 0.5 * (hi - lo), 0.5 * (hi + lo)
        nodes = z3 if whole is None else z3[16:]
        a, b, *rel = log_f((mid[:, None] + half[:, None] * nodes[None]).ravel())
        if shift[0] is None:
            shift[0] = float(np.max(a))
        with np.errstate(over="ignore", invalid="ignore"):
            f = np.exp(a - shift[0]) * b
            moved = np.where(f > 0, f * rel[0], 0.0) if rel else np.zeros_like(f)
        sums = f.reshape(lo.size, -1, 16) @ w
        # the nodes' own errors, by the rule on the halves (the nodes evaluated here)
        node = half * 0.5 * np.sum(moved.reshape(lo.size, -1, 16)[:, -2:] @ w, axis=1)
        if whole is not None:
            sums = np.column_stack([whole, sums])
        halves = 0.5 * (sums[:, 1] + sums[:, 2])
        return half * halves, np.abs(half * (sums[:, 0] - halves)), sums[:, 1:], node

    lo, hi = edges[:-1], edges[1:]
    value, error, parts, node = panels(lo, hi)
    evaluations = 48 * lo.size
    while True:
        total = float(np.sum(value))
        estimate = float(np.sum(error)) + ROUNDING * float(np.sum(np.abs(value)))
        if not (np.isfinite(total) and np.isfinite(estimate)):
            raise ValueError("the integrand overflows float64 even after scaling")
        if estimate <= rtol * abs(total) or lo.size >= MAX_PANELS:
            break
        # halve the panels with the largest estimates, until what is left is ≤ rtol/4
        order = np.argsort(error)[::-1]
        left = estimate - np.cumsum(error[order])
        split = order[: int(np.searchsorted(-left, -0.25 * rtol * abs(total))) + 1]
        if max_evaluations is not None and evaluations + 64 * split.size > max_evaluations:
            break
        keep = np.ones(lo.size, dtype=bool)
        keep[split] = False
        mid = 0.5 * (lo[split] + hi[split])
        new_lo, new_hi = np.concatenate([lo[split], mid]), np.concatenate([mid, hi[split]])
        known = np.concatenate([parts[split, 0], parts[split, 1]])  # the halves' own sums
        new_value, new_error, new_parts, new_node = panels(new_lo, new_hi, known)
        evaluations += 32 * new_lo.size
        lo, hi = np.concatenate([lo[keep], new_lo]), np.concatenate([hi[keep], new_hi])
        value = np.concatenate([value[keep], new_value])
        error = np.concatenate([error[keep], new_error])
        parts = np.concatenate([parts[keep], new_parts])
        node = np.concatenate([node[keep], new_node])
    estimate += float(np.sum(node))  # inf where a node's error is unknown
    factor = math.exp(shift[0]) if shift[0] < 709.0 else math.inf
    if total > 0 and not math.isfinite(total * factor):
        log10 = (math.log(total) + shift[0]) / math.log(10.0)
        raise ValueError(f"the integral is about 1e{log10:.0f}, beyond float64")
    converged = estimate <= rtol * abs(total)
    return RuleResult(total * factor, estimate * factor, 16, evaluations, converged)


def component_frames(path: MixturePath, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The weights ``(K,)``, means ``(K, d)`` and whitening maps ``A_j = U_j diag(√λ_j)``
    ``(K, d, d)`` of ``p_t``'s components (``C_j = U_j diag(λ_j) U_jᵀ``, the marginal's own
    eigen-decomposition): ``x = m_j + A_j z`` with ``z ~ N(0, I)`` is distributed as
    component ``j``."""
    marginal = path.marginal(t)
    root = np.sqrt(np.maximum(marginal.eigvals, 0.0))
    return marginal.weights, marginal.means, marginal.eigvecs * root[:, None, :]


def whitening_inverses(marginal) -> np.ndarray:
    """``A_j⁻¹ = diag(λ_j^{−1/2}) U_jᵀ`` of each component of a mixture (``(K, d, d)``):
    ``z = A_j⁻¹ (x − m_j)`` are ``x``'s whitened coordinates in component ``j``."""
    return np.swapaxes(marginal.eigvecs, 1, 2) / np.sqrt(marginal.eigvals)[:, :, None]


def landmarks(path: MixturePath, t: float) -> list[tuple[int, np.ndarray, float]]:
    """``(j, z, s)`` for every ordered pair of components ``j ≠ l`` of ``p_t``: the centre of
    ``l`` in ``j``'s whitened coordinates, ``z = A_j⁻¹ (m_l − m_j)``, and ``l``'s smallest
    standard deviation there, ``s = √λ_min(A_j⁻¹ C_l A_j⁻ᵀ)`` — where a rule over ``j``'s
    Gaussian must look, and how closely (``A_j⁻¹ = diag(λ_j^{−1/2}) U_jᵀ``)."""
    marginal = path.marginal(t)
    means, covs = marginal.means, marginal.covs
    inverses = whitening_inverses(marginal)
    out = []
    for j, inv in enumerate(inverses):
        for k in range(len(means)):
            if k != j:
                seen = inv @ covs[k] @ inv.T
                s = float(np.sqrt(max(np.linalg.eigvalsh(0.5 * (seen + seen.T))[0], 0.0)))
                out.append((j, inv @ (means[k] - means[j]), s))
    return out


def narrowest_contrast(path: MixturePath, t: float, reach: float = 8.0) -> float:
    """The smallest ``s`` of :func:`landmarks` whose centre lies within ``reach`` of the
    origin in every coordinate (``inf`` for one component): below ~0.1 a component sits
    inside another's Gaussian on a scale its tensor rules do not resolve."""
    found = [s for _, z, s in landmarks(path, t) if np.max(np.abs(z)) <= reach]
    return min(found, default=math.inf)


def widest_separation(path: MixturePath, t: float) -> float:
    """The largest distance of another component's centre from a component's, in that
    one's whitened coordinates (:func:`landmarks`; 0 for one component): beyond ~6 the
    responsibilities switch out in a component's tail, where tensor rules of every order
    tried may miss the sheet alike."""
    return max((float(np.linalg.norm(z)) for _, z, _ in landmarks(path, t)), default=0.0)


def hermite_rule(
    path: MixturePath,
    t: float,
    g: Callable[[np.ndarray], np.ndarray],
    rtol: float,
    first_order: int,
    max_nodes_per_component: int,
    max_order: int,
) -> RuleResult:
    """``E_{p_t}[g]`` in ``d ≥ 2`` by tensor Gauss–Hermite rules per component, the nodes
    per axis doubled from ``first_order`` until three rules agree: the error estimate is
    :data:`DECAY_FACTOR` times the last difference where it is 4 times smaller than the
    one before (the rules visibly converging), else times the larger of the two; or
    the next rule would pass ``max_nodes_per_component`` (``q^d``) or ``max_order``
    (module docstring). ``g`` is called on at most :data:`CHUNK` nodes at a time."""
    d = path.dim
    weights, means, frames = component_frames(path, t)
    k = weights.size

    def rule(order: int) -> float:
        z, w = gauss_hermite(order, d)
        total = 0.0
        for j in range(k):
            for i in range(0, len(z), CHUNK):
                x = means[j] + z[i : i + CHUNK] @ frames[j].T
                total += weights[j] * float(np.asarray(g(x)) @ w[i : i + CHUNK])
        return total

    values, order = [rule(first_order)], first_order
    nodes = k * first_order**d
    while True:
        order *= 2
        values.append(rule(order))
        last = abs(values[-1] - values[-2])
        # a pair of rules can agree by accident before either resolves the modes'
        # boundaries (3.3e-7 apart at 8 and 16 nodes per axis, 1.3e-6 off, in d = 4; even
        # to rounding, where both miss a sheet on which the responsibilities switch), and
        # three can stall together (6e-10 apart, all 3.1e-9 off, d = 2, found in review).
        # So a third rule must confirm, with a margin: both differences within rtol / 8
        # (estimate: the larger, times 8), or the last 4 times smaller than the one
        # before (the rules visibly converging; estimate: DECAY_FACTOR times the last)
        if len(values) < 3:
            error, converged = last, False
        else:
            prev = abs(values[-2] - values[-3])
            error = DECAY_FACTOR * (max(last, prev) if last > prev / 4 else last)
            error += ROUNDING * abs(values[-1])  # three rules may agree to the last bit
            converged = error <= rtol * abs(values[-1])
        nodes += k * order**d
        if converged or (2 * order) ** d > max_nodes_per_component or 2 * order > max_order:
            return RuleResult(values[-1], error, order, nodes, converged)


def velocity_slope(path: MixturePath, t: float) -> float:
    """``max |g|`` over components and eigenvalues ``λ`` of their covariances, ``g = (α α̇ λ
    + σ σ̇) / (α² λ + σ²)``: each component's velocity Jacobian's eigenvalues at ``t`` (the
    responsibilities' gradients add ``Σ r_k (m_k − v)(s_k − s̄)ᵀ``, large only between
    separated modes, where ``p_t`` is small)."""
    at = path.interpolant.at(t)
    lam = path.mixture.eigvals
    num = float(at.alpha_dalpha) * lam + float(at.sigma_dsigma)
    with np.errstate(divide="ignore", invalid="ignore"):
        g = np.abs(num) / (float(at.alpha) ** 2 * lam + float(at.sigma) ** 2)
    return float(np.max(np.where(np.isnan(g), np.inf, g)))
