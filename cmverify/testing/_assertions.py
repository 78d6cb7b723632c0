"""Assertions for users' test suites (also exposed by the pytest plugin).

from cmverify.testing import assert_matches_reference

def test_my_model():
    path = cmv.MixturePath(cmv.mixtures.eight_gaussians())
    assert_matches_reference(my_model, path, atol=0.05)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..compare import Comparison, compare
from ..exact import MixturePath, mixtures
from ..symbolic import interpolants

__all__ = ["assert_matches_reference", "named_path"]


def named_path(mixture: str, interpolant: str = "linear") -> MixturePath:
    """``MixturePath(mixtures.by_name(mixture), interpolants.by_name(interpolant))``.

    ``ValueError`` listing the known names for an unknown mixture or interpolant.
    """
    return MixturePath(mixtures.by_name(mixture), interpolants.by_name(interpolant))


def _vector(v: Sequence[float] | None) -> str:
    return "(" + ", ".join(f"{x:.4g}" for x in (v or [])) + ")"


def assert_matches_reference(
    model: Callable[..., Any],
    path: MixturePath,
    atol: float = 1e-3,
    times: Sequence[float] | None = None,
    *,
    rtol: float = 0.0,
    metric: str = "max",
    n: int = 1000,
    seed: int = 0,
    signature: str = "t,x",
    time_format: str | None = None,
) -> Comparison:
    """Assert ``max |f(t, x_t) − f*(t, x_t)| ≤ atol + rtol · data_scale`` at every ``t`` of
    ``times`` (``x_t ~ p_t``, ``n`` points per time, ``data_scale = sqrt(tr Cov x0)``), and
    that every model call returned finite real values of the right shape.

    ``metric="rmse"`` bounds the RMSE instead of the maximum (the default of
    :func:`~cmverify.compare.compare`'s threshold; see :class:`~cmverify.compare.Threshold`).
    On failure the message names each offending time, the size of the error, where the
    worst point lies, and any call that raised or returned NaN/inf/complex values/the wrong
    shape. Returns the :class:`Comparison` when the assertion holds.
    """
    result = compare(
        model,
        path,
        times,
        n=n,
        seed=seed,
        signature=signature,
        time_format=time_format,
        sample_quality=False,
        atol=atol,
        rtol=rtol,
        metric=metric,
    )
    if result.passed:
        return result
    threshold = result.threshold
    if threshold is None:  # atol and rtol both None: only failed calls can fail
        bound = "any threshold (none was given)"
    elif threshold.rtol == 0:
        bound = f"atol = {threshold.atol:g}"
    else:
        bound = (
            f"atol + rtol · data scale = {threshold.atol:g} + {threshold.rtol:g} · "
            f"{threshold.data_scale:.3g} = {threshold.tolerance:.4g}"
        )
    label = "max |f − f*|" if metric == "max" else "RMSE |f − f*|"
    problems = [f"model call failed at {f.describe()}" for f in result.failures]
    for e in result.exceeded:
        r = result.at(e.t)
        other = (
            f"RMSE {r.rmse:.3g}, p95 {r.p95_error:.3g}"
            if metric == "max"
            else f"p95 {r.p95_error:.3g}, max {r.max_error:.3g}"
        )
        problems.append(
            f"t = {r.t:g}: {label} = {e.value:.4g} > {bound} ({other}); "
            f"worst at x_t = {_vector(r.worst_point)}"
        )
    summary = ", ".join(
        f"t={r.t:g}: {'FAILED' if r.failure else f'{r.max_error:.2g}'}" for r in result.per_time
    )
    raise AssertionError(
        f"{result.model} does not match the exact flow map of {result.path} within {bound}:\n  "
        + "\n  ".join(problems)
        + f"\n  max error per time: {summary}"
    )
