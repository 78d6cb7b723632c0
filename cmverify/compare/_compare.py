"""Compare a user's consistency model with the exact flow map (torch/edge layer).

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
at every time of the grid (:class:`Threshold`; ``Comparison.passed``).

References (``x_t``, ``f*(t, x_t)``, ``X_{t→s}(x_t)``) are computed once per path, grid,
size and seed and reused for every model compared; they are stored read-only and every
model call gets its own copy (:class:`~cmverify.compare.ModelAdapter`), so a model that
edits its input in place cannot corrupt later comparisons.

Every number reported is finite: a model output that raises, has the wrong shape, is not
real, holds NaN or inf, or is so large that an error or sample statistic overflows float64
(errors beyond about 1e154) is a :class:`~cmverify.compare.ModelFailure` in
``Comparison.failures`` (with the time, the rows and an example input), never averaged.
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
import time as _time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._validation import as_count, as_float_array, as_real
from ..exact import MixturePath
from ..reference import ReferenceFlow, multistep_sample, multistep_times
from ._models import ModelAdapter, ModelError, ModelFailure

__all__ = [
    "METRICS",
    "Comparison",
    "Exceedance",
    "ReferenceSet",
    "SampleReport",
    "Threshold",
    "TimeReport",
    "compare",
    "energy_distance",
]

DEFAULT_TIMES = tuple(np.round(np.linspace(0.0, 1.0, 11), 12))

#: Per-time statistics a :class:`Threshold` can bound: ``"rmse"`` (the default, the
#: root-mean-square of ``|f − f*|`` over the ``n`` points) or ``"max"`` (their maximum).
METRICS = ("rmse", "max")


def energy_distance(x: np.ndarray, y: np.ndarray, *, block: int = 1024) -> float:
    """``2 E|X − Y| − E|X − X'| − E|Y − Y'|`` (V-statistic), in blocks of rows.

    ``x`` has shape ``(n, d)``, ``y`` shape ``(m, d)``, both non-empty. Points so far out
    that distances overflow float64 give ``inf`` or ``nan`` (no warning): the caller
    decides what that means.
    """

    def mean_distance(a: np.ndarray, b: np.ndarray) -> float:
        total = 0.0
        for i in range(0, len(a), block):
            diff = a[i : i + block, None, :] - b[None, :, :]
            total += float(np.sqrt(np.sum(diff * diff, axis=-1)).sum())
        return total / (len(a) * len(b))

    with np.errstate(over="ignore", invalid="ignore"):
        return 2 * mean_distance(x, y) - mean_distance(x, x) - mean_distance(y, y)


def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


@dataclass(frozen=True)
class ReferenceSet:
    """Exact quantities shared by every comparison on one path, grid, size and seed.

    Every array is read-only (models only ever see copies)."""

    path: MixturePath
    times: tuple[float, ...]
    points: tuple[np.ndarray, ...]  # x_t ~ p_t, one (n, d) array per time
    targets: tuple[np.ndarray, ...]  # f*(t, x_t)
    previous: tuple[np.ndarray | None, ...]  # X_{t→s}(x_t), s the previous time
    data: np.ndarray  # x0 ~ data (boundary and sample quality), (n_samples, d)
    data_twin: np.ndarray  # an independent data sample of the same size (the floor)
    noise: np.ndarray  # x1 ~ N(0, I) for the samplers, (n_samples, d)
    sampler_noise: np.ndarray  # fresh z for multistep sampling, (4, n_samples, d)

    @classmethod
    def build(
        cls, path: MixturePath, times: Sequence[float], n: int, seed: int, n_samples: int
    ) -> ReferenceSet:
        rng = np.random.default_rng(seed)
        flow = ReferenceFlow(path)
        points, targets, previous = [], [], []
        for i, t in enumerate(times):
            x = path.sample(t, n, rng)
            points.append(_read_only(x))
            targets.append(_read_only(flow.consistency(t, x)))
            previous.append(None if i == 0 else _read_only(flow.map(x, t, times[i - 1])))
        d = path.dim
        return cls(
            path=path,
            times=tuple(float(t) for t in times),
            points=tuple(points),
            targets=tuple(targets),
            previous=tuple(previous),
            data=_read_only(path.mixture.sample(n_samples, rng)),
            data_twin=_read_only(path.mixture.sample(n_samples, rng)),
            noise=_read_only(rng.standard_normal((n_samples, d))),
            sampler_noise=_read_only(rng.standard_normal((4, n_samples, d))),
        )


_CACHE: dict[tuple, ReferenceSet] = {}


def _reference(
    path: MixturePath, times: tuple[float, ...], n: int, seed: int, n_samples: int
) -> ReferenceSet:
    key = (id(path), times, n, seed, n_samples)
    cached = _CACHE.get(key)
    if cached is None or cached.path is not path:
        if len(_CACHE) > 8:
            _CACHE.clear()
        cached = _CACHE[key] = ReferenceSet.build(path, times, n, seed, n_samples)
    return cached


@dataclass(frozen=True)
class Threshold:
    """The accuracy a model must reach at every time of the grid to pass.

    With ``E_t = |f(t, x_t) − f*(t, x_t)|`` on the ``n`` points ``x_t ~ p_t``, the
    statistic ``S(t)`` is ``sqrt(mean E_t²)`` (``metric = "rmse"``) or ``max E_t``
    (``metric = "max"``), and the model passes when, at every grid time ``t``,

        S(t) ≤ tolerance = atol + rtol · data_scale,   data_scale = sqrt(tr Cov(x0)).

    With ``atol = 0`` and the RMSE this is ``relative_rmse ≤ rtol``. The RMSE estimates
    the population error ``(E_{p_t} |f − f*|²)^{1/2}`` with ``O(n^{-1/2})`` noise, so a
    gate on it does not tighten as ``n`` grows; the maximum grows with ``n`` (the tails of
    ``p_t``) and is the stricter, worst-case check of
    :func:`~cmverify.testing.assert_matches_reference`.
    """

    atol: float
    rtol: float
    metric: str
    data_scale: float

    @property
    def tolerance(self) -> float:
        """``atol + rtol · data_scale``."""
        return self.atol + self.rtol * self.data_scale

    @property
    def statistic(self) -> str:
        """The bounded statistic in words."""
        return "RMSE" if self.metric == "rmse" else "max |f − f*|"

    def describe(self) -> str:
        """``RMSE ≤ 0.1 at every t (atol 0.1 + rtol 0 × data scale 2.83)``."""
        return (
            f"{self.statistic} ≤ {self.tolerance:.4g} at every t "
            f"(atol {self.atol:g} + rtol {self.rtol:g} × data scale {self.data_scale:.3g})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "atol": self.atol,
            "rtol": self.rtol,
            "metric": self.metric,
            "data_scale": self.data_scale,
            "tolerance": self.tolerance,
            "rule": f"{self.metric}(t) <= atol + rtol * data_scale at every t of the grid",
        }


@dataclass(frozen=True)
class Exceedance:
    """A grid time where the threshold's statistic exceeded its tolerance."""

    t: float
    value: float
    tolerance: float


@dataclass
class TimeReport:
    """Errors of ``f(t, ·)`` against ``f*(t, ·)`` at one time (``None`` where the model
    failed there: see ``failure``)."""

    t: float
    rmse: float | None = None
    relative_rmse: float | None = None
    p95_error: float | None = None
    max_error: float | None = None
    worst_point: list[float] | None = None
    self_consistency: float | None = None
    self_consistency_s: float | None = None
    failure: ModelFailure | None = None


@dataclass
class SampleReport:
    """Sample quality of a sampler with ``steps`` model evaluations."""

    steps: int
    times: list[float]
    energy_distance: float | None = None
    energy_distance_floor: float | None = None
    log_likelihood: float | None = None
    data_log_likelihood: float | None = None
    mode_frequencies: list[float] | None = None
    mode_weights: list[float] | None = None
    failure: ModelFailure | None = None


@dataclass
class Comparison:
    """The result of :func:`compare`; plain data, serializable with :meth:`to_json`.

    ``failures`` lists every model call whose answer was unusable; ``threshold`` is the
    :class:`Threshold` applied (``None``: none was given) and ``exceeded`` the grid times
    where it was exceeded. :attr:`passed` is the verdict for a CI gate.
    """

    model: str
    path: str
    dim: int
    n: int
    seed: int
    data_scale: float
    per_time: list[TimeReport]
    boundary_rms: float | None
    boundary_max: float | None
    samples: list[SampleReport]
    failures: list[ModelFailure]
    wall_seconds: float
    threshold: Threshold | None = None
    exceeded: list[Exceedance] = field(default_factory=list)
    _plot: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def passed(self) -> bool:
        """True when every model call returned finite real values of the right shape and,
        if a threshold was given, its statistic stayed within the tolerance at every time.
        Without a threshold this says nothing about accuracy."""
        return not self.failures and not self.exceeded

    @property
    def ok(self) -> bool:
        """The same as :attr:`passed` (the older name)."""
        return self.passed

    def at(self, t: float) -> TimeReport:
        """The report at the grid time closest to ``t``."""
        return min(self.per_time, key=lambda r: abs(r.t - t))

    def verdict(self) -> str:
        """One line: passed or failed, and why (which threshold, which times)."""
        reasons = []
        if self.failures:
            reasons.append(f"{len(self.failures)} model call(s) failed (see Failures)")
        if self.exceeded:
            where = ", ".join(f"t = {e.t:g} ({e.value:.3g})" for e in self.exceeded[:6])
            if len(self.exceeded) > 6:
                where += f" and {len(self.exceeded) - 6} more times"
            reasons.append(
                f"{self.threshold.statistic} exceeds {self.threshold.tolerance:.4g} at {where}"
            )
        if self.threshold is None:
            rule = (
                "no threshold applied (give atol/rtol, --atol/--rtol, to gate on accuracy): "
                "only checked that the model answered every call with finite real values of "
                "the right shape"
            )
        else:
            rule = f"threshold {self.threshold.describe()}"
        if reasons:
            return f"FAILED: {'; '.join(reasons)}; {rule}."
        return f"PASSED: {rule}."

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):
            if f.name.startswith("_"):
                continue
            value = getattr(self, f.name)
            out[f.name] = value
        out["per_time"] = [
            {
                **{k: v for k, v in dataclasses.asdict(r).items() if k != "failure"},
                "failure": r.failure.to_dict() if r.failure else None,
            }
            for r in self.per_time
        ]
        out["samples"] = [
            {
                **{k: v for k, v in dataclasses.asdict(s).items() if k != "failure"},
                "failure": s.failure.to_dict() if s.failure else None,
            }
            for s in self.samples
        ]
        out["failures"] = [f.to_dict() for f in self.failures]
        out["threshold"] = None if self.threshold is None else self.threshold.to_dict()
        out["exceeded"] = [dataclasses.asdict(e) for e in self.exceeded]
        out["passed"] = self.passed
        out["ok"] = self.ok
        out["verdict"] = self.verdict()
        return out

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **{"indent": 2, "ensure_ascii": False, **kwargs})

    def to_markdown(self) -> str:
        def num(v: float | None) -> str:
            return "—" if v is None else f"{v:.3g}"

        exceeded = {e.t for e in self.exceeded}
        gate = self.threshold is not None
        lines = [
            f"# Comparison of `{self.model}` with the exact flow map",
            "",
            f"**{self.verdict()}**",
            "",
            f"Path: {self.path}; d = {self.dim}; {self.n} points x_t ~ p_t per time; seed {self.seed}; "
            f"data scale sqrt(tr Cov x0) = {self.data_scale:.3g}.",
            "",
            "| t | RMSE | relative RMSE | p95 error | max error | worst at | self-consistency vs s |"
            + (" within threshold |" if gate else ""),
            "|---|---|---|---|---|---|---|" + ("---|" if gate else ""),
        ]
        for r in self.per_time:
            if r.failure:
                lines.append(
                    f"| {r.t:g} | FAILED: {r.failure.describe()} | | | | | |"
                    + (" no |" if gate else "")
                )
                continue
            worst = "(" + ", ".join(f"{v:.3g}" for v in r.worst_point or []) + ")"
            sc = (
                "—"
                if r.self_consistency is None
                else f"{r.self_consistency:.3g} (s = {r.self_consistency_s:g})"
            )
            verdict = (" **no: exceeds** |" if r.t in exceeded else " yes |") if gate else ""
            lines.append(
                f"| {r.t:g} | {num(r.rmse)} | {num(r.relative_rmse)} | {num(r.p95_error)} | "
                f"{num(r.max_error)} | {worst} | {sc} |{verdict}"
            )
        lines += [
            "",
            f"Boundary |f(0, x) − x| on data: RMS {num(self.boundary_rms)}, max {num(self.boundary_max)}.",
            "",
        ]
        if self.samples:
            lines += [
                "| sampler | evaluations | energy distance | i.i.d. floor | log-likelihood | data log-likelihood | mode frequencies (weights) |",
                "|---|---|---|---|---|---|---|",
            ]
        for s in self.samples:
            name = "one-step" if s.steps == 1 else f"multistep {s.times}"
            if s.failure:
                lines.append(f"| {name} | {s.steps} | FAILED: {s.failure.describe()} | | | | |")
                continue
            modes = (
                "—"
                if s.mode_frequencies is None
                else ", ".join(
                    f"{f:.2f} ({w:.2f})"
                    for f, w in zip(s.mode_frequencies, s.mode_weights or [], strict=True)
                )
            )
            lines.append(
                f"| {name} | {s.steps} | {num(s.energy_distance)} | {num(s.energy_distance_floor)} | "
                f"{num(s.log_likelihood)} | {num(s.data_log_likelihood)} | {modes} |"
            )
        if self.failures:
            lines += ["", "## Failures", ""] + [f"- {f.describe()}" for f in self.failures]
            lines += [f"  ```\n  {f.traceback}\n  ```" for f in self.failures if f.traceback][:3]
        lines += ["", f"({self.wall_seconds:.1f} s)"]
        return "\n".join(lines)

    def plot(self, directory: str | pathlib.Path) -> list[pathlib.Path]:
        """Write PNGs to ``directory``: error against ``t``; samples over the data density
        (d ≤ 2); the model's arrows to the start over the reference (d ≤ 2)."""
        from . import _plots as _compare_plots

        return _compare_plots.plot(self, pathlib.Path(directory))


def _row_errors(values: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """``|values_i − targets_i|`` per row, in plain float64 (``inf`` where it overflows)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return np.linalg.norm(values - targets, axis=1)


def _rms(err: np.ndarray) -> float:
    """``sqrt(mean err²)`` for finite ``err ≥ 0``, scaled so that it cannot overflow."""
    top = float(err.max())
    if top == 0.0:
        return 0.0
    return top * float(np.sqrt(np.mean((err / top) ** 2)))


def _overflow(
    t: float, err: np.ndarray, inputs: np.ndarray, outputs: np.ndarray, what: str
) -> ModelFailure | None:
    """A ``non-finite error`` failure for the rows where ``err`` is not finite."""
    bad = ~np.isfinite(err)
    if not np.any(bad):
        return None
    rows = tuple(int(i) for i in np.flatnonzero(bad))
    largest = float(np.max(np.abs(outputs[list(rows)])))
    return ModelFailure(
        float(t),
        "non-finite error",
        f"{what} overflows float64 (model output up to |f| = {largest:.3g})",
        rows,
        tuple(tuple(float(v) for v in inputs[i]) for i in rows[:3]),
    )


def _sample(adapter: ModelAdapter, ref: ReferenceSet, steps: int) -> tuple[np.ndarray, list[float]]:
    """One-step (``steps = 1``) or multistep sampling with ``steps`` model evaluations."""
    run = multistep_sample(
        ref.path.interpolant, adapter, multistep_times(steps), ref.noise, ref.sampler_noise
    )
    return run.samples, list(run.times)


def _finite_log_prob(mix, x: np.ndarray) -> np.ndarray | None:
    """``log p(x)`` per row, or ``None`` when some row's value is not representable."""
    try:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            log_p = mix.log_prob(x)
    except ValueError:  # far beyond float64: |x| ≳ 1e154
        return None
    return log_p if np.all(np.isfinite(log_p)) else None


def _sample_statistics(mix, x0: np.ndarray, data: np.ndarray) -> dict[str, Any] | tuple[int, ...]:
    """Energy distance to ``data``, mean log-likelihood and mode frequencies of the
    samples ``x0``; or, when one of them overflows float64, the offending rows."""
    log_p = _finite_log_prob(mix, x0)
    distance = energy_distance(x0, data)
    if log_p is not None and math.isfinite(distance):
        frequencies = None
        if mix.n_components > 1:
            try:
                labels = np.argmax(mix.component_log_prob(x0), axis=1)
            except ValueError:  # an entry below −1.8e308: leave the modes out
                labels = None
            if labels is not None:
                counts = np.bincount(labels, minlength=mix.n_components)
                frequencies = [float(v) for v in counts / len(x0)]
        return {
            "energy_distance": float(distance),
            "log_likelihood": float(np.mean(log_p)),
            "mode_frequencies": frequencies,
        }
    with np.errstate(over="ignore", invalid="ignore"):
        size = np.sum(x0 * x0, axis=1)
    rows = [
        i
        for i in range(len(x0))
        if not np.isfinite(size[i]) or _finite_log_prob(mix, x0[i : i + 1]) is None
    ]
    return tuple(rows)


def _tolerance(value: object, name: str) -> float | None:
    if value is None:
        return None
    value = as_real(value, name)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite non-negative float, got {value!r}")
    return value


def _positive(value: object, name: str) -> int:
    count = as_count(value, name)
    if count == 0:
        raise ValueError(f"{name} must be at least 1, got 0")
    return count


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
        atol, rtol: the threshold (default: none). When either is given (the other
            defaults to 0) the model passes only if, at every grid time,
            ``S(t) ≤ atol + rtol · data_scale`` with ``S`` the RMSE of ``|f − f*|``
            (``metric="rmse"``) or its maximum (``metric="max"``) and
            ``data_scale = sqrt(tr Cov x0)``; see :class:`Threshold`.

    A model that raises, returns NaN or inf, complex or non-numeric values or the wrong
    shape, or values so large that the errors overflow, is reported in ``failures`` (and
    the affected numbers are ``None``), never averaged. ``Comparison.passed`` is false when
    there is a failure or the threshold is exceeded (``Comparison.exceeded`` lists where).
    Torch modules are evaluated in ``eval()`` mode without gradients and left in the mode
    they were in.
    """
    start = _time.perf_counter()
    if not isinstance(path, MixturePath):
        raise TypeError(f"path must be a MixturePath, got {type(path).__name__}")
    grid = DEFAULT_TIMES if times is None else tuple(as_float_array(times, "times").ravel())
    outside = [t for t in grid if not 0.0 <= t <= 1.0]
    if outside:
        raise ValueError(f"times must lie in [0, 1], got {float(outside[0])!r}")
    grid = tuple(sorted({float(t) for t in grid} | {0.0, 1.0}))
    n = _positive(n, "n")
    n_samples = _positive(n_samples, "n_samples")
    seed = as_count(seed, "seed")
    atol, rtol = _tolerance(atol, "atol"), _tolerance(rtol, "rtol")
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    adapter = (
        model if isinstance(model, ModelAdapter) else ModelAdapter(model, signature, time_format)
    )
    ref = _reference(path, grid, n, seed, n_samples)
    mix = path.mixture
    scale = float(np.sqrt(np.trace(mix.covariance())))
    threshold = (
        None
        if atol is None and rtol is None
        else Threshold(atol or 0.0, rtol or 0.0, metric, scale)
    )
    failures: list[ModelFailure] = []
    reports: list[TimeReport] = []
    exceeded: list[Exceedance] = []
    plot_points: dict[float, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for i, t in enumerate(grid):
        report = TimeReport(t=t)
        reports.append(report)
        try:
            out = adapter(t, ref.points[i])
        except ModelError as exc:
            report.failure = exc.failure
            failures.append(exc.failure)
            continue
        err = _row_errors(out, ref.targets[i])
        report.failure = _overflow(t, err, ref.points[i], out, "the error |f − f*|")
        if report.failure:
            failures.append(report.failure)
            continue
        worst = int(np.argmax(err))
        report.rmse = _rms(err)
        report.relative_rmse = report.rmse / scale
        report.p95_error = float(np.quantile(err, 0.95))
        report.max_error = float(err[worst])
        report.worst_point = [float(v) for v in ref.points[i][worst]]
        plot_points[t] = (ref.points[i][:200], out[:200], ref.targets[i][:200])
        if threshold is not None:
            value = report.rmse if metric == "rmse" else report.max_error
            if value > threshold.tolerance:
                exceeded.append(Exceedance(t, value, threshold.tolerance))
        if i > 0 and ref.previous[i] is not None:
            s = grid[i - 1]
            try:
                back = adapter(s, ref.previous[i])
            except ModelError as exc:
                failures.append(exc.failure)
            else:
                gap = _row_errors(out, back)
                problem = _overflow(
                    s, gap, ref.previous[i], back, f"self-consistency |f(t = {t:g}) − f(s)|"
                )
                if problem:
                    failures.append(problem)
                else:
                    report.self_consistency = _rms(gap)
                    report.self_consistency_s = s
        if progress:
            progress(f"t = {t:g}: RMSE {report.rmse:.3g}")
    boundary_rms = boundary_max = None
    try:
        at_zero = adapter(0.0, ref.data)
    except ModelError as exc:
        failures.append(exc.failure)
    else:
        gap = _row_errors(at_zero, ref.data)
        problem = _overflow(0.0, gap, ref.data, at_zero, "the boundary gap |f(0, x) − x|")
        if problem:
            failures.append(problem)
        else:
            boundary_rms, boundary_max = _rms(gap), float(gap.max())
    samples = []
    one_step = None
    if sample_quality:
        floor = energy_distance(ref.data, ref.data_twin)
        data_ll = float(np.mean(mix.log_prob(ref.data)))
    for steps in (1, 2, 4) if sample_quality else ():
        report = SampleReport(steps=steps, times=[])
        samples.append(report)
        try:
            x0, times_used = _sample(adapter, ref, steps)
        except ModelError as exc:
            report.failure = exc.failure
            failures.append(exc.failure)
            continue
        report.times = times_used
        stats = _sample_statistics(mix, x0, ref.data)
        if isinstance(stats, tuple):  # the rows where a statistic overflows
            rows = stats
            report.failure = ModelFailure(
                times_used[0],
                "non-finite error",
                f"{steps}-step samples: energy distance or log-likelihood overflows float64 "
                f"(samples up to |x| = {float(np.max(np.abs(x0))):.3g})",
                rows,
                tuple(tuple(float(v) for v in ref.noise[i]) for i in rows[:3]),
            )
            failures.append(report.failure)
            continue
        if steps == 1:
            one_step = x0
        report.energy_distance = stats["energy_distance"]
        report.energy_distance_floor = floor
        report.log_likelihood = stats["log_likelihood"]
        report.data_log_likelihood = data_ll
        if stats["mode_frequencies"] is not None:
            report.mode_frequencies = stats["mode_frequencies"]
            report.mode_weights = [float(w) for w in mix.weights]
        if progress:
            progress(
                f"{steps}-step samples: energy distance {report.energy_distance:.3g} (floor {floor:.3g})"
            )
    comparison = Comparison(
        model=name or adapter.name,
        path=f"{_mixture_name(mix)} / {path.interpolant.name}",
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
        exceeded=exceeded,
    )
    comparison._plot = {"points": plot_points, "path": path, "reference": ref, "one_step": one_step}
    return comparison


def _mixture_name(mix) -> str:
    from ..exact import mixtures

    for name in mixtures.names():
        other = mixtures.by_name(name)
        if (
            other.weights.shape == mix.weights.shape
            and other.means.shape == mix.means.shape
            and np.array_equal(other.weights, mix.weights)
            and np.array_equal(other.means, mix.means)
            and np.array_equal(other.covs, mix.covs)
        ):
            return name
    return repr(mix)
