"""The posterior of ``x0`` given ``x_t = y`` under a mixture path: a Gaussian mixture per
point (exact layer). Built by :meth:`MixturePath.posterior`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PosteriorMixture"]


@dataclass(frozen=True)
class PosteriorMixture:
    """The Gaussian mixture of ``x0`` given ``x_t = y``, one per point.

    With ``c_k = α² λ_k + σ²`` and ``y_k = U_kᵀ (y − α μ_k)`` (component ``k``'s
    eigenbasis), the posterior is ``Σ_k r_k(y) N(μ_k + U_k (α λ_k / c_k ⊙ y_k),
    U_k diag(λ_k σ² / c_k) U_kᵀ)`` with the responsibilities
    ``r_k(y) ∝ w_k N(y; α μ_k, U_k diag(c_k) U_kᵀ)``.

    Attributes:
        log_weights: ``log r_k(y)``, shape ``(n, K)`` (``-inf`` where ``r_k`` underflows).
        means: component means ``μ_k + U_k (α λ_k / c_k ⊙ y_k)``, shape ``(n, K, d)``.
        eigvals: component covariance eigenvalues ``λ_k σ² / c_k``, shape ``(n, K, d)``
            (zero at ``t = 0``, where ``x0 = y``).
        eigvecs: shared eigenvectors ``U_k`` (columns), shape ``(K, d, d)``.
    """

    log_weights: np.ndarray
    means: np.ndarray
    eigvals: np.ndarray
    eigvecs: np.ndarray

    @property
    def weights(self) -> np.ndarray:
        """Responsibilities ``r_k(y)``, shape ``(n, K)``; rows sum to 1."""
        return np.exp(self.log_weights)

    @property
    def covs(self) -> np.ndarray:
        """Component covariances ``U_k diag(eigvals) U_kᵀ``, shape ``(n, K, d, d)``."""
        return np.einsum("kij,nkj,klj->nkil", self.eigvecs, self.eigvals, self.eigvecs)

    def mean(self) -> np.ndarray:
        """Posterior mean ``E[x0 | x_t = y]`` (the denoiser), shape ``(n, d)``."""
        return np.einsum("nk,nkd->nd", self.weights, self.means)

    def covariance(self) -> np.ndarray:
        """``Cov(x0 | x_t = y) = Σ r_k (C_k + (m_k − D)(m_k − D)ᵀ)``, shape ``(n, d, d)``.

        The centred form: no cancellation between ``Σ r_k m_k m_kᵀ`` and ``D Dᵀ``.
        """
        r = self.weights
        centred = self.means - self.mean()[:, None, :]
        return np.einsum("nk,nkij->nij", r, self.covs) + np.einsum(
            "nk,nki,nkj->nij", r, centred, centred
        )
