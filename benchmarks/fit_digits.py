"""Fit the ``digits`` mixture (issue 16, item 3): one probabilistic-PCA component per class
of scikit-learn's bundled 8×8 digits (1,797 images, d = 64).

Run once; writes ``cmverify/exact/data/digits.npz``, which :func:`cmverify.exact.mixtures.digits`
loads (scikit-learn is needed for this script only: ``pip install scikit-learn``)::

    python benchmarks/fit_digits.py [--rank 12]

Model. Pixels ``0 … 16`` are scaled to ``x = pixel / 8 − 1 ∈ [−1, 1]`` (the usual
preprocessing of diffusion models; the noise ``x1 ~ N(0, I)`` then has the data's
scale). Class ``c`` (weight ``n_c / n``) gets ``N(μ_c, F_c F_cᵀ + s_c I)``, the maximum-
likelihood probabilistic PCA of its images (Tipping & Bishop 1999): with the class
covariance ``S_c = U diag(λ) Uᵀ`` (``λ`` descending, the biased estimate),
``s_c = mean(λ_{r+1 … d})`` and ``F_c = U_r diag(sqrt(λ_{1…r} − s_c))``. This is the
low-rank-plus-diagonal form with an isotropic diagonal, which cmverify evaluates by
matrix products (``cmverify.exact._gram``). The file also keeps three images per class
(``examples``, ``example_labels``) for the example's figure, and the fit's parameters.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "cmverify" / "exact" / "data" / "digits.npz"


def fit(rank: int) -> dict[str, np.ndarray]:
    import sklearn
    from sklearn.datasets import load_digits

    pixels, labels = load_digits(return_X_y=True)
    x = pixels / 8.0 - 1.0
    n = x.shape[0]
    classes = np.unique(labels)
    weights, means, factors, variances, explained = [], [], [], [], []
    for c in classes:
        xc = x[labels == c]
        mu = xc.mean(axis=0)
        cov = (xc - mu).T @ (xc - mu) / xc.shape[0]
        lam, vecs = np.linalg.eigh(cov)
        lam, vecs = lam[::-1], vecs[:, ::-1]
        s = float(lam[rank:].mean())
        weights.append(xc.shape[0] / n)
        means.append(mu)
        factors.append(vecs[:, :rank] * np.sqrt(np.maximum(lam[:rank] - s, 0.0)))
        variances.append(s)
        explained.append(float(lam[:rank].sum() / lam.sum()))
    first = np.concatenate([np.flatnonzero(labels == c)[:3] for c in classes])
    meta = {
        "source": "sklearn.datasets.load_digits (UCI optical recognition of handwritten digits)",
        "sklearn_version": sklearn.__version__,
        "scaling": "x = pixel / 8 - 1",
        "rank": rank,
        "model": "one probabilistic-PCA component per class (Tipping & Bishop 1999, ML fit)",
        "explained_variance_per_class": explained,
    }
    return {
        "weights": np.array(weights),
        "means": np.array(means),
        "factors": np.array(factors),
        "variances": np.array(variances),
        "labels": classes.astype(np.int64),
        "examples": x[first],
        "example_labels": labels[first].astype(np.int64),
        "meta": np.array(json.dumps(meta)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rank", type=int, default=12)
    args = parser.parse_args()
    arrays = fit(args.rank)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, **arrays)
    meta = json.loads(str(arrays["meta"]))
    print(
        f"wrote {OUT} ({OUT.stat().st_size / 1024:.0f} KiB): rank {args.rank}, explained "
        f"variance per class {min(meta['explained_variance_per_class']):.3f}–"
        f"{max(meta['explained_variance_per_class']):.3f}, s = "
        f"{arrays['variances'].min():.4f}–{arrays['variances'].max():.4f}"
    )


if __name__ == "__main__":
    main()
