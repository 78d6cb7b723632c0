"""Compare a user's consistency model with the exact flow map.

A consistency model ``f(t, x)`` claims ``f(t, x) = f*(t, x) = X_{t→0}(x)``. :func:`compare`
measures, on ``x_t ~ p_t`` for every ``t`` of a grid that includes 0 and 1:

- the error ``|f(t, x_t) − f*(t, x_t)|``: RMSE, RMSE relative to the data's scale
  ``sqrt(tr Cov(x0))``, 95th percentile, maximum and where the maximum lies;
- self-consistency ``|f(t, x_t) − f(s, X_{t→s}(x_t))|`` (RMS) with ``s`` the previous
  grid time (zero for ``f*``, whatever its accuracy);
- the boundary violation ``|f(0, x) − x|`` on data points (zero for any model built
  with ``c_skip(0) = 1``, ``c_out(0) = 0``);
- sample quality of one-step ``f(1, x1)`` and of the multistep sampler with 2 and 4
  evaluations: energy distance to a data sample with its i.i.d. floor (the same
  statistic between two data samples of the same size), the exact data log-likelihood
  of the samples, and mode frequencies.

and, when a threshold is given (``atol`` / ``rtol``), whether the error stays within it
at every time of the grid (:class:`~cmverify.compare.Threshold`; ``Comparison.passed``).

References (``x_t``, ``f*(t, x_t)``, ``X_{t→s}(x_t)``) are computed once per path value,
grid, size and seed and reused for every model compared
(:class:`~cmverify.compare.ReferenceSet`); they are stored read-only and every model call
gets its own copy (:class:`~cmverify.compare.ModelAdapter`), so a model that edits its
input in place cannot corrupt later comparisons.

Every number reported is finite: a model output that raises, has the wrong shape, is not
real, holds NaN or inf, or is so large that an error or sample statistic overflows float64
(errors beyond about 1e154) is a :class:`~cmverify.compare.ModelFailure` in
``Comparison.failures`` (with the time, the rows and an example input), never averaged.
"""

from __future__ import annotations

import math
import time as _time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._validation import as_count, as_float_array, as_real
from ..exact import MixturePath
from ..reference import multistep_sample, multistep_times
from ._models import ModelAdapter, ModelError, ModelFailure
from ._reference import ReferenceSet, reference_set
from ._report import (
    ARROW_POINTS,
    METRICS,
    Comparison,
    Exceedance,
    FigureData,
    SampleReport,
    Threshold,
    TimeReport,
)
from ._statistics import (
    SampleStatistics,
    energy_distance,
    overflow_failure,
    rms,
    row_errors,
    sample_statistics,
)

__all__ = ["DEFAULT_TIMES", "SAMPLER_STEPS", "compare"]

#: The default grid: 0, 0.1, …, 1.
DEFAULT_TIMES = tuple(np.round(np.linspace(0.0, 1.0, 11), 12))
#: Model evaluations of the samplers whose sample quality is measured.
SAMPLER_STEPS = (1, 2, 4)

_Progress = Callable[[str], None] | None


def _grid(times: Sequence[float] | None) -> tuple[float, ...]:
    """The sorted grid: ``times`` (default :data:`DEFAULT_TIMES`) with 0 and 1 added."""
    grid = DEFAULT_TIMES if times is None else tuple(as_float_array(times, "times").ravel())
    outside = [t for t in grid if not 0.0 <= t <= 1.0]
    if outside:
        raise ValueError(f"times must lie in [0, 1], got {float(outside[0])!r}")
    return tuple(sorted({float(t) + 0.0 for t in grid} | {0.0, 1.0}))  # + 0.0: no −0


def _tolerance(value: object, name: str) -> float | None:
    if value is None:
        return None
    value = as_real(value, name)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite non-negative float, got {value!r}")
    return value


def _positive(value: object, name: str) -> int:
    if not isinstance(value, bool) and isinstance(value, int) and value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    return as_count(value, name)


def _threshold(atol: object, rtol: object, metric: str, scale: float) -> Threshold | None:
    """The :class:`Threshold` of ``atol`` / ``rtol`` (``None`` when neither is given)."""
    atol, rtol = _tolerance(atol, "atol"), _tolerance(rtol, "rtol")
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    if atol is None and rtol is None:
        return None
    return Threshold(atol or 0.0, rtol or 0.0, metric, scale)


def _path_label(path: MixturePath) -> str:
    """``"eight_gaussians / linear"``: the mixture's name (``GaussianMixture.name``, or
    ``custom mixture (K = …, d = …)`` without one) and the interpolant's."""
    mix = path.mixture
    name = mix.name or f"custom mixture (K = {mix.n_components}, d = {mix.dim})"
    return f"{name} / {path.interpolant.name}"


def _self_consistency(
    adapter: ModelAdapter, ref: ReferenceSet, i: int, out: np.ndarray, report: TimeReport
) -> ModelFailure | None:
    """Fill ``report.self_consistency`` with the RMS of ``|f(t, x_t) − f(s, X_{t→s}(x_t))|``
    (``out = f(t, x_t)``, ``s`` the previous grid time); or return the failure."""
    s, t, previous = ref.times[i - 1], ref.times[i], ref.previous[i]
    try:
        back = adapter(s, previous)
    except ModelError as exc:
        return exc.failure
    gap = row_errors(out, back)
    problem = overflow_failure(s, gap, previous, back, f"self-consistency |f(t = {t:g}) − f(s)|")
    if problem is None:
        report.self_consistency, report.self_consistency_s = rms(gap), s
    return problem


def _time_report(
    adapter: ModelAdapter, ref: ReferenceSet, i: int, scale: float, failures: list[ModelFailure]
) -> tuple[TimeReport, np.ndarray | None]:
    """The errors at ``ref.times[i]`` and the model's output there (``None`` on failure);
    failures are appended to ``failures``."""
    t, x, target = ref.times[i], ref.points[i], ref.targets[i]
    report = TimeReport(t=t)
    try:
        out = adapter(t, x)
    except ModelError as exc:
        report.failure = exc.failure
    else:
        err = row_errors(out, target)
        report.failure = overflow_failure(t, err, x, out, "the error |f − f*|")
    if report.failure is not None:
        failures.append(report.failure)
        return report, None
    worst = int(np.argmax(err))
    report.rmse = rms(err)
    report.relative_rmse = report.rmse / scale
    report.p95_error = float(np.quantile(err, 0.95))
    report.max_error = float(err[worst])
    report.worst_point = [float(v) for v in x[worst]]
    if i > 0:
        problem = _self_consistency(adapter, ref, i, out, report)
        if problem is not None:
            failures.append(problem)
    return report, out


def _exceedances(reports: list[TimeReport], threshold: Threshold | None) -> list[Exceedance]:
    """The grid times (where the model answered) whose statistic exceeds the tolerance."""
    if threshold is None:
        return []
    values = [(r.t, threshold.value(r)) for r in reports]
    return [
        Exceedance(t, v, threshold.tolerance)
        for t, v in values
        if v is not None and v > threshold.tolerance
    ]


def _boundary(
    adapter: ModelAdapter, data: np.ndarray, failures: list[ModelFailure]
) -> tuple[float | None, float | None]:
    """RMS and maximum of ``|f(0, x) − x|`` on the data sample (``None`` on failure)."""
    try:
        at_zero = adapter(0.0, data)
    except ModelError as exc:
        failures.append(exc.failure)
        return None, None
    gap = row_errors(at_zero, data)
    problem = overflow_failure(0.0, gap, data, at_zero, "the boundary gap |f(0, x) − x|")
    if problem is not None:
        failures.append(problem)
        return None, None
    return rms(gap), float(gap.max())


def _sample_report(
    adapter: ModelAdapter, path: MixturePath, ref: ReferenceSet, steps: int
) -> tuple[SampleReport, np.ndarray | None]:
    """Sample quality of the sampler with ``steps`` evaluations from ``ref.noise``, and
    its samples (``None`` when it failed: see ``report.failure``). The floor and the data
    log-likelihood are left to the caller."""
    times = multistep_times(steps)
    report = SampleReport(steps=steps, times=[float(t) for t in times])  # also on failure
    try:
        run = multistep_sample(path.interpolant, adapter, times, ref.noise, ref.sampler_noise)
    except ModelError as exc:
        report.failure = exc.failure
        return report, None
    x0 = run.samples
    stats = sample_statistics(path.mixture, x0, ref.data)
    if not isinstance(stats, SampleStatistics):  # the rows where a statistic overflows
        report.failure = ModelFailure(
            report.times[0],
            "non-finite error",
            f"{steps}-step samples: energy distance or log-likelihood overflows float64 "
            f"(samples up to |x| = {float(np.max(np.abs(x0))):.3g})",
            stats,
            tuple(tuple(float(v) for v in ref.noise[i]) for i in stats[:3]),
        )
        return report, None
    report.energy_distance = stats.energy_distance
    report.log_likelihood = stats.log_likelihood
    if stats.mode_frequencies is not None:
        report.mode_frequencies = stats.mode_frequencies
        report.mode_weights = [float(w) for w in path.mixture.weights]
    return report, x0


def _sample_reports(
    adapter: ModelAdapter,
    path: MixturePath,
    ref: ReferenceSet,
    failures: list[ModelFailure],
    progress: _Progress,
) -> tuple[list[SampleReport], np.ndarray | None]:
    """A :class:`SampleReport` per sampler of :data:`SAMPLER_STEPS`, with the i.i.d.
    floor and the data's log-likelihood; also the one-step samples (``None`` on failure)."""
    floor = energy_distance(ref.data, ref.data_twin)
    data_ll = float(np.mean(path.mixture.log_prob(ref.data)))
    reports, one_step = [], None
    for steps in SAMPLER_STEPS:
        report, x0 = _sample_report(adapter, path, ref, steps)
        reports.append(report)
        if report.failure is not None:
            failures.append(report.failure)
            continue
        report.energy_distance_floor, report.data_log_likelihood = floor, data_ll
        one_step = x0 if steps == 1 else one_step
        if progress:
            progress(
                f"{steps}-step samples: energy distance {report.energy_distance:.3g} "
                f"(floor {floor:.3g})"
            )
    return reports, one_step


def _figure_data(
    path: MixturePath,
    ref: ReferenceSet,
    one_step: np.ndarray | None,
    arrow: tuple[int, np.ndarray] | None,
) -> FigureData:
    """The figures' arrays; ``arrow = (i, f(t_i, x_{t_i})[:k])`` or ``None``."""
    if arrow is None:
        return FigureData(path, ref.data, one_step)
    i, out = arrow
    k = len(out)
    return FigureData(
        path, ref.data, one_step, ref.times[i], ref.points[i][:k], out, ref.targets[i][:k]
    )


def compare(
    model: Callable[..., Any],
    path: MixturePath,
    times: Sequence[float] | None = None,
    n: int = 2000,
    seed: int = 0,
    signature: str = "t,x",
    *,
    time_format: str | None = None,
    n_samples: int = 2000,
    sample_quality: bool = True,
    name: str | None = None,
    progress: Callable[[str], None] | None = None,
    atol: float | None = None,
    rtol: float | None = None,
    metric: str = "rmse",
) -> Comparison:
    """Compare ``model`` with ``f*`` on ``path`` (see the module docstring).

    Arguments:
        model: ``f(t, x)`` on numpy arrays (``x`` of shape ``(n, d)``, output ``(n, d)``),
            a ``torch.nn.Module``, or a :class:`~cmverify.compare.ModelAdapter`.
        path: the :class:`~cmverify.exact.MixturePath` whose flow map is the reference.
        times: grid times in ``[0, 1]`` (default 0, 0.1, …, 1; 0 and 1 are always added).
        n: points ``x_t ~ p_t`` per time (≥ 1).
        seed: seed of the reference sample (the same seed gives the same points).
        signature: ``"t,x"`` or ``"x,t"``; ``time_format`` as in
            :class:`~cmverify.compare.ModelAdapter`.
        n_samples: samples for the boundary check and the samplers (≥ 1);
            ``sample_quality=False`` skips the samplers (faster, for tests that only need
            the errors).
        name: the model's name in the report (default: the adapter's).
        progress: called with a line after each grid time and sampler.
        atol, rtol: the threshold (default: none). When either is given (the other
            defaults to 0) the model passes only if, at every grid time,
            ``S(t) ≤ atol + rtol · data_scale`` with ``S`` the RMSE of ``|f − f*|``
            (``metric="rmse"``) or its maximum (``metric="max"``) and
            ``data_scale = sqrt(tr Cov x0)``; see :class:`~cmverify.compare.Threshold`.

    A model that raises, returns NaN or inf, complex or non-numeric values or the wrong
    shape, or values so large that the errors overflow, is reported in ``failures`` (and
    the affected numbers are ``None``), never averaged. ``Comparison.passed`` is false when
    there is a failure or the threshold is exceeded (``Comparison.exceeded`` lists where).
    Torch modules are evaluated in ``eval()`` mode without gradients and left in the mode
    they were in. ``Comparison.figure_data`` holds the arrays of the figures.
    """
    start = _time.perf_counter()
    if not isinstance(path, MixturePath):
        raise TypeError(f"path must be a MixturePath, got {type(path).__name__}")
    grid = _grid(times)
    n, n_samples = _positive(n, "n"), _positive(n_samples, "n_samples")
    seed = as_count(seed, "seed")
    scale = float(np.sqrt(np.trace(path.mixture.covariance())))
    threshold = _threshold(atol, rtol, metric, scale)
    adapter = (
        model if isinstance(model, ModelAdapter) else ModelAdapter(model, signature, time_format)
    )
    ref = reference_set(path, grid, n, seed, n_samples)
    failures: list[ModelFailure] = []
    reports, arrow = [], None
    for i, t in enumerate(grid):
        report, out = _time_report(adapter, ref, i, scale, failures)
        reports.append(report)
        if out is not None and t > 0:  # the latest such time is drawn
            arrow = (i, out[:ARROW_POINTS].copy())
        if progress:
            done = "failed" if report.failure else f"RMSE {report.rmse:.3g}"
            progress(f"t = {t:g}: {done}")
    boundary_rms, boundary_max = _boundary(adapter, ref.data, failures)
    samples, one_step = (
        _sample_reports(adapter, path, ref, failures, progress) if sample_quality else ([], None)
    )
    return Comparison(
        model=name or adapter.name,
        path=_path_label(path),
        dim=path.dim,
        n=n,
        seed=seed,
        data_scale=scale,
        per_time=reports,
        boundary_rms=boundary_rms,
        boundary_max=boundary_max,
        samples=samples,
        failures=failures,
        wall_seconds=_time.perf_counter() - start,
        threshold=threshold,
        exceeded=_exceedances(reports, threshold),
        figure_data=_figure_data(path, ref, one_step, arrow),
    )
