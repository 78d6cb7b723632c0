"""Flow maps of eight Gaussians: MeanFlow's exact u(·, r, t) next to v, and Liouville's formula.

Run:  python examples/flow_maps.py [--interpolant linear|trig] [--grid 16] [--points 300]
                                   [--seed 0] [--out FILE.png]

(without ``--out`` it regenerates the README's figure, ``docs/flow_maps.png``.) Bad input
exits with status 2 and one line on stderr naming the option.

Top row and bottom left, on a ``grid × grid`` lattice of cell centres of ``[−3, 3]²``:
the exact average velocity ``u(z, r, t) = (z − X_{t→r}(z)) / (t − r)`` — the target of
MeanFlow training (``cmverify.flowmaps.exact(path, "meanflow")``) — for ``(r, t) = (0, 1),
(0.5, 1), (0.9, 1)``, then ``u(·, 1, 1)``, which is the instantaneous velocity ``v(1, ·)``.
Arrows share one scale; the background is ``p_t`` (grey), the contours ``p_r`` (orange),
where ``X_{t→r}`` carries ``p_t``. Since ``v(1, z) = α̇_1 E[x0] + σ̇_1 z`` and the data
mean is 0, the last panel is ``v = z`` on the linear path and ``v = 0`` on the trig one.
``grid`` must be even: an odd lattice has a point at the origin, the unstable point where
the backward flow splits between the eight modes (the reference cannot certify it).

Bottom middle and right, for ``points`` draws ``x ~ p_1``: the Jacobian ``∇X_{1→0}(x)``
(``ReferenceFlow.solve_jacobian``, the variational equation) and the change of variables
``det ∇X_{1→0}(x) = p_1(x) / p_0(X_{1→0}(x))`` with the closed-form densities: on log–log
axes the points lie on the diagonal. Prints the worst ``|log det − log ratio|`` and the
worst ``|u(·, 1, 1) − v(1, ·)|`` (both at rounding level: about 1e-14).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import pathlib
import sys

import numpy as np

import cmverify as cmv
from cmverify.reference import ReferenceFlow

INTERPOLANTS = {"linear": cmv.Interpolant.linear, "trig": cmv.Interpolant.trig}
#: The ``(r, t)`` pairs of the average-velocity panels; the last is ``v(1, ·)``.
PAIRS = ((0.0, 1.0), (0.5, 1.0), (0.9, 1.0), (1.0, 1.0))
HALF_WIDTH = 3.0  # the panels show [−3, 3]²
DEFAULT_OUT = pathlib.Path(__file__).resolve().parents[1] / "docs" / "flow_maps.png"
MAX_GRID, MAX_POINTS = 64, 20_000


@dataclasses.dataclass(frozen=True)
class Measured:
    """What the figure draws and the example prints.

    ``lattice``: ``(grid², 2)`` cell centres; ``fields[(r, t)]``: ``u(lattice, r, t)``,
    shape ``(grid², 2)``; ``velocity``: closed-form ``v(1, lattice)``; ``samples``: ``(n,
    2)`` draws of ``p_1``, ``images`` their ``X_{1→0}``, ``log_det`` ``log det ∇X_{1→0}``
    and ``log_ratio`` ``log p_1(x) − log p_0(X_{1→0}(x))``, shape ``(n,)``.
    """

    path: cmv.MixturePath
    grid: int
    lattice: np.ndarray
    fields: dict[tuple[float, float], np.ndarray]
    velocity: np.ndarray
    samples: np.ndarray
    images: np.ndarray
    log_det: np.ndarray
    log_ratio: np.ndarray

    @property
    def velocity_gap(self) -> float:
        """``max |u(z, 1, 1) − v(1, z)|`` over the lattice (0 up to rounding)."""
        return float(np.max(np.abs(self.fields[PAIRS[-1]] - self.velocity)))

    @property
    def log_det_gap(self) -> float:
        """``max |log det ∇X_{1→0}(x) − log p_1(x)/p_0(X_{1→0}(x))|`` over the samples
        (NaN if a determinant is not positive)."""
        return float(np.max(np.abs(self.log_det - self.log_ratio)))


def lattice(grid: int) -> np.ndarray:
    """Cell centres of a ``grid × grid`` partition of ``[−3, 3]²``, shape ``(grid², 2)``."""
    centres = -HALF_WIDTH + (np.arange(grid) + 0.5) * (2 * HALF_WIDTH / grid)
    gx, gy = np.meshgrid(centres, centres)
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


def measure(path: cmv.MixturePath, grid: int = 16, points: int = 300, seed: int = 0) -> Measured:
    """The exact fields on the lattice and the Jacobian test on ``points`` draws of ``p_1``."""
    z = lattice(grid)
    u = cmv.flowmaps.exact(path, "meanflow")  # u(z, r, t), r ≤ t
    fields = {(r, t): u(z, r, t) for r, t in PAIRS}
    samples = path.sample(1.0, points, rng=np.random.default_rng(seed))
    solution = ReferenceFlow(path).solve_jacobian(samples, 1.0, 0.0)
    sign, log_abs_det = np.linalg.slogdet(solution.jacobian)
    return Measured(
        path=path,
        grid=grid,
        lattice=z,
        fields=fields,
        velocity=path.velocity(1.0, z),
        samples=samples,
        images=solution.x,
        log_det=np.where(sign > 0, log_abs_det, np.nan),  # X_{1→0} preserves orientation
        log_ratio=path.log_prob(1.0, samples) - path.log_prob(0.0, solution.x),
    )


def _density(path: cmv.MixturePath, t: float, n: int = 121):
    axis = np.linspace(-HALF_WIDTH, HALF_WIDTH, n)
    gx, gy = np.meshgrid(axis, axis)
    pts = np.stack([gx.ravel(), gy.ravel()], axis=1)
    return gx, gy, np.exp(path.log_prob(t, pts)).reshape(gx.shape)


def _field_title(r: float, t: float) -> str:
    if r == t:
        return rf"$v({t:g}, \cdot) = u(\cdot, {r:g}, {t:g})$"
    return rf"$u(\cdot, r, t)$, $r = {r:g}$, $t = {t:g}$"


def figure(measured: Measured):
    """The six panels described in the module docstring; returns the matplotlib Figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path, z = measured.path, measured.lattice
    fig, axes = plt.subplots(2, 3, figsize=(12.0, 8.8), layout="compressed")
    field_axes = [axes[0, 0], axes[0, 1], axes[0, 2], axes[1, 0]]
    # one arrow scale for the four panels: the longest arrow is 1.2 lattice spacings
    longest = max(float(np.max(np.linalg.norm(f, axis=1))) for f in measured.fields.values())
    spacing = 2 * HALF_WIDTH / measured.grid
    scale = max(longest, 1e-300) / (1.2 * spacing)
    for ax, (r, t) in zip(field_axes, PAIRS, strict=True):
        gx, gy, p_t = _density(path, t)
        ax.contourf(gx, gy, p_t, levels=12, cmap="Greys")
        if r != t:
            gx, gy, p_r = _density(path, r)
            levels = p_r.max() * np.array([0.05, 0.3, 0.7])
            ax.contour(gx, gy, p_r, levels=levels, colors="tab:orange", linewidths=0.9)
        u = measured.fields[(r, t)]
        ax.quiver(
            z[:, 0],
            z[:, 1],
            u[:, 0],
            u[:, 1],
            angles="xy",
            scale_units="xy",
            scale=scale,
            color="tab:blue",
            width=0.005,
        )
        title = _field_title(r, t)
        if r == t and float(np.max(np.abs(u))) <= 1e-12:
            title += " $= 0$"  # trig: σ̇_1 = 0 and the data mean is 0
        ax.set_title(title, fontsize=12)
        ax.set_aspect("equal")
        ax.set_xlim(-HALF_WIDTH, HALF_WIDTH)
        ax.set_ylim(-HALF_WIDTH, HALF_WIDTH)

    where = axes[1, 1]
    dots = where.scatter(
        measured.samples[:, 0], measured.samples[:, 1], c=measured.log_det, s=9, cmap="viridis"
    )
    where.scatter(measured.images[:, 0], measured.images[:, 1], s=3, color="black")
    where.set_aspect("equal")
    where.set_xlim(-HALF_WIDTH - 0.6, HALF_WIDTH + 0.6)
    where.set_ylim(-HALF_WIDTH - 0.6, HALF_WIDTH + 0.6)
    where.set_title(r"$x \sim p_1$ (colour), $X_{1\to 0}(x)$ (black)", fontsize=12)
    bar = fig.colorbar(dots, ax=where, location="bottom", shrink=0.8, pad=0.02)
    bar.set_label(r"$\log\det\nabla X_{1\to 0}(x)$", fontsize=11)

    check = axes[1, 2]
    det, ratio = np.exp(measured.log_det), np.exp(measured.log_ratio)
    check.loglog(ratio, det, ".", color="tab:blue", ms=4)
    ends = [float(np.nanmin(ratio)) / 2, float(np.nanmax(ratio)) * 2]
    check.loglog(ends, ends, "k--", lw=0.8)
    check.set_xlabel(r"$p_1(x)\,/\,p_0(X_{1\to 0}(x))$", fontsize=12)
    check.set_ylabel(r"$\det\nabla X_{1\to 0}(x)$", fontsize=12)
    check.set_title(f"max |log det − log ratio| = {measured.log_det_gap:.1e}", fontsize=11)
    check.set_aspect("equal")

    name = f"{path.mixture.name}, {path.interpolant.name} interpolant"
    fig.suptitle(
        f"{name}: exact average velocity $u(z, r, t) = (z - X_{{t\\to r}}(z))/(t - r)$ over "
        "$p_t$ (grey), $p_r$ (orange)\nand the change of variables "
        r"$\det\nabla X_{1\to 0}(x) = p_1(x)/p_0(X_{1\to 0}(x))$",
        fontsize=12,
    )
    return fig


def draw(measured: Measured, out: pathlib.Path) -> pathlib.Path:
    """Draw :func:`figure` into ``out`` and return ``out``."""
    import matplotlib.pyplot as plt

    fig = figure(measured)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is one line on stderr (no usage block) and exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _problem(args: argparse.Namespace) -> str | None:
    """The first bad option as ``--name: why``, or None."""
    from matplotlib.backend_bases import FigureCanvasBase

    if not (4 <= args.grid <= MAX_GRID and args.grid % 2 == 0):
        return (
            f"--grid: need an even number from 4 to {MAX_GRID}, got {args.grid} (an odd "
            "grid puts a point at the origin, where the backward flow splits between modes)"
        )
    if not 1 <= args.points <= MAX_POINTS:
        return f"--points: need 1 to {MAX_POINTS}, got {args.points}"
    if args.seed < 0:
        return f"--seed: need a non-negative integer, got {args.seed}"
    out, formats = args.out, FigureCanvasBase.get_supported_filetypes()
    if out.is_dir():
        return f"--out: {str(out)!r} is a folder, give a file name"
    if out.suffix.lstrip(".").lower() not in formats:
        return f"--out: give a file name ending in one of .{', .'.join(sorted(formats))}"
    if not out.parent.is_dir():
        return f"--out: no folder {str(out.parent)!r}"
    if not os.access(out.parent, os.W_OK):
        return f"--out: folder {str(out.parent)!r} is not writable"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="flow_maps.py", description=__doc__.splitlines()[0])
    parser.add_argument("--interpolant", choices=sorted(INTERPOLANTS), default="linear")
    parser.add_argument("--grid", type=int, default=16, help="arrows per side (even)")
    parser.add_argument("--points", type=int, default=300, help="draws of p_1 (Jacobian test)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draws of p_1")
    parser.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT, help="figure file")
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help (0) or a bad option (2, already reported)
        return int(stop.code or 0)
    problem = _problem(args)
    if problem is not None:
        print(f"flow_maps.py: error: {problem}", file=sys.stderr)
        return 2
    path = cmv.MixturePath(cmv.mixtures.eight_gaussians(), INTERPOLANTS[args.interpolant]())
    measured = measure(path, args.grid, args.points, args.seed)
    print(
        f"eight_gaussians, {args.interpolant} interpolant: {args.grid}×{args.grid} lattice, "
        f"n = {args.points} draws of p_1 (seed {args.seed})"
    )
    print(f"u(·, 1, 1) vs v(1, ·): max gap {measured.velocity_gap:.2e} over the lattice")
    print(
        f"log det ∇X_(1→0)(x) vs log p_1(x)/p_0(X_(1→0)(x)): "
        f"worst gap {measured.log_det_gap:.2e} over the n draws"
    )
    try:
        out = draw(measured, args.out)
    except OSError as error:  # e.g. a folder that refuses new files despite its mode bits
        why = f"cannot write {str(args.out)!r}: {error.strerror}"
        print(f"flow_maps.py: error: --out: {why}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
