"""Compare a user's flow-map network (MeanFlow, shortcut, CTM, sCM/TrigFlow, Align Your
Flow, flow map matching, or a consistency function) with the exact flow map.

:func:`compare_flow_map` reads the network through :func:`cmverify.flowmaps.as_flow_map`
(its own signature and convention → ``X_θ(s→t)`` in ours) and measures, for every pair
``(s, t)`` of a grid the kind can express, on ``x ~ p_s``:

- the error ``|X_θ(s→t)(x) − X_{s→t}(x)|``: RMSE, RMSE relative to the data's scale,
  95th percentile, maximum and where it lies;
- the model's own laws, which say *which* law a wrong model breaks: the semigroup
  residual ``X_θ(u→t)∘X_θ(s→u) − X_θ(s→t)`` (``u`` halfway on the grid) and the Eulerian
  residual ``∂_s X_θ + ∇X_θ v_θ`` by second-order differences with the model's own
  velocity ``v_θ(s, x) = (3x − 4 X_θ(s→s−h)(x) + X_θ(s→s−2h)(x))/2h`` (``h = 1e-3``: the
  exact map leaves ~1e-6; a diagnostic of which law breaks, not a bound);

and the ``k``-step chains ``x_{i+1} = X_θ(t_i → t_{i+1})(x_i)`` from ``x1 ~ N(0, I)``
(``k ∈ {1, 2, 4, 8}`` on uniform grids, and a user's schedule): their exact error against
``X_{1→0}(x1)`` — whether more steps help — and the samples' energy distance to the data
with its i.i.d. floor, exact log-likelihood and mode frequencies.

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
from typing import Any

import numpy as np

from .._validation import as_count, as_times
from ..exact import MixturePath
from ..flowmaps import KINDS, as_flow_map
from ..reference import ReferenceFlow
from ._compare import _path_label, _positive
from ._flow_map_report import ChainReport, FlowMapComparison, PairFailure, PairReport
from ._statistics import SampleStatistics, energy_distance, rms, row_errors, sample_statistics

__all__ = ["CHAIN_STEPS", "EULER_STEP", "compare_flow_map", "default_pairs"]

#: Steps of the uniform chains.
CHAIN_STEPS = (1, 2, 4, 8)
#: The difference step of the Eulerian residual.
EULER_STEP = 1e-3
_GRID = tuple(round(k / 10, 12) for k in range(11))


def default_pairs(kind: str, convention: dict[str, Any] | None = None) -> list[tuple[float, float]]:
    """The default ``(s, t)`` grid of ``kind``: for the one-time kinds (``consistency``,
    ``trigflow``) ``(s, 0)`` with ``s = 0.1, …, 1``; for ``shortcut`` the dyadic levels
    ``d = 1, ½, ¼, ⅛, 1/16`` from every grid point ``s = 1 − m d``; for ``ctm`` (whose VE
    variables are infinite at ``s = 1``) ``t < s ≤ 0.9`` on the grid ``0, 0.1, …``; for
    the others (``map``, ``meanflow``, ``ayf``, ``boffi``) ``t < s`` on that grid."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    if kind in ("consistency", "trigflow"):
        return [(s, 0.0) for s in _GRID[:0:-1]]
    if kind == "shortcut":
        out = []
        for level in range(5):
            d = 2.0**-level
            out += [(1.0 - m * d, 1.0 - (m + 1) * d) for m in range(2**level)]
        return out
    top = 0.9 if kind == "ctm" else 1.0
    return [(s, t) for s in _GRID[::-1] if 0 < s <= top for t in _GRID[::-1] if t < s]


class _Calls:
    """``X_θ(s→t)(x)`` with every problem turned into a :class:`PairFailure`."""

    def __init__(self, flow_map: Any) -> None:
        self.flow_map = flow_map

    def __call__(self, x: np.ndarray, s, t, what: str = "X_{s→t}") -> np.ndarray | PairFailure:
        s0, t0 = float(np.ravel(s)[0]), float(np.ravel(t)[0])
        try:
            out = self.flow_map.map(x, s, t)
        except ValueError as exc:
            return PairFailure(s0, t0, "invalid output", str(exc).splitlines()[0], what)
        except Exception as exc:  # the network itself raised
            return PairFailure(s0, t0, "exception", f"{type(exc).__name__}: {exc}", what)
        return out


def _references(
    path: MixturePath, pairs: list[tuple[float, float]], n: int, seed: int
) -> tuple[dict[float, np.ndarray], dict[tuple[float, float], np.ndarray]]:
    """Points ``x ~ p_s`` per starting time and ``X_{s→t}(x)`` per pair: one trajectory
    solve per ``s`` and direction."""
    flow = ReferenceFlow(path)
    points, truths = {}, {}
    for j, s in enumerate(sorted({s for s, _ in pairs})):
        x = path.sample(s, n, np.random.default_rng([seed, 2, j]))
        points[s] = x
        ends = [t for (si, t) in pairs if si == s]
        for side in ([t for t in ends if t < s], [t for t in ends if t > s]):
            if side:
                ordered = sorted(side, reverse=side[0] < s)
                far = ordered[-1]
                for t, value in zip(ordered, flow.trajectory(x, s, far, ordered), strict=True):
                    truths[(s, t)] = value
        for t in ends:
            if t == s:
                truths[(s, t)] = x.copy()
    return points, truths


def _grid_midpoint(s: float, t: float, kind: str) -> float | None:
    """``u`` halfway between ``s`` and ``t`` on the pair grid, or ``None`` (one step, or a
    one-time kind)."""
    if kind in ("consistency", "trigflow"):
        return None
    u = (s + t) / 2
    if kind == "shortcut":
        return u if abs(s - t) > 2.0**-4 + 1e-12 else None
    snapped = round(u * 10) / 10
    return snapped if t < snapped < s - 1e-12 or s < snapped < t - 1e-12 else None


def _pair_report(
    call: _Calls, kind: str, s: float, t: float, x: np.ndarray, truth: np.ndarray, scale: float
) -> tuple[PairReport, list[PairFailure]]:
    report = PairReport(s=s, t=t)
    out = call(x, s, t)
    if isinstance(out, PairFailure):
        report.failure = out
        return report, [out]
    err = row_errors(out, truth)
    if not np.all(np.isfinite(err)):
        report.failure = PairFailure(s, t, "non-finite error", "|X_θ − X| overflows float64")
        return report, [report.failure]
    worst = int(np.argmax(err))
    report.rmse = rms(err)
    report.relative_rmse = report.rmse / scale
    report.p95_error = float(np.quantile(err, 0.95))
    report.max_error = float(err[worst])
    report.worst_point = [float(v) for v in x[worst]]
    failures = []
    u = _grid_midpoint(s, t, kind)
    if u is not None:
        first = call(x, s, u, "semigroup X_θ(s→u)")
        second = first if isinstance(first, PairFailure) else call(first, u, t, "X_θ(u→t)")
        if isinstance(second, PairFailure):
            failures.append(second)
        else:
            report.semigroup_rms = rms(row_errors(second, out))
    if (
        kind not in ("consistency", "trigflow")
        and s - 2 * EULER_STEP >= 0
        and s - t > 2 * EULER_STEP
    ):
        residual = _eulerian(call, x, s, t, out)
        if isinstance(residual, PairFailure):
            failures.append(residual)
        else:
            report.eulerian_rms = residual
    return report, failures


def _eulerian(call: _Calls, x: np.ndarray, s: float, t: float, out: np.ndarray):
    """RMS of ``∂_s X_θ(s→t)(x) + ∇X_θ(s→t)(x) v_θ(s, x)`` by second-order differences:
    ``v_θ = (3x − 4 X_θ(s→s−h) + X_θ(s→s−2h)) / 2h`` (the model's own velocity, from the
    side every kind can express), ``∂_s`` central (one-sided at ``s = 1``), ``∇X_θ v_θ``
    central. An exact map leaves ``O(h²) + O(ε/h)`` (ε its accuracy): ~1e-6 at ``h = 1e-3``."""
    h = EULER_STEP
    near = [call(x, s, s - k * h, f"Eulerian: X_θ(s→s−{k}h)") for k in (1, 2)]
    for part in near:
        if isinstance(part, PairFailure):
            return part
    v = (3 * x - 4 * near[0] + near[1]) / (2 * h)
    if s + h <= 1.0:
        starts, weights = (s + h, s - h), (1 / (2 * h), -1 / (2 * h))
    else:
        starts, weights = (s - h, s - 2 * h), (-4 / (2 * h), 1 / (2 * h))
    parts = [call(x, u, t, "Eulerian: X_θ(s±h→t)") for u in starts] + [
        call(x + h * v, s, t, "Eulerian: X_θ(s→t)(x + h v)"),
        call(x - h * v, s, t, "Eulerian: X_θ(s→t)(x − h v)"),
    ]
    for part in parts:
        if isinstance(part, PairFailure):
            return part
    d_s = weights[0] * parts[0] + weights[1] * parts[1]
    if s + h > 1.0:
        d_s = d_s + 3 * out / (2 * h)
    residual = d_s + (parts[2] - parts[3]) / (2 * h)
    return rms(np.linalg.norm(residual, axis=1))


def _chain(
    call: _Calls,
    path: MixturePath,
    times: list[float],
    x1: np.ndarray,
    exact: np.ndarray,
    data: tuple[np.ndarray, np.ndarray],
    scale: float,
) -> ChainReport:
    report = ChainReport(steps=len(times) - 1, times=[float(t) for t in times])
    x = x1
    for s, t in itertools.pairwise(times):
        x = call(x, s, t, f"{report.steps}-step chain")
        if isinstance(x, PairFailure):
            report.failure = x
            return report
    err = row_errors(x, exact)
    stats = sample_statistics(path.mixture, x, data[0])
    if not np.all(np.isfinite(err)) or not isinstance(stats, SampleStatistics):
        report.failure = PairFailure(1.0, 0.0, "non-finite error", "samples overflow float64")
        return report
    report.rmse = rms(err)
    report.relative_rmse = report.rmse / scale
    report.energy_distance = stats.energy_distance
    report.energy_distance_floor = energy_distance(data[0], data[1])
    report.log_likelihood = stats.log_likelihood
    report.data_log_likelihood = float(np.mean(path.mixture.log_prob(data[0])))
    report.mode_frequencies = stats.mode_frequencies
    return report


def _check_pairs(pairs: object) -> list[tuple[float, float]]:
    try:
        array = np.asarray(pairs, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"pairs must be a list of (s, t) pairs, got {pairs!r}") from None
    if array.ndim != 2 or array.shape[1] != 2 or array.shape[0] == 0:
        raise ValueError(f"pairs must be a non-empty list of (s, t) pairs, got shape {array.shape}")
    as_times(array.ravel(), name="pairs")  # finite, in [0, 1]
    return [(float(s), float(t)) for s, t in array]


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
        kind: one of :data:`cmverify.flowmaps.KINDS`.
        pairs: ``(s, t)`` pairs meaning ``X_{s→t}`` (default :func:`default_pairs`); a
            pair the kind cannot express is a ``ValueError`` before anything is computed.
        n: points ``x ~ p_s`` per pair and samples per chain; ``seed`` their seed.
        schedule: a decreasing sequence of times from 1 to 0 for one more chain.
        progress: called with a line after each starting time and chain.
        convention: the kind's convention keywords (e.g. ``time_inputs="t,t-r"`` for
            MeanFlow, ``sigma_data`` for TrigFlow, ``interpolant`` for CTM).
    """
    start = _time.perf_counter()
    if not isinstance(path, MixturePath):
        raise TypeError(f"path must be a MixturePath, got {type(path).__name__}")
    flow_map = as_flow_map(model, kind, **convention)  # validates kind and convention
    grid = default_pairs(kind) if pairs is None else _check_pairs(pairs)
    n, seed = _positive(n, "n"), as_count(seed, "seed")
    flow_map.check_pairs([s for s, _ in grid], [t for _, t in grid])  # before any work
    chains_times = [[1.0 - i / k for i in range(k + 1)] for k in CHAIN_STEPS]
    if kind in ("consistency", "trigflow"):
        chains_times = chains_times[:1]
    if schedule is not None:
        sched = np.atleast_1d(as_times(schedule, name="schedule"))
        if (
            sched.ndim != 1
            or sched.size < 2
            or sched[0] != 1.0
            or sched[-1] != 0.0
            or np.any(np.diff(sched) >= 0)
        ):
            raise ValueError(f"schedule must decrease strictly from 1 to 0, got {schedule!r}")
        if kind in ("consistency", "trigflow") and sched.size > 2:
            raise ValueError(
                f"the {kind} kind maps to t = 0 only: its chain is one step (for its multistep "
                "sampler, which re-noises between steps, use cmverify.compare.compare)"
            )
        chains_times.append([float(v) for v in sched])
    scale = float(np.sqrt(np.trace(path.mixture.covariance())))
    call = _Calls(flow_map)
    if progress:
        progress(f"reference flows for {len(grid)} pairs ({n} points each)")
    points, truths = _references(path, grid, n, seed)
    reports, failures = [], []
    for s, t in grid:
        report, extra = _pair_report(call, kind, s, t, points[s], truths[(s, t)], scale)
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
    x1 = rng.standard_normal((n, path.dim))
    exact = ReferenceFlow(path).map(x1, 1.0, 0.0)
    data = (path.mixture.sample(n, rng), path.mixture.sample(n, rng))
    chains = []
    for times in chains_times:
        report = _chain(call, path, times, x1, exact, data, scale)
        chains.append(report)
        if report.failure:
            failures.append(report.failure)
        if progress:
            done = "failed" if report.failure else f"exact error {report.rmse:.3g}"
            progress(f"{report.steps}-step chain: {done}")
    return FlowMapComparison(
        model=name or getattr(model, "__name__", type(model).__name__),
        kind=kind,
        convention={k: v for k, v in flow_map.convention.items() if _plain(v)},
        path=_path_label(path),
        dim=path.dim,
        n=n,
        seed=seed,
        data_scale=scale,
        pairs=reports,
        chains=chains,
        failures=failures,
        wall_seconds=_time.perf_counter() - start,
    )


def _plain(value: object) -> bool:
    return value is None or isinstance(value, bool | int | float | str)
