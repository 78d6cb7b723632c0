"""The MeanFlow floor in ``d = 1``, on the data side (loss-floors floor)."""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np

from ..exact import MixturePath
from ..reference import AccuracyWarning, ReferenceFlow
from ._rules import RuleResult, line_integral

__all__ = ["data_side_floor"]


def data_side_floor(
    path: MixturePath, flow: ReferenceFlow, t: float, r: float, rtol: float
) -> RuleResult:
    """d = 1 on the data side: with ``y = X_{t→r}(x)``, ``dy = ∇X dx`` and ``∇X = p_t(x) /
    p_r(y)`` (mass conservation), the floor is ``∫ p_t(x(y))² C(x(y)) / p_r(y) dy`` with
    ``x(y) = X_{r→t}(y)``, a contraction towards the noise (well conditioned where
    ``X_{t→r}`` is not: in the gap between modes), and no Jacobian to solve. The map's
    absolute target is scaled to ``p_t``'s narrowest standard deviation ``s`` where that is
    below 1; a node whose map float64 cannot certify (error ``e`` over its target) moves
    the integrand by about ``e (2 |∇ log p_t(x)| + 1/s)`` of itself (the density's and, on
    its own scale, ``C``'s), and that, times the node's integrand over the largest, adds
    to the estimate: data of std 1e-13 at t = 1.5e-13 had been 2.1e-7 off, "converged" at
    3e-15, with the flow's absolute target 1e-10 (found in review); an estimate of ``inf``
    for two uncertified nodes of 768 had flagged floors 3e-11 off (found in review)."""
    scale = float(np.sqrt(np.min(path.marginal(t).eigvals)))
    if scale < 1.0:
        flow = ReferenceFlow(path, atol=flow.rtol * scale)
    top, missed = [-math.inf], []  # the largest log integrand; (log integrand, error) missed
    spread = [0.0]  # the largest |log p_t² / p_r| + |log C| at a node: its rounding's scale

    def log_f(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        points = y[:, None]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AccuracyWarning)  # folded into the estimate
            sol = flow.solve(points, r, t)
        log_ratio = 2.0 * path.log_prob(t, sol.x) - path.log_prob(r, points)
        variance = path.velocity_target_variance(t, sol.x)
        with np.errstate(divide="ignore"):
            log_value = log_ratio + np.log(variance)
        top[0] = max(top[0], float(np.max(log_value)))
        sizes = np.abs(log_ratio) + np.abs(log_value - log_ratio)
        spread[0] = max(spread[0], float(np.max(sizes[np.isfinite(sizes)], initial=0.0)))
        if sol.unresolved.size:
            i = sol.unresolved
            slope = 2.0 * np.abs(path.score(t, sol.x[i])[:, 0]) + 1.0 / scale
            missed.append((log_value[i], sol.error_estimate[i] * slope))
        return log_ratio, variance

    rule = line_integral(path.marginal(r), log_f, rtol)
    # each node's integrand is exp of a sum of logs, rounded to eps times their size
    # (one Gaussian of std 1e-13 at t = 1.5e-13: 1.1e-14 off at a rule estimate of 1.5e-15)
    extra = 4.0 * np.finfo(np.float64).eps * spread[0] * abs(rule.value)
    if missed:
        log_value, error = (np.concatenate(parts) for parts in zip(*missed, strict=True))
        with np.errstate(over="ignore", invalid="ignore"):
            extra += float(np.sum(error * np.exp(log_value - top[0]))) * abs(rule.value)
    estimate = rule.error_estimate + (extra if math.isfinite(extra) else math.inf)
    return dataclasses.replace(
        rule, error_estimate=estimate, converged=bool(estimate <= rtol * abs(rule.value))
    )
