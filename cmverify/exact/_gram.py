"""The velocity of a probabilistic-PCA mixture path by matrix products (exact layer).

For ``Σ_k = F_k F_kᵀ + s_k I`` with ``F_k`` rotated to orthogonal columns
(``F_kᵀ F_k = diag(γ_k)``, :class:`~cmverify.exact._lowrank.LowRankEvaluator`), the
marginal covariance ``C_k = α² Σ_k + σ² I`` has eigenvalues ``c⊥ = α² s_k + σ²`` (on the
complement of ``F_k``) and ``c∥_j = c⊥ + α² γ_kj``. With ``y_k = x − α μ_k`` and
``p_k = F_kᵀ y_k`` (``r`` numbers),

    ``q_k = |y_k|² / c⊥ − (α² / c⊥) Σ_j p_kj² / c∥_j``,
    ``|y_k|² = |x|² − 2 α μ_k·x + α² |μ_k|²``,
    ``log det C_k = (d − r) log c⊥ + Σ_j log c∥_j``,

and, since ``g∥_j − g⊥ = −γ_j α σ W / (c∥_j c⊥)`` (``g = (α α̇ λ + σ σ̇) / c``,
``W = α σ̇ − α̇ σ``: no division by ``γ``),

    ``v = (Σ_k r_k g⊥_k) x + Σ_k r_k (α̇ − α g⊥_k) μ_k − α σ W Σ_k F_k (r_k p_k / (c∥_k c⊥_k))``.

Everything of size ``d`` is then three matrix products per block —
``[F_1 … F_K]ᵀ x`` and ``[μ_1 … μ_K]ᵀ x`` in, ``[F_1 … F_K | μ_1 … μ_K]`` times the
coefficients out: ``4 d K (r + 1)`` flops per point — and the rest is ``O(K r)`` per
point. The direct route does ``O(K d)`` elementwise passes instead, which bound it at
large ``K d`` by memory traffic (measured below in benchmarks/RESULTS.md).

**Accuracy.** Expanding ``|y_k|²`` rounds it to about ``eps (|x|² + α² |μ_k|²)``
absolutely, so the exponents of the responsibilities blur by
``eps (|x|² + α² max|μ|²) / min c⊥``. Rows where that exceeds the direct route's own
limit (``2^20 eps``, :data:`~cmverify.exact._evaluation.MAX_DIRECT_Q`) are returned to
the direct route (:data:`MAX_GRAM_RATIO`); the velocity's other terms round like the
direct route's (``x − α μ_k`` is formed there too).
"""

from __future__ import annotations

import numpy as np

from ._evaluation import MAX_DIRECT_Q

__all__ = ["MAX_GRAM_RATIO", "GramVelocity"]

#: Rows with ``(|x|² + α² max|μ_k|²) / min c⊥`` above this take the direct route.
MAX_GRAM_RATIO = MAX_DIRECT_Q


class GramVelocity:
    """The velocity of a probabilistic-PCA mixture path by products (module docstring).

    Built from :class:`~cmverify.exact._lowrank.LowRankEvaluator`'s rotated factors
    ``(K, d, r)``, the variances ``s`` ``(K,)``, ``γ`` ``(K, r)``, the means ``(K, d)``
    and ``log w_k − ½ d log 2π`` ``(K,)``."""

    def __init__(
        self,
        factors: np.ndarray,
        s: np.ndarray,
        gamma: np.ndarray,
        means: np.ndarray,
        log_norm_const: np.ndarray,
    ) -> None:
        k, d, r = factors.shape
        self.k, self.d, self.r = k, d, r
        # [F_1 … F_K | μ_1 … μ_K], shape (d, K r + K): the products in and out.
        self.basis = np.ascontiguousarray(
            np.concatenate([np.moveaxis(factors, 0, 1).reshape(d, k * r), means.T], axis=1)
        )
        self.basis_t = np.ascontiguousarray(self.basis.T)
        self.fm = np.einsum("kdr,kd->kr", factors, means)  # F_kᵀ μ_k, (K, r)
        self.mm = np.einsum("kd,kd->k", means, means)  # |μ_k|², (K,)
        self.max_mm = float(np.max(self.mm))
        self.s = s[:, None]  # (K, 1)
        self.gamma = gamma[:, :, None]  # (K, r, 1)
        self.log_norm_const = log_norm_const[:, None]  # (K, 1)

    def velocity(
        self, coefficients: np.ndarray, x: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(v, top, max_const, ok)`` at validated ``x`` ``(n, d)``, with ``coefficients``
        the stacked ``α, σ, α̇, α α̇, σ σ̇, W`` (shape ``(6, m)``): ``v`` ``(n, d)``, the
        largest exponent and constant per row for the far-row test, and ``ok`` ``(n,)``,
        the rows this route resolves (the others must take the direct route)."""
        k, r = self.k, self.r
        alpha, sigma, dalpha, alpha_dalpha, sigma_dsigma, wronskian = np.reshape(
            coefficients, (6, 1, -1)
        )
        a2 = alpha * alpha
        c_perp = a2 * self.s + sigma * sigma  # (K, m)
        c_par = c_perp[:, None, :] + a2[:, None, :] * self.gamma  # (K, r, m)
        proj = self.basis_t @ x.T  # (K r + K, n)
        n = x.shape[0]
        p = proj[: k * r].reshape(k, r, n) - alpha[:, None, :] * self.fm[:, :, None]
        mx = proj[k * r :]  # μ_k·x, (K, n)
        xx = np.einsum("nd,nd->n", x, x)
        yy = xx - 2.0 * alpha * mx + a2 * self.mm[:, None]  # (K, n)
        inv_perp = 1.0 / c_perp
        pc = p / c_par  # (K, r, n)
        q = inv_perp * (yy - a2 * np.einsum("krn,krn->kn", p, pc))
        # Σ_j log c∥_j as the log of the product while it stays in range.
        prod = np.multiply.reduce(c_par, axis=1)
        if prod.min() > 1e-290 and prod.max() < 1e290:
            log_par = np.log(prod)
        else:
            log_par = np.sum(np.log(c_par), axis=1)
        log_det = (self.d - r) * np.log(c_perp) + log_par
        const = self.log_norm_const - 0.5 * log_det  # (K, m)
        log_comp = const - 0.5 * q
        top = np.max(log_comp, axis=0)
        resp = np.exp(log_comp - top)
        resp /= np.sum(resp, axis=0)
        g_perp = (alpha_dalpha * self.s + sigma_dsigma) * inv_perp  # (K, m)
        coef = np.empty((k * r + k, n))
        w = (alpha * sigma * wronskian) * inv_perp  # (K, m)
        coef[: k * r] = (-(resp * w)[:, None, :] * pc).reshape(k * r, n)
        coef[k * r :] = resp * (dalpha - alpha * g_perp)
        v = (self.basis @ coef).T + np.sum(resp * g_perp, axis=0)[:, None] * x
        ratio = (xx + a2[0] * self.max_mm) * np.max(inv_perp, axis=0)
        ok = ratio <= MAX_GRAM_RATIO
        return v, top, np.max(const, axis=0), ok
