"""Exact one-step samples of the digits mixture, beside real digits.

Run:  python examples/digits.py [--n 20] [--seed 0] [--interpolant linear|trig]
                                [--out digits.png]

The data is ``cmverify.mixtures.digits()``: one probabilistic-PCA component per class of
scikit-learn's 8×8 digits (d = 64, pixels scaled to [−1, 1]). Each sample is the exact
consistency function ``f*(1, x1) = X_{1→0}(x1)`` of a Gaussian draw ``x1``, solved by
``cmverify.ReferenceFlow`` to its per-trajectory target (rtol 1e-10): what a perfect
one-step consistency model (or flow map) returns for that noise. The figure shows, from
the top: real digits (the data the mixture was fitted to), the noise ``x1``, its exact
one-step image, and the class of the component that most likely produced it (the
largest posterior weight of ``x0``).
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import numpy as np

import cmverify as cmv
from cmverify.reference import ReferenceFlow

INTERPOLANTS = {"linear": cmv.Interpolant.linear, "trig": cmv.Interpolant.trig}


def one_step_samples(n: int, seed: int, interpolant: cmv.Interpolant):
    """``(x1, x0, labels, solution)``: ``n`` noises, their exact one-step images
    ``X_{1→0}(x1)`` (shape ``(n, 64)``), the most likely class of each and the solver's
    :class:`~cmverify.reference.FlowSolution`."""
    mixture = cmv.mixtures.digits()
    path = cmv.MixturePath(mixture, interpolant)
    x1 = np.random.default_rng(seed).standard_normal((n, mixture.dim))
    solution = ReferenceFlow(path).solve(x1, 1.0, 0.0)
    labels = np.argmax(mixture.component_log_prob(solution.x), axis=1)
    return x1, solution.x, labels, solution


def figure(x1: np.ndarray, x0: np.ndarray, labels: np.ndarray):
    """The figure described in the module docstring; returns the matplotlib Figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    real, real_labels = cmv.mixtures.digits_examples()
    order = np.argsort(np.arange(real.shape[0]) % 3, kind="stable")  # one per class first
    n = x0.shape[0]
    cols = max(n, 10)
    rows = [
        ("data", real[order][:cols], real_labels[order]),
        ("x1", x1, None),
        ("f*(1, x1)", x0, labels),
    ]
    fig, axes = plt.subplots(3, cols, figsize=(0.8 * cols, 3.0), squeeze=False)
    for r, (title, images, tags) in enumerate(rows):
        for c in range(cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= images.shape[0]:
                ax.set_axis_off()
                continue
            ax.imshow(images[c].reshape(8, 8), cmap="gray_r", vmin=-1.0, vmax=1.0)
            if tags is not None:
                ax.set_title(str(int(tags[c])), fontsize=8)
        axes[r, 0].set_ylabel(title, fontsize=9)
    return fig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="samples (default 20)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--interpolant", choices=sorted(INTERPOLANTS), default="linear")
    parser.add_argument("--out", default="digits.png", help="figure file (default digits.png)")
    args = parser.parse_args(argv)
    if not 1 <= args.n <= 10_000:
        print(f"error: --n must be in 1 … 10000, got {args.n}", file=sys.stderr)
        return 2
    out = pathlib.Path(args.out)
    if not out.parent.is_dir():
        print(f"error: the folder of --out does not exist: {out.parent}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    x1, x0, labels, solution = one_step_samples(args.n, args.seed, INTERPOLANTS[args.interpolant]())
    wall = time.perf_counter() - start
    worst = float(np.max(solution.error_estimate / solution.target))
    print(
        f"{args.n} exact one-step samples in {wall:.1f} s; worst error estimate "
        f"{worst:.2f} of the target; samples per class 0–9: {np.bincount(labels, minlength=10).tolist()}"
    )
    try:
        figure(x1, x0, labels).savefig(out, dpi=120)
    except OSError as exc:
        print(f"error: could not write {out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
