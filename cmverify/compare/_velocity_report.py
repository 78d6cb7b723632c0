"""The report of :func:`~cmverify.compare.compare_velocity`: per-time errors and the loss
split, the induced flow, failures; JSON both ways, Markdown, figures."""

from __future__ import annotations

import json
import math
import os
import pathlib
from dataclasses import dataclass, field, fields
from typing import Any

from ._models import ModelFailure

__all__ = ["InducedFlowReport", "VelocityComparison", "VelocityTimeReport"]


def _num(value: float | None, spec: str = ".3g") -> str:
    return "—" if value is None else format(value, spec)


@dataclass
class VelocityTimeReport:
    """The model's velocity against the exact ``v`` at one time ``t``, on ``x_t ~ p_t``.

    ``rmse``, ``p95_error``, ``max_error`` (at ``worst_point``) of ``|v_θ − v|``;
    ``relative_rmse = rmse / RMS(v)``. The loss split of the flow-matching loss at ``t``:
    ``model_loss = mean |v_θ − v_c|²`` (the user's training loss at this ``t``, with its
    standard error ``model_loss_se``) ``≈ loss_floor + excess_loss``, where ``loss_floor
    = E |v_c − v|²`` is exact (:func:`cmverify.loss_floors.flow_matching`) and
    ``excess_loss = mean |v_θ − v|²`` (standard error ``excess_loss_se``). ``None`` where
    the model failed at this time (``failure``). ``loss_floor_error``: the floor's
    quadrature error estimate (:func:`cmverify.loss_floors.flow_matching_quadrature`).
    """

    t: float
    rmse: float | None = None
    relative_rmse: float | None = None
    p95_error: float | None = None
    max_error: float | None = None
    worst_point: list[float] | None = None
    loss_floor: float | None = None
    loss_floor_error: float | None = None
    excess_loss: float | None = None
    excess_loss_se: float | None = None
    model_loss: float | None = None
    model_loss_se: float | None = None
    failure: ModelFailure | None = None


@dataclass
class InducedFlowReport:
    """The model's own ODE ``dx/dt = v_θ(t, x)`` integrated from ``t_start`` to ``t_end``
    (per-trajectory DOP853 at ``rtol``) from ``x ~ p_{t_start}``, against the exact map
    ``X_{t_start→t_end}`` of the same points: ``rmse``, ``relative_rmse`` (to the data's
    scale ``sqrt(tr Cov x0)``), ``max_error``; the samples' energy distance to
    ``p_{t_end}`` with its i.i.d. floor, and their exact mean log-density
    ``log p_{t_end}`` next to that of exact samples. ``model_calls``: batched calls."""

    t_start: float
    t_end: float
    rtol: float
    rmse: float | None = None
    relative_rmse: float | None = None
    max_error: float | None = None
    energy_distance: float | None = None
    energy_distance_floor: float | None = None
    log_likelihood: float | None = None
    data_log_likelihood: float | None = None
    model_calls: int | None = None
    failure: ModelFailure | None = None


@dataclass
class VelocityComparison:
    """Everything :func:`~cmverify.compare.compare_velocity` measured (see there)."""

    model: str
    path: str
    dim: int
    n: int
    seed: int
    parameterization: str
    time_convention: str
    data_scale: float
    per_time: list[VelocityTimeReport]
    induced: InducedFlowReport | None
    failures: list[ModelFailure] = field(default_factory=list)
    wall_seconds: float = 0.0
    #: What the numbers do not cover (a floor not computed, or not converged).
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No failure anywhere."""
        return not self.failures

    def at(self, t: float) -> VelocityTimeReport:
        """The report at grid time ``t`` (``KeyError`` naming the grid otherwise)."""
        for report in self.per_time:
            if math.isclose(report.t, float(t), rel_tol=0.0, abs_tol=1e-12):
                return report
        grid = ", ".join(f"{r.t:g}" for r in self.per_time)
        raise KeyError(f"t = {t!r} is not a time of this comparison ({grid})")

    # -- serialization ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types; failures as :meth:`ModelFailure.to_dict`."""

        def plain(report: Any) -> dict[str, Any]:
            out = {f.name: getattr(report, f.name) for f in fields(report) if f.name != "failure"}
            out["failure"] = None if report.failure is None else report.failure.to_dict()
            return out

        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["per_time"] = [plain(r) for r in self.per_time]
        data["induced"] = None if self.induced is None else plain(self.induced)
        data["failures"] = [f.to_dict() for f in self.failures]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VelocityComparison:
        """The inverse of :meth:`to_dict`."""

        def failure(value: dict[str, Any] | None) -> ModelFailure | None:
            return None if value is None else ModelFailure.from_dict(value)

        per_time = [
            VelocityTimeReport(**{**r, "failure": failure(r.get("failure"))})
            for r in data["per_time"]
        ]
        induced = data.get("induced")
        if induced is not None:
            induced = InducedFlowReport(**{**induced, "failure": failure(induced.get("failure"))})
        rest = {k: v for k, v in data.items() if k not in ("per_time", "induced", "failures")}
        return cls(
            **rest,
            per_time=per_time,
            induced=induced,
            failures=[ModelFailure.from_dict(f) for f in data.get("failures", [])],
        )

    def to_json(self, **kwargs: Any) -> str:
        """:meth:`to_dict` as JSON (``kwargs`` to ``json.dumps``, default ``indent=2``)."""
        kwargs.setdefault("indent", 2)
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_json(cls, text: str | bytes) -> VelocityComparison:
        return cls.from_dict(json.loads(text))

    # -- text ---------------------------------------------------------------------------
    def to_markdown(self) -> str:
        """The per-time table (errors and the loss split) and the induced flow."""
        lines = [
            f"# Velocity comparison: {self.model}",
            "",
            f"Path {self.path} (d = {self.dim}), {self.n} points per time, seed {self.seed}; "
            f"parameterization `{self.parameterization}`, time convention "
            f"`{self.time_convention}`.",
            "",
            "| t | RMSE | relative RMSE | max error | FM loss of v_θ | floor | excess | "
            "loss − floor − excess |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in self.per_time:
            if r.failure is not None:
                lines.append(f"| {r.t:g} | failed: {r.failure.describe()} | | | | | | |")
                continue
            gap = (
                "—"
                if r.loss_floor is None
                else f"{r.model_loss - r.loss_floor - r.excess_loss:+.1e}"
            )
            lines.append(
                f"| {r.t:g} | {_num(r.rmse)} | {_num(r.relative_rmse)} | {_num(r.max_error)} | "
                f"{_num(r.model_loss, '.4g')} ± {_num(r.model_loss_se, '.1g')} | "
                f"{_num(r.loss_floor, '.4g')} | {_num(r.excess_loss, '.3g')} | {gap} |"
            )
        lines += [
            "",
            "The FM loss at `t` is the flow-matching loss `mean |v_θ − v_c|²` of the model's "
            "velocity on these points"
            + (
                ""
                if self.parameterization == "velocity"
                else f" (its `{self.parameterization}` output converted to a velocity: not the "
                "loss it was trained on)"
            )
            + "; the floor `E |v_c − v|²` is what the exact velocity scores (exact, by "
            "quadrature); the excess `mean |v_θ − v|²` is the model's error. The last column "
            "is sampling noise (the cross term, zero in expectation).",
        ]
        if self.notes:
            lines += ["", "Notes:", ""] + [f"- {note}" for note in self.notes]
        i = self.induced
        if i is not None:
            lines += ["", f"## Induced flow (t = {i.t_start:g} → {i.t_end:g}, rtol {i.rtol:g})", ""]
            if i.failure is not None:
                lines.append(f"Failed: {i.failure.describe()}")
            else:
                lines.append(
                    f"RMSE against the exact map {_num(i.rmse)} (relative {_num(i.relative_rmse)}), "
                    f"max {_num(i.max_error)}; energy distance {_num(i.energy_distance)} "
                    f"(i.i.d. floor {_num(i.energy_distance_floor)}); mean log-density "
                    f"{_num(i.log_likelihood, '.4f')} (exact samples "
                    f"{_num(i.data_log_likelihood, '.4f')}); {i.model_calls} model calls. "
                    f"The solve's own tolerance (rtol {i.rtol:g}) leaves an exact model a few "
                    f"times {i.rtol:g} here (the exact velocity: RMSE 2e-8 to 6e-8 measured, "
                    "max up to 6e-7): the floor of this column."
                )
        if self.failures:
            lines += ["", "## Failures", ""] + [f"- {f.describe()}" for f in self.failures]
        return "\n".join(lines) + "\n"

    def save(
        self, folder: str | os.PathLike[str], *, figures: bool | None = None
    ) -> list[pathlib.Path]:
        """Write ``velocity_comparison.json``, ``velocity_comparison.md`` and the figure
        (``figures``: ``None``, the default, when matplotlib is installed) into ``folder``,
        all or nothing, as :meth:`cmverify.compare.Comparison.save` does (``ValueError``
        naming ``folder`` when it is not writable, before anything is written); returns the
        paths written."""
        from ._report import save_report

        texts = {
            "velocity_comparison.json": self.to_json(allow_nan=False),
            "velocity_comparison.md": self.to_markdown(),
        }
        return save_report(folder, texts, self.plot, figures, "VelocityComparison")

    def plot(self, directory: str | os.PathLike[str]) -> list[pathlib.Path]:
        """``velocity_errors.png`` (RMSE and the loss split against ``t``) in
        ``directory`` (created); returns the paths written."""
        from ._plots_velocity import plot_velocity_comparison

        return plot_velocity_comparison(self, pathlib.Path(directory))
