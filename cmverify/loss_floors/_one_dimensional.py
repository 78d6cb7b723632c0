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
    absolute target is scaled to ``p_t``'s narrowest standard deviation where that is
    below 1, and a map that float64 cannot certify leaves the estimate unknown (``inf``):
    data of std 1e-13 at t = 1.5e-13 had been 2.1e-7 off, "converged" at an estimate of
    3e-15, with the flow's absolute target 1e-10 (found in review)."""
    scale = float(np.sqrt(np.min(path.marginal(t).eigvals)))
    if scale < 1.0:
        flow = ReferenceFlow(path, atol=flow.rtol * scale)
    unresolved = [0]

    def log_f(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        points = y[:, None]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AccuracyWarning)  # counted below
            sol = flow.solve(points, r, t)
        unresolved[0] += sol.unresolved.size
        log_ratio = 2.0 * path.log_prob(t, sol.x) - path.log_prob(r, points)
        return log_ratio, path.velocity_target_variance(t, sol.x)

    rule = line_integral(path.marginal(r), log_f, rtol)
    if unresolved[0]:
        return dataclasses.replace(rule, error_estimate=math.inf, converged=False)
    return rule
