"""The figure of a :class:`~cmverify.compare.FlowMapComparison` (matplotlib, Agg).

``flow_map_errors.png``: left, a heat map of the relative RMSE of ``X_θ(s→t)`` over the
pairs (log colour scale; failed pairs hatched in red, pairs not compared blank); right,
the exact error of the uniform ``k``-step chains against ``k`` (does more steps help?).
"""

from __future__ import annotations

import pathlib
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from ._flow_map_report import FlowMapComparison

__all__ = ["plot_flow_map_comparison"]


def plot_flow_map_comparison(
    comparison: FlowMapComparison, directory: pathlib.Path
) -> list[pathlib.Path]:
    """Write ``flow_map_errors.png`` into ``directory`` (created); return its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    directory.mkdir(parents=True, exist_ok=True)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.6), layout="constrained")
    ss = sorted({r.s for r in comparison.pairs})
    ts = sorted({r.t for r in comparison.pairs})
    grid = np.full((len(ts), len(ss)), np.nan)
    for r in comparison.pairs:
        if r.relative_rmse is not None:
            grid[ts.index(r.t), ss.index(r.s)] = max(r.relative_rmse, 1e-16)
    finite = grid[np.isfinite(grid)]
    norm = (
        LogNorm(vmin=finite.min(), vmax=max(finite.max(), finite.min() * 10))
        if finite.size
        else None
    )
    image = left.imshow(grid, origin="lower", aspect="auto", cmap="viridis", norm=norm)
    for r in comparison.pairs:
        if r.failure is not None:
            left.add_patch(
                plt.Rectangle(
                    (ss.index(r.s) - 0.5, ts.index(r.t) - 0.5),
                    1,
                    1,
                    fill=False,
                    hatch="xx",
                    edgecolor="red",
                )
            )
    left.set_xticks(range(len(ss)), [f"{v:g}" for v in ss], rotation=90, fontsize=7)
    left.set_yticks(range(len(ts)), [f"{v:g}" for v in ts], fontsize=7)
    left.set_xlabel("s (start)")
    left.set_ylabel("t (end)")
    left.set_title("relative RMSE of X_θ(s→t)", fontsize=10)
    fig.colorbar(image, ax=left)
    uniform = [c for c in comparison.chains if c.failure is None and c.rmse is not None]
    steps = [c.steps for c in uniform]
    if uniform:
        values = [max(c.relative_rmse, 1e-16) for c in uniform]
        right.plot(steps, values, "o-")
        right.set_xscale("log", base=2)
        right.set_yscale("log")
        right.set_ylim(min(values) / 3, max(values) * 3)
        right.minorticks_off()
        right.set_xticks(steps, [str(k) for k in steps])
    right.set_xlabel("steps k")
    start = uniform[0].times[0] if uniform else 1.0
    right.set_ylabel(f"relative error of the k-step chain vs X_{{{start:g}→0}}")
    fig.suptitle(f"{comparison.model}: {comparison.kind} on {comparison.path}", fontsize=10)
    out = directory / "flow_map_errors.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    written = [out]
    data = comparison.figure_data
    if data is not None and data["path"].dim <= 2 and data["samples"]:
        from ._plots import samples_figure

        sets = [
            (x, f"{k}-step chain from t = {data['start']:g}") for k, x in data["samples"].items()
        ]
        title = f"{comparison.model}: {comparison.kind} samples over the data density"
        fig = samples_figure(data["path"], data["data"], sets, title, plt)
        out = directory / "flow_map_samples.png"
        fig.savefig(out, dpi=110)
        plt.close(fig)
        written.append(out)
    return written
