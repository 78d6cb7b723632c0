"""Gaussian mixtures ``Σ_k w_k N(μ_k, Σ_k)`` with validated parameters (exact layer)."""

from __future__ import annotations

import numpy as np

from .._validation import as_count, as_float_array, as_points, as_rng
from ._covariance import (
    check_diagonal,
    check_low_rank,
    check_weights_means,
    dense_covs,
    low_rank_eigh,
    positive_floor,
    woodbury_inverse,
)

__all__ = ["GaussianMixture"]

#: Relative tolerance on ``max|Σ − Σᵀ| / max|Σ|``.
SYMMETRY_TOLERANCE = 1e-10
_LOG_2PI = float(np.log(2.0 * np.pi))


class GaussianMixture:
    """A Gaussian mixture ``p(x) = Σ_k w_k N(x; μ_k, Σ_k)`` in ``d`` dimensions.

    Arguments:
        weights: shape ``(K,)``, non-negative, summing to 1 within ``1e-6``
            (:data:`~cmverify.exact._covariance.WEIGHT_SUM_TOLERANCE`). Weights off by more than float64 rounding
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
    ``eigvecs`` shape ``(K, d, d)`` (columns are eigenvectors). The path's formulas work in
    these eigenbases (low-rank mixtures: by Woodbury instead, see below).

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
        w, mu = check_weights_means(weights, means, name)
        k, d = mu.shape
        cov = as_float_array(covs, "covs")
        if cov.shape != (k, d, d):
            raise ValueError(
                f"covs must have shape (K, d, d) = ({k}, {d}, {d}) to match weights and means, "
                f"got {cov.shape}"
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
        positive_floor("covs", eigvals, eigvals[:, -1], d, eigen=True)
        self._finish(name, w, mu, "full", covs=cov, eigvals=eigvals, eigvecs=eigvecs)

    @classmethod
    def isotropic(
        cls, weights: object, means: object, variances: object, *, name: str | None = None
    ) -> GaussianMixture:
        """``Σ_k = s_k I`` from ``variances`` ``s`` of shape ``(K,)``: no ``d × d`` array is
        stored or formed on the hot path (``U_k = I``, ``eigvals`` the variances)."""
        return cls._structured(weights, means, name, "isotropic", variances=variances)

    @classmethod
    def diagonal(
        cls, weights: object, means: object, variances: object, *, name: str | None = None
    ) -> GaussianMixture:
        """``Σ_k = diag(D_k)`` from ``variances`` ``D`` of shape ``(K, d)``: ``U_k = I`` and
        ``eigvals`` are the variances in coordinate order (not sorted)."""
        return cls._structured(weights, means, name, "diagonal", variances=variances)

    @classmethod
    def low_rank(
        cls,
        weights: object,
        means: object,
        factors: object,
        diagonal: object,
        *,
        name: str | None = None,
    ) -> GaussianMixture:
        """``Σ_k = F_k F_kᵀ + diag(D_k)`` from ``factors`` ``F`` of shape ``(K, d, r)`` and
        ``diagonal`` ``D`` of shape ``(K, d)`` (positive). The path's velocity, score,
        denoiser, log-density and velocity Jacobian cost ``O(K d r)`` per point (Woodbury,
        :mod:`cmverify.exact._lowrank`); ``covs``, ``eigvals`` and ``eigvecs`` are formed
        (dense, ``O(K d³)``) on first request only."""
        return cls._structured(weights, means, name, "low_rank", factors=factors, diag=diagonal)

    @classmethod
    def _structured(
        cls, weights: object, means: object, name: str | None, structure: str, **parts: object
    ) -> GaussianMixture:
        self = cls.__new__(cls)
        w, mu = check_weights_means(weights, means, name)
        k, d = mu.shape
        if structure == "low_rank":
            fac, diag = check_low_rank(parts["factors"], parts["diag"], k, d)
            self._finish(name, w, mu, structure, factors=fac, diagonal=diag)
        else:
            var = check_diagonal(parts["variances"], k, d, isotropic=structure == "isotropic")
            self._finish(name, w, mu, structure, eigvals=var)
        return self

    def _finish(
        self,
        name: str | None,
        w: np.ndarray,
        mu: np.ndarray,
        structure: str,
        *,
        covs: np.ndarray | None = None,
        eigvals: np.ndarray | None = None,
        eigvecs: np.ndarray | None = None,
        factors: np.ndarray | None = None,
        diagonal: np.ndarray | None = None,
    ) -> None:
        self._name = name
        self._structure = structure
        self._weights = w
        self._means = mu
        self._covs = covs
        self._eigvals = eigvals
        self._eigvecs = eigvecs
        self._factors = factors
        self._diagonal = diagonal
        self._woodbury_terms: tuple[np.ndarray, np.ndarray] | None = None
        with np.errstate(divide="ignore"):
            self._log_weights = np.log(w)
        for arr in (w, mu, covs, eigvals, eigvecs, factors, diagonal, self._log_weights):
            if arr is not None and arr.flags.writeable:
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
    def structure(self) -> str:
        """``"full"``, ``"isotropic"``, ``"diagonal"`` or ``"low_rank"``: how the
        covariances were given (the constructor or :meth:`isotropic`, :meth:`diagonal`,
        :meth:`low_rank`)."""
        return self._structure

    @property
    def covs(self) -> np.ndarray:
        """Component covariances, shape ``(K, d, d)`` (formed on first request for a
        structured mixture: ``K d²`` numbers)."""
        if self._covs is None:
            var = None if self._structure == "low_rank" else self._eigvals
            covs = dense_covs(self._structure, var, self._factors, self._diagonal)
            covs.flags.writeable = False
            self._covs = covs
        return self._covs

    @property
    def factors(self) -> np.ndarray:
        """``F_k`` of a low-rank mixture, shape ``(K, d, r)`` (``AttributeError`` otherwise)."""
        if self._factors is None:
            raise AttributeError(f"a {self._structure} mixture has no factors")
        return self._factors

    @property
    def diagonal_term(self) -> np.ndarray:
        """``D_k`` of ``Σ_k = F_k F_kᵀ + diag(D_k)`` (low-rank), or the variances of a
        diagonal or isotropic mixture, shape ``(K, d)`` (``AttributeError`` for full)."""
        if self._structure == "low_rank":
            return self._diagonal
        if self._structure == "full":
            raise AttributeError("a full mixture has no diagonal; see covs")
        return self._eigvals

    def _decompose(self) -> None:
        if self._structure in ("isotropic", "diagonal"):
            return
        if self._eigvals is None:  # low rank: from its structure, on request
            eigvals, eigvecs = low_rank_eigh(self._factors, self._diagonal)
            eigvals.flags.writeable = eigvecs.flags.writeable = False
            self._eigvals, self._eigvecs = eigvals, eigvecs

    @property
    def eigvals(self) -> np.ndarray:
        """Eigenvalues ``λ_k`` of each covariance, shape ``(K, d)``: ascending for full and
        low-rank mixtures (low rank: on first request, from the factors' SVD where
        ``D_k = s_k 1``, :func:`~cmverify.exact._covariance.low_rank_eigh`, else densely),
        the variances in coordinate order for diagonal and isotropic ones."""
        self._decompose()
        return self._eigvals

    @property
    def eigvecs(self) -> np.ndarray:
        """Orthonormal eigenvectors ``U_k`` (columns), shape ``(K, d, d)``: for diagonal and
        isotropic mixtures a read-only broadcast identity, formed on each request (``d²``
        numbers) and never on the hot path; computed on first request for low-rank ones
        (as :attr:`eigvals`)."""
        self._decompose()
        if self._eigvecs is None:
            return np.broadcast_to(np.eye(self.dim), (self.n_components, self.dim, self.dim))
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
        between = np.einsum("k,ki,kj->ij", self._weights, centred, centred)
        if self._structure == "full":
            return np.einsum("k,kij->ij", self._weights, self._covs) + between
        idx = np.arange(self.dim)
        between[idx, idx] += self._weights @ self.diagonal_term
        if self._structure == "low_rank":
            between += np.einsum("k,kir,kjr->ij", self._weights, self._factors, self._factors)
        return between

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
        ``½ q = (2^e sqrt(½ |z(x − μ) / 2^e|²))²`` with ``|z(y)|² = yᵀ Σ⁻¹ y``."""
        const = self._log_weights[None] - 0.5 * (self.dim * _LOG_2PI + self._log_det()[None])
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            # |z|²: finite wherever the term is, also where |x − μ|² is not.
            z = self._whitened(x[:, None, :] - self._means[None])
            half_quad = 0.5 * np.sum(z * z, axis=-1)
            redo = ~np.all(np.isfinite(half_quad), axis=1)
            if np.any(redo):
                xr = x[redo]
                size = np.maximum(np.max(np.abs(xr), axis=1), np.max(np.abs(self._means)))
                e = np.frexp(size)[1] - 1
                xh = np.ldexp(xr, -e[:, None])[:, None, :]
                mh = np.ldexp(self._means[None], -e[:, None, None])
                zh = self._whitened(xh - mh)
                root = np.sqrt(0.5 * np.sum(zh * zh, axis=-1))
                half_quad[redo] = (np.ldexp(1.0, e)[:, None] * root) ** 2
        return const - half_quad

    def _log_det(self) -> np.ndarray:
        """``log det Σ_k``, shape ``(K,)``."""
        if self._structure != "low_rank":
            return np.sum(np.log(self._eigvals), axis=-1)
        _, log_det_m = self._woodbury()
        return np.sum(np.log(self._diagonal), axis=-1) + log_det_m

    def _woodbury(self) -> tuple[np.ndarray, np.ndarray]:
        """``(M⁻¹, log det M)`` of ``M_k = I + F_kᵀ D_k⁻¹ F_k`` (low rank), computed once."""
        if self._woodbury_terms is None:
            fac = self._factors
            self._woodbury_terms = woodbury_inverse(
                np.swapaxes(fac, 1, 2), fac, 1.0 / self._diagonal, 1.0
            )
        return self._woodbury_terms

    def _whitened(self, y: np.ndarray) -> np.ndarray:
        """A vector ``z`` per point and component with ``|z|² = yᵀ Σ_k⁻¹ y`` for ``y`` of shape
        ``(n, K, d)``: ``Λ^{-1/2} Uᵀ y`` (full), ``y / sqrt(D)`` (diagonal), and
        ``[sqrt(D) ⊙ h, ũ]`` (low rank, :mod:`cmverify.exact._lowrank` at ``α = 1, σ = 0``)."""
        if self._structure in ("isotropic", "diagonal"):
            return y / np.sqrt(self._eigvals)[None]
        if self._structure == "full":
            return np.einsum("nkd,kde->nke", y, self._eigvecs) / np.sqrt(self._eigvals)[None]
        m_inv, _ = self._woodbury()
        ey = y / self._diagonal[None]
        u = np.einsum("krs,kds,nkd->nkr", m_inv, self._factors, ey)
        h = ey - np.einsum("kdr,nkr->nkd", self._factors, u) / self._diagonal[None]
        return np.concatenate([np.sqrt(self._diagonal)[None] * h, u], axis=-1)

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
        if self._structure == "full":
            scaled = np.sqrt(self._eigvals[labels]) * z
            x = self._means[labels] + np.einsum("nij,nj->ni", self._eigvecs[labels], scaled)
        elif self._structure == "low_rank":  # F_k z' + sqrt(D_k) ⊙ z, one component at a time
            x = self._means[labels] + np.sqrt(self._diagonal[labels]) * z
            extra = rng.standard_normal((n, self._factors.shape[2]))
            for k in range(self.n_components):
                rows = labels == k
                x[rows] += extra[rows] @ self._factors[k].T
        else:
            x = self._means[labels] + np.sqrt(self._eigvals[labels]) * z
        if return_components:
            return x, labels
        return x
