"""The report of a comparison: plain data, JSON both ways, Markdown, figures, a folder.

:class:`Comparison` holds the numbers (per-time :class:`TimeReport`, per-sampler
:class:`SampleReport`, the boundary gap, the :class:`Threshold` and its
:class:`Exceedance` list, every :class:`~cmverify.compare.ModelFailure`); ``to_json`` /
``from_json`` write and read them exactly (floats round-trip through JSON bit for bit).
The arrays the figures draw besides those numbers travel in :class:`FigureData`, an
explicit attribute that the JSON leaves out. :meth:`Comparison.save` writes a folder.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import pathlib
import secrets
import shutil
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._io import check_writable
from ..exact import MixturePath
from ._models import ModelFailure

__all__ = [
    "ARROW_POINTS",
    "METRICS",
    "Comparison",
    "Exceedance",
    "FigureData",
    "SampleReport",
    "Threshold",
    "TimeReport",
]

#: Per-time statistics a :class:`Threshold` can bound: ``"rmse"`` (the default, the
#: root-mean-square of ``|f − f*|`` over the ``n`` points) or ``"max"`` (their maximum).
METRICS = ("rmse", "max")
#: Rows of ``x_t`` kept for ``arrows.png`` (:class:`FigureData`; its 1-d panel shows all).
ARROW_POINTS = 200


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

    def value(self, report: TimeReport) -> float | None:
        """``S(t)`` of ``report`` (``None`` where the model failed)."""
        return report.rmse if self.metric == "rmse" else report.max_error

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
    failed there: see ``failure``). ``worst_point`` is the ``x_t`` of ``max_error``;
    ``self_consistency`` the RMS of ``|f(t, x_t) − f(s, X_{t→s}(x_t))|`` with ``s`` =
    ``self_consistency_s``, the previous grid time."""

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
    """Sample quality of a sampler with ``steps`` model evaluations at ``times``."""

    steps: int
    times: list[float]
    energy_distance: float | None = None
    energy_distance_floor: float | None = None
    log_likelihood: float | None = None
    data_log_likelihood: float | None = None
    mode_frequencies: list[float] | None = None
    mode_weights: list[float] | None = None
    failure: ModelFailure | None = None


@dataclass(frozen=True, eq=False)
class FigureData:
    """What the figures draw besides the report's numbers (not part of the JSON).

    ``path``: the compared path (the data density under ``samples.png`` and
    ``arrows.png``); ``data``: a data sample ``x0``, shape ``(m, d)`` (the frame of
    ``samples.png``); ``one_step``: the one-step samples ``f(1, x1)``, shape ``(m, d)``
    (``None`` when sample quality was skipped or the sampler failed); ``arrow_time``: the
    latest grid time ``t > 0`` where the model answered, with ``arrow_points`` (``x_t``),
    ``arrow_model`` (``f(t, x_t)``) and ``arrow_exact`` (``f*(t, x_t)``), each of shape
    ``(k, d)`` with ``k ≤`` :data:`ARROW_POINTS` (``None`` when there is no such time).
    """

    path: MixturePath
    data: np.ndarray
    one_step: np.ndarray | None = None
    arrow_time: float | None = None
    arrow_points: np.ndarray | None = None
    arrow_model: np.ndarray | None = None
    arrow_exact: np.ndarray | None = None


def _without_failure(report: TimeReport | SampleReport) -> dict[str, Any]:
    fields = {f.name: getattr(report, f.name) for f in dataclasses.fields(report)}
    fields["failure"] = None if report.failure is None else report.failure.to_dict()
    return fields


def _move_into(staged: list[pathlib.Path], out: pathlib.Path) -> list[pathlib.Path]:
    """Rename each staged file to its name in ``out``, after checking that every target
    can take it (``ValueError`` naming the first that cannot, before any rename)."""
    targets = [out / p.name for p in staged]
    for target in targets:
        if target.is_symlink() or not target.exists():
            continue
        if not target.is_file():
            raise ValueError(f"cannot write {str(target)!r}: it exists and is not a file")
    for source, target in zip(staged, targets, strict=True):
        os.replace(source, target)  # atomic: a reader sees the old file or the new one
    return targets


def save_report(
    folder: str | os.PathLike[str],
    texts: dict[str, str],
    plot: Any,
    figures: bool | None,
    owner: str,
) -> list[pathlib.Path]:
    """Write ``texts`` (file name → text) and, by ``figures`` (``None``: when matplotlib
    is installed), the figures of ``plot(folder)`` into ``folder``, all or nothing: staged
    in a hidden folder inside ``folder``, then renamed into place (see
    :meth:`Comparison.save`). ``owner`` names the report class in messages."""
    if figures is not None and not isinstance(figures, bool):
        raise TypeError(f"figures must be True, False or None, got {figures!r}")
    if figures is None:
        figures = importlib.util.find_spec("matplotlib") is not None
    elif figures and importlib.util.find_spec("matplotlib") is None:
        raise ImportError(f"{owner}.save(figures=True) needs matplotlib")
    out = check_writable(folder, "folder")
    staging = out / f".{owner.lower()}-{os.getpid()}-{secrets.token_hex(4)}.tmp"
    try:
        staging.mkdir()
        staged = []
        for name, text in texts.items():
            (staging / name).write_text(text, encoding="utf-8")
            staged.append(staging / name)
        if figures:
            staged += plot(staging)
        return _move_into(staged, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@dataclass
class Comparison:
    """The result of :func:`~cmverify.compare.compare`: plain data, written and read back
    exactly by :meth:`to_json` / :meth:`from_json`.

    ``failures`` lists every model call whose answer was unusable; ``threshold`` is the
    :class:`Threshold` applied (``None``: none was given) and ``exceeded`` the grid times
    where it was exceeded. :attr:`passed` is the verdict for a CI gate. ``figure_data``
    (not in the JSON: ``None`` for a report read back) holds the arrays of the sample and
    arrow figures.
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
    figure_data: FigureData | None = field(default=None, repr=False, compare=False)

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
        if self.exceeded and self.threshold is not None:
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
        """JSON-ready data: every field but ``figure_data``, plus ``passed``, ``ok`` and
        ``verdict`` (derived, recomputed by :meth:`from_dict`)."""
        out: dict[str, Any] = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name != "figure_data"
        }
        out["per_time"] = [_without_failure(r) for r in self.per_time]
        out["samples"] = [_without_failure(s) for s in self.samples]
        out["failures"] = [f.to_dict() for f in self.failures]
        out["threshold"] = None if self.threshold is None else self.threshold.to_dict()
        out["exceeded"] = [dataclasses.asdict(e) for e in self.exceeded]
        out["passed"] = self.passed
        out["ok"] = self.ok
        out["verdict"] = self.verdict()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Comparison:
        """The comparison :meth:`to_dict` wrote (without ``figure_data``); for anything
        else a one-line ``ValueError`` naming the first missing or malformed field
        (``not a comparison report: per_time[2].rmse must be a finite number ≥ 0, got
        'big'``). Every field is checked: types (integers stay integers), finite numbers,
        ranges, lengths, known kinds (:mod:`cmverify.compare._reading`)."""
        from ._reading import read_comparison

        try:
            return read_comparison(data)
        except ValueError as exc:
            raise ValueError(f"not a comparison report: {exc}") from None

    def to_json(self, **kwargs: Any) -> str:
        """:meth:`to_dict` as JSON (indented; ``kwargs`` go to :func:`json.dumps`)."""
        return json.dumps(self.to_dict(), **{"indent": 2, "ensure_ascii": False, **kwargs})

    @classmethod
    def from_json(cls, text: str | bytes) -> Comparison:
        """The comparison :meth:`to_json` wrote; ``ValueError`` for anything else (not a
        string, invalid or too deeply nested JSON, or what :meth:`from_dict` refuses)."""
        if not isinstance(text, (str, bytes, bytearray)):
            raise ValueError(
                f"not a comparison report: text must be a JSON string, got {type(text).__name__}"
            )
        try:
            data = json.loads(text)
        except RecursionError:
            raise ValueError("not a comparison report: JSON nested too deeply") from None
        except ValueError as exc:  # JSONDecodeError, bad encoding, integer too long
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ValueError(f"not a comparison report: invalid JSON ({reason})") from None
        if not isinstance(data, dict):
            raise ValueError(f"not a comparison report: a JSON {type(data).__name__}")
        return cls.from_dict(data)

    def to_markdown(self) -> str:
        """The report as Markdown: verdict, a table per time, boundary, samplers, failures."""
        from ._markdown import comparison_markdown

        return comparison_markdown(self)

    def plot(self, directory: str | os.PathLike[str]) -> list[pathlib.Path]:
        """Write PNGs to ``directory`` (created if needed) and return their paths:
        ``error_vs_t.png``; with :attr:`figure_data` and ``d ≤ 2`` also ``samples.png``
        (one-step samples over the data density) and ``arrows.png`` (the model's arrows
        to the start over the reference's). Needs matplotlib (``ImportError`` without)."""
        from ._plots import write_figures

        return write_figures(self, self.figure_data, pathlib.Path(directory))

    def save(
        self, folder: str | os.PathLike[str], *, figures: bool | None = None
    ) -> list[pathlib.Path]:
        """Write the report into ``folder`` and return the paths written, in this order:

        - ``comparison.json``: :meth:`to_json` (strict JSON; :meth:`from_json` reads it);
        - ``comparison.md``: :meth:`to_markdown`;
        - the figures of :meth:`plot`: with ``figures=None`` (the default) when matplotlib
          is installed, with ``True`` always (``ImportError`` without matplotlib, raised
          before anything is written), never with ``False``.

        ``folder`` is created if needed and checked writable first (``ValueError`` naming
        it otherwise, before anything is written). All or nothing: every file is first
        written into a hidden staging folder inside ``folder``, then each is renamed into
        place (atomic: a reader sees an old file or the new one) once every target is known
        to take it — a target that exists and is not a file (``comparison.md`` a folder)
        is a ``ValueError`` naming it, with nothing written. Files of other names are left
        alone.
        """
        texts = {
            "comparison.json": self.to_json(allow_nan=False),
            "comparison.md": self.to_markdown() + "\n",
        }
        return save_report(folder, texts, self.plot, figures, "Comparison")
