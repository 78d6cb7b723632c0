"""The figure of a :class:`~cmverify.compare.VelocityComparison` (matplotlib, Agg).

``velocity_errors.png``: left, the RMSE and maximum of ``|v_θ − v|`` against ``t`` (log
axis; exact zeros drawn on the bottom edge); right, the loss split — the model's loss
with its standard error, the exact floor and floor + excess — against ``t``. Times where
the model failed are marked on both panels.
"""

from __future__ import annotations

import pathlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from ._velocity_report import VelocityComparison

__all__ = ["plot_velocity_comparison"]


def plot_velocity_comparison(
    comparison: VelocityComparison, directory: pathlib.Path
) -> list[pathlib.Path]:
    """Write ``velocity_errors.png`` into ``directory`` (created); return its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    ok = [r for r in comparison.per_time if r.failure is None]
    failed = [r.t for r in comparison.per_time if r.failure is not None]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.4), layout="constrained")
    positive = [v for r in ok for v in (r.rmse, r.max_error) if v and v > 0]
    bottom = min(positive) / 10 if positive else 1e-16
    for key, label, marker in (("rmse", "RMSE", "o"), ("max_error", "max", "^")):
        ts = [r.t for r in ok]
        values = [getattr(r, key) or bottom for r in ok]
        left.semilogy(ts, values, marker=marker, label=f"{label} |v_θ − v|")
    left.set_ylim(bottom=bottom)
    left.set_xlabel("t (data at 0)")
    left.set_ylabel("error")
    ts = [r.t for r in ok]
    right.errorbar(
        ts,
        [r.model_loss for r in ok],
        yerr=[2 * (r.model_loss_se or 0.0) for r in ok],
        fmt="o",
        capsize=3,
        label="FM loss of v_θ (± 2 s.e.)",
    )
    floored = [r for r in ok if r.loss_floor is not None]
    if floored:
        right.plot(
            [r.t for r in floored],
            [r.loss_floor for r in floored],
            "k-",
            label="exact floor E|v_c − v|²",
        )
        right.plot(
            [r.t for r in floored],
            [r.loss_floor + r.excess_loss for r in floored],
            "r--",
            label="floor + excess",
        )
    right.set_xlabel("t (data at 0)")
    right.set_ylabel("flow-matching loss at t")
    for ax in (left, right):
        for t in failed:
            ax.axvline(t, color="red", alpha=0.3, lw=6)
        ax.legend(fontsize=8)
    fig.suptitle(
        f"{comparison.model} on {comparison.path} ({comparison.parameterization}, "
        f"{comparison.time_convention})"
        + (f" — failed at t = {', '.join(f'{t:g}' for t in failed)}" if failed else ""),
        fontsize=10,
    )
    out = directory / "velocity_errors.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return [out]
