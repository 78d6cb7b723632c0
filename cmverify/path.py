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

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from ._validation import as_count, as_points, as_rng, as_times
from .interpolant import Interpolant
from .mixture import _LOG_2PI, GaussianMixture

__all__ = ["MixturePath", "PosteriorMixture"]


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


@dataclass(frozen=True)
class _Evaluation:
    """Everything shared by the path quantities at ``(t, x)``.

    ``alpha`` … ``sigma_dsigma`` have shape ``(m, 1, 1)`` with ``m = 1`` for a scalar
    time and ``m = n`` for per-point times; ``c`` has shape ``(m, K, d)``; ``yk`` shape
    ``(n, K, d)``; ``log_resp`` shape ``(n, K)``; ``log_p`` shape ``(n,)``.
    """

    alpha: np.ndarray
    sigma: np.ndarray
    dalpha: np.ndarray
    alpha_dalpha: np.ndarray
    sigma_dsigma: np.ndarray
    c: np.ndarray
    yk: np.ndarray
    log_resp: np.ndarray
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
    def _evaluate(self, t: object, x: object) -> _Evaluation:
        x = as_points(x, self.dim)
        t = as_times(t, x.shape[0])
        mix, interp = self._mixture, self._interpolant

        def coefficient(key: str) -> np.ndarray:
            return np.reshape(interp._eval(key, t), (-1, 1, 1))

        alpha, sigma = coefficient("alpha"), coefficient("sigma")
        c = alpha**2 * mix.eigvals[None] + sigma**2
        centered = x[:, None, :] - alpha * mix.means[None]
        yk = np.einsum("nkd,kde->nke", centered, mix.eigvecs)
        log_comp = mix.log_weights[None] - 0.5 * (
            self.dim * _LOG_2PI + np.sum(np.log(c), axis=-1) + np.sum(yk * yk / c, axis=-1)
        )
        log_p = logsumexp(log_comp, axis=1)
        return _Evaluation(
            alpha=alpha,
            sigma=sigma,
            dalpha=coefficient("dalpha"),
            alpha_dalpha=coefficient("alpha_dalpha"),
            sigma_dsigma=coefficient("sigma_dsigma"),
            c=c,
            yk=yk,
            log_resp=log_comp - log_p[:, None],
            log_p=log_p,
        )

    def _combine(self, ev: _Evaluation, scale: np.ndarray, offset: np.ndarray | None) -> np.ndarray:
        """``Σ_k r_k [offset_k + U_k (scale_k ⊙ y_k)]``, shape ``(n, d)``."""
        inner = np.einsum("kde,nke->nkd", self._mixture.eigvecs, scale * ev.yk)
        if offset is not None:
            inner = inner + offset
        return np.einsum("nk,nkd->nd", np.exp(ev.log_resp), inner)

    # -- densities --------------------------------------------------------------------
    def log_prob(self, t: object, x: object) -> np.ndarray:
        """``log p_t(x)``, shape ``(n,)``."""
        return self._evaluate(t, x).log_p

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
        ev = self._evaluate(t, x)
        mix = self._mixture
        lam = mix.eigvals[None]
        shift = np.einsum("kde,nke->nkd", mix.eigvecs, ev.alpha * lam / ev.c * ev.yk)
        eigvals = np.broadcast_to(lam * ev.sigma**2 / ev.c, ev.yk.shape)
        return PosteriorMixture(
            log_weights=ev.log_resp,
            means=mix.means[None] + shift,
            eigvals=np.array(eigvals),
            eigvecs=mix.eigvecs,
        )

    # -- conditional expectations -------------------------------------------------------
    def denoiser(self, t: object, x: object) -> np.ndarray:
        """``D(t, x) = E[x0 | x_t = x] = Σ r_k [μ_k + U_k (α λ_k / c_k ⊙ y_k)]``, shape ``(n, d)``."""
        ev = self._evaluate(t, x)
        lam = self._mixture.eigvals[None]
        return self._combine(ev, ev.alpha * lam / ev.c, self._mixture.means[None])

    def expected_noise(self, t: object, x: object) -> np.ndarray:
        """``E[x1 | x_t = x] = Σ r_k U_k (σ / c_k ⊙ y_k)``, shape ``(n, d)``."""
        ev = self._evaluate(t, x)
        return self._combine(ev, ev.sigma / ev.c, None)

    def score(self, t: object, x: object) -> np.ndarray:
        """``∇ log p_t(x) = −Σ r_k U_k (y_k / c_k)``, shape ``(n, d)``; finite also at ``t = 0``."""
        ev = self._evaluate(t, x)
        return self._combine(ev, -1.0 / ev.c, None)

    def velocity(self, t: object, x: object) -> np.ndarray:
        """``v(t, x) = E[α̇ x0 + σ̇ x1 | x_t = x]``, shape ``(n, d)``.

        Computed as ``Σ r_k [α̇ μ_k + U_k ((α α̇ λ_k + σ σ̇) / c_k ⊙ y_k)]``, regular at
        ``t = 0`` and ``t = 1``.
        """
        ev = self._evaluate(t, x)
        lam = self._mixture.eigvals[None]
        scale = (ev.alpha_dalpha * lam + ev.sigma_dsigma) / ev.c
        return self._combine(ev, scale, ev.dalpha * self._mixture.means[None])

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
