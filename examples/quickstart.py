"""Quickstart: the closed-form probability path of a Gaussian mixture.

Run:  python examples/quickstart.py [--plot FILE.png]

Prints the velocity, denoiser and score of the eight-Gaussians path at a few points,
the measured continuity-equation residual of the closed-form velocity, and (with
``--plot``, needs matplotlib) draws the density of ``x_t`` with its velocity field.
"""

from __future__ import annotations

import argparse

import numpy as np

import cmverify as cmv
from cmverify import identities


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--plot", metavar="FILE", help="write a PNG of p_t and v at t = 0.1, 0.5, 0.9"
    )
    args = parser.parse_args(argv)

    path = cmv.MixturePath(cmv.mixtures.eight_gaussians(), cmv.Interpolant.linear())
    x = np.array([[2.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    for t in (0.0, 0.5, 1.0):
        print(f"t = {t}")
        print("  velocity E[x1 - x0 | x_t]:", np.round(path.velocity(t, x), 6).tolist())
        print("  denoiser E[x0 | x_t]:     ", np.round(path.denoiser(t, x), 6).tolist())
        print("  score:                    ", np.round(path.score(t, x), 6).tolist())
    samples = path.sample(0.5, 1000, rng=0)
    residual = identities.continuity_residual(path, 0.5, samples).max()
    print(f"max relative continuity residual at t = 0.5 over 1000 samples: {residual:.1e}")

    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        grid = np.linspace(-3.5, 3.5, 141)
        gx, gy = np.meshgrid(grid, grid)
        pts = np.stack([gx.ravel(), gy.ravel()], axis=1)
        arrows = np.stack(np.meshgrid(grid[::10], grid[::10]), axis=-1).reshape(-1, 2)
        fig, axes = plt.subplots(1, 3, figsize=(12, 4), constrained_layout=True)
        for ax, t in zip(axes, (0.1, 0.5, 0.9), strict=True):
            density = np.exp(path.log_prob(t, pts)).reshape(gx.shape)
            ax.imshow(density, extent=(grid[0], grid[-1], grid[0], grid[-1]), origin="lower")
            v = path.velocity(t, arrows)
            ax.quiver(arrows[:, 0], arrows[:, 1], v[:, 0], v[:, 1], color="white", width=0.004)
            ax.set_title(f"p_t and v(t, x), t = {t}")
        fig.savefig(args.plot, dpi=100)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
