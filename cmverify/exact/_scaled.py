"""The *scaled route* of a mixture path's closed forms, far from the data (exact layer).

The direct route (:mod:`cmverify.exact._evaluation`) rounds each Mahalanobis term
``q_k`` to ``eps · q_k``. Rows where ``q`` at the most likely component may exceed
``2^20`` (so that the exponents of the responsibilities would blur by more than
``2e-10``: far from the data), and rows on which the direct formulas overflow, take
this route. With ``y = 2^g ŷ₀`` and ``μ_k = 2^f μ̂_k`` (powers of two: exact), the
exponents of the responsibilities are differences to a reference component ``j``,

    ``log (r_k / r_j) = b_k − b_j − ½ [X² ΔA − 2 X M ΔB + M² ΔG]``,  ``X = 2^g``, ``M = α 2^f``,

with ``b_k = log w_k − ½ (d log 2π + log det C_k)``, ``A_k = ŷ₀ᵀ C_k⁻¹ ŷ₀``,
``B_k = ŷ₀ᵀ C_k⁻¹ μ̂_k``, ``G_k = μ̂_kᵀ C_k⁻¹ μ̂_k`` and ``Δ`` the difference to
component ``j``. Where ``ΔA`` or ``ΔB`` would cancel, they come from
``C_k⁻¹ − C_j⁻¹ = α² C_k⁻¹ (Σ_j − Σ_k) C_j⁻¹``: exactly zero for components that share
a covariance, so the means still decide the responsibilities where ``y − α μ_k`` has
rounded every ``μ_k`` away (``|y| = 1e160``), and at ``t = 1`` (``α = 0``) the
responsibilities are the weights. Each product is formed from mantissas and binary
exponents, so it overflows only where its exact value does. The responsibilities then
go to the component nearest in Mahalanobis distance, and the denoiser, expected noise,
score and velocity are ``2^e × (a bounded sum)`` with ``2^e ≈ max(|y|, α max |μ|)``:
finite and accurate to rounding wherever the true value is representable in float64.
(One limit remains: a coefficient ``σ / c``, ``α λ / c``, ``1 / c`` below ``1e-308``,
e.g. ``σ = 1e-200`` against ``λ = 1e300``, is flushed to zero before it multiplies
``y``.) Input is trusted, as in :mod:`cmverify.exact._evaluation`.
"""

from __future__ import annotations

import numpy as np

from ._evaluation import Evaluation, Evaluator, normalize


def evaluate_scaled(ev: Evaluator, t: np.ndarray, x: np.ndarray) -> Evaluation:
    """The scaled route (module docstring): responsibilities from differences to a
    reference component (chosen so that none is ``+inf``), ``y_k = 2^e ŷ_k``."""
    co = ev.coefficients(t)
    n, big = x.shape[0], ev.mixture.n_components
    alpha = np.broadcast_to(co.alpha.reshape(-1), (n,))
    # x = 2^g x̂ with max |x̂| ∈ [1, 2) (exact), for the exponents; and 2^e ≥ ½ max(|x|,
    # α max |μ|) for ŷ_k = (x − α μ_k) / 2^e, |ŷ_k| < 4, for everything else.
    x_exponent = np.frexp(np.max(np.abs(x), axis=1))[1] - 1
    size = np.maximum(np.max(np.abs(x), axis=1), np.abs(alpha) * ev.max_abs_mean)
    exponent = np.frexp(size)[1] - 1
    scale, x_scale = np.ldexp(1.0, exponent), np.ldexp(1.0, x_exponent)
    u = ev.to_eigenbasis(np.broadcast_to(np.ldexp(x, -x_exponent[:, None]).T, (big, *x.T.shape)))
    y0 = np.broadcast_to(np.ldexp(x, -exponent[:, None]).T, (big, *x.T.shape))
    yk = ev.to_eigenbasis(y0) - np.ldexp(co.alpha * ev.means_hat_eig, ev.mean_exponent - exponent)
    # With μ = 2^f μ̂ (exact) and P_k = C_k⁻¹: A_k = x̂ᵀ P_k x̂, B_k = x̂ᵀ P_k μ̂_k,
    # G_k = μ̂_kᵀ P_k μ̂_k (whitened by sqrt(1/c) first: no underflow of u² against a
    # tiny c), and for the factored differences w_k = P_k x̂ and P_k μ̂_k.
    uw, mw = u * co.inv_sqrt_c, ev.means_hat_eig * co.inv_sqrt_c
    a_direct = np.sum(uw * uw, axis=1)  # (K, n)
    b_direct = np.sum(uw * mw, axis=1)  # (K, n)
    g = np.sum(mw * mw, axis=1)  # (K, m)
    w = ev.from_eigenbasis(u * co.inv_c)  # (K, d, n)
    pm = ev.from_eigenbasis(ev.means_hat_eig * co.inv_c)  # (K, d, m)
    alpha_mu = np.abs(co.alpha[0]) * np.ldexp(1.0, ev.mean_exponent)  # |α| 2^f, (1, m)
    sign = np.sign(co.alpha[0])
    const = co.const  # (K, m)
    means = ev.means_hat
    # |C_k^{-1/2} ŷ_k|²: the first guess of the reference, log p, and a fallback.
    z = yk * co.inv_sqrt_c
    q_hat = np.sum(z * z, axis=1)
    q_hat[~ev.positive] = np.inf

    def difference(direct: np.ndarray, j: int, sel: np.ndarray, factored: np.ndarray):
        """``direct_k − direct_j``, or ``factored`` where that difference cancels more than
        one bit (components alike: the factored form is exact where they are equal)."""
        dk, dj = direct[:, sel], direct[j, sel]
        plain = dk - dj
        return np.where(np.abs(plain) >= 0.5 * np.maximum(np.abs(dk), np.abs(dj)), plain, factored)

    def relative_to(ref: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """``log(w_k N_k) − log(w_j N_j)``, ``j = ref``, on ``rows``, shape ``(K, len(rows))``:
        ``Δb − ½ (X² ΔA − 2 X M ΔB + M² ΔG)`` with ``X = 2^g``, ``M = α 2^f``.

        ``ΔA = A_k − A_j`` and ``ΔB = B_k − B_j`` directly where they do not cancel;
        where they do, from ``P_k − P_j = α² P_k (Σ_j − Σ_k) P_j``:
        ``ΔA = α² w_kᵀ (Σ_j − Σ_k) w_j``, ``ΔB = w_kᵀ [μ̂_k − μ̂_j + α² (Σ_j − Σ_k) P_j μ̂_j]``,
        which vanish exactly for identical components, whatever their eigen-decompositions.
        The three terms are formed one by one (each overflows only where its exact value
        does); where two overflow, as ``L² (a² ΔA − 2ab ΔB + b² ΔG)`` with
        ``L = max(X, M)``, ``a = X/L``, ``b = M/L``; where NaN remains (covariances
        1e600 apart), from ``2^{2e} (q̂_k − q̂_j)``.
        """
        out = np.empty((big, len(rows)))
        for j in np.unique(ref):
            here = ref == j
            sel = rows[here]
            a2 = _columns(co.alpha[0], sel) ** 2  # (1, n_j)
            dcov = _covariance_difference(ev, j)  # v ↦ (Σ_j − Σ_k) v
            wk = w[:, :, sel]
            factored_a = a2 * np.sum(wk * dcov(w[j][:, sel]), axis=1)
            h = (means - means[j])[:, :, None] + a2[None] * dcov(_columns(pm[j], sel))
            delta_a = difference(a_direct, j, sel, factored_a)
            delta_b = _columns(sign, sel) * difference(b_direct, j, sel, np.sum(wk * h, axis=1))
            delta_g = _columns(g - g[j], sel)
            delta_const = _columns(const - const[j], sel)
            big_x, big_m = x_scale[sel], _columns(alpha_mu, sel)
            terms = (
                _product(big_x, big_x, delta_a)
                - _product(2.0, big_x, big_m, delta_b)
                + _product(big_m, big_m, delta_g)
            )
            top_scale = np.maximum(np.maximum(big_x, big_m), np.finfo(float).tiny)
            ra, rb = big_x / top_scale, big_m / top_scale
            inner = (
                _product(ra, ra, delta_a)
                - _product(2.0, ra, rb, delta_b)
                + _product(rb, rb, delta_g)
            )
            factored = _product(top_scale, top_scale, inner)
            value = delta_const - 0.5 * np.where(np.isfinite(terms), terms, factored)
            s = scale[sel]
            fallback = delta_const - 0.5 * _product(s, s, q_hat[:, sel] - q_hat[j, sel])
            out[:, here] = np.where(np.isnan(value), fallback, value)
            out[j, here] = 0.0
        out[~ev.positive] = -np.inf
        return out

    # First guess: the smallest ŷ-Mahalanobis distance (ignoring the constants).
    ref = np.argmin(q_hat, axis=0)
    everything = np.arange(n)
    diff = relative_to(ref, everything)
    for _ in range(big):
        # A component that beats the reference by an infinite margin becomes it.
        worse = np.any(diff == np.inf, axis=0)
        if not np.any(worse):
            break
        ref[worse] = np.argmax(diff[:, worse], axis=0)
        diff[:, worse] = relative_to(ref[worse], everything[worse])
    top, resp, log_total = normalize(diff)
    # log p = log(w_j N_j) + log Σ_k exp(diff_k), with ½ q_j = (2^e sqrt(½ q̂_j))².
    half_q = (scale * np.sqrt(0.5 * _pick_rows(q_hat, ref))) ** 2
    log_ref = _pick_rows(np.broadcast_to(const, diff.shape), ref) - half_q
    return Evaluation(
        co=co,
        yk=yk,
        resp=resp,
        log_comp=diff,
        top=top,
        log_total=log_total,
        log_p=log_ref + top + log_total,
        scale=scale,
    )


def _product(*factors: np.ndarray | float) -> np.ndarray:
    """The product of the factors (broadcast), rounded once per factor, that over- or
    underflows only where the exact product does: mantissas (in ``[½, 1)``) and binary
    exponents are multiplied and added separately and joined by ``ldexp`` at the end."""
    mantissa, exponent = np.frexp(factors[0])
    for factor in factors[1:]:
        m, e = np.frexp(factor)
        mantissa, exponent = mantissa * m, exponent + e
    return np.ldexp(mantissa, exponent)


def _columns(v: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``v[..., idx]`` for per-point arrays (last axis ``n``); ``v`` itself when the last
    axis has length 1 (one time for every point)."""
    return v if v.shape[-1] == 1 else v[..., idx]


def _pick_rows(v: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """``v[ref[i], i]`` for ``v`` of shape ``(K, n)``."""
    return v[ref, np.arange(v.shape[1])]


def _covariance_difference(ev: Evaluator, j: int):
    """``v ↦ (Σ_j − Σ_k) v`` for ``v`` of shape ``(d, n)``, all ``k``: shape ``(K, d, n)``;
    elementwise where every ``U_k = I`` (no ``d × d`` array)."""
    if ev.identity_basis:
        lam = ev.mixture.eigvals
        dlam = (lam[j][None] - lam)[:, :, None]
        return lambda v: dlam * v
    covs = ev.mixture.covs
    dcov = covs[j][None] - covs
    return lambda v: np.matmul(dcov, v)
