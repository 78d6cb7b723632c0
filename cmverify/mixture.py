"""Gaussian mixtures ``Σ_k w_k N(μ_k, Σ_k)`` with validated parameters (exact layer)."""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from ._validation import as_count, as_float_array, as_points, as_rng

__all__ = ["GaussianMixture"]

#: Tolerance on ``|Σ w_k − 1|``.
WEIGHT_SUM_TOLERANCE = 1e-10
#: Relative tolerance on ``max|Σ − Σᵀ| / max|Σ|``.
SYMMETRY_TOLERANCE = 1e-10
_LOG_2PI = float(np.log(2.0 * np.pi))


class GaussianMixture:
    """A Gaussian mixture ``p(x) = Σ_k w_k N(x; μ_k, Σ_k)`` in ``d`` dimensions.

    Arguments:
        weights: shape ``(K,)``, non-negative, summing to 1 (within 1e-10).
        means: shape ``(K, d)``.
        covs: shape ``(K, d, d)``, symmetric (relative asymmetry ≤ 1e-10) and
            positive definite (smallest eigenvalue > ``d · eps · largest``).

    The attributes ``weights``, ``means``, ``covs`` read back as given (float64
    copies). The eigen-decompositions ``Σ_k = U_k diag(λ_k) U_kᵀ`` are computed once:
    ``eigvals`` has shape ``(K, d)`` and ``eigvecs`` shape ``(K, d, d)`` (columns are
    eigenvectors). Every later computation works in these eigenbases.
    """

    def __init__(self, weights: object, means: object, covs: object) -> None:
        w = as_float_array(weights, "weights")
        mu = as_float_array(means, "means")
        cov = as_float_array(covs, "covs")
        if w.ndim != 1 or w.shape[0] == 0:
            raise ValueError(f"weights must have shape (K,) with K ≥ 1, got {w.shape}")
        k = w.shape[0]
        if mu.ndim != 2 or mu.shape[0] != k or mu.shape[1] == 0:
            raise ValueError(
                f"means must have shape (K, d) = ({k}, d) to match weights, got {mu.shape}"
            )
        d = mu.shape[1]
        if cov.shape != (k, d, d):
            raise ValueError(
                f"covs must have shape (K, d, d) = ({k}, {d}, {d}) to match weights and means, "
                f"got {cov.shape}"
            )
        if np.any(w < 0):
            i = int(np.argmax(w < 0))
            raise ValueError(f"weights must be non-negative, got weights[{i}] = {w[i]!r}")
        total = float(np.sum(w))
        if abs(total - 1.0) > WEIGHT_SUM_TOLERANCE:
            raise ValueError(
                f"weights must sum to 1, got sum {total!r} (off by {total - 1.0:+.3e}; "
                f"tolerance {WEIGHT_SUM_TOLERANCE:.0e})"
            )
        for i in range(k):
            scale = float(np.max(np.abs(cov[i])))
            asym = float(np.max(np.abs(cov[i] - cov[i].T)))
            if asym > SYMMETRY_TOLERANCE * max(scale, np.finfo(float).tiny):
                raise ValueError(
                    f"covs[{i}] is not symmetric: max |Σ − Σᵀ| = {asym:.3e} "
                    f"(relative {asym / max(scale, np.finfo(float).tiny):.3e})"
                )
        sym = 0.5 * (cov + np.swapaxes(cov, 1, 2))
        eigvals, eigvecs = np.linalg.eigh(sym)
        for i in range(k):
            lo, hi = float(eigvals[i, 0]), float(eigvals[i, -1])
            if not lo > d * np.finfo(float).eps * hi:
                raise ValueError(
                    f"covs[{i}] is not positive definite: eigenvalues range from {lo:.3e} "
                    f"to {hi:.3e}"
                )
        self._weights = w
        self._means = mu
        self._covs = cov
        self._eigvals = eigvals
        self._eigvecs = eigvecs
        with np.errstate(divide="ignore"):
            self._log_weights = np.log(w)
        for arr in (w, mu, cov, eigvals, eigvecs, self._log_weights):
            arr.flags.writeable = False

    # -- read-back --------------------------------------------------------------------
    @property
    def weights(self) -> np.ndarray:
        """Component weights, shape ``(K,)``."""
        return self._weights

    @property
    def means(self) -> np.ndarray:
        """Component means, shape ``(K, d)``."""
        return self._means

    @property
    def covs(self) -> np.ndarray:
        """Component covariances, shape ``(K, d, d)``."""
        return self._covs

    @property
    def eigvals(self) -> np.ndarray:
        """Eigenvalues ``λ_k`` of each covariance, ascending, shape ``(K, d)``."""
        return self._eigvals

    @property
    def eigvecs(self) -> np.ndarray:
        """Orthonormal eigenvectors ``U_k`` (columns), shape ``(K, d, d)``."""
        return self._eigvecs

    @property
    def log_weights(self) -> np.ndarray:
        """``log w_k`` (``-inf`` for a zero weight), shape ``(K,)``."""
        return self._log_weights

    @property
    def dim(self) -> int:
        """Dimension ``d``."""
        return int(self._means.shape[1])

    @property
    def n_components(self) -> int:
        """Number of components ``K``."""
        return int(self._weights.shape[0])

    def mean(self) -> np.ndarray:
        """Mixture mean ``Σ w_k μ_k``, shape ``(d,)``."""
        return self._weights @ self._means

    def covariance(self) -> np.ndarray:
        """Mixture covariance ``Σ w_k (Σ_k + μ_k μ_kᵀ) − m mᵀ``, shape ``(d, d)``."""
        m = self.mean()
        second = np.einsum("k,kij->ij", self._weights, self._covs) + np.einsum(
            "k,ki,kj->ij", self._weights, self._means, self._means
        )
        return second - np.outer(m, m)

    def __repr__(self) -> str:
        return f"GaussianMixture(K={self.n_components}, d={self.dim})"

    # -- density and sampling -----------------------------------------------------------
    def component_log_prob(self, x: object) -> np.ndarray:
        """``log w_k + log N(x; μ_k, Σ_k)`` for every point and component, shape ``(n, K)``."""
        x = as_points(x, self.dim)
        z = np.einsum("nkd,kde->nke", x[:, None, :] - self._means[None], self._eigvecs)
        quad = np.sum(z * z / self._eigvals[None], axis=-1)
        logdet = np.sum(np.log(self._eigvals), axis=-1)
        return self._log_weights[None] - 0.5 * (self.dim * _LOG_2PI + logdet[None] + quad)

    def log_prob(self, x: object) -> np.ndarray:
        """``log p(x)`` by log-sum-exp over components, shape ``(n,)``; ``x`` has shape ``(n, d)``."""
        return logsumexp(self.component_log_prob(x), axis=1)

    def sample(
        self,
        n: int,
        rng: np.random.Generator | int | None = None,
        *,
        return_components: bool = False,
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Draw ``n`` i.i.d. points, shape ``(n, d)``.

        ``rng`` is a ``numpy.random.Generator`` or an integer seed. With
        ``return_components=True`` also returns the component index of each point,
        shape ``(n,)``.
        """
        n = as_count(n)
        rng = as_rng(rng)
        labels = rng.choice(self.n_components, size=n, p=self._weights)
        z = rng.standard_normal((n, self.dim))
        scaled = np.sqrt(self._eigvals[labels]) * z
        x = self._means[labels] + np.einsum("nij,nj->ni", self._eigvecs[labels], scaled)
        if return_components:
            return x, labels
        return x
