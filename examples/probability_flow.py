"""Reproduce the seed figure: the probability flow of a 1-d Gaussian mixture.

Run:  python examples/probability_flow.py [--interpolant linear|trig]
                                          [--mixture seed_bimodal] [--out FILE.png]

(``--out docs/probability_flow.png`` regenerates the README's figure.) ``--mixture``
takes a 1-d named mixture of ``cmverify.mixtures``; any other name exits with status 2
and one line listing the valid ones.

Panels: α_t and σ_t on top; the data density p(x0) on the left; the density of x_t over
(t, x) in the middle with 16 probability-flow trajectories in white, started at
x1 = Φ⁻¹((i + ½)/16) and integrated by cmverify.ReferenceFlow (per-trajectory
tolerance 1e-10, not fixed steps); the noise density p(x1) on the right.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import numpy as np
from scipy import stats

import cmverify as cmv
from cmverify.reference import ReferenceFlow

INTERPOLANTS = {"linear": cmv.Interpolant.linear, "trig": cmv.Interpolant.trig}


def one_d_mixtures() -> list[str]:
    """Names of the 1-d mixtures of ``cmverify.mixtures`` (the ones this figure can draw)."""
    return [name for name in cmv.mixtures.names() if cmv.mixtures.by_name(name).dim == 1]


def figure(path: cmv.MixturePath, n_trajectories: int = 16):
    """The seed's figure for a 1-d ``path``: returns the matplotlib Figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if path.dim != 1:
        raise ValueError(f"the figure needs a 1-d mixture, got d = {path.dim}")
    ts = np.linspace(0.0, 1.0, 201)
    xs = np.linspace(-3.0, 3.0, 301)
    tt, xx = np.meshgrid(ts, xs)
    density = np.exp(path.log_prob(tt.ravel(), xx.ravel()[:, None])).reshape(tt.shape)

    x1 = stats.norm.ppf((np.arange(n_trajectories) + 0.5) / n_trajectories)[:, None]
    flow_times = np.linspace(1.0, 0.0, 201)
    trajectories = ReferenceFlow(path).trajectory(x1, 1.0, 0.0, flow_times)[:, :, 0]

    fig = plt.figure(figsize=(8.4, 6.4), layout="constrained")
    fig.get_layout_engine().set(wspace=0.01, hspace=0.01)
    grid = fig.add_gridspec(2, 3, width_ratios=(1, 8, 1), height_ratios=(1.6, 6))
    top = fig.add_subplot(grid[0, 1])
    left = fig.add_subplot(grid[1, 0])
    main = fig.add_subplot(grid[1, 1], sharex=top, sharey=left)
    right = fig.add_subplot(grid[1, 2], sharey=main)

    interp = path.interpolant
    top.plot(ts, interp.alpha(ts), "k-", label=r"$\alpha_t$")
    top.plot(ts, interp.sigma(ts), "k--", label=r"$\sigma_t$")
    top.set_yticks([0, 1])
    top.grid(True)
    top.legend(loc="center right", frameon=False, fontsize=12)
    top.tick_params(labelbottom=False)

    # Linear levels clipped at 0.6 (as in the seed figure: the modes saturate to yellow).
    levels = np.linspace(0.0, min(float(density.max()), 0.6), 11)
    main.contourf(tt, xx, np.minimum(density, levels[-1]), levels=levels, cmap="viridis")
    for i in range(n_trajectories):
        main.plot(flow_times, trajectories[:, i], color="white", alpha=0.75, lw=1)
    main.set_xlabel("$t$", fontsize=13)
    main.tick_params(labelleft=False)
    main.set_xlim(0, 1)

    left.plot(np.exp(path.log_prob(0.0, xs[:, None])), xs, "k-")
    left.invert_xaxis()
    left.set_xticks([])
    left.set_ylabel("$x$", fontsize=13)
    left.set_xlabel("$p(x_0)$", fontsize=13)
    left.grid(True, axis="y")
    right.plot(np.exp(path.log_prob(1.0, xs[:, None])), xs, "k-")
    right.set_xticks([])
    right.set_xlabel("$p(x_1)$", fontsize=13)
    right.tick_params(labelleft=False)
    right.grid(True, axis="y")
    main.set_ylim(xs[0], xs[-1])
    for ax in (top, left, main, right):
        ax.tick_params(labelsize=11)
    fig.suptitle(f"probability flow, {interp.name} interpolant", fontsize=13)
    return fig


def draw(path: cmv.MixturePath, out: pathlib.Path, n_trajectories: int = 16) -> pathlib.Path:
    """Draw :func:`figure` for a 1-d ``path`` into ``out`` (PNG) and return ``out``."""
    import matplotlib.pyplot as plt

    fig = figure(path, n_trajectories)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interpolant", choices=sorted(INTERPOLANTS), default="linear")
    parser.add_argument("--mixture", default="seed_bimodal", help="a 1-d named mixture")
    parser.add_argument("--out", default="probability_flow.png", type=pathlib.Path)
    args = parser.parse_args(argv)
    valid = ", ".join(one_d_mixtures())
    try:
        mixture = cmv.mixtures.by_name(args.mixture)
    except ValueError:
        mixture = None
    if mixture is None or mixture.dim != 1:
        what = (
            f"unknown mixture {args.mixture!r}"
            if mixture is None
            else f"{args.mixture!r} is {mixture.dim}-d"
        )
        print(
            f"probability_flow.py: error: --mixture: {what}; the 1-d mixtures are: {valid}",
            file=sys.stderr,
        )
        return 2
    if not args.out.parent.is_dir():
        print(
            f"probability_flow.py: error: --out: no folder {str(args.out.parent)!r}",
            file=sys.stderr,
        )
        return 2
    out = draw(cmv.MixturePath(mixture, INTERPOLANTS[args.interpolant]()), args.out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
