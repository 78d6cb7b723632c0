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

References (``x_t``, ``f*(t, x_t)``, ``X_{t→s}(x_t)``) are computed once per path, grid,
size and seed and reused for every model compared.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import time as _time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._validation import as_float_array
from .flow import ReferenceFlow
from .models import ModelAdapter, ModelError, ModelFailure
from .path import MixturePath

__all__ = ["Comparison", "ReferenceSet", "SampleReport", "TimeReport", "compare", "energy_distance"]

DEFAULT_TIMES = tuple(np.round(np.linspace(0.0, 1.0, 11), 12))


def energy_distance(x: np.ndarray, y: np.ndarray, *, block: int = 1024) -> float:
    """``2 E|X − Y| − E|X − X'| − E|Y − Y'|`` (V-statistic), in blocks of rows."""

    def mean_distance(a: np.ndarray, b: np.ndarray) -> float:
        total = 0.0
        for i in range(0, len(a), block):
            diff = a[i : i + block, None, :] - b[None, :, :]
            total += float(np.sqrt(np.sum(diff * diff, axis=-1)).sum())
        return total / (len(a) * len(b))

    return 2 * mean_distance(x, y) - mean_distance(x, x) - mean_distance(y, y)


@dataclass(frozen=True)
class ReferenceSet:
    """Exact quantities shared by every comparison on one path, grid, size and seed."""

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
            points.append(x)
            targets.append(flow.consistency(t, x))
            previous.append(None if i == 0 else flow.map(x, t, times[i - 1]))
        d = path.dim
        return cls(
            path=path,
            times=tuple(float(t) for t in times),
            points=tuple(points),
            targets=tuple(targets),
            previous=tuple(previous),
            data=path.mixture.sample(n_samples, rng),
            data_twin=path.mixture.sample(n_samples, rng),
            noise=rng.standard_normal((n_samples, d)),
            sampler_noise=rng.standard_normal((4, n_samples, d)),
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
    """The result of :func:`compare`; plain data, serializable with :meth:`to_json`."""

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
    _plot: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        """True when the model answered every call with finite values of the right shape."""
        return not self.failures

    def at(self, t: float) -> TimeReport:
        """The report at the grid time closest to ``t``."""
        return min(self.per_time, key=lambda r: abs(r.t - t))

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
        out["ok"] = self.ok
        return out

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **{"indent": 2, "ensure_ascii": False, **kwargs})

    def to_markdown(self) -> str:
        def num(v: float | None) -> str:
            return "—" if v is None else f"{v:.3g}"

        lines = [
            f"# Comparison of `{self.model}` with the exact flow map",
            "",
            f"Path: {self.path}; d = {self.dim}; {self.n} points x_t ~ p_t per time; seed {self.seed}; "
            f"data scale sqrt(tr Cov x0) = {self.data_scale:.3g}.",
            "",
            "| t | RMSE | relative RMSE | p95 error | max error | worst at | self-consistency vs s |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in self.per_time:
            if r.failure:
                lines.append(f"| {r.t:g} | FAILED: {r.failure.describe()} | | | | | |")
                continue
            worst = "(" + ", ".join(f"{v:.3g}" for v in r.worst_point or []) + ")"
            sc = (
                "—"
                if r.self_consistency is None
                else f"{r.self_consistency:.3g} (s = {r.self_consistency_s:g})"
            )
            lines.append(
                f"| {r.t:g} | {num(r.rmse)} | {num(r.relative_rmse)} | {num(r.p95_error)} | "
                f"{num(r.max_error)} | {worst} | {sc} |"
            )
        lines += [
            "",
            f"Boundary |f(0, x) − x| on data: RMS {num(self.boundary_rms)}, max {num(self.boundary_max)}.",
            "",
        ]
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
        from . import _compare_plots

        return _compare_plots.plot(self, pathlib.Path(directory))


def _errors(values: np.ndarray, targets: np.ndarray) -> np.ndarray:
    return np.linalg.norm(values - targets, axis=1)


def _sample(adapter: ModelAdapter, ref: ReferenceSet, steps: int) -> tuple[np.ndarray, list[float]]:
    """One-step (``steps = 1``) or multistep sampling with ``steps`` model evaluations."""
    times = [float(t) for t in np.linspace(1.0, 0.0, steps + 1)[:-1]]
    interp = ref.path.interpolant
    x = ref.noise
    x0 = x
    for i, t in enumerate(times):
        x0 = adapter(t, x)
        if i + 1 < len(times):
            t_next = times[i + 1]
            x = (
                float(interp.alpha(t_next)) * x0
                + float(interp.sigma(t_next)) * ref.sampler_noise[i]
            )
    return x0, times


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
) -> Comparison:
    """Compare ``model`` with ``f*`` on ``path`` (see the module docstring).

    ``times`` must lie in ``[0, 1]`` (default 0, 0.1, …, 1; 0 and 1 are always added);
    ``n`` points per time; ``signature`` ``"t,x"`` or ``"x,t"``; ``time_format`` as in
    :class:`~cmverify.models.ModelAdapter`. A model that raises, returns NaN or inf, or
    returns the wrong shape is reported in ``failures`` (and the affected numbers are
    ``None``), never averaged. ``sample_quality=False`` skips the samplers (faster, for
    tests that only need the errors).
    """
    start = _time.perf_counter()
    if not isinstance(path, MixturePath):
        raise TypeError(f"path must be a MixturePath, got {type(path).__name__}")
    grid = DEFAULT_TIMES if times is None else tuple(as_float_array(times, "times").ravel())
    if any(not 0.0 <= t <= 1.0 for t in grid):
        raise ValueError("times must lie in [0, 1]")
    grid = tuple(sorted(set(grid) | {0.0, 1.0}))
    adapter = (
        model if isinstance(model, ModelAdapter) else ModelAdapter(model, signature, time_format)
    )
    ref = _reference(path, grid, int(n), int(seed), int(n_samples))
    mix = path.mixture
    scale = float(np.sqrt(np.trace(mix.covariance())))
    failures: list[ModelFailure] = []
    reports: list[TimeReport] = []
    plot_points: dict[float, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for i, t in enumerate(grid):
        report = TimeReport(t=t)
        try:
            out = adapter(t, ref.points[i])
        except ModelError as exc:
            report.failure = exc.failure
            failures.append(exc.failure)
            reports.append(report)
            continue
        err = _errors(out, ref.targets[i])
        worst = int(np.argmax(err))
        report.rmse = float(np.sqrt(np.mean(err**2)))
        report.relative_rmse = report.rmse / scale
        report.p95_error = float(np.quantile(err, 0.95))
        report.max_error = float(err[worst])
        report.worst_point = [float(v) for v in ref.points[i][worst]]
        plot_points[t] = (ref.points[i][:200], out[:200], ref.targets[i][:200])
        if i > 0 and ref.previous[i] is not None:
            s = grid[i - 1]
            try:
                back = adapter(s, ref.previous[i])
            except ModelError as exc:
                failures.append(exc.failure)
            else:
                report.self_consistency = float(np.sqrt(np.mean(_errors(out, back) ** 2)))
                report.self_consistency_s = s
        reports.append(report)
        if progress:
            progress(f"t = {t:g}: RMSE {report.rmse:.3g}")
    boundary_rms = boundary_max = None
    try:
        at_zero = adapter(0.0, ref.data)
    except ModelError as exc:
        failures.append(exc.failure)
    else:
        gap = _errors(at_zero, ref.data)
        boundary_rms, boundary_max = float(np.sqrt(np.mean(gap**2))), float(gap.max())
    samples = []
    one_step = None
    if sample_quality:
        floor = energy_distance(ref.data, ref.data_twin)
        data_ll = float(np.mean(mix.log_prob(ref.data)))
    for steps in (1, 2, 4) if sample_quality else ():
        report = SampleReport(steps=steps, times=[])
        try:
            x0, times_used = _sample(adapter, ref, steps)
        except ModelError as exc:
            report.failure = exc.failure
            failures.append(exc.failure)
            samples.append(report)
            continue
        report.times = times_used
        if steps == 1:
            one_step = x0
        report.energy_distance = energy_distance(x0, ref.data)
        report.energy_distance_floor = floor
        report.log_likelihood = float(np.mean(mix.log_prob(x0)))
        report.data_log_likelihood = data_ll
        if mix.n_components > 1:
            labels = np.argmax(mix.component_log_prob(x0), axis=1)
            report.mode_frequencies = [
                float(v) for v in np.bincount(labels, minlength=mix.n_components) / len(x0)
            ]
            report.mode_weights = [float(w) for w in mix.weights]
        samples.append(report)
        if progress:
            progress(
                f"{steps}-step samples: energy distance {report.energy_distance:.3g} (floor {floor:.3g})"
            )
    comparison = Comparison(
        model=name or getattr(model, "__name__", type(model).__name__),
        path=f"{_mixture_name(mix)} / {path.interpolant.name}",
        dim=path.dim,
        n=int(n),
        seed=int(seed),
        data_scale=scale,
        per_time=reports,
        boundary_rms=boundary_rms,
        boundary_max=boundary_max,
        samples=samples,
        failures=failures,
        wall_seconds=_time.perf_counter() - start,
    )
    comparison._plot = {"points": plot_points, "path": path, "reference": ref, "one_step": one_step}
    return comparison


def _mixture_name(mix) -> str:
    from . import mixtures

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
