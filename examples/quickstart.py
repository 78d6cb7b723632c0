"""Quickstart: the closed-form probability path of a Gaussian mixture.

Run:  python examples/quickstart.py [--plot FILE.png]

Prints the velocity, denoiser and score of the eight-Gaussians path at a few points,
the measured continuity-equation residual of the closed-form velocity, and (with
``--plot``, needs matplotlib) draws the density of ``x_t`` with its velocity field.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import numpy as np

import cmverify as cmv
from cmverify.exact import _identities as identities

POINTS = np.array([[2.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
PLOT_TIMES = (0.1, 0.5, 0.9)


def _rounded(values: np.ndarray) -> list:
    """Rounded to 6 decimals, with -0.0 printed as 0.0."""
    return (np.round(values, 6) + 0.0).tolist()


def figure(
    path: cmv.MixturePath, times: tuple[float, ...] = PLOT_TIMES, name: str = "eight Gaussians"
):
    """The density of ``x_t`` (colour) and the velocity ``v(t, x)`` (arrows) of a 2-d
    ``path`` (its mixture called ``name`` in the title) at each of ``times``, one panel
    each; returns the matplotlib Figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = np.linspace(-3.5, 3.5, 141)
    gx, gy = np.meshgrid(grid, grid)
    pts = np.stack([gx.ravel(), gy.ravel()], axis=1)
    arrows = np.stack(np.meshgrid(grid[::10], grid[::10]), axis=-1).reshape(-1, 2)
    # "compressed" packs square (equal-aspect) panels; "constrained" left their titles
    # outside the figure.
    fig, axes = plt.subplots(1, len(times), figsize=(4 * len(times), 4.6), layout="compressed")
    for ax, t in zip(np.atleast_1d(axes), times, strict=True):
        density = np.exp(path.log_prob(t, pts)).reshape(gx.shape)
        ax.imshow(density, extent=(grid[0], grid[-1], grid[0], grid[-1]), origin="lower")
        v = path.velocity(t, arrows)
        ax.quiver(arrows[:, 0], arrows[:, 1], v[:, 0], v[:, 1], color="white", width=0.004)
        ax.set_title(f"$t = {t}$", fontsize=12)
        ax.set_xlabel("$x_1$")
    np.atleast_1d(axes)[0].set_ylabel("$x_2$")
    fig.suptitle(
        f"{name}, {path.interpolant.name} interpolant: "
        "density $p_t$ (colour) and velocity $v(t, x)$ (arrows)",
        fontsize=12,
    )
    return fig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--plot",
        metavar="FILE",
        type=pathlib.Path,
        help="write a PNG of p_t and v at t = 0.1, 0.5, 0.9",
    )
    args = parser.parse_args(argv)
    if args.plot is not None and not args.plot.parent.is_dir():
        print(f"quickstart.py: error: --plot: no folder {str(args.plot.parent)!r}", file=sys.stderr)
        return 2

    path = cmv.MixturePath(cmv.mixtures.eight_gaussians(), cmv.Interpolant.linear())
    for t in (0.0, 0.5, 1.0):
        print(f"t = {t}")
        print("  velocity E[x1 - x0 | x_t]:", _rounded(path.velocity(t, POINTS)))
        print("  denoiser E[x0 | x_t]:     ", _rounded(path.denoiser(t, POINTS)))
        print("  score:                    ", _rounded(path.score(t, POINTS)))
    samples = path.sample(0.5, 1000, rng=0)
    residual = identities.continuity_residual(path, 0.5, samples).max()
    print(f"max relative continuity residual at t = 0.5 over 1000 samples: {residual:.1e}")

    if args.plot is not None:
        figure(path).savefig(args.plot, dpi=100)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
