"""Figures of a :class:`~cmverify.compare.Comparison` (matplotlib, Agg backend)."""

from __future__ import annotations

import pathlib
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from .compare import Comparison


def plot(comparison: Comparison, directory: pathlib.Path) -> list[pathlib.Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    written = []

    ok = [r for r in comparison.per_time if r.failure is None]
    fig, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
    ts = [r.t for r in ok]
    for key, label in (("rmse", "RMSE"), ("p95_error", "95th percentile"), ("max_error", "max")):
        values = np.array([getattr(r, key) for r in ok], dtype=float)
        ax.semilogy(ts, np.maximum(values, 1e-16), marker="o", label=label)
    failed = [r.t for r in comparison.per_time if r.failure is not None]
    for t in failed:
        ax.axvline(t, color="red", alpha=0.4)
    ax.set_xlabel("t")
    ax.set_ylabel("|f(t, x_t) − f*(t, x_t)|")
    ax.set_title(f"{comparison.model} vs the exact flow map ({comparison.path})", fontsize=9)
    ax.legend()
    out = directory / "error_vs_t.png"
    fig.savefig(out, dpi=100)
    plt.close(fig)
    written.append(out)

    path = comparison._plot.get("path")
    samples = comparison._plot.get("one_step")
    if path is not None and path.dim <= 2 and samples is not None:
        fig, ax = plt.subplots(figsize=(5, 5) if path.dim == 2 else (6, 4), constrained_layout=True)
        if path.dim == 1:
            grid = np.linspace(samples.min() - 1, samples.max() + 1, 400)[:, None]
            ax.plot(grid[:, 0], np.exp(path.log_prob(0.0, grid)), "k-", label="data density")
            ax.hist(samples[:, 0], bins=80, density=True, alpha=0.5, label="one-step samples")
            ax.legend()
        else:
            lo, hi = np.quantile(comparison._plot["reference"].data, [0.001, 0.999], axis=0)
            pad = 0.5 * (hi - lo)
            gx, gy = np.meshgrid(
                np.linspace(lo[0] - pad[0], hi[0] + pad[0], 150),
                np.linspace(lo[1] - pad[1], hi[1] + pad[1], 150),
            )
            dens = np.exp(path.log_prob(0.0, np.stack([gx.ravel(), gy.ravel()], 1))).reshape(
                gx.shape
            )
            ax.contourf(gx, gy, dens, levels=12, cmap="Greys")
            ax.scatter(
                samples[:, 0],
                samples[:, 1],
                s=2,
                alpha=0.4,
                color="tab:orange",
                label="one-step samples",
            )
            ax.legend(loc="upper right")
        ax.set_title("one-step samples over the data density", fontsize=9)
        out = directory / "samples.png"
        fig.savefig(out, dpi=100)
        plt.close(fig)
        written.append(out)

    points = comparison._plot.get("points", {})
    if path is not None and path.dim <= 2 and points:
        fig, ax = plt.subplots(figsize=(6, 5), constrained_layout=True)
        chosen = [t for t in sorted(points) if t > 0][-1:] if path.dim == 2 else sorted(points)
        for t in chosen:
            x, model_out, ref_out = (a[:40] for a in points[t])
            if path.dim == 1:
                for xi, mi, ri in zip(x[:, 0], model_out[:, 0], ref_out[:, 0], strict=True):
                    ax.plot([t, 0.0], [xi, ri], color="0.7", lw=0.8)
                    ax.annotate(
                        "",
                        xy=(0.0, mi),
                        xytext=(t, xi),
                        arrowprops={
                            "arrowstyle": "->",
                            "color": "tab:blue",
                            "alpha": 0.5,
                            "lw": 0.6,
                        },
                    )
                ax.set_xlabel("t")
                ax.set_ylabel("x")
            else:
                ax.quiver(
                    x[:, 0],
                    x[:, 1],
                    ref_out[:, 0] - x[:, 0],
                    ref_out[:, 1] - x[:, 1],
                    angles="xy",
                    scale_units="xy",
                    scale=1,
                    color="0.6",
                    width=0.003,
                    label="f* (reference)",
                )
                ax.quiver(
                    x[:, 0],
                    x[:, 1],
                    model_out[:, 0] - x[:, 0],
                    model_out[:, 1] - x[:, 1],
                    angles="xy",
                    scale_units="xy",
                    scale=1,
                    color="tab:blue",
                    width=0.003,
                    alpha=0.7,
                    label=f"model, t = {t:g}",
                )
                ax.legend(loc="upper right")
        ax.set_title("x_t → start of trajectory: model (blue) and reference (grey)", fontsize=9)
        out = directory / "arrows.png"
        fig.savefig(out, dpi=100)
        plt.close(fig)
        written.append(out)
    return written
