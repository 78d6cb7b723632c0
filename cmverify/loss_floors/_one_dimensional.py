"""The MeanFlow floor in ``d = 1``, on the data side (loss-floors floor)."""

from __future__ import annotations

import warnings

import numpy as np

from ..exact import MixturePath
from ..reference import AccuracyWarning, ReferenceFlow
from ._rules import ROUNDING, RuleResult, line_integral

__all__ = ["data_side_floor"]


def data_side_floor(
    path: MixturePath, flow: ReferenceFlow, t: float, r: float, rtol: float
) -> RuleResult:
    """d = 1 on the data side: with ``y = X_{t→r}(x)``, ``dy = ∇X dx`` and ``∇X = p_t(x) /
    p_r(y)`` (mass conservation), the floor is ``∫ p_t(x(y))² C(x(y)) / p_r(y) dy`` with
    ``x(y) = X_{r→t}(y)``, a contraction towards the noise (well conditioned where
    ``X_{t→r}`` is not: in the gap between modes), and no Jacobian to solve.

    The maps are solved to ``rtol_map = min(1e-10, rtol / 1000)`` (at least the flow's
    floor 1e-12), their absolute target scaled to ``p_t``'s narrowest standard deviation
    ``s`` where that is below 1. Each node's map error ``e`` (its certified estimate, or
    the estimate of a map float64 cannot certify) moves its integrand ``f`` by ``δ =
    max_± |f(x ± e) / f(x) − 1|`` (evaluated, not linearized), and ``∫ f δ`` by the same
    rule is added to the estimate, each node's with the rounding of its ``f``'s logs (4 eps
    times their size; one bound over all nodes had made every estimate ≥ 7e-13 of the
    floor, from tail nodes 40 standard deviations out, found in review). Before (found in
    review): data of std 1e-13 at t = 1.5e-13 had been 2.1e-7 off, "converged" at 3e-15
    (the flow's absolute target 1e-10); an estimate of ``inf`` for two uncertified nodes
    of 768 had flagged floors 3e-11 off; with the certified maps' errors left out, 4 of
    128 floors of one Gaussian were up to 1.2e-12 off at estimates from 7.4e-13."""
    scale = float(np.sqrt(np.min(path.marginal(t).eigvals)))
    rtol_map = max(ReferenceFlow.MIN_RTOL, min(flow.rtol, 1e-3 * rtol))
    flow = ReferenceFlow(path, rtol=rtol_map, atol=rtol_map * min(scale, 1.0))

    def log_f(y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        points = y[:, None]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AccuracyWarning)  # folded into the estimate
            sol = flow.solve(points, r, t)
        log_pr = path.log_prob(r, points)

        def at(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            """``(log p_t(x)² / p_r(y), C(x))``."""
            return 2.0 * path.log_prob(t, x) - log_pr, path.velocity_target_variance(t, x)

        log_ratio, variance = at(sol.x)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            log_value = log_ratio + np.log(variance)
            e = sol.error_estimate[:, None]
            moved = [at(sol.x + sign * e) for sign in (1.0, -1.0)]
            rel = np.max([np.abs(np.expm1(a + np.log(c) - log_value)) for a, c in moved], axis=0)
            # f = exp of a sum of logs, rounded to eps times their size (one Gaussian of
            # std 1e-13 at t = 1.5e-13: 1.1e-14 off at a rule estimate of 1.5e-15); per
            # node, so that tail nodes (|log| ~ 800) weigh what their f weighs
            rel = rel + ROUNDING * (np.abs(log_ratio) + np.abs(log_value - log_ratio))
        rel = np.where(np.isfinite(e[:, 0]) & ~np.isnan(rel), rel, np.inf)
        return log_ratio, variance, rel

    rule = line_integral(path.marginal(r), log_f, rtol)
    return rule
