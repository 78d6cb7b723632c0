"""Compare a user's flow-map network (MeanFlow, shortcut, CTM, sCM/TrigFlow, Align Your
Flow, flow map matching, or a consistency function) with the exact flow map.

:func:`compare_flow_map` reads the network through :func:`cmverify.flowmaps.as_flow_map`
(its own signature and convention → ``X_θ(s→t)`` in ours) and measures, for every pair
``(s, t)`` of a grid the kind can express, on ``x ~ p_s``:

- the error ``|X_θ(s→t)(x) − X_{s→t}(x)|``: RMSE, RMSE relative to the data's scale,
  95th percentile, maximum and where it lies;
- the model's own laws, which say *which* law a wrong model breaks: the semigroup
  residual ``X_θ(u→t)∘X_θ(s→u) − X_θ(s→t)`` (``u`` halfway on the grid) and the Eulerian
  residual ``∂_s X_θ + ∇X_θ v_θ`` with the model's own velocity ``v_θ = ∂_t X_θ(s→t)|_{t=s}``:
  for a torch module by ``torch.func.jvp`` (:mod:`cmverify.flowmaps._tangent`), otherwise
  by second-order differences, ``v_θ(s, x) = (3x − 4 X_θ(s→s−h)(x) + X_θ(s→s−2h)(x))/2h``
  (``h = 1e-3``: the exact map leaves ~1e-6; a diagnostic of which law breaks, not a
  bound);

and the ``k``-step chains ``x_{i+1} = X_θ(t_i → t_{i+1})(x_i)`` from ``x ~ p_{t_0}``
(``t_0 = 1``: the noise; CTM, whose variables are infinite at 1, from ``ς = 80``) with
``k ∈ {1, 2, 4, 8}`` on uniform grids, and a user's schedule: their exact error against
``X_{t_0→0}(x)`` — whether more steps help — and the samples' energy distance to the data
with its i.i.d. floor, exact log-likelihood and mode frequencies. TrigFlow is judged on
its own process (:func:`~cmverify.flowmaps.trigflow_path`, scaled by ``σ_d``).

References: one reference solve per starting time ``s`` gives ``X_{s→t}`` for every ``t``
of the grid (:meth:`~cmverify.reference.ReferenceFlow.trajectory`, which restarts at
each output time: the batched solver has no dense output). Failures — an exception, the
wrong shape, NaN/inf or complex output — are reported per pair (``failures``), never
averaged.
"""

from __future__ import annotations

import itertools
import time as _time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validation import as_count
from ..exact import MixturePath
from ..flowmaps import as_flow_map, trigflow_path
from ..reference import ReferenceFlow
from ._compare import _path_label, _positive
from ._flow_map_grid import (
    CHAIN_STEPS,
    CTM_SIGMA_MAX,
    _check_pairs,
    _check_schedule,
    chain_start,
    default_pairs,
)
from ._flow_map_laws import (
    _ONE_TIME,
    EULER_STEP,
    _Calls,
    _eulerian,
    _eulerian_jvp,
    _finite,
    _grid_midpoint,
    eulerian_expressible,
)
from ._flow_map_report import (
    ChainReport,
    FlowMapComparison,
    PairFailure,
    PairReport,
    _uniform,
)
from ._statistics import SampleStatistics, energy_distance, rms, row_errors, sample_statistics

__all__ = ["CHAIN_STEPS", "CTM_SIGMA_MAX", "EULER_STEP", "compare_flow_map", "default_pairs"]

#: The kinds whose network gives ``X_θ(s→s)`` itself (the others multiply by ``s − t``).
_FREE_BOUNDARY = ("map", "boffi", "ctm")


@dataclass(frozen=True)
class _Frame:
    """Where the kind's exact map lives: the network's points are ``scale`` times the points
    of ``path`` (TrigFlow: ``σ_d`` times those of :func:`~cmverify.flowmaps.trigflow_path`,
    whose flow is TrigFlow's; every other kind: the user's path itself, ``scale = 1``)."""

    path: MixturePath
    scale: float

    @classmethod
    def of(cls, path: MixturePath, kind: str, convention: Any) -> _Frame:
        if kind == "trigflow":
            sigma_data = convention["sigma_data"]
            return cls(trigflow_path(path, sigma_data), float(sigma_data))
        return cls(path, 1.0)

    def sample(self, s: float, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` points of the kind's process at time ``s`` (at ``s = 1``: ``scale ·
        N(0, I)``, drawn as standard normals)."""
        if s == 1.0:
            return self.scale * rng.standard_normal((n, self.path.dim))
        return self.scale * self.path.sample(s, n, rng)


def _references(
    frame: _Frame, pairs: list[tuple[float, float]], n: int, seed: int
) -> tuple[dict[float, np.ndarray], dict[tuple[float, float], np.ndarray]]:
    """Points ``x ~ p_s`` per starting time and ``X_{s→t}(x)`` per pair: one trajectory
    solve per ``s`` and direction (on the frame's path, scaled)."""
    flow = ReferenceFlow(frame.path)
    points, truths = {}, {}
    for j, s in enumerate(sorted({s for s, _ in pairs})):
        x = frame.path.sample(s, n, np.random.default_rng([seed, 2, j]))
        points[s] = frame.scale * x
        ends = [t for (si, t) in pairs if si == s]
        for side in ([t for t in ends if t < s], [t for t in ends if t > s]):
            if side:
                ordered = sorted(side, reverse=side[0] < s)
                far = ordered[-1]
                for t, value in zip(ordered, flow.trajectory(x, s, far, ordered), strict=True):
                    truths[(s, t)] = frame.scale * value
        for t in ends:
            if t == s:
                truths[(s, t)] = points[s].copy()
    return points, truths


def _pair_report(
    call: _Calls,
    kind: str,
    convention: Any,
    s: float,
    t: float,
    x: np.ndarray,
    truth: np.ndarray,
    scale: float,
) -> tuple[PairReport, list[PairFailure]]:
    """The pair's report; its own failure is ``report.failure``, the residuals' failures
    are returned."""
    report = PairReport(s=s, t=t)
    out = call(x, s, t)
    if isinstance(out, PairFailure):
        report.failure = out
        return report, []
    err = row_errors(out, truth)
    if not np.all(np.isfinite(err)):
        report.failure = PairFailure(s, t, "non-finite error", "|X_θ − X| overflows float64")
        return report, []
    worst = int(np.argmax(err))
    report.rmse = rms(err)
    report.relative_rmse = report.rmse / scale
    report.p95_error = float(np.quantile(err, 0.95))
    report.max_error = float(err[worst])
    report.worst_point = [float(v) for v in x[worst]]
    failures = []
    u = _grid_midpoint(s, t, kind, convention)
    if u is not None:
        what = f"semigroup X_θ(u→t)∘X_θ(s→u), u = {u:g}"
        first = call(x, s, u, what)
        second = first if isinstance(first, PairFailure) else call(first, u, t, what)
        residual = second if isinstance(second, PairFailure) else rms(row_errors(second, out))
        residual = _finite(residual, s, t, what)
        if isinstance(residual, PairFailure):
            failures.append(residual)
        else:
            report.semigroup_rms = residual
    if kind in _ONE_TIME:
        return report, failures
    start = x  # X_θ(s→s) = x by construction for meanflow, ayf and shortcut networks
    if kind in _FREE_BOUNDARY:
        start = call(x, s, s, "boundary X_θ(s→s)")  # the identity for an exact map
        boundary = start if isinstance(start, PairFailure) else rms(row_errors(start, x))
        boundary = _finite(boundary, s, t, "boundary X_θ(s→s)")
        if isinstance(boundary, PairFailure):
            return report, [*failures, boundary]
        report.boundary_rms = boundary
    if eulerian_expressible(kind, convention, s, t):
        residual = _eulerian_jvp(call, x, s, t) if call.flow_map.jvp_available else None
        report.eulerian_method = "jvp"
        if residual is None:  # not a torch module, or not forward-differentiable
            report.eulerian_method = "differences"
            residual = _eulerian(call, x, start, s, t, out)
        residual = _finite(residual, s, t, f"Eulerian residual ({report.eulerian_method})")
        if isinstance(residual, PairFailure):
            failures.append(residual)
        else:
            report.eulerian_rms = residual
    return report, failures


def _chain(
    call: _Calls,
    path: MixturePath,
    times: list[float],
    start: tuple[np.ndarray, np.ndarray],
    data: tuple[np.ndarray, np.ndarray],
    scale: float,
    floor: float,
) -> tuple[ChainReport, np.ndarray | None]:
    """The chain over ``times`` from ``start = (x, X_{t_0→0}(x))``, and its samples;
    ``floor`` is the energy distance between the two data samples ``data``."""
    report = ChainReport(steps=len(times) - 1, times=[float(t) for t in times])
    what = f"{report.steps}-step chain from t = {times[0]:g}"
    x, exact = start
    for s, t in itertools.pairwise(times):
        x = call(x, s, t, what)
        if isinstance(x, PairFailure):
            report.failure = x
            return report, None
    err = row_errors(x, exact)
    stats = sample_statistics(path.mixture, x, data[0])
    if not np.all(np.isfinite(err)) or not isinstance(stats, SampleStatistics):
        report.failure = PairFailure(
            times[0], 0.0, "non-finite error", "the samples overflow float64", what
        )
        return report, None
    report.rmse = rms(err)
    report.relative_rmse = report.rmse / scale
    report.energy_distance = stats.energy_distance
    report.energy_distance_floor = floor
    report.log_likelihood = stats.log_likelihood
    report.data_log_likelihood = float(np.mean(path.mixture.log_prob(data[0])))
    report.mode_frequencies = stats.mode_frequencies
    return report, x


def compare_flow_map(
    model: Callable[..., Any],
    path: MixturePath,
    *,
    kind: str = "map",
    pairs: Sequence[tuple[float, float]] | None = None,
    n: int = 1000,
    seed: int = 0,
    schedule: Sequence[float] | None = None,
    name: str | None = None,
    progress: Callable[[str], None] | None = None,
    **convention: Any,
) -> FlowMapComparison:
    """Compare the flow-map network ``model`` of ``kind`` with the exact flow map of
    ``path`` (module docstring).

    Arguments:
        model: a numpy callable or ``torch.nn.Module`` with the kind's signature
            (:data:`cmverify.flowmaps.KIND_INFO`), read by
            :func:`cmverify.flowmaps.as_flow_map` with ``convention``.
        path: the data and interpolant. For ``trigflow`` it must have the ``trig``
            interpolant, and the truth is TrigFlow's own process ``α_s x0 + σ_d σ_s ε``
            (points ``x = σ_d x̂`` with ``x̂`` on :func:`~cmverify.flowmaps.trigflow_path`,
            exact map ``σ_d X̂_{s→0}(x/σ_d)``), the user's path only when ``σ_d = 1``.
        kind: one of :data:`cmverify.flowmaps.KINDS`.
        pairs: ``(s, t)`` pairs meaning ``X_{s→t}`` (default :func:`default_pairs`); a
            pair the kind cannot express is a ``ValueError`` before anything is computed.
        n: points ``x ~ p_s`` per pair and samples per chain; ``seed`` their seed.
        schedule: a strictly decreasing sequence of times from ``t_0 ∈ (0, 1]`` to 0 for
            one more chain, from ``x ~ p_{t_0}``.
        progress: called with a line after each starting time and chain.
        convention: the kind's convention keywords (e.g. ``time_inputs="t,t-r"`` for
            MeanFlow, ``sigma_data`` for TrigFlow, ``interpolant`` for CTM, ``dyadic`` and
            ``d_min`` for shortcut).

    The uniform chains run from :func:`chain_start` (1, or CTM's ``ς = 80``) to 0 in
    ``k ∈`` :data:`CHAIN_STEPS` equal steps (the one-time kinds: one step).
    """
    start = _time.perf_counter()
    if not isinstance(path, MixturePath):
        raise TypeError(f"path must be a MixturePath, got {type(path).__name__}")
    flow_map = as_flow_map(model, kind, **convention)  # validates kind and convention
    conv = flow_map.convention
    frame = _Frame.of(path, kind, conv)  # trigflow: refuses a path that is not trig
    grid = default_pairs(kind, dict(conv)) if pairs is None else _check_pairs(pairs)
    n, seed = _positive(n, "n"), as_count(seed, "seed")
    top = chain_start(kind, conv)
    steps = CHAIN_STEPS[:1] if kind in _ONE_TIME else CHAIN_STEPS
    if kind == "shortcut" and conv["dyadic"]:  # a dyadic network's steps are ≥ d_min
        steps = tuple(k for k in steps if 1.0 / k >= conv["d_min"])
    chains_times = [_uniform(top, k) for k in steps]
    if schedule is not None:
        chains_times.append(_check_schedule(schedule, kind))
    asked = grid + [pair for times in chains_times for pair in itertools.pairwise(times)]
    flow_map.check_pairs([s for s, _ in asked], [t for _, t in asked])  # before any work
    scale = float(np.sqrt(np.trace(path.mixture.covariance())))
    call = _Calls(flow_map)
    if progress:
        progress(f"reference flows for {len(grid)} pairs ({n} points each)")
    points, truths = _references(frame, grid, n, seed)
    reports, failures = [], []
    for s, t in grid:
        report, extra = _pair_report(call, kind, conv, s, t, points[s], truths[(s, t)], scale)
        reports.append(report)
        failures += ([report.failure] if report.failure else []) + extra
        if progress:
            done = "failed" if report.failure else f"relative RMSE {report.relative_rmse:.3g}"
            progress(f"X_θ({s:g} → {t:g}): {done}")
    if progress:
        worst = max((r.relative_rmse for r in reports if r.relative_rmse is not None), default=None)
        progress(
            f"{len(grid)} pairs: worst relative RMSE {worst if worst is None else f'{worst:.3g}'}"
        )
    rng = np.random.default_rng([seed, 3])
    starts: dict[float, tuple[np.ndarray, np.ndarray]] = {}
    for t0 in dict.fromkeys(times[0] for times in chains_times):
        x = frame.sample(t0, n, rng)
        starts[t0] = (x, frame.scale * ReferenceFlow(frame.path).map(x / frame.scale, t0, 0.0))
    data = (path.mixture.sample(n, rng), path.mixture.sample(n, rng))
    chains, samples = [], {}
    floor = energy_distance(data[0], data[1])  # the same for every chain
    for j, times in enumerate(chains_times):
        report, x = _chain(call, path, times, starts[times[0]], data, scale, floor)
        chains.append(report)
        uniform = j < len(chains_times) - (schedule is not None)
        if x is not None and uniform and path.dim <= 2:
            samples[report.steps] = x
        if report.failure:
            failures.append(report.failure)
        if progress:
            done = "failed" if report.failure else f"exact error {report.rmse:.3g}"
            progress(f"{report.steps}-step chain: {done}")
    return FlowMapComparison(
        model=name or getattr(model, "__name__", type(model).__name__),
        kind=kind,
        convention={k: getattr(v, "name", v) for k, v in conv.items()},
        path=_path_label(path),
        dim=path.dim,
        n=n,
        seed=seed,
        data_scale=scale,
        pairs=reports,
        chains=chains,
        failures=failures,
        wall_seconds=_time.perf_counter() - start,
        figure_data=_figure_data(path, data[0], top, samples),
    )


def _figure_data(path: MixturePath, data: np.ndarray, start: float, samples: dict) -> dict | None:
    """The samples figure's arrays: the 1-step and the largest-``k`` uniform chains."""
    if path.dim > 2 or not samples:
        return None
    keep = sorted({min(samples), max(samples)})
    return {"path": path, "data": data, "start": start, "samples": {k: samples[k] for k in keep}}
