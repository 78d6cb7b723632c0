"""Figures of a :class:`~cmverify.compare.Comparison` (matplotlib, Agg backend).

Every figure is drawn from its explicit arguments: the comparison (its numbers and
title) and, for the sample and arrow figures, the arrays of its
:class:`~cmverify.compare.FigureData`.

- ``error_vs_t.png``: RMSE, 95th percentile and maximum of ``|f(t, x_t) − f*(t, x_t)|``
  and the self-consistency against ``t`` on a log axis (relative to the data scale on the
  right axis); errors that are exactly 0 are drawn as markers on the bottom edge (a log
  axis has no 0); the threshold, the times that exceed it and the times where the model
  failed are marked.
- ``samples.png`` (d ≤ 2): one-step samples over the data density.
- ``arrows.png`` (d ≤ 2): ``x_t → f(t, x_t)`` for the model and ``x_t → f*(t, x_t)`` for the
  reference at the latest grid time; the frame holds every arrow, except model arrows that
  land far outside the reference's range (their number is stated).
"""

from __future__ import annotations

import pathlib
import textwrap
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from ..exact import MixturePath
    from ._report import Comparison, FigureData

__all__ = ["FRAME_FACTOR", "N_ARROWS", "write_figures"]

#: Arrows drawn in ``arrows.png``.
N_ARROWS = 50
#: Model end points further than this many reference extents from the reference's centre
#: do not stretch the frame of ``arrows.png`` (they are counted in the title instead).
FRAME_FACTOR = 2.0


def _title(comparison: Comparison, what: str) -> str:
    """Two or more lines: the model's name (long file paths shortened), then ``what`` and
    the path, each wrapped to fit the figure."""
    name = comparison.model
    if len(name) > 100:
        name = name[:45] + "…" + name[-50:]
    lines = textwrap.wrap(f"{name}", 70, break_long_words=True, break_on_hyphens=False)
    lines += textwrap.wrap(f"{what} — {comparison.path}", 75, break_on_hyphens=False)
    return "\n".join(lines)


def _limits(
    anchor: np.ndarray, extra: np.ndarray, pad: float = 0.06
) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-coordinate limits holding every row of ``anchor`` and every row of ``extra``
    within ``FRAME_FACTOR`` extents of ``anchor``'s centre; also the number of rows of
    ``extra`` left outside."""
    lo, hi = anchor.min(axis=0), anchor.max(axis=0)
    centre, half = (lo + hi) / 2, np.maximum((hi - lo) / 2, 1e-12)
    inside = np.all(np.abs(extra - centre) <= FRAME_FACTOR * 2 * half, axis=1)
    if np.any(inside):
        lo = np.minimum(lo, extra[inside].min(axis=0))
        hi = np.maximum(hi, extra[inside].max(axis=0))
    margin = pad * np.maximum(hi - lo, 1e-12)
    return lo - margin, hi + margin, int(np.sum(~inside))


def _error_figure(comparison: Comparison, plt) -> object:
    from matplotlib.lines import Line2D
    from matplotlib.ticker import LogFormatterSciNotation

    fig, ax = plt.subplots(figsize=(7, 4.8), layout="constrained")
    ok = [r for r in comparison.per_time if r.failure is None]
    threshold = comparison.threshold
    bounded = None if threshold is None else ("rmse" if threshold.metric == "rmse" else "max_error")
    curves = (
        ("rmse", "RMSE", "tab:blue", "o", "-"),
        ("p95_error", "95th percentile", "tab:orange", "s", "-"),
        ("max_error", "max", "tab:green", "^", "-"),
        ("self_consistency", "self-consistency |f(t, x_t) − f(s, X_{t→s}(x_t))|", "0.45", "d", ":"),
    )
    zeros: list[tuple[np.ndarray, str, str]] = []  # times where a curve is exactly 0
    positive: list[float] = []
    for key, label, color, marker, style in curves:
        rows = [r for r in ok if getattr(r, key) is not None]
        if not rows:
            continue
        ts = np.array([r.t for r in rows], dtype=float)
        values = np.array([getattr(r, key) for r in rows], dtype=float)
        keep = values > 0
        positive += list(values[keep])
        if not np.all(keep):
            zeros.append((ts[~keep], color, marker))
        masked = np.where(keep, values, np.nan)  # a log axis has no 0: break the line there
        ax.plot(ts, masked, linestyle=style, marker=marker, color=color, label=label, ms=5)
        if key == bounded:
            hits = {e.t for e in comparison.exceeded}
            over = np.array([t in hits for t in ts])
            if np.any(over):
                ax.plot(
                    ts[over],
                    values[over],
                    linestyle="none",
                    marker="o",
                    ms=12,
                    mfc="none",
                    mec="tab:red",
                    mew=1.5,
                    label=f"{threshold.statistic} above the threshold",
                )
    ax.set_yscale("log")
    if positive:
        lo, hi = min(positive), max(positive)
        if threshold is not None and threshold.tolerance > 0:
            lo, hi = min(lo, threshold.tolerance), max(hi, threshold.tolerance)
        ax.set_ylim(lo / 4, hi * 4)
    else:
        ax.set_ylim(1e-16, 1.0)
        message = "every error is exactly 0" if ok else "no errors: the model failed at every t"
        ax.text(0.5, 0.5, message, transform=ax.transAxes, ha="center")
    for at, color, marker in zeros:  # on the bottom edge: x in data, y in axes units
        ax.plot(
            at,
            np.zeros(len(at)),
            linestyle="none",
            marker=marker,
            color=color,
            ms=7,
            clip_on=False,
            transform=ax.get_xaxis_transform(),
            zorder=5,
        )
    zero_handles = (
        [
            Line2D(
                [],
                [],
                linestyle="none",
                marker="o",
                mfc="none",
                mec="k",
                label="exactly 0 (drawn on the t axis)",
            )
        ]
        if zeros
        else []
    )
    if threshold is not None and threshold.tolerance > 0:
        ax.axhline(
            threshold.tolerance,
            color="tab:red",
            linestyle="--",
            lw=1.2,
            label=f"threshold: {threshold.statistic} ≤ {threshold.tolerance:.3g}",
        )
    failed = [r.t for r in comparison.per_time if r.failure is not None]
    for i, t in enumerate(failed):
        ax.axvline(
            t,
            color="tab:red",
            alpha=0.35,
            lw=6,
            label="model call failed" if i == 0 else None,
        )
    ax.yaxis.set_minor_formatter(
        LogFormatterSciNotation(labelOnlyBase=False, minor_thresholds=(2, 1))
    )
    ax.set_xlim(-0.03, 1.03)
    ax.set_xlabel("t")
    ax.set_ylabel("|f(t, x_t) − f*(t, x_t)|")
    scale = comparison.data_scale
    if scale > 0:
        right = ax.secondary_yaxis("right", functions=(lambda y: y / scale, lambda y: y * scale))
        right.set_ylabel("relative to the data scale sqrt(tr Cov x0)")
        right.yaxis.set_minor_formatter(
            LogFormatterSciNotation(labelOnlyBase=False, minor_thresholds=(2, 1))
        )
    ax.grid(True, which="major", alpha=0.3)
    ax.set_title(_title(comparison, "error against the exact flow map"), fontsize=10)
    handles, labels = ax.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: "above the threshold" in labels[i])
    handles, labels = [handles[i] for i in order], [labels[i] for i in order]
    handles += zero_handles
    labels += [h.get_label() for h in zero_handles]
    fig.legend(handles, labels, loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    return fig


def samples_figure(
    path: MixturePath,
    data: np.ndarray,
    sets: list[tuple[np.ndarray, str]],
    title: str,
    plt,
) -> object:
    """Each ``(samples, label)`` of ``sets`` (shapes ``(m, d)``, d ≤ 2) over the data
    density of ``path``; the frame holds the 0.1–99.9% quantiles of the data sample
    ``data``, padded."""
    lo, hi = np.quantile(data, [0.001, 0.999], axis=0)
    pad = 0.15 * (hi - lo)
    lo, hi = lo - pad, hi + pad
    colors = ("tab:orange", "tab:blue", "tab:green", "tab:red")
    labelled = []
    for samples, label in sets:
        outside = int(np.sum(np.any((samples < lo) | (samples > hi), axis=1)))
        note = f" ({outside} of {len(samples)} outside the frame)" if outside else ""
        labelled.append((samples, label + note))
    if path.dim == 1:
        fig, ax = plt.subplots(figsize=(7, 4.2), layout="constrained")
        grid = np.linspace(lo[0], hi[0], 600)[:, None]
        for (samples, label), color in zip(labelled, colors, strict=False):
            if not np.any((samples[:, 0] >= lo[0]) & (samples[:, 0] <= hi[0])):
                ax.plot([], [], color=color, label=label)  # none in the frame: no density
                continue
            ax.hist(
                samples[:, 0],
                bins=np.linspace(lo[0], hi[0], 90),
                density=True,
                alpha=0.55 if len(sets) == 1 else 0.4,
                color=color,
                label=label,
            )
        ax.plot(grid[:, 0], np.exp(path.log_prob(0.0, grid)), "k-", lw=1.2, label="data density")
        ax.set_xlim(lo[0], hi[0])
        ax.set_xlabel("x")
        ax.set_ylabel("density")
        ax.legend(loc="upper right", fontsize=8)
    else:
        fig, ax = plt.subplots(figsize=(6, 6.2), layout="constrained")
        gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 200), np.linspace(lo[1], hi[1], 200))
        dens = np.exp(path.log_prob(0.0, np.stack([gx.ravel(), gy.ravel()], 1))).reshape(gx.shape)
        ax.contourf(gx, gy, dens, levels=12, cmap="Greys")
        for (samples, label), color in zip(labelled, colors, strict=False):
            ax.scatter(samples[:, 0], samples[:, 1], s=3, alpha=0.5, color=color, label=label)
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
        ax.set_aspect("equal")
        ax.set_xlabel("x, coordinate 1")
        ax.set_ylabel("x, coordinate 2")
        fig.legend(loc="outside lower center", fontsize=8, frameon=False)
    ax.set_title(title, fontsize=10)
    return fig


def _arrows_figure(
    comparison: Comparison,
    path: MixturePath,
    t: float,
    points: tuple[np.ndarray, np.ndarray, np.ndarray],
    plt,
) -> object:
    """``x_t → f(t, x_t)`` and ``x_t → f*(t, x_t)`` for the first :data:`N_ARROWS` rows of
    ``points = (x_t, f(t, x_t), f*(t, x_t))`` (each ``(k, d)``, d ≤ 2) over the data
    density of ``path``; for d = 1 also the signed error at every row."""
    x, model_out, ref_out = (np.asarray(a[:N_ARROWS]) for a in points)
    if path.dim == 1:
        fig, (ax, err_ax) = plt.subplots(
            1, 2, figsize=(10, 4.8), layout="constrained", width_ratios=(3, 2)
        )
        all_x, all_model, all_ref = (np.asarray(a) for a in points)
        err_ax.axhline(0.0, color="0.55", lw=1)
        signed = all_model[:, 0] - all_ref[:, 0]
        err_ax.scatter(all_x[:, 0], signed, s=8, color="tab:blue")
        typical, largest = float(np.quantile(np.abs(signed), 0.9)), float(np.max(np.abs(signed)))
        if largest > 20 * typical:  # outliers: a symmetric log axis keeps the bulk visible
            err_ax.set_yscale("symlog", linthresh=max(typical, 1e-4 * largest))
        err_ax.set_xlabel(f"x_t (t = {t:g})")
        err_ax.set_ylabel("f(t, x_t) − f*(t, x_t)")
        err_ax.set_title("signed error against x_t", fontsize=10)
        err_ax.grid(True, alpha=0.3)
        anchor = np.concatenate([x[:, 0], ref_out[:, 0]])[:, None]
        lo, hi, outside = _limits(anchor, model_out)
        common = {"angles": "xy", "scale_units": "xy", "scale": 1, "width": 0.003}
        start = np.full(len(x), t)
        ax.quiver(
            start,
            x[:, 0],
            -start,
            ref_out[:, 0] - x[:, 0],
            color="0.55",
            label="exact: x_t → f*(t, x_t)",
            **common,
        )
        ax.quiver(
            start,
            x[:, 0],
            -start,
            model_out[:, 0] - x[:, 0],
            color="tab:blue",
            alpha=0.7,
            label="model: x_t → f(t, x_t)",
            **common,
        )
        ax.scatter(start, x[:, 0], s=8, color="k", zorder=3, label="x_t")
        ax.set_xlim(-0.04 * max(t, 1e-3), t * 1.04 + 1e-3)
        ax.set_ylim(lo[0], hi[0])
        ax.set_xlabel("t")
        ax.set_ylabel("x")
    else:
        fig, ax = plt.subplots(figsize=(6, 6.4), layout="constrained")
        anchor = np.concatenate([x, ref_out])
        lo, hi, outside = _limits(anchor, model_out)
        gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 150), np.linspace(lo[1], hi[1], 150))
        dens = np.exp(path.log_prob(0.0, np.stack([gx.ravel(), gy.ravel()], 1))).reshape(gx.shape)
        ax.contourf(gx, gy, dens, levels=10, cmap="Greys", alpha=0.5)
        common = {"angles": "xy", "scale_units": "xy", "scale": 1, "width": 0.0035}
        ax.quiver(
            x[:, 0],
            x[:, 1],
            *(ref_out - x).T,
            color="0.45",
            label="exact: x_t → f*(t, x_t)",
            **common,
        )
        ax.quiver(
            x[:, 0],
            x[:, 1],
            *(model_out - x).T,
            color="tab:blue",
            alpha=0.75,
            label="model: x_t → f(t, x_t)",
            **common,
        )
        ax.scatter(x[:, 0], x[:, 1], s=6, color="k", zorder=3, label="x_t")
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
        ax.set_aspect("equal")
        ax.set_xlabel("x, coordinate 1")
        ax.set_ylabel("x, coordinate 2")
    note = f"; {outside} model arrows end outside the frame" if outside else ""
    where = f"where x_t at t = {t:g} is sent" + (", over the data density" if path.dim == 2 else "")
    title = _title(comparison, where + note)
    if path.dim == 1:
        fig.suptitle(title, fontsize=10)
    else:
        ax.set_title(title, fontsize=10)
    fig.legend(loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    return fig


def write_figures(
    comparison: Comparison, data: FigureData | None, directory: pathlib.Path
) -> list[pathlib.Path]:
    """Write ``error_vs_t.png`` from ``comparison``, and from ``data`` (when given, for
    d ≤ 2) ``samples.png`` if it holds one-step samples and ``arrows.png`` if it holds
    arrows, into ``directory`` (created if needed); return the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    written = []

    def save(fig, name: str) -> None:
        out = directory / name
        fig.savefig(out, dpi=110)
        plt.close(fig)
        written.append(out)

    save(_error_figure(comparison, plt), "error_vs_t.png")
    if data is None or data.path.dim > 2:
        return written
    if data.one_step is not None:
        title = _title(comparison, "one-step samples f(1, x1) over the data density")
        sets = [(data.one_step, "one-step samples f(1, x1)")]
        save(samples_figure(data.path, data.data, sets, title, plt), "samples.png")
    if data.arrow_time is not None:
        arrows = (data.arrow_points, data.arrow_model, data.arrow_exact)
        save(_arrows_figure(comparison, data.path, data.arrow_time, arrows, plt), "arrows.png")
    return written
