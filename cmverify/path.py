"""Closed-form probability path of a Gaussian mixture under an interpolant (exact layer).

With ``x0 ~ Σ_k w_k N(μ_k, Σ_k)``, ``Σ_k = U_k diag(λ_k) U_kᵀ``, and
``x_t = α_t x0 + σ_t x1``, ``x1 ~ N(0, I)``:

- marginal: ``x_t ~ Σ_k w_k N(α μ_k, U_k diag(c_k) U_kᵀ)``, ``c_k = α² λ_k + σ²``;
- in component ``k``'s eigenbasis, ``y_k = U_kᵀ (y − α μ_k)``; responsibilities
  ``r_k(y) ∝ w_k N(y; α μ_k, C_k)`` by log-sum-exp;
- posterior of ``x0`` given ``x_t = y``: ``Σ_k r_k N(μ_k + U_k (α λ_k / c_k ⊙ y_k),
  U_k diag(λ_k σ² / c_k) U_kᵀ)``;
- denoiser ``D = E[x0 | y] = Σ r_k [μ_k + U_k (α λ_k / c_k ⊙ y_k)]``;
- expected noise ``E[x1 | y] = Σ r_k U_k (σ / c_k ⊙ y_k)``;
- score ``∇ log p_t(y) = −Σ r_k U_k (y_k / c_k)``  ``(= −E[x1 | y] / σ)``;
- velocity ``v = α̇ D + σ̇ E[x1 | y] = Σ r_k [α̇ μ_k + U_k ((α α̇ λ_k + σ σ̇) / c_k ⊙ y_k)]``.

No formula divides by ``α`` or ``σ``; ``c_k ≥ min(λ_k, 1) · (α² + σ²) > 0`` on all of
``[0, 1]``, and ``α α̇``, ``σ σ̇`` come simplified from the symbolic layer, so every
quantity is finite on the closed interval.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ._validation import as_count, as_points, as_rng, as_times
from .interpolant import Interpolant
from .mixture import _LOG_2PI, GaussianMixture

__all__ = ["MixturePath", "PosteriorMixture"]

#: Array entries (components × coordinates × points) evaluated per block of rows.
_BLOCK_ENTRIES = 2**17


@dataclass(frozen=True)
class PosteriorMixture:
    """The Gaussian mixture of ``x0`` given ``x_t = y``, one per point.

    Attributes:
        log_weights: ``log r_k(y)``, shape ``(n, K)``.
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
        """``Cov(x0 | x_t = y) = Σ r_k (C_k + m_k m_kᵀ) − D Dᵀ``, shape ``(n, d, d)``."""
        r = self.weights
        second = np.einsum("nk,nkij->nij", r, self.covs) + np.einsum(
            "nk,nki,nkj->nij", r, self.means, self.means
        )
        mean = self.mean()
        return second - mean[:, :, None] * mean[:, None, :]


@dataclass(frozen=True)
class _Evaluation:
    """Everything shared by the path quantities at ``(t, x)``, in the layout
    *components, coordinates, points* (points last and contiguous: every elementwise
    operation and every reduction over ``k`` or ``d`` then runs over long rows).

    ``alpha`` … ``sigma_dsigma`` have shape ``(1, 1, m)`` with ``m = 1`` for a scalar
    time and ``m = n`` for per-point times; ``c`` and ``inv_c = 1/c`` have shape ``(K, d, m)``; ``yk`` shape
    ``(K, d, n)``; ``resp`` and ``log_resp`` shape ``(K, n)``; ``log_p`` shape ``(n,)``.
    """

    alpha: np.ndarray
    sigma: np.ndarray
    dalpha: np.ndarray
    alpha_dalpha: np.ndarray
    sigma_dsigma: np.ndarray
    c: np.ndarray
    inv_c: np.ndarray
    yk: np.ndarray
    log_resp: np.ndarray
    resp: np.ndarray
    log_p: np.ndarray


class MixturePath:
    """The probability path ``p_t`` of ``x_t = α_t x0 + σ_t x1`` for Gaussian-mixture data.

    Arguments:
        mixture: the data distribution (at ``t = 0``).
        interpolant: defaults to :meth:`Interpolant.linear`.

    Every method takes ``t`` (a float, or an array of shape ``(n,)`` with one time per
    point) in ``[0, 1]`` and ``x`` of shape ``(n, d)``, in closed form and vectorized.
    See the module docstring for the formulas.
    """

    def __init__(self, mixture: GaussianMixture, interpolant: Interpolant | None = None) -> None:
        if not isinstance(mixture, GaussianMixture):
            raise TypeError(f"mixture must be a GaussianMixture, got {type(mixture).__name__}")
        if interpolant is None:
            interpolant = Interpolant.linear()
        if not isinstance(interpolant, Interpolant):
            raise TypeError(f"interpolant must be an Interpolant, got {type(interpolant).__name__}")
        self._mixture = mixture
        self._interpolant = interpolant
        # Layouts for the vectorized formulas (shapes (K, d, 1)); see _Evaluation.
        self._eigvals = mixture.eigvals[:, :, None]
        self._means = mixture.means[:, :, None]
        self._eigvecs_t = np.swapaxes(mixture.eigvecs, 1, 2)
        identity = np.broadcast_to(np.eye(mixture.dim), mixture.eigvecs.shape)
        self._identity_basis = bool(np.array_equal(mixture.eigvecs, identity))
        self._log_norm_const = (mixture.log_weights - 0.5 * mixture.dim * _LOG_2PI)[:, None]
        self._block_rows = max(256, _BLOCK_ENTRIES // (mixture.n_components * mixture.dim))

    @property
    def mixture(self) -> GaussianMixture:
        return self._mixture

    @property
    def interpolant(self) -> Interpolant:
        return self._interpolant

    @property
    def dim(self) -> int:
        return self._mixture.dim

    def __repr__(self) -> str:
        return f"MixturePath({self._mixture!r}, {self._interpolant!r})"

    # -- shared evaluation ------------------------------------------------------------
    def _rowwise(
        self, quantity: Callable[[_Evaluation], np.ndarray], t: object, x: object
    ) -> np.ndarray:
        """Validate ``(t, x)`` and evaluate ``quantity`` in blocks of rows.

        Blocks of about 128k array entries (``K · d · rows``) keep the intermediate
        arrays in cache: 2.4 times faster than one pass at 100,000 points (K = 8, d = 2).
        """
        x = as_points(x, self.dim)
        n = x.shape[0]
        t = as_times(t, n)
        if n <= self._block_rows:
            return quantity(self._evaluate(t, x))
        parts = [
            quantity(
                self._evaluate(
                    t if t.ndim == 0 else t[i : i + self._block_rows], x[i : i + self._block_rows]
                )
            )
            for i in range(0, n, self._block_rows)
        ]
        return np.concatenate(parts, axis=0)

    def _evaluate(self, t: np.ndarray, x: np.ndarray) -> _Evaluation:
        """The shared intermediate quantities for validated ``t`` and ``x``."""
        interp = self._interpolant

        def coefficient(key: str) -> np.ndarray:
            return np.reshape(interp._eval(key, t), (1, 1, -1))

        alpha, sigma = coefficient("alpha"), coefficient("sigma")
        c = alpha**2 * self._eigvals + sigma**2
        inv_c = 1.0 / c
        yk = self._to_eigenbasis(np.ascontiguousarray(x.T)[None] - alpha * self._means)
        # Σ_i log c_i as log Π_i c_i while the product stays far from under/overflow.
        log_det = np.log(np.prod(c, axis=1)) if self.dim <= 16 else np.sum(np.log(c), axis=1)
        log_comp = self._log_norm_const - 0.5 * (log_det + np.sum(yk * yk * inv_c, axis=1))
        top = np.max(log_comp, axis=0)
        shifted = np.exp(log_comp - top)
        total = np.sum(shifted, axis=0)
        log_p = top + np.log(total)
        return _Evaluation(
            alpha=alpha,
            sigma=sigma,
            dalpha=coefficient("dalpha"),
            alpha_dalpha=coefficient("alpha_dalpha"),
            sigma_dsigma=coefficient("sigma_dsigma"),
            c=c,
            inv_c=inv_c,
            yk=yk,
            log_resp=log_comp - log_p,
            resp=shifted / total,
            log_p=log_p,
        )

    def _to_eigenbasis(self, v: np.ndarray) -> np.ndarray:
        """``U_kᵀ v_k`` for ``v`` of shape ``(K, d, n)``."""
        return v if self._identity_basis else np.matmul(self._eigvecs_t, v)

    def _from_eigenbasis(self, v: np.ndarray) -> np.ndarray:
        """``U_k v_k`` for ``v`` of shape ``(K, d, n)``."""
        return v if self._identity_basis else np.matmul(self._mixture.eigvecs, v)

    def _combine(self, ev: _Evaluation, scale: np.ndarray, offset: np.ndarray | None) -> np.ndarray:
        """``Σ_k r_k [offset_k + U_k (scale_k ⊙ y_k)]``, shape ``(n, d)``."""
        inner = self._from_eigenbasis(scale * ev.yk)
        if offset is not None:
            inner += offset
        return np.ascontiguousarray(np.sum(ev.resp[:, None, :] * inner, axis=0).T)

    # -- densities --------------------------------------------------------------------
    def log_prob(self, t: object, x: object) -> np.ndarray:
        """``log p_t(x)``, shape ``(n,)``."""
        return self._rowwise(lambda ev: ev.log_p, t, x)

    def marginal(self, t: float) -> GaussianMixture:
        """The law of ``x_t`` at a single time: ``Σ_k w_k N(α μ_k, α² Σ_k + σ² I)``."""
        tt = as_times(t)
        if tt.ndim != 0:
            raise ValueError(f"t must be a single time for marginal, got shape {tt.shape}")
        a = float(self._interpolant._eval("alpha", tt))
        s = float(self._interpolant._eval("sigma", tt))
        mix = self._mixture
        covs = a * a * mix.covs + s * s * np.eye(self.dim)[None]
        return GaussianMixture(mix.weights, a * mix.means, covs)

    def posterior(self, t: object, x: object) -> PosteriorMixture:
        """The mixture of ``x0`` given ``x_t = x``, per point (see :class:`PosteriorMixture`)."""
        x = as_points(x, self.dim)
        ev = self._evaluate(as_times(t, x.shape[0]), x)
        shift = self._from_eigenbasis(ev.alpha * self._eigvals * ev.inv_c * ev.yk)
        eigvals = np.broadcast_to(self._eigvals * ev.sigma**2 * ev.inv_c, ev.yk.shape)
        return PosteriorMixture(
            log_weights=ev.log_resp.T,
            means=np.transpose(self._means + shift, (2, 0, 1)),
            eigvals=np.transpose(eigvals, (2, 0, 1)).copy(),
            eigvecs=self._mixture.eigvecs,
        )

    # -- conditional expectations -------------------------------------------------------
    def denoiser(self, t: object, x: object) -> np.ndarray:
        """``D(t, x) = E[x0 | x_t = x] = Σ r_k [μ_k + U_k (α λ_k / c_k ⊙ y_k)]``, shape ``(n, d)``."""
        return self._rowwise(
            lambda ev: self._combine(ev, ev.alpha * self._eigvals * ev.inv_c, self._means), t, x
        )

    def expected_noise(self, t: object, x: object) -> np.ndarray:
        """``E[x1 | x_t = x] = Σ r_k U_k (σ / c_k ⊙ y_k)``, shape ``(n, d)``."""
        return self._rowwise(lambda ev: self._combine(ev, ev.sigma * ev.inv_c, None), t, x)

    def score(self, t: object, x: object) -> np.ndarray:
        """``∇ log p_t(x) = −Σ r_k U_k (y_k / c_k)``, shape ``(n, d)``; finite also at ``t = 0``."""
        return self._rowwise(lambda ev: self._combine(ev, -ev.inv_c, None), t, x)

    def velocity(self, t: object, x: object) -> np.ndarray:
        """``v(t, x) = E[α̇ x0 + σ̇ x1 | x_t = x]``, shape ``(n, d)``.

        Computed as ``Σ r_k [α̇ μ_k + U_k ((α α̇ λ_k + σ σ̇) / c_k ⊙ y_k)]``, regular at
        ``t = 0`` and ``t = 1``.
        """
        return self._rowwise(self._velocity_block, t, x)

    def _velocity_block(self, ev: _Evaluation) -> np.ndarray:
        scale = (ev.alpha_dalpha * self._eigvals + ev.sigma_dsigma) * ev.inv_c
        return self._combine(ev, scale, ev.dalpha * self._means)

    # -- sampling ---------------------------------------------------------------------
    def sample(
        self,
        t: object,
        n: int,
        rng: np.random.Generator | int | None = None,
        *,
        return_endpoints: bool = False,
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Draw ``x_t = α_t x0 + σ_t x1`` for ``n`` independent pairs, shape ``(n, d)``.

        ``t`` is a float or an array of shape ``(n,)``. With ``return_endpoints=True``
        returns ``(x_t, x0, x1)``.
        """
        n = as_count(n)
        t = as_times(t, n)
        rng = as_rng(rng)
        x0 = self._mixture.sample(n, rng)
        x1 = rng.standard_normal((n, self.dim))
        alpha = np.reshape(self._interpolant._eval("alpha", t), (-1, 1))
        sigma = np.reshape(self._interpolant._eval("sigma", t), (-1, 1))
        xt = alpha * x0 + sigma * x1
        if return_endpoints:
            return xt, x0, x1
        return xt
