"""The product route's review cases where its expansion cancels (shared by
tests/test_structured.py and tests/test_torch_gram.py): each ``(mixture, t, x)``.

(a) two isotropic components 0.009 apart with variance 1e-6 at t = 1e-3, points between
them (q ≈ 10): expanding |x − α μ_k|² blurred the exponents by ~1e-10 (5.4e-11 relative in
the velocity) until rows were recomputed about their nearest mean; (b) probabilistic PCA
with c∥/c⊥ ≈ 1e5 and points 3 sd out along the factor: |y⊥|² = |y|² − p²/γ cancels even
about the mean (4.1e-12) — such rows are redone (numpy: the Woodbury route).
"""

from __future__ import annotations

import numpy as np

from cmverify.exact import GaussianMixture

T = 1e-3


def close_isotropic_pair() -> tuple[GaussianMixture, float, np.ndarray]:
    d = 8
    base = np.ones(d) / np.sqrt(d)
    mu = np.stack([base, base + 0.009 * np.eye(d)[1]])
    x = (1 - T) * mu.mean(0) + 3e-4 * np.random.default_rng(0).normal(size=(20, d))
    return GaussianMixture.isotropic([0.5, 0.5], mu, [1e-6, 1e-6]), T, x


def far_along_a_factor() -> tuple[GaussianMixture, float, np.ndarray]:
    d, s = 6, 1e-5
    f, g = np.eye(d)[0], np.eye(d)[1]
    mix = GaussianMixture.low_rank(
        [0.5, 0.5],
        np.stack([np.zeros(d), 0.01 * g]),
        np.stack([f[:, None]] * 2),
        np.full((2, d), s),
    )
    rng = np.random.default_rng(0)
    x = (1 - T) * 0.005 * g + np.outer(rng.uniform(2.9, 3.3, 8), f)
    x += rng.normal(size=(8, d)) * np.sqrt(s) * 0.3
    return mix, T, x
