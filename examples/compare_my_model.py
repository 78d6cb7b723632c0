"""Compare your own consistency model with the exact flow map.

Run:  python examples/compare_my_model.py [--out DIR]
  or: cmverify compare examples/compare_my_model.py:shrunk_model --mixture eight_gaussians

``shrunk_model`` stands in for a trained model: the exact consistency function pulled
5% towards the data mean at every t > 0. Replace it with yours: any callable
``f(t, x)`` on numpy arrays (or a ``torch.nn.Module``) with ``x`` of shape ``(n, d)``
returning the predicted ``x0`` of shape ``(n, d)``.
"""

from __future__ import annotations

import argparse

import numpy as np

import cmverify as cmv
from cmverify.compare import compare

PATH = cmv.MixturePath(cmv.mixtures.eight_gaussians(), cmv.Interpolant.linear())
_FLOW = cmv.ReferenceFlow(PATH)


def shrunk_model(t: float, x: np.ndarray) -> np.ndarray:
    """A deliberately imperfect model: f*(t, x) shrunk by 5% towards the mean for t > 0."""
    exact = _FLOW.consistency(t, x)
    return exact if t == 0 else 0.95 * exact + 0.05 * PATH.mixture.mean()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write comparison.json, comparison.md and figures here")
    args = parser.parse_args(argv)
    result = compare(shrunk_model, PATH, n=2000, name="shrunk_model")
    print(result.to_markdown())
    if args.out:
        from pathlib import Path

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "comparison.json").write_text(result.to_json())
        for figure in result.plot(out):
            print(f"wrote {figure}")


if __name__ == "__main__":
    main()
