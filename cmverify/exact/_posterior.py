"""The posterior of ``x0`` given ``x_t = y`` under a mixture path: a Gaussian mixture per
point (exact layer). Built by :meth:`MixturePath.posterior`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._evaluation import Evaluator, finite_columns
from ._scaled import evaluate_scaled

__all__ = ["PosteriorMixture", "posterior_of"]


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


def posterior_of(evaluator: Evaluator, t: np.ndarray, x: np.ndarray) -> PosteriorMixture:
    """:meth:`MixturePath.posterior` on validated ``(t, x)``: the direct route, the scaled
    one on far rows; ``ValueError`` where a component mean is not representable."""
    lam, means = evaluator.eigvals, evaluator.means
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        ev = evaluator.evaluate(t, x)
        log_resp = ev.log_resp
        shift = evaluator.from_eigenbasis(ev.co.alpha * lam * ev.co.inv_c * ev.yk)
        post_means = means + shift
        redo = evaluator.needs_scaling(ev) | ~finite_columns(post_means)
        if np.any(redo):
            sev = evaluate_scaled(evaluator, t if t.ndim == 0 else t[redo], x[redo])
            log_resp[:, redo] = sev.log_resp
            shift = evaluator.from_eigenbasis(sev.co.alpha * lam * sev.co.inv_c * sev.yk)
            post_means[:, :, redo] = means + shift * sev.scale
    bad = ~finite_columns(post_means) | np.any(np.isnan(log_resp), axis=0)
    if np.any(bad):
        i = int(np.argmax(bad))
        raise ValueError(
            f"posterior is not representable in float64 at x[{i}] "
            f"(max |x| = {np.max(np.abs(x[i])):.3e}): a component mean exceeds ±1.8e308"
        )
    eigvals = np.broadcast_to(lam * ev.co.sigma**2 * ev.co.inv_c, ev.yk.shape)
    return PosteriorMixture(
        log_weights=log_resp.T,
        means=np.transpose(post_means, (2, 0, 1)),
        eigvals=np.transpose(eigvals, (2, 0, 1)).copy(),
        eigvecs=evaluator.mixture.eigvecs,
    )
