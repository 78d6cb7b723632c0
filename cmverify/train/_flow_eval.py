"""The evaluation of the flow-map methods (MeanFlow, shortcut) by the exact flow map
(train layer): :func:`cmverify.compare.compare_flow_map` on the EMA network, and for
MeanFlow the JVP precision (:func:`cmverify.train.jvp_precision`).

Metrics (relative RMSE: RMSE over the data's scale ``√tr Cov``):

- ``one_step_rel_rmse``, ``two_step_rel_rmse``, ``four_step_rel_rmse``: the ``k``-step
  chain from ``x1 ~ N(0, I)`` against the exact ``X_{1→0}(x1)``;
- ``half_rel_rmse``: ``X_θ(0.5 → 0)`` against the exact map on ``x ~ p_{0.5}``;
- ``flow_map_rel_rmse``: the mean relative RMSE over the kind's default pair grid
  (:func:`cmverify.compare.default_pairs`) — at the final evaluation only: its 55
  (MeanFlow) or 31 (shortcut) pairs' reference flows cost 8 s. The intermediate
  evaluations compare the chains and ``X_θ(0.5 → 0)`` only, on a quarter of
  ``eval_points`` (at least 250; about 1 s instead of 3);
- ``energy_distance`` (and its i.i.d. ``energy_distance_floor``),
  ``two_step_energy_distance``: the one- and two-step samples against the data;
- MeanFlow: ``jvp`` — the float32 JVP target against float64, and the tangent and ``u``
  against the exact ones at ``(t, r) = (0.8, 0.3)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..compare import compare_flow_map
from ..exact import MixturePath
from ._config import TrainConfig
from ._jvp import jvp_precision

__all__ = ["evaluate_flow_map", "flow_map_convention"]


def flow_map_convention(config: TrainConfig) -> tuple[str, dict[str, Any]]:
    """The :mod:`cmverify.flowmaps` kind and convention of the method's network."""
    if config.method == "meanflow":
        return "meanflow", {"time_inputs": "r,t"}
    return "shortcut", {"dyadic": True, "d_min": config.sc_d_min}


def evaluate_flow_map(
    model: torch.nn.Module, path: MixturePath, config: TrainConfig, *, final: bool = True
) -> dict[str, Any]:
    """The evaluation's metrics (module docstring; ``failed``: the failures'
    descriptions, when the model failed) and, under ``"comparison"``, its
    :class:`~cmverify.compare.FlowMapComparison`."""
    kind, convention = flow_map_convention(config)
    n = config.eval_points if final else min(config.eval_points, max(250, config.eval_points // 4))
    result = compare_flow_map(
        model,
        path,
        kind=kind,
        n=n,
        seed=config.seed + 1,
        name=config.method,
        pairs=None if final else [(0.5, 0.0)],
        **convention,
    )
    if not result.ok:
        return {"failed": [f.describe() for f in result.failures], "comparison": result}
    one, two, four = (result.chain(k) for k in (1, 2, 4))
    metrics: dict[str, Any] = {
        "one_step_rel_rmse": one.relative_rmse,
        "two_step_rel_rmse": two.relative_rmse,
        "four_step_rel_rmse": four.relative_rmse,
        "half_rel_rmse": result.at(0.5, 0.0).relative_rmse,
        "energy_distance": one.energy_distance,
        "energy_distance_floor": one.energy_distance_floor,
        "two_step_energy_distance": two.energy_distance,
    }
    if final:
        metrics["flow_map_rel_rmse"] = float(np.mean([p.relative_rmse for p in result.pairs]))
    if config.method == "meanflow":
        try:
            jvp = jvp_precision(model, path, n=min(512, n), seed=config.seed + 2)
            metrics["jvp"] = {
                "target_float32": jvp.target_float32,
                "tangent": jvp.tangent,
                "u": jvp.u,
            }
        except ValueError as exc:  # non-finite u or JVP: the evaluation above passed, say why
            metrics["jvp"] = {"error": str(exc)}
    return {**metrics, "comparison": result}
