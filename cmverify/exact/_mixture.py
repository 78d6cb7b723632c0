"""Gaussian mixtures ``Σ_k w_k N(μ_k, Σ_k)`` with validated parameters (exact layer)."""

from __future__ import annotations

import numpy as np

from .._validation import as_count, as_float_array, as_points, as_rng

__all__ = ["GaussianMixture"]

#: Tolerance on ``|Σ w_k − 1|``; weights within it are divided by their sum.
WEIGHT_SUM_TOLERANCE = 1e-6
#: Weights whose sum is within this of 1 (float64 rounding) are kept exactly as given.
WEIGHT_SUM_ROUNDING = 1e-12
#: Relative tolerance on ``max|Σ − Σᵀ| / max|Σ|``.
SYMMETRY_TOLERANCE = 1e-10
_LOG_2PI = float(np.log(2.0 * np.pi))


class GaussianMixture:
    """A Gaussian mixture ``p(x) = Σ_k w_k N(x; μ_k, Σ_k)`` in ``d`` dimensions.

    Arguments:
        weights: shape ``(K,)``, non-negative, summing to 1 within ``1e-6``
            (:data:`WEIGHT_SUM_TOLERANCE`). Weights off by more than float64 rounding
            (``1e-12``) but within ``1e-6`` are divided by their sum: float32 weights
            ``1/K`` (off by about ``5e-8``) are accepted. Beyond ``1e-6``: ``ValueError``
            saying how far off the sum is.
        means: shape ``(K, d)``.
        covs: shape ``(K, d, d)``, symmetric (relative asymmetry ≤ 1e-10) and
            positive definite (smallest eigenvalue > ``d · eps · largest``, and a
            normal float64, ``≥ 2.2e-308``, so that its inverse is representable).

    The attributes ``weights`` (renormalized as above, else as given), ``means`` and
    ``covs`` read back as given (float64 copies). The eigen-decompositions
    ``Σ_k = U_k diag(λ_k) U_kᵀ`` are computed once: ``eigvals`` has shape ``(K, d)`` and
    ``eigvecs`` shape ``(K, d, d)`` (columns are eigenvectors). Every later computation
    works in these eigenbases.

    ``name`` (keyword, optional): a label for reports, e.g. ``"eight_gaussians"``. The
    catalogue (:mod:`cmverify.exact.mixtures`) sets it to the name under which
    :func:`~cmverify.exact.mixtures.by_name` rebuilds the same mixture; mixtures built
    otherwise have ``name = None`` unless given one. A non-empty string without ``/``
    (it is joined to an interpolant's name by :attr:`MixturePath.name`), or ``None``.
    The name is a label only: it takes no part in any computation, and equality is
    identity (``GaussianMixture`` defines no ``__eq__``; two mixtures with the same
    parameters and names are distinct objects), with or without a name.
    """

    def __init__(
        self, weights: object, means: object, covs: object, *, name: str | None = None
    ) -> None:
        if name is not None:
            if not isinstance(name, str):
                raise TypeError(f"name must be a string or None, got {type(name).__name__}")
            if not name.strip() or "/" in name:
                raise ValueError(f"name must be a non-empty string without '/', got {name!r}")
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
        if not abs(total - 1.0) <= WEIGHT_SUM_TOLERANCE:
            raise ValueError(
                f"weights must sum to 1, got sum {total!r} (off by {total - 1.0:+.3e}; "
                f"tolerance {WEIGHT_SUM_TOLERANCE:.0e}, within which they are renormalized)"
            )
        if abs(total - 1.0) > WEIGHT_SUM_ROUNDING:
            w = w / total
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
            if lo < np.finfo(float).tiny:
                raise ValueError(
                    f"covs[{i}] has an eigenvalue {lo:.3e} below the smallest normal float64 "
                    f"({np.finfo(float).tiny:.3e}): its inverse is not representable"
                )
        self._name = name
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
    def name(self) -> str | None:
        """The label given at construction (the catalogue name for catalogue mixtures), or
        ``None``."""
        return self._name

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
        """Mixture covariance ``Σ w_k (Σ_k + (μ_k − m)(μ_k − m)ᵀ)``, shape ``(d, d)``.

        The centred form of ``Σ w_k (Σ_k + μ_k μ_kᵀ) − m mᵀ``: no cancellation when the
        means are large against the spread.
        """
        centred = self._means - self.mean()
        return np.einsum("k,kij->ij", self._weights, self._covs) + np.einsum(
            "k,ki,kj->ij", self._weights, centred, centred
        )

    def __repr__(self) -> str:
        label = "" if self._name is None else f"{self._name!r}, "
        return f"GaussianMixture({label}K={self.n_components}, d={self.dim})"

    # -- density and sampling -----------------------------------------------------------
    def component_log_prob(self, x: object) -> np.ndarray:
        """``log w_k + log N(x; μ_k, Σ_k)`` for every point and component, shape ``(n, K)``.

        ``-inf`` for a component of zero weight. ``ValueError`` where an entry of a
        component of positive weight is below ``−1.8e308`` (not representable in
        float64, e.g. ``|x − μ_k| = 1e200`` with unit variances); :meth:`log_prob` needs
        only the largest entry of each row and is representable much further out.
        """
        x = as_points(x, self.dim)
        out = self._component_log_prob(x)
        bad = np.isneginf(out[:, self._weights > 0])
        if np.any(bad):
            i = int(np.argmax(np.any(bad, axis=1)))
            raise ValueError(
                f"component_log_prob is not representable in float64 at x[{i}] "
                f"(max |x| = {np.max(np.abs(x[i])):.3e}): an exact value is below −1.8e308"
            )
        return out

    def _component_log_prob(self, x: np.ndarray) -> np.ndarray:
        """:meth:`component_log_prob` for validated ``x``, ``-inf`` where an entry is below
        ``−1.8e308``. Rows whose Mahalanobis terms overflow are recomputed with ``x`` and
        the means scaled by a power of two ``2^e`` (exact):
        ``½ q = (2^e sqrt(½ |Λ^{-1/2} Uᵀ (x − μ) / 2^e|²))²``."""
        logdet = np.sum(np.log(self._eigvals), axis=-1)
        const = self._log_weights[None] - 0.5 * (self.dim * _LOG_2PI + logdet[None])
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            # |Λ^{-1/2} Uᵀ (x − μ)|²: finite wherever the term is, also where |x − μ|² is not.
            z = np.einsum("nkd,kde->nke", x[:, None, :] - self._means[None], self._eigvecs)
            z = z / np.sqrt(self._eigvals)[None]
            half_quad = 0.5 * np.sum(z * z, axis=-1)
            redo = ~np.all(np.isfinite(half_quad), axis=1)
            if np.any(redo):
                xr = x[redo]
                size = np.maximum(np.max(np.abs(xr), axis=1), np.max(np.abs(self._means)))
                e = np.frexp(size)[1] - 1
                xh = np.ldexp(xr, -e[:, None])[:, None, :]
                mh = np.ldexp(self._means[None], -e[:, None, None])
                zh = np.einsum("nkd,kde->nke", xh - mh, self._eigvecs)
                zh = zh / np.sqrt(self._eigvals)[None]
                root = np.sqrt(0.5 * np.sum(zh * zh, axis=-1))
                half_quad[redo] = (np.ldexp(1.0, e)[:, None] * root) ** 2
        return const - half_quad

    def log_prob(self, x: object) -> np.ndarray:
        """``log p(x)`` by log-sum-exp over components, shape ``(n,)``; ``x`` has shape ``(n, d)``.

        ``ValueError`` where the exact value is below ``−1.8e308`` (not representable
        in float64): ``|x| ≳ 1e154 · sqrt(λ)`` away from every mean.
        """
        x = as_points(x, self.dim)
        comp = self._component_log_prob(x)
        top = np.max(comp, axis=1)
        if not np.all(np.isfinite(top)):
            i = int(np.argmax(~np.isfinite(top)))
            raise ValueError(
                f"log_prob is not representable in float64 at x[{i}] "
                f"(max |x| = {np.max(np.abs(x[i])):.3e}): the exact value is below −1.8e308"
            )
        return top + np.log(np.sum(np.exp(comp - top[:, None]), axis=1))

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
