"""``assert_velocity_matches``: a velocity-type model against the exact velocity, failing
with the times, sizes and worst points (as :func:`assert_matches_reference` does).

from cmverify.testing import assert_velocity_matches

def test_my_flow_matching_net():
    path = cmv.MixturePath(cmv.mixtures.eight_gaussians())
    assert_velocity_matches(my_net, path, atol=0.05, time_convention="noise_at_0")
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .._validation import as_real
from ..compare import VelocityComparison, compare_velocity
from ..exact import MixturePath

__all__ = ["assert_velocity_matches"]


def assert_velocity_matches(
    model: Callable[..., Any],
    path: MixturePath,
    atol: float = 1e-3,
    *,
    parameterization: str = "velocity",
    time_convention: str = "data_at_0",
    times: Sequence[float] | None = None,
    metric: str = "max",
    n: int = 1000,
    seed: int = 0,
    signature: str = "t,x",
    time_format: str = "vector",
) -> VelocityComparison:
    """Assert ``max |v_θ(t, x_t) − v(t, x_t)| ≤ atol`` (``metric="rmse"``: the RMSE) at every
    ``t`` of ``times`` (``x_t ~ p_t``, ``n`` points per time), after converting the model's
    ``parameterization`` and ``time_convention`` (see
    :func:`~cmverify.compare.compare_velocity`), and that every call returned finite real
    values of the right shape. On failure the message names each offending time, the size
    of the error and where the worst point lies. Returns the comparison (without the
    induced flow) when the assertion holds."""
    atol = as_real(atol, "atol")
    if not atol >= 0:
        raise ValueError(f"atol must be ≥ 0, got {atol!r}")
    if metric not in ("max", "rmse"):
        raise ValueError(f"metric must be 'max' or 'rmse', got {metric!r}")
    result = compare_velocity(
        model,
        path,
        parameterization=parameterization,
        time_convention=time_convention,
        times=times,
        n=n,
        seed=seed,
        signature=signature,
        time_format=time_format,
        induced_flow=False,
    )
    key = "max_error" if metric == "max" else "rmse"
    problems = [f"model call failed at {f.describe()}" for f in result.failures]
    for r in result.per_time:
        value = getattr(r, key)
        if r.failure is None and value > atol:
            point = "(" + ", ".join(f"{c:.4g}" for c in r.worst_point) + ")"
            problems.append(
                f"t = {r.t:g}: {key.replace('_error', '')} |v_θ − v| = {value:.4g} > atol = "
                f"{atol:g} (RMSE {r.rmse:.3g}, relative {r.relative_rmse or 0.0:.3g}); worst at "
                f"x_t = {point}"
            )
    if not problems:
        return result
    raise AssertionError(
        f"{result.model} ({parameterization}, {time_convention}) does not match the exact "
        f"velocity of {result.path} within atol = {atol:g}:\n  " + "\n  ".join(problems)
    )
