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
absolutely (and ``p_k`` likewise), so the exponents of the responsibilities blur by up to
``eps (|x|² + α² max|μ|²) / min c⊥`` — near the data at small ``t`` far more than the
direct route's own ``eps · q``. Rows where that bound exceeds :data:`CENTRE_RATIO` times
``eps · max(q_top, 1)`` (``q_top``: the most likely component's) are computed again
about the mean ``μ_j`` of their most likely component: with
``x' = x − α μ_j`` (formed elementwise) and ``Δ_k = μ_k − μ_j``,
``|y_k|² = |x'|² − 2 α Δ_k·x' + α² |Δ_k|²`` and ``p_k = F_kᵀ x' − α F_kᵀ Δ_k`` (the
``Δ_k`` products per group of rows with the same ``j``; ``|Δ_k|²`` and ``F_kᵀ Δ_k`` formed
once, directly). For the likely components the rounding is then the direct route's; for
the others it is relative to their large ``q_k``. The velocity of such rows is summed
about ``μ_j`` too, ``g⊥ (x − α μ_k) = g⊥ x' − α g⊥ Δ_k``: formed as ``g⊥ x − α g⊥ μ_k`` it
would cancel at the size of ``g⊥ |x|`` (``g⊥ ~ 1/c⊥``). What remains is ``q_j``'s own split
``|y⊥|² = |y|² − Σ p²/γ``, which rounds to ``eps |x'|² / c⊥``: rows where that exceeds
:data:`CENTRE_RATIO` times ``eps · max(q_j, 1)`` (points far out along a factor of a
narrow component, ``c∥ ≫ c⊥``) take the direct route — tested for every component
whose responsibility is above ``eps`` of the largest (a likely component's mean may lie far
along its own factor from ``μ_j``), not only for ``j``. So every row's exponents round to
at most 16 times the direct route's. (With ``r = 0`` there is no split: ``q = |y|²/c⊥``.)
"""

from __future__ import annotations

import numpy as np

from ..symbolic import Interpolant
from ._evaluation import MAX_DIRECT_Q
from ._mixture import _LOG_2PI, GaussianMixture

__all__ = ["CENTRE_RATIO", "GramVelocity"]

#: Rows whose exponents could blur by more than this many times the direct route's
#: ``eps · max(q, 1)`` are recomputed about their most likely component's mean, and if
#: still so, by the direct route (module docstring).
CENTRE_RATIO = 16.0
#: Array entries per block (its arrays are ``(K (r + 1), n)`` and ``(n, d)``: wide blocks
#: keep the matrix products efficient at large ``d``), and the most rows per block (the
#: elementwise work stays in cache at small ``d``).
BLOCK_ENTRIES, MAX_ROWS = 2**22, 4096
#: Isotropic mixtures take the product route from this dimension on (K = 8, per-point
#: times, µs per point against the direct route: 0.36 / 0.28 at d = 2, 0.53 / 0.64 at
#: d = 4 (a review measured 0.72 / 0.42 on another mixture), 0.38 / 1.7 at d = 8, 1.2 /
#: 9.3 at d = 64).
PRODUCT_MIN_DIM = 8
#: Centred rows per group below which the differences μ_k − μ_j are formed per row (one
#: vectorized pass) instead of one matrix product per group.
GROUP_ROWS = 32
_LOG_EPS = float(np.log(np.finfo(float).eps))


class GramVelocity:
    """The velocity of a probabilistic-PCA mixture path by products (module docstring).

    Built from the interpolant, factors with orthogonal columns ``(K, d, r)`` (``r = 0``
    for isotropic components ``s_k I``), the variances ``s`` ``(K,)``, ``γ_k = diag(F_kᵀ
    F_k)`` ``(K, r)``, the means ``(K, d)`` and ``log w_k`` ``(K,)``."""

    def __init__(
        self,
        interpolant: Interpolant,
        factors: np.ndarray,
        s: np.ndarray,
        gamma: np.ndarray,
        means: np.ndarray,
        log_weights: np.ndarray,
    ) -> None:
        k, d, r = factors.shape
        self.k, self.d, self.r = k, d, r
        self.block_rows = max(256, min(MAX_ROWS, BLOCK_ENTRIES // (k * (r + 1) + d)))
        self._coefficients = interpolant._numeric_stack(
            ("alpha", "sigma", "dalpha", "alpha_dalpha", "sigma_dsigma", "wronskian")
        )
        # [F_1 … F_K | μ_1 … μ_K], shape (d, K r + K): the products in and out.
        self.basis = np.ascontiguousarray(
            np.concatenate([np.moveaxis(factors, 0, 1).reshape(d, k * r), means.T], axis=1)
        )
        fm = np.einsum("kdr,kd->kr", factors, means)  # F_kᵀ μ_k, (K, r)
        mm = np.einsum("kd,kd->k", means, means)  # |μ_k|², (K,)
        # [F | μ]ᵀ with the column [F_kᵀ μ_k; |μ_k|²/2] that multiplies the extra coordinate −α.
        extra = np.concatenate([fm.reshape(k * r), 0.5 * mm])[:, None]
        self.basis_aug_t = np.ascontiguousarray(np.concatenate([self.basis.T, extra], axis=1))
        self.max_mm = float(np.max(mm))
        # About each μ_j: |Δ_jk|² (K, K) and F_kᵀ Δ_jk (K, K, r), Δ_jk = μ_k − μ_j formed
        # directly (the products Δ_jk·x' per group of rows, in _centred).
        self.means = means
        self.factors_all_t = np.ascontiguousarray(self.basis[:, : k * r].T)  # (K r, d)
        self.delta_sq = np.empty((k, k))
        self.delta_f = np.empty((k, k, r))
        for j in range(k):
            delta = means - means[j]
            self.delta_sq[j] = np.einsum("kd,kd->k", delta, delta)
            self.delta_f[j] = np.einsum("kdr,kd->kr", factors, delta)
        self.s = s[:, None]  # (K, 1)
        self.gamma = gamma[:, :, None]  # (K, r, 1)
        self.log_norm_const = (log_weights - 0.5 * d * _LOG_2PI)[:, None]  # (K, 1)

    @classmethod
    def isotropic(cls, interpolant: Interpolant, mixture: GaussianMixture) -> GramVelocity | None:
        """The product route of a mixture whose every covariance is ``s_k I`` (whatever form
        it was given in) in ``d ≥`` :data:`PRODUCT_MIN_DIM`, else ``None``."""
        if mixture.structure == "low_rank" or mixture.dim < PRODUCT_MIN_DIM:
            return None
        lam = mixture.eigvals
        if mixture.structure != "isotropic":
            if not np.all(lam == lam[:, :1]):
                return None
            if mixture.structure == "full":
                eye = np.broadcast_to(np.eye(mixture.dim), mixture.eigvecs.shape)
                if not np.array_equal(mixture.eigvecs, eye):
                    return None
        k, d = mixture.n_components, mixture.dim
        return cls(
            interpolant,
            np.zeros((k, d, 0)),
            lam[:, 0],
            np.zeros((k, 0)),
            mixture.means,
            mixture.log_weights,
        )

    def velocity_checked(self, t: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(v, ok)`` at validated ``(t, x)``: the rows ``ok`` are resolved (near the data,
        within the product route's rounding limit, finite); the others must be redone."""
        v, top, max_const, direct = self.velocity(self._coefficients(t), x)
        ok = (2.0 * (max_const - top) <= MAX_DIRECT_Q) & np.all(np.isfinite(v), axis=1)
        return v, ok & ~direct

    def velocity(
        self, coefficients: np.ndarray, x: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(v, top, max_const, direct)`` at validated ``x`` ``(n, d)``, with
        ``coefficients`` the stacked ``α, σ, α̇, α α̇, σ σ̇, W`` (shape ``(6, m)``): ``v``
        ``(n, d)``, the largest exponent and constant per row for the far-row test, and the
        rows whose rounding this route cannot bound (module docstring)."""
        k, r = self.k, self.r
        n, d = x.shape
        alpha, sigma, dalpha, alpha_dalpha, sigma_dsigma, wronskian = np.reshape(
            coefficients, (6, 1, -1)
        )
        a2 = alpha * alpha
        c_perp = a2 * self.s + sigma * sigma  # (K, m)
        inv_perp = 1.0 / c_perp
        inv_par = np.multiply(a2[:, None, :], self.gamma)  # 1 / c∥ = 1 / (c⊥ + α² γ), (K, r, m)
        inv_par += c_perp[:, None, :]
        np.reciprocal(inv_par, out=inv_par)
        # One product gives p_k = F_kᵀ x − α F_kᵀ μ_k and μ_k·x − α |μ_k|²/2 (x gets −α as
        # an extra coordinate).
        x_aug = np.empty((n, d + 1))
        x_aug[:, :d] = x
        x_aug[:, d] = -alpha[0]
        proj = self.basis_aug_t @ x_aug.T  # (K r + K, n)
        p = proj[: k * r].reshape(k, r, n)
        xx = np.einsum("nd,nd->n", x, x)
        yy = xx - 2.0 * alpha * proj[k * r :]  # |x − α μ_k|², (K, n)
        pc = p * inv_par  # p / c∥, (K, r, n)
        q = inv_perp * (yy - a2 * np.einsum("krn,krn->kn", p, pc))
        # Σ_j log c∥_j as minus the log of a product while it stays in range.
        prod = np.multiply.reduce(inv_par, axis=1)
        if r == 0 or (prod.min() > 1e-290 and prod.max() < 1e290):
            log_par = -np.log(prod)
        else:
            log_par = -np.sum(np.log(inv_par), axis=1)
        const = self.log_norm_const - 0.5 * ((d - r) * np.log(c_perp) + log_par)  # (K, m)
        inv_perp_max = np.broadcast_to(np.max(inv_perp, axis=0), (n,))
        top_k = np.argmax(const - 0.5 * q, axis=0)
        direct = np.zeros(n, dtype=bool)
        q_top = np.maximum(np.take_along_axis(q, top_k[None], axis=0)[0], 1.0)
        centre = inv_perp_max * (xx + a2[0] * self.max_mm) > CENTRE_RATIO * q_top
        if centre.any():  # about the most likely component's mean (module docstring)
            a_rows = np.broadcast_to(alpha[0], (n,))[centre]
            p[:, :, centre], yy[:, centre], xc = self._centred(a_rows, x[centre], top_k[centre])
            np.multiply(p, inv_par, out=pc)
            q = inv_perp * (yy - a2 * np.einsum("krn,krn->kn", p, pc))
        log_comp = const - 0.5 * q
        top = np.max(log_comp, axis=0)
        if r > 0:
            # |y_k|² / c⊥ still large against q_k for a component that matters (a point far
            # along a factor of a narrow component, c∥ ≫ c⊥): the split
            # |y⊥|² = |y|² − Σ p²/γ cancels; such rows take the direct route.
            matters = log_comp >= top + _LOG_EPS
            split = inv_perp * yy > CENTRE_RATIO * np.maximum(q, 1.0)
            direct = np.any(matters & split, axis=0)
        resp = np.exp(log_comp - top)
        resp /= np.sum(resp, axis=0)
        g_perp = (alpha_dalpha * self.s + sigma_dsigma) * inv_perp  # (K, m)
        coef = np.empty((k * r + k, n))
        w = (alpha * sigma * wronskian) * inv_perp  # (K, m)
        np.multiply(pc, -(resp * w)[:, None, :], out=coef[: k * r].reshape(k, r, n))
        np.multiply(resp, dalpha - alpha * g_perp, out=coef[k * r :])
        weight = np.sum(resp * g_perp, axis=0)  # Σ_k r_k g⊥_k, (n,)
        v = (self.basis @ coef).T + weight[:, None] * x
        if centre.any():
            # g⊥ (x − α μ_k) as g⊥ x' − α g⊥ Δ_jk: the products g⊥ x and α g⊥ μ_k would
            # cancel at the size of g⊥ |x| (g⊥ ~ 1/c⊥, variances 1e-21: 1e-7 relative).
            sub = coef[:, centre]
            sub[k * r :] = resp[:, centre] * np.broadcast_to(dalpha[0], (n,))[centre]
            v_c = (self.basis @ sub).T + weight[centre][:, None] * xc
            rg = (resp * g_perp)[:, centre]  # (K, m)
            j = top_k[centre]
            groups = np.unique(j)
            if len(groups) * GROUP_ROWS > len(j):
                delta = self.means[None, :, :] - self.means[j][:, None, :]  # (m, K, d)
                v_c -= a_rows[:, None] * np.einsum("mkd,km->md", delta, rg)
            else:
                for jj in groups:
                    rows = j == jj
                    shift = (self.means - self.means[jj]).T @ rg[:, rows]  # Σ r g⊥ Δ_jk
                    v_c[rows] -= a_rows[rows, None] * shift.T
            v[centre] = v_c
        return v, top, np.max(const, axis=0), direct

    def _centred(
        self, alpha: np.ndarray, x: np.ndarray, j: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(p, |y|², x')`` of shapes ``(K, r, m)``, ``(K, m)`` and ``(m, d)`` for the rows
        ``x`` ``(m, d)`` about ``μ_j`` (``j`` ``(m,)``, ``alpha`` ``(m,)``): module docstring."""
        k, r = self.k, self.r
        xc = x - alpha[:, None] * self.means[j]  # x' = x − α μ_j, (m, d)
        p = (self.factors_all_t @ xc.T).reshape(k, r, x.shape[0])
        p -= alpha * np.moveaxis(self.delta_f[j], 0, 2)  # F_kᵀ Δ_jk, (K, r, m)
        dx = np.empty((k, x.shape[0]))
        groups = np.unique(j)
        if len(groups) * GROUP_ROWS > x.shape[0]:  # few rows per group: one pass, no loop
            delta = self.means[None, :, :] - self.means[j][:, None, :]  # (m, K, d)
            dx[:] = np.einsum("mkd,md->km", delta, xc)
        else:
            for jj in groups:
                rows = j == jj
                dx[:, rows] = (self.means - self.means[jj]) @ xc[rows].T  # Δ_jk·x'
        xx = np.einsum("md,md->m", xc, xc)
        yy = xx - 2.0 * alpha * dx + alpha * alpha * self.delta_sq[j].T
        return p, yy, xc
