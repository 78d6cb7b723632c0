"""The report of :func:`~cmverify.compare.compare_flow_map`: per-pair errors and identity
residuals, the ``k``-step chains, failures; JSON both ways, Markdown, figures."""

from __future__ import annotations

import json
import math
import os
import pathlib
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = ["ChainReport", "FlowMapComparison", "PairFailure", "PairReport"]


def _num(value: float | None, spec: str = ".3g") -> str:
    return "—" if value is None else format(value, spec)


@dataclass(frozen=True)
class PairFailure:
    """The model could not give ``X_{s→t}`` (or a chain or residual that needed it):
    ``kind`` ``exception``, ``invalid output`` (wrong shape, NaN/inf, complex, overflow
    in the conversion) or ``non-finite error``; ``what`` says which quantity needed it."""

    s: float
    t: float
    kind: str
    message: str
    what: str = "X_{s→t}"

    def describe(self) -> str:
        return f"({self.s:g} → {self.t:g}) {self.what}: {self.kind}: {self.message}"


@dataclass
class PairReport:
    """``|X_θ(s→t)(x) − X_{s→t}(x)|`` on ``x ~ p_s``: ``rmse``, ``relative_rmse`` (to the
    data's scale ``sqrt(tr Cov x0)``), ``p95_error``, ``max_error`` at ``worst_point``;
    the model's own laws: ``semigroup_rms`` = RMS of ``X_θ(u→t)∘X_θ(s→u) − X_θ(s→t)``
    with ``u`` the grid time halfway (``None`` where the kind cannot express it or the
    pair is one step of the grid), ``boundary_rms`` = RMS of ``X_θ(s→s)(x) − x`` for the
    kinds whose network gives it (``map``, ``boffi``, ``ctm``; ``None`` for the others,
    where it is zero by construction), and ``eulerian_rms`` = RMS of ``∂_s X_θ + ∇X_θ v_θ``
    with ``v_θ`` the model's own velocity; ``eulerian_method`` says how: ``"jvp"`` (a
    torch module: ``torch.func.jvp``, exact up to the network's rounding) or
    ``"differences"`` (second-order, step ``h = 1e-3``, ``v_θ`` from ``X_θ(s→s)``,
    ``X_θ(s→s−h)`` and ``X_θ(s→s−2h)``: up to 3e-5 for the exact map; also where the JVP
    raised); ``None`` where not expressible."""

    s: float
    t: float
    rmse: float | None = None
    relative_rmse: float | None = None
    p95_error: float | None = None
    max_error: float | None = None
    worst_point: list[float] | None = None
    semigroup_rms: float | None = None
    boundary_rms: float | None = None
    eulerian_rms: float | None = None
    eulerian_method: str | None = None
    failure: PairFailure | None = None


@dataclass
class ChainReport:
    """The ``k``-step chain ``x_{i+1} = X_θ(t_i → t_{i+1})(x_i)`` from ``x ~ p_{t_0}`` over
    ``times`` (``t_0 = 1``: ``x1 ~ N(0, I)``, or the kind's own noise; CTM starts where
    ``ς = 80``): its exact error against ``X_{t_0→0}(x)`` (``rmse``, ``relative_rmse``), the
    samples' energy distance to data (``energy_distance_floor``: two data samples),
    exact mean log-likelihood (``data_log_likelihood``: of data) and mode frequencies."""

    steps: int
    times: list[float]
    rmse: float | None = None
    relative_rmse: float | None = None
    energy_distance: float | None = None
    energy_distance_floor: float | None = None
    log_likelihood: float | None = None
    data_log_likelihood: float | None = None
    mode_frequencies: list[float] | None = None
    failure: PairFailure | None = None


@dataclass
class FlowMapComparison:
    """Everything :func:`~cmverify.compare.compare_flow_map` measured (see there)."""

    model: str
    kind: str
    convention: dict[str, Any]
    path: str
    dim: int
    n: int
    seed: int
    data_scale: float
    pairs: list[PairReport]
    chains: list[ChainReport]
    failures: list[PairFailure] = field(default_factory=list)
    wall_seconds: float = 0.0
    #: For the samples figure (not in the JSON; ``None`` for a report read back, and for
    #: d > 2): ``{"path", "data", "start", "samples": {k: (n, d) array}}`` of the uniform
    #: 1-step and largest-``k`` chains.
    figure_data: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        """No failure anywhere."""
        return not self.failures

    def at(self, s: float, t: float) -> PairReport:
        """The report of the pair ``(s, t)`` (``KeyError`` listing a few pairs otherwise)."""
        for report in self.pairs:
            if math.isclose(report.s, float(s), abs_tol=1e-12) and math.isclose(
                report.t, float(t), abs_tol=1e-12
            ):
                return report
        some = ", ".join(f"({r.s:g}, {r.t:g})" for r in self.pairs[:6])
        raise KeyError(f"({s!r}, {t!r}) is not a pair of this comparison (e.g. {some}, …)")

    def chain(self, steps: int) -> ChainReport:
        """The uniform ``steps``-step chain's report (``KeyError`` otherwise)."""
        for report in self.chains:
            if report.steps == steps and report.times == _uniform(report.times[0], steps):
                return report
        raise KeyError(f"no uniform {steps}-step chain in this comparison")

    # -- serialization ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        def plain(report: Any) -> dict[str, Any]:
            out = {f.name: getattr(report, f.name) for f in fields(report) if f.name != "failure"}
            out["failure"] = None if report.failure is None else _failure_dict(report.failure)
            return out

        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "figure_data"}
        data["convention"] = dict(self.convention)
        data["pairs"] = [plain(r) for r in self.pairs]
        data["chains"] = [plain(r) for r in self.chains]
        data["failures"] = [_failure_dict(f) for f in self.failures]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FlowMapComparison:
        def failure(value: dict[str, Any] | None) -> PairFailure | None:
            return None if value is None else PairFailure(**value)

        pairs = [PairReport(**{**r, "failure": failure(r["failure"])}) for r in data["pairs"]]
        chains = [ChainReport(**{**r, "failure": failure(r["failure"])}) for r in data["chains"]]
        rest = {k: v for k, v in data.items() if k not in ("pairs", "chains", "failures")}
        return cls(
            **rest,
            pairs=pairs,
            chains=chains,
            failures=[PairFailure(**f) for f in data["failures"]],
        )

    def to_json(self, **kwargs: Any) -> str:
        kwargs.setdefault("indent", 2)
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_json(cls, text: str | bytes) -> FlowMapComparison:
        return cls.from_dict(json.loads(text))

    # -- text ---------------------------------------------------------------------------
    def to_markdown(self) -> str:
        keywords = ", ".join(f"{k}={v!r}" for k, v in self.convention.items())
        lines = [
            f"# Flow-map comparison: {self.model}",
            "",
            f"Kind `{self.kind}`{f' ({keywords})' if keywords else ''} on {self.path} "
            f"(d = {self.dim}), {self.n} points x ~ p_s per pair, seed {self.seed}; errors "
            f"relative to the data scale {self.data_scale:.3g}.",
            "",
            "| s → t | RMSE | relative | p95 | max | semigroup | boundary | Eulerian |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in self.pairs:
            if r.failure is not None:
                lines.append(f"| {r.s:g} → {r.t:g} | failed: {r.failure.message} | | | | | | |")
                continue
            lines.append(
                f"| {r.s:g} → {r.t:g} | {_num(r.rmse)} | {_num(r.relative_rmse)} | "
                f"{_num(r.p95_error)} | {_num(r.max_error)} | {_num(r.semigroup_rms)} | "
                f"{_num(r.boundary_rms)} | {_num(r.eulerian_rms)} |"
            )
        lines += [
            "",
            f"## k-step sampling from p_{self.chains[0].times[0]:g}" if self.chains else "",
            "",
            "| steps | times | exact error (RMSE) | relative | energy distance (floor) | "
            "log-likelihood (data) |",
            "|---|---|---|---|---|---|",
        ]
        for c in self.chains:
            times = ", ".join(f"{t:g}" for t in c.times)
            if c.failure is not None:
                lines.append(f"| {c.steps} | {times} | failed: {c.failure.message} | | | |")
                continue
            lines.append(
                f"| {c.steps} | {times} | {_num(c.rmse)} | {_num(c.relative_rmse)} | "
                f"{_num(c.energy_distance)} ({_num(c.energy_distance_floor)}) | "
                f"{_num(c.log_likelihood, '.4f')} ({_num(c.data_log_likelihood, '.4f')}) |"
            )
        lines += [
            "",
            "More steps help only if the exact error of the chain falls with `k`; the "
            "energy distance is at the floor when the samples are as close to the data as "
            "another data sample.",
        ]
        if self.failures:
            lines += ["", "## Failures", ""] + [f"- {f.describe()}" for f in self.failures]
        return "\n".join(lines) + "\n"

    def plot(self, directory: str | os.PathLike[str]) -> list[pathlib.Path]:
        """``flow_map_errors.png`` (heat map of the relative RMSE over ``(s, t)`` and the
        chains' exact error against ``k``) in ``directory`` (created; ``ValueError`` naming
        it when it is not writable); returns the paths written. Needs matplotlib."""
        from .._io import check_writable
        from ._plots_flow_map import plot_flow_map_comparison

        return plot_flow_map_comparison(self, check_writable(directory, "directory"))

    def save(
        self, folder: str | os.PathLike[str], *, figures: bool | None = None
    ) -> list[pathlib.Path]:
        """Write ``flow_map_comparison.json``, ``flow_map_comparison.md`` and the figure
        (``figures``: ``None``, the default, when matplotlib is installed) into ``folder``,
        all or nothing, as :meth:`cmverify.compare.Comparison.save` does; returns the
        paths written."""
        from ._report import save_report

        texts = {
            "flow_map_comparison.json": self.to_json(allow_nan=False),
            "flow_map_comparison.md": self.to_markdown(),
        }
        return save_report(folder, texts, self.plot, figures, "FlowMapComparison")


def _uniform(start: float, steps: int) -> list[float]:
    """``start, …, 0`` in ``steps`` equal steps (the uniform chains' times)."""
    return [float(start * (1.0 - i / steps)) for i in range(steps + 1)]


def _failure_dict(f: PairFailure) -> dict[str, Any]:
    return {f_.name: getattr(f, f_.name) for f_ in fields(f)}
