"""The quadrature rules of the loss floors: ``E_{x ~ p_t}[g(x)]`` for a mixture path, with
an error estimate (loss-floors floor).

- ``d = 1``: :func:`line_rule` — adaptive composite Gauss–Legendre. The starting
  partition follows every component of ``p_t`` on its own scale (``μ_j ± s_j · 5 i``,
  ``|i| ≤ 8``: 40 standard deviations, beyond which the tails are below ``e^{-800}``);
  each panel is integrated by the 8- and the 16-node rule, ``|G16 − G8|`` is its error
  estimate (an upper estimate of the 16-node rule's error wherever the rules converge),
  and the panels with the largest estimates are halved until the estimates add up to at
  most ``rtol`` of the value. Sharp features that no component's scale announces — the
  MeanFlow floor's peak in the gap between modes, where ``∇X_{t→r}`` is large — are
  found by the refinement.
- ``d ≥ 2``: :func:`hermite_rule` — a tensor Gauss–Hermite rule per component of
  ``p_t`` (:func:`cmverify.reference.marginal_expectation`), the nodes per axis doubled
  until two rules agree to ``rtol``, within a node budget; the difference of the last
  two rules is the error estimate.

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
from ..reference import marginal_expectation

__all__ = ["RuleResult", "hermite_rule", "line_integral", "line_rule"]

#: The starting partition of :func:`line_rule`: ``±SPAN`` standard deviations of each
#: component in ``2 · STEPS`` panels.
SPAN, STEPS = 40.0, 8
#: The most panels :func:`line_rule` refines to.
MAX_PANELS = 2**14


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
    log_f: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    rtol: float,
) -> RuleResult:
    """``∫ exp(a(y)) b(y) dy`` over the line, ``(a, b) = log_f(y)`` for nodes ``y`` of shape
    ``(m,)``, ``b ≥ 0``: adaptive composite Gauss–Legendre from the partition that follows
    every component of the 1-d mixture ``partition`` on its own scale (module docstring).
    The values are scaled by ``exp(−max a)`` over the first nodes, so that an integrand
    beyond float64 (the MeanFlow floor of well-separated modes) is integrated as well;
    ``ValueError`` when the integral itself is not representable."""
    means, stds = partition.means[:, 0], np.sqrt(partition.covs[:, 0, 0])
    steps = np.linspace(-SPAN, SPAN, 2 * STEPS + 1)
    edges = np.unique(np.concatenate([mu + sd * steps for mu, sd in zip(means, stds, strict=True)]))
    rules = [np.polynomial.legendre.leggauss(q) for q in (8, 16)]
    shift = [None]

    def panels(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The 16-node values of the panels ``[lo, hi]`` and their error estimates."""
        half, mid = 0.5 * (hi - lo), 0.5 * (hi + lo)
        nodes = [mid[:, None] + half[:, None] * z[None] for z, _ in rules]
        a, b = log_f(np.concatenate([n.ravel() for n in nodes]))
        if shift[0] is None:
            shift[0] = float(np.max(a))
        with np.errstate(over="ignore"):
            values = np.exp(a - shift[0]) * b
        coarse = values[: nodes[0].size].reshape(nodes[0].shape) @ rules[0][1]
        fine = values[nodes[0].size :].reshape(nodes[1].shape) @ rules[1][1]
        return half * fine, np.abs(half * (fine - coarse))

    lo, hi = edges[:-1], edges[1:]
    value, error = panels(lo, hi)
    evaluations = 24 * lo.size
    while True:
        total, estimate = float(np.sum(value)), float(np.sum(error))
        if not (np.isfinite(total) and np.isfinite(estimate)):
            raise ValueError("the integrand overflows float64 even after scaling")
        if estimate <= rtol * abs(total) or lo.size >= MAX_PANELS:
            break
        # halve the panels with the largest estimates, until what is left is ≤ rtol/4
        order = np.argsort(error)[::-1]
        left = estimate - np.cumsum(error[order])
        split = order[: int(np.searchsorted(-left, -0.25 * rtol * abs(total))) + 1]
        keep = np.ones(lo.size, dtype=bool)
        keep[split] = False
        mid = 0.5 * (lo[split] + hi[split])
        new_lo, new_hi = np.concatenate([lo[split], mid]), np.concatenate([mid, hi[split]])
        new_value, new_error = panels(new_lo, new_hi)
        evaluations += 24 * new_lo.size
        lo, hi = np.concatenate([lo[keep], new_lo]), np.concatenate([hi[keep], new_hi])
        value = np.concatenate([value[keep], new_value])
        error = np.concatenate([error[keep], new_error])
    factor = math.exp(shift[0]) if shift[0] < 709.0 else math.inf
    if total > 0 and not math.isfinite(total * factor):
        log10 = (math.log(total) + shift[0]) / math.log(10.0)
        raise ValueError(f"the integral is about 1e{log10:.0f}, beyond float64")
    converged = estimate <= rtol * abs(total)
    return RuleResult(total * factor, estimate * factor, 16, evaluations, converged)


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
    per axis doubled from ``first_order`` until two rules agree to ``rtol`` or the next
    rule would pass ``max_nodes_per_component`` (``q^d``) or ``max_order`` (module
    docstring)."""
    d, k = path.dim, path.mixture.n_components

    def rule(order: int) -> float:
        return float(marginal_expectation(path, t, g, order=order))

    order, previous = first_order, rule(first_order)
    while True:
        finer = 2 * order
        current = rule(finer)
        error = abs(current - previous)
        converged = error <= rtol * abs(current)
        if converged or (2 * finer) ** d > max_nodes_per_component or 2 * finer > max_order:
            return RuleResult(current, error, finer, k * finer**d, converged)
        order, previous = finer, current
