"""``assert_flow_map_matches``: a flow-map network of any :mod:`cmverify.flowmaps` kind
against the exact ``X_{s→t}``, failing with the pairs, sizes and worst points.

from cmverify.testing import assert_flow_map_matches

def test_my_meanflow_net():
    path = cmv.MixturePath(cmv.mixtures.eight_gaussians())
    assert_flow_map_matches(my_u, path, atol=0.05, kind="meanflow", pairs=[(1.0, 0.0)])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .._validation import as_real
from ..compare import FlowMapComparison, compare_flow_map
from ..exact import MixturePath

__all__ = ["assert_flow_map_matches"]


def assert_flow_map_matches(
    model: Callable[..., Any],
    path: MixturePath,
    atol: float = 1e-3,
    *,
    kind: str = "map",
    pairs: Sequence[tuple[float, float]] | None = None,
    metric: str = "max",
    n: int = 1000,
    seed: int = 0,
    **convention: Any,
) -> FlowMapComparison:
    """Assert ``max |X_θ(s→t)(x) − X_{s→t}(x)| ≤ atol`` (``metric="rmse"``: the RMSE) on
    ``x ~ p_s`` for every pair (default: the kind's grid,
    :func:`cmverify.compare.default_pairs`), and that every call of the network returned
    finite real values of the right shape. On failure the message names each offending
    pair, the size of the error and where the worst point lies. Returns the comparison."""
    atol = as_real(atol, "atol")
    if not atol >= 0:
        raise ValueError(f"atol must be ≥ 0, got {atol!r}")
    if metric not in ("max", "rmse"):
        raise ValueError(f"metric must be 'max' or 'rmse', got {metric!r}")
    result = compare_flow_map(model, path, kind=kind, pairs=pairs, n=n, seed=seed, **convention)
    key = "max_error" if metric == "max" else "rmse"
    problems = [f"model call failed: {f.describe()}" for f in result.failures]
    for r in result.pairs:
        value = getattr(r, key)
        if r.failure is None and value > atol:
            point = "(" + ", ".join(f"{c:.4g}" for c in r.worst_point) + ")"
            problems.append(
                f"({r.s:g} → {r.t:g}): {key.replace('_error', '')} |X_θ − X| = {value:.4g} > "
                f"atol = {atol:g} (RMSE {r.rmse:.3g}, relative {r.relative_rmse:.3g}); worst "
                f"at x = {point}"
            )
    if not problems:
        return result
    raise AssertionError(
        f"{result.model} ({kind}) does not match the exact flow map of {result.path} within "
        f"atol = {atol:g}:\n  " + "\n  ".join(problems)
    )
