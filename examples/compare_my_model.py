"""Compare your own consistency model with the exact flow map.

Run:  python examples/compare_my_model.py [--out DIR] [--rtol R] [-n N]
  or: cmverify compare examples/compare_my_model.py:shrunk_model --mixture eight_gaussians

``shrunk_model`` stands in for a trained model: the exact consistency function pulled
5% towards the data mean at every t > 0. Replace it with yours: any callable
``f(t, x)`` on numpy arrays (or a ``torch.nn.Module``) with ``x`` of shape ``(n, d)``
returning the predicted ``x0`` of shape ``(n, d)``.

What it should get: ``f*(t, x_t)`` is distributed as the data (mean 0 here), so the
error ``0.05 |f*(t, x_t)|`` has an RMSE of 0.05 × sqrt(E|x0|²) = 0.05 × the data scale
sqrt(tr Cov x0): a relative RMSE of 0.05 at every t > 0 (up to sampling noise), 0 at
t = 0. With the default gate ``--rtol 0.1`` (RMSE ≤ 10% of the data scale at every t) it
passes, and the exit status is 0; with ``--rtol 0.04`` it fails at every t > 0 (status 1).
``--out DIR`` writes the report there (``Comparison.save``: comparison.json,
comparison.md and, with matplotlib, the figures).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

import cmverify as cmv
from cmverify.compare import compare

PATH = cmv.MixturePath(cmv.mixtures.eight_gaussians(), cmv.Interpolant.linear())
_FLOW = cmv.ReferenceFlow(PATH)


def shrunk_model(t: float, x: np.ndarray) -> np.ndarray:
    """A deliberately imperfect model: f*(t, x) shrunk by 5% towards the mean for t > 0."""
    exact = _FLOW.consistency(t, x)
    return exact if t == 0 else 0.95 * exact + 0.05 * PATH.mixture.mean()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write comparison.json, comparison.md and figures here")
    parser.add_argument(
        "-n",
        type=int,
        default=2000,
        help="points x_t per time and samples per sampler (default 2000)",
    )
    parser.add_argument(
        "--rtol",
        type=float,
        default=0.1,
        help="pass when RMSE ≤ RTOL × data scale at every t (default 0.1)",
    )
    args = parser.parse_args(argv)
    try:
        result = compare(
            shrunk_model, PATH, n=args.n, n_samples=args.n, name="shrunk_model", rtol=args.rtol
        )
    except ValueError as exc:  # -n 0, a negative or NaN --rtol
        print(f"compare_my_model.py: error: {exc}", file=sys.stderr)
        return 2
    print(result.to_markdown())
    if args.out:
        try:
            written = result.save(args.out)
        except ValueError as exc:  # the folder cannot be written
            print(f"compare_my_model.py: error: --out: {exc}", file=sys.stderr)
            return 2
        for path in written:
            print(f"wrote {path}")
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
