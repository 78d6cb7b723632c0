"""Closed-form flow map for Gaussian data (FLOW-GAUSS; reference layer).

For ``x0 ~ N(μ, Σ)``, ``x_t ~ N(α_t μ, C_t)`` with ``C_t = α_t² Σ + σ_t² I``. All ``C_t``
share the eigenvectors ``U`` of ``Σ = U diag(λ) Uᵀ``, with eigenvalues
``c_t = α_t² λ + σ_t²``. In the coordinates ``z = Uᵀ (x − α_t μ)`` the velocity
``α̇ μ + (α α̇ Σ + σ σ̇ I) C_t⁻¹ (x − α μ)`` becomes ``ż = (ċ_t / 2 c_t) z``, so
``z_t = sqrt(c_t / c_s) z_s`` and

    X_{s→t}(x) = α_t μ + C_t^{1/2} C_s^{-1/2} (x − α_s μ)
               = α_t μ + U diag(sqrt(c_t / c_s)) Uᵀ (x − α_s μ).

For the linear interpolant ``X_{1→0}(x1) = μ + Σ^{1/2} x1``.
"""

from __future__ import annotations

import numpy as np

from .._validation import as_points, as_times
from ..exact import GaussianMixture
from ..symbolic import Interpolant

__all__ = ["gaussian_flow_map"]


def gaussian_flow_map(
    mean: object, cov: object, interpolant: Interpolant, x: object, s: object, t: object
) -> np.ndarray:
    """``X_{s→t}(x)`` for Gaussian data ``N(mean, cov)``, any dimension, full covariance.

    ``mean`` has shape ``(d,)``, ``cov`` shape ``(d, d)`` (validated like a one-component
    :class:`GaussianMixture`), ``x`` shape ``(n, d)``; ``s`` and ``t`` are floats or
    arrays of shape ``(n,)`` in ``[0, 1]``. Returns shape ``(n, d)``.
    """
    if not isinstance(interpolant, Interpolant):
        raise TypeError(f"interpolant must be an Interpolant, got {type(interpolant).__name__}")
    mu = np.atleast_1d(np.asarray(mean, dtype=np.float64))
    gaussian = GaussianMixture([1.0], mu[None], np.asarray(cov, dtype=np.float64)[None])
    x = as_points(x, gaussian.dim)
    n = x.shape[0]
    s_arr, t_arr = as_times(s, n, "s"), as_times(t, n, "t")
    lam, u = gaussian.eigvals[0], gaussian.eigvecs[0]
    mu = gaussian.means[0]

    def coefficients(times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        at = interpolant.at_trusted(times)  # validated above
        a, sg = np.reshape(at.alpha, (-1, 1)), np.reshape(at.sigma, (-1, 1))
        return a, a * a * lam[None] + sg * sg

    a_s, c_s = coefficients(s_arr)
    a_t, c_t = coefficients(t_arr)
    z = (x - a_s * mu) @ u
    return a_t * mu + (np.sqrt(c_t / c_s) * z) @ u.T
