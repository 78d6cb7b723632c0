"""Reading a comparison report back (:meth:`Comparison.from_dict`,
:meth:`ModelFailure.from_dict`): every field is checked as it is read, so a malformed
report fails at once with one line naming the field —
``per_time[2].rmse must be a finite number ≥ 0, got 'big'`` — not later, in
``to_markdown``, with a formatting error.

What is checked: each object has its fields and no unknown ones (the derived ``passed``,
``ok``, ``verdict``, ``tolerance`` and ``rule`` are ignored: they are recomputed); texts
are strings (valid UTF-8, so the report can be saved); integers are JSON integers (not
``2.7``, ``2.0`` or ``true``); reals are finite numbers (a report holds no NaN or inf:
:meth:`Comparison.save` writes strict JSON), non-negative where they are errors, scales,
counts or durations, and in ``[0, 1]`` where they are times or frequencies; points have
``dim`` coordinates; ``kind`` and ``metric`` are among their known values.

Only the report's own structure is walked (a fixed depth), and values are shown in
messages through :mod:`reprlib` (bounded), so a deeply nested or huge value is refused at
the first field it does not fit, without recursion.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Callable, Collection
from typing import Any, TypeVar

from ._models import FAILURE_KINDS, ModelFailure
from ._report import METRICS, Comparison, Exceedance, SampleReport, Threshold, TimeReport

__all__ = ["read_comparison", "read_failure"]

T = TypeVar("T")

_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 2, 40, 40
_REPR.maxlist = _REPR.maxdict = _REPR.maxtuple = 4


def _show(value: object) -> str:
    """A short, bounded ``repr`` of ``value`` (any depth, any size)."""
    return _REPR.repr(value)


def _text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {_show(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{name} must be valid UTF-8 text, got {_show(value)}") from None
    return value


def _integer(value: object, name: str, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {_show(value)}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be an integer ≥ {minimum}, got {value}")
    return value


def _real(value: object, name: str, low: float | None = None, high: float | None = None) -> float:
    """A finite float (a JSON integer is accepted) within ``[low, high]``."""
    bounds = (
        f" in [{low:g}, {high:g}]"
        if low is not None and high is not None
        else f" ≥ {low:g}"
        if low is not None
        else ""
    )
    problem = f"{name} must be a finite number{bounds}, got {_show(value)}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(problem)
    try:
        number = float(value)
    except OverflowError:  # a JSON integer beyond float64
        raise ValueError(problem) from None
    if not math.isfinite(number):
        raise ValueError(problem)
    if (low is not None and number < low) or (high is not None and number > high):
        raise ValueError(problem)
    return number


def _items(value: object, name: str) -> list[tuple[object, str]]:
    """The elements of a JSON array with their names ``name[i]``."""
    if not isinstance(value, list):
        raise ValueError(f"{name} must be a list, got {_show(value)}")
    return [(v, f"{name}[{i}]") for i, v in enumerate(value)]


def _reals(
    value: object,
    name: str,
    length: int | None = None,
    low: float | None = None,
    high: float | None = None,
) -> list[float]:
    reals = [_real(v, n, low, high) for v, n in _items(value, name)]
    if length is not None and len(reals) != length:
        raise ValueError(f"{name} must hold {length} numbers, got {len(reals)}")
    return reals


class _Record:
    """One JSON object of the report at ``where`` (``""``: the report itself)."""

    def __init__(
        self,
        data: object,
        where: str,
        fields: Collection[str],
        derived: Collection[str] = (),
        top: str = "the report",
    ) -> None:
        what = where or top
        if not isinstance(data, dict):
            raise ValueError(f"{what} must be a JSON object, got {_show(data)}")
        unknown = [k for k in data if k not in fields and k not in derived]
        if unknown:
            raise ValueError(f"{what} has an unknown field {_show(unknown[0])}")
        self.data, self.where = data, where

    def name(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def __call__(self, key: str, read: Callable[..., T], *args: Any) -> T:
        """``read(value, name, *args)`` of the field ``key`` (``ValueError`` if missing)."""
        if key not in self.data:
            raise ValueError(f"missing {self.name(key)!r}")
        return read(self.data[key], self.name(key), *args)

    def optional(self, key: str, read: Callable[..., T], *args: Any) -> T | None:
        """As ``self(key, read, ...)``, with ``null`` read as ``None``."""
        if self.data.get(key, ...) is None:
            return None
        return self(key, read, *args)


def _choice(value: object, name: str, options: tuple[str, ...]) -> str:
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(options)}, got {_show(value)}")
    return str(value)


def read_failure(data: object, where: str, dim: int | None = None) -> ModelFailure:
    """The :class:`ModelFailure` that :meth:`ModelFailure.to_dict` wrote (its examples
    of ``dim`` coordinates, when given)."""
    fields = ("t", "kind", "message", "n_rows", "rows", "examples", "traceback")
    r = _Record(data, where, fields, top="the failure")
    t, kind, message = (
        r("t", _real, 0.0, 1.0),
        r("kind", _choice, FAILURE_KINDS),
        r("message", _text),
    )
    n_rows = r("n_rows", _integer, 0)
    rows = r("rows", lambda v, n: [_integer(i, m, 0) for i, m in _items(v, n)])
    if len(rows) > n_rows:
        raise ValueError(f"{r.name('rows')} lists {len(rows)} rows, more than n_rows = {n_rows}")
    examples = r("examples", lambda v, n: [_reals(e, m, dim) for e, m in _items(v, n)])
    return ModelFailure(
        t, kind, message, tuple(rows), tuple(map(tuple, examples)), r("traceback", _text), n_rows
    )


def _time_report(data: object, where: str, dim: int) -> TimeReport:
    names = [f.name for f in TimeReport.__dataclass_fields__.values()]
    r = _Record(data, where, names)
    report = TimeReport(
        t=r("t", _real, 0.0, 1.0),
        **{
            key: r.optional(key, _real, 0.0)
            for key in ("rmse", "relative_rmse", "p95_error", "max_error", "self_consistency")
        },
        worst_point=r.optional("worst_point", _reals, dim),
        self_consistency_s=r.optional("self_consistency_s", _real, 0.0, 1.0),
        failure=r.optional("failure", read_failure, dim),
    )
    if report.self_consistency is not None and report.self_consistency_s is None:
        raise ValueError(f"{r.name('self_consistency_s')} is missing for its self_consistency")
    return report


def _sample_report(data: object, where: str, dim: int) -> SampleReport:
    names = [f.name for f in SampleReport.__dataclass_fields__.values()]
    r = _Record(data, where, names)
    report = SampleReport(
        steps=r("steps", _integer, 1),
        times=r("times", _reals, None, 0.0, 1.0),
        energy_distance=r.optional("energy_distance", _real),
        energy_distance_floor=r.optional("energy_distance_floor", _real),
        log_likelihood=r.optional("log_likelihood", _real),
        data_log_likelihood=r.optional("data_log_likelihood", _real),
        mode_frequencies=r.optional("mode_frequencies", _reals, None, 0.0, 1.0),
        mode_weights=r.optional("mode_weights", _reals, None, 0.0, 1.0),
        failure=r.optional("failure", read_failure, dim),
    )
    frequencies, weights = report.mode_frequencies, report.mode_weights
    if frequencies is not None and weights is not None and len(frequencies) != len(weights):
        raise ValueError(
            f"{r.name('mode_weights')} must hold one weight per mode frequency "
            f"({len(frequencies)}), got {len(weights)}"
        )
    return report


def _threshold(data: object, where: str) -> Threshold:
    r = _Record(data, where, ("atol", "rtol", "metric", "data_scale"), ("tolerance", "rule"))
    return Threshold(
        r("atol", _real, 0.0),
        r("rtol", _real, 0.0),
        r("metric", _choice, METRICS),
        r("data_scale", _real, 0.0),
    )


def _exceedance(data: object, where: str) -> Exceedance:
    r = _Record(data, where, ("t", "value", "tolerance"))
    return Exceedance(r("t", _real, 0.0, 1.0), r("value", _real, 0.0), r("tolerance", _real, 0.0))


def _records(value: object, name: str, read: Callable[..., T], *args: Any) -> list[T]:
    return [read(v, n, *args) for v, n in _items(value, name)]


def read_comparison(data: object) -> Comparison:
    """The :class:`Comparison` that :meth:`Comparison.to_dict` wrote (``figure_data``
    ``None``); ``ValueError`` naming the first missing or malformed field."""
    fields = [f for f in Comparison.__dataclass_fields__ if f != "figure_data"]
    r = _Record(data, "", fields, ("passed", "ok", "verdict"))
    model, path, dim = r("model", _text), r("path", _text), r("dim", _integer, 1)
    n, seed, data_scale = r("n", _integer, 1), r("seed", _integer, 0), r("data_scale", _real, 0.0)
    per_time = r("per_time", _records, _time_report, dim)
    if not per_time:
        raise ValueError("per_time must list at least one time, got []")
    return Comparison(
        model=model,
        path=path,
        dim=dim,
        n=n,
        seed=seed,
        data_scale=data_scale,
        per_time=per_time,
        boundary_rms=r.optional("boundary_rms", _real, 0.0),
        boundary_max=r.optional("boundary_max", _real, 0.0),
        samples=r("samples", _records, _sample_report, dim),
        failures=r("failures", _records, read_failure, dim),
        wall_seconds=r("wall_seconds", _real, 0.0),
        threshold=r.optional("threshold", _threshold),
        exceeded=r("exceeded", _records, _exceedance),
    )
