"""A :class:`~cmverify.compare.Comparison` as Markdown (``Comparison.to_markdown``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from ._report import Comparison, SampleReport, TimeReport

__all__ = ["comparison_markdown"]


def _num(v: float | None) -> str:
    return "—" if v is None else f"{v:.3g}"


def _time_row(r: TimeReport, gate: bool, exceeded: set[float]) -> str:
    if r.failure:
        return f"| {r.t:g} | FAILED: {r.failure.describe()} | | | | | |" + (" no |" if gate else "")
    worst = "(" + ", ".join(f"{v:.3g}" for v in r.worst_point or []) + ")"
    sc = (
        "—"
        if r.self_consistency is None
        else f"{r.self_consistency:.3g} (s = {r.self_consistency_s:g})"
    )
    verdict = (" **no: exceeds** |" if r.t in exceeded else " yes |") if gate else ""
    return (
        f"| {r.t:g} | {_num(r.rmse)} | {_num(r.relative_rmse)} | {_num(r.p95_error)} | "
        f"{_num(r.max_error)} | {worst} | {sc} |{verdict}"
    )


def _sample_row(s: SampleReport) -> str:
    name = "one-step" if s.steps == 1 else f"multistep {s.times}"
    if s.failure:
        return f"| {name} | {s.steps} | FAILED: {s.failure.describe()} | | | | |"
    modes = (
        "—"
        if s.mode_frequencies is None
        else ", ".join(
            f"{f:.2f} ({w:.2f})"
            for f, w in zip(s.mode_frequencies, s.mode_weights or [], strict=True)
        )
    )
    return (
        f"| {name} | {s.steps} | {_num(s.energy_distance)} | {_num(s.energy_distance_floor)} | "
        f"{_num(s.log_likelihood)} | {_num(s.data_log_likelihood)} | {modes} |"
    )


def comparison_markdown(c: Comparison) -> str:
    """The verdict, a table of the errors per time (with a column saying whether each
    time is within the threshold, when one was given), the boundary gap, a table of the
    samplers, the failures (the first three tracebacks) and the wall time."""
    exceeded = {e.t for e in c.exceeded}
    gate = c.threshold is not None
    lines = [
        f"# Comparison of `{c.model}` with the exact flow map",
        "",
        f"**{c.verdict()}**",
        "",
        f"Path: {c.path}; d = {c.dim}; {c.n} points x_t ~ p_t per time; seed {c.seed}; "
        f"data scale sqrt(tr Cov x0) = {c.data_scale:.3g}.",
        "",
        "| t | RMSE | relative RMSE | p95 error | max error | worst at | self-consistency vs s |"
        + (" within threshold |" if gate else ""),
        "|---|---|---|---|---|---|---|" + ("---|" if gate else ""),
    ]
    lines += [_time_row(r, gate, exceeded) for r in c.per_time]
    lines += [
        "",
        f"Boundary |f(0, x) − x| on data: RMS {_num(c.boundary_rms)}, max {_num(c.boundary_max)}.",
        "",
    ]
    if c.samples:
        lines += [
            "| sampler | evaluations | energy distance | i.i.d. floor | log-likelihood | "
            "data log-likelihood | mode frequencies (weights) |",
            "|---|---|---|---|---|---|---|",
        ]
    lines += [_sample_row(s) for s in c.samples]
    if c.failures:
        lines += ["", "## Failures", ""] + [f"- {f.describe()}" for f in c.failures]
        lines += [f"  ```\n  {f.traceback}\n  ```" for f in c.failures if f.traceback][:3]
    lines += ["", f"({c.wall_seconds:.1f} s)"]
    return "\n".join(lines)
