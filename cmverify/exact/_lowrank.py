"""A mixture path with low-rank-plus-diagonal covariances, at ``O(K d r)`` per point
(exact layer).

For ``Σ_k = F_k F_kᵀ + diag(D_k)`` (``F_k`` of shape ``(d, r)``) the marginal covariance
``C_k = α² Σ_k + σ² I = α² F_k F_kᵀ + diag(E_k)``, ``E_k = α² D_k + σ²``, changes its
eigenbasis with ``t`` (unless ``D_k`` is isotropic), so the eigenbasis route of
:mod:`cmverify.exact._evaluation` would need a ``d × d`` decomposition per time. The
Woodbury identity needs an ``r × r`` one instead. With ``e = 1/E``, ``y = x − α μ_k`` and

    ``M = I_r + α² Fᵀ diag(e) F``,  ``ũ = M⁻¹ Fᵀ (e ⊙ y)``,  ``h = C⁻¹ y = e ⊙ (y − α² F ũ)``,

one has ``Fᵀ h = ũ`` (from ``M ũ = Fᵀ(e ⊙ y)``), and, from ``y = C h = α² F ũ + E ⊙ h``,

    ``q = yᵀ C⁻¹ y = Σ_i E_i h_i² + α² |ũ|²``  (a sum of squares: no cancellation),
    ``log det C = Σ_i log E_i + log det M`` (matrix determinant lemma).

Every conditional expectation is then a combination of ``h`` and ``F ũ``:

- velocity ``m_k = α̇ μ_k + (α α̇ Σ + σ σ̇) h = α̇ μ_k + α α̇ F ũ + (α α̇ D + σ σ̇) ⊙ h``;
- denoiser ``μ_k + α Σ h = μ_k + α (F ũ + D ⊙ h)``; expected noise ``σ h``; score ``−h``;
- velocity Jacobian ``Σ_k r_k B_k − Σ_k r_k (m_k − v)(h_k − h̄)ᵀ`` with
  ``B_k = (α α̇ Σ + σ σ̇) C⁻¹ = diag(g ⊙ e) − α σ W (e ⊙ F) M⁻¹ (e ⊙ F)ᵀ``,
  ``g = α α̇ D + σ σ̇``, ``W = α σ̇ − α̇ σ`` (``α α̇ − α² g e = −α σ W e``).

Cost per point and component: two ``d × r`` products (``Fᵀ(e ⊙ y)`` and ``F ũ``) and
``O(d)`` elementwise work; per time and component ``M`` and its inverse, ``O(d r² + r³)``.
Nothing forms a ``d × d`` array except the Jacobian (whose output is ``d × d``).

**Accuracy.** ``h = e ⊙ y − α² e ⊙ F ũ`` subtracts two terms that are each up to
``κ = 1 + α² ‖F‖² / min E`` times the result in the directions of ``F``: the relative
error is about ``κ`` units of rounding (the eigenbasis route's is about one). For the
catalogue's mixtures ``κ ≤ 1e3``. With an uneven ``D_k`` the solve with ``M`` loses as
much again (``eps κ²``: 2.7e6 times the score at ``D = (1e-12, 1, 1)``, ``t = 1e-8``,
found in review; so above ``κ₀ = 100``), and where the factors span every direction
(``r ≥ d``) nothing is saved (``D = 1e-8`` at ``t = 1e-6``: 6e-7 off):
:func:`takes_woodbury` sends both to the eigenbasis route (``O(K d²)`` per point). Rows
far from the data (Mahalanobis term above ``2^20``, the direct route's limit,
:data:`~cmverify.exact._evaluation.MAX_DIRECT_Q`) are redone by the eigenbasis route of
the dense covariances, formed on first need.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..symbolic import Interpolant
from ._covariance import woodbury_inverse
from ._evaluation import BLOCK_ENTRIES, MAX_DIRECT_Q, normalize
from ._gram import GramVelocity
from ._mixture import _LOG_2PI, GaussianMixture

__all__ = ["LOW_RANK_QUANTITIES", "WOODBURY_MAX_KAPPA", "LowRankEvaluator", "takes_woodbury"]

#: The quantities a low-rank mixture evaluates by Woodbury (the rest: eigenbasis route).
LOW_RANK_QUANTITIES = frozenset(
    ("log_prob", "denoiser", "expected_noise", "score", "velocity", "velocity_jacobian")
)

_KEYS = ("alpha", "sigma", "dalpha", "alpha_dalpha", "sigma_dsigma", "wronskian")

#: Largest ``κ₀ = 1 + ‖F_k‖² / min D_k`` (``κ`` at ``t = 0``, its largest) for which a
#: mixture with an uneven diagonal takes the Woodbury route (module docstring).
WOODBURY_MAX_KAPPA = 1e2


def takes_woodbury(mixture: GaussianMixture) -> bool:
    """Whether a low-rank mixture takes the Woodbury route (else the eigenbasis route, from
    the SVD of ``[F_k, diag(√D_k)]``). Not where the factors span every direction
    (``r ≥ d``: nothing saved), nor where an uneven ``D_k`` makes ``κ₀`` exceed
    :data:`WOODBURY_MAX_KAPPA`: there ``M`` is as ill-conditioned as ``κ`` and the error
    grows like ``eps κ²`` (d = 3, r = 2, ``D = (D_min, 1, ½)``, mpmath: 3e-13 at ``κ₀ =
    1.4e3``, 6e-9 at 9e4, 3e-2 at 6e8, and 7e-12 at 999 for an adversarial ``F``, found in
    the second review; the eigenbasis route ≤ 6e-15 throughout; ``eps κ₀² ≈ 1e-12`` at the
    threshold). One step of iterative refinement of ``h`` was tried: the score to 1e-16
    there, but the velocity's ``F ũ + D ⊙ h`` still cancels (2.1e-12 at ``κ₀ = 999``). An even
    ``D_k = s_k 1`` keeps ``M`` diagonal (the factors rotated to orthogonal columns): as
    accurate as the eigenbasis route for any ``s_k``."""
    factors, diag = mixture.factors, mixture.diagonal_term
    if factors.shape[2] >= mixture.dim:
        return False
    if np.all(diag == diag[:, :1]):
        return True
    if factors.shape[2] == 0:  # no factors: Σ_k = diag(D_k), nothing cancels
        return True
    top = np.linalg.eigvalsh(np.matmul(np.swapaxes(factors, 1, 2), factors))[:, -1]
    return bool(np.all(1.0 + top / diag.min(axis=1) <= WOODBURY_MAX_KAPPA))


@dataclass(frozen=True)
class LowRankTime:
    """What depends on the time alone: the coefficients (shape ``(1, 1, m)``), ``e = 1/E``
    ``(K, d, m)``, ``M⁻¹`` (``(K, r, r)`` for one time, ``(K, m, r, r)`` per point) and
    ``const = log w_k − ½ (d log 2π + log det C_k)`` ``(K, m)`` with its maximum over ``k``."""

    alpha: np.ndarray
    sigma: np.ndarray
    dalpha: np.ndarray
    alpha_dalpha: np.ndarray
    sigma_dsigma: np.ndarray
    wronskian: np.ndarray
    e: np.ndarray
    m_inv: np.ndarray
    const: np.ndarray
    max_const: np.ndarray


@dataclass(frozen=True)
class LowRankEvaluation:
    """The shared terms at ``(t, x)``, points last: ``h = C_k⁻¹ y_k`` and ``fu = F_k ũ_k``
    ``(K, d, n)``, ``resp`` ``(K, n)``, ``top`` and ``log_p`` ``(n,)``."""

    co: LowRankTime
    h: np.ndarray
    fu: np.ndarray
    resp: np.ndarray
    top: np.ndarray
    log_p: np.ndarray


class LowRankEvaluator:
    """The direct route of a low-rank mixture path on trusted input (module docstring):
    ``t`` a float64 array of shape ``()`` or ``(n,)`` in ``[0, 1]``, ``x`` finite ``(n, d)``."""

    def __init__(self, mixture: GaussianMixture, interpolant: Interpolant) -> None:
        self.mixture = mixture
        diag = mixture.diagonal_term
        factors = mixture.factors
        # D_k = s_k I (probabilistic PCA): with F_k rotated to orthogonal columns
        # (F_kᵀ F_k = diag(γ_k)), M_k = I + α² e_k diag(γ_k) is diagonal at every time.
        self.isotropic_diagonal = bool(np.all(diag == diag[:, :1]))
        if self.isotropic_diagonal:
            gram = np.matmul(np.swapaxes(factors, 1, 2), factors)
            gamma, rot = np.linalg.eigh(gram)
            factors = np.matmul(factors, rot)
            self.gamma = np.maximum(gamma, 0.0)[:, :, None]  # (K, r, 1)
            self.diagonal = diag[:, :1, None]  # (K, 1, 1)
        else:
            self.diagonal = diag[:, :, None]  # (K, d, 1)
        self.factors = np.ascontiguousarray(factors)  # (K, d, r)
        self.factors_t = np.ascontiguousarray(np.swapaxes(self.factors, 1, 2))  # (K, r, d)
        self.means = mixture.means[:, :, None]  # (K, d, 1)
        self.log_norm_const = (mixture.log_weights - 0.5 * mixture.dim * _LOG_2PI)[:, None]
        k, d = mixture.n_components, mixture.dim
        self.block_rows = max(64, BLOCK_ENTRIES // (k * d))
        self._coefficients = interpolant._numeric_stack(_KEYS)
        self.gram = None
        if self.isotropic_diagonal:
            self.gram = GramVelocity(
                interpolant,
                self.factors,
                diag[:, 0],
                self.gamma[:, :, 0],
                mixture.means,
                mixture.log_weights,
            )

    def quantity(self, name: str, t: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(out, redo)``: the quantity ``name`` on one block of validated ``(t, x)`` and the
        rows the eigenbasis route must redo (far from the data or not finite)."""
        ev = self.evaluate(t, x)
        out = getattr(self, name)(ev)
        return out, self.needs_dense(ev) | ~np.all(np.isfinite(out.reshape(x.shape[0], -1)), axis=1)

    def time_terms(self, t: np.ndarray) -> LowRankTime:
        """The :class:`LowRankTime` at validated times ``t``."""
        alpha, sigma, dalpha, alpha_dalpha, sigma_dsigma, wronskian = np.reshape(
            self._coefficients(t), (6, 1, 1, -1)
        )
        big_e = alpha * alpha * self.diagonal + sigma * sigma  # (K, d or 1, m)
        e = 1.0 / big_e
        a2 = alpha[0, 0] ** 2  # (m,)
        k, d = self.factors.shape[:2]
        if self.isotropic_diagonal:
            m_diag = 1.0 + a2 * e * self.gamma  # (K, r, m)
            m_inv = 1.0 / m_diag
            log_det = d * np.log(big_e[:, 0]) + np.sum(np.log(m_diag), axis=1)
        else:
            if t.ndim == 0:
                m_inv, log_det_m = woodbury_inverse(self.factors_t, self.factors, e[:, :, 0], a2[0])
            else:  # one r × r matrix per point: O(d r²) each (batched matmul)
                m_inv, log_det_m = woodbury_inverse(
                    self.factors_t[:, None],
                    self.factors[:, None],
                    np.moveaxis(e, 2, 1),
                    a2[None, :, None, None],
                )
            log_det = np.sum(np.log(big_e), axis=1) + np.reshape(log_det_m, (k, -1))  # (K, m)
        const = self.log_norm_const - 0.5 * log_det
        return LowRankTime(
            alpha=alpha,
            sigma=sigma,
            dalpha=dalpha,
            alpha_dalpha=alpha_dalpha,
            sigma_dsigma=sigma_dsigma,
            wronskian=wronskian,
            e=e,
            m_inv=m_inv,
            const=const,
            max_const=np.max(const, axis=0),
        )

    def evaluate(self, t: np.ndarray, x: np.ndarray) -> LowRankEvaluation:
        """``h``, ``F ũ`` and the responsibilities at validated ``(t, x)``."""
        co = self.time_terms(t)
        y = np.ascontiguousarray(x.T)[None] - co.alpha * self.means  # (K, d, n)
        if self.isotropic_diagonal:  # e is one number per component and time
            u = np.matmul(self.factors_t, y) * (co.e * co.m_inv)  # (K, r, n)
            fu = np.matmul(self.factors, u)  # (K, d, n)
            ey = co.e * y
        else:
            ey = co.e * y
            p = np.matmul(self.factors_t, ey)  # (K, r, n)
            if co.m_inv.ndim == 3:
                u = np.matmul(co.m_inv, p)
            else:
                u = np.matmul(co.m_inv, np.moveaxis(p, 2, 1)[..., None])[..., 0]
                u = np.moveaxis(u, 1, 2)
            fu = np.matmul(self.factors, u)  # (K, d, n)
        a2 = co.alpha * co.alpha
        h = ey - a2 * (co.e * fu)
        q = np.sum(h * h, axis=1) / co.e[:, 0] if self.isotropic_diagonal else None
        if q is None:
            q = np.sum(h * h / co.e, axis=1)
        q = q + a2[0] * np.sum(u * u, axis=1)  # (K, n)
        log_comp = co.const - 0.5 * q
        top, resp, log_total = normalize(log_comp)
        return LowRankEvaluation(co=co, h=h, fu=fu, resp=resp, top=top, log_p=top + log_total)

    def _m_inv_dense(self, co: LowRankTime) -> np.ndarray:
        """``M⁻¹`` as matrices: ``(K, r, r)`` for one time, ``(K, m, r, r)`` per point."""
        if not self.isotropic_diagonal:
            return co.m_inv
        r = self.factors.shape[2]
        diag = np.moveaxis(co.m_inv, 2, 1)  # (K, m, r)
        out = diag[..., None] * np.eye(r)
        return out[:, 0] if co.m_inv.shape[2] == 1 else out

    @staticmethod
    def needs_dense(ev: LowRankEvaluation) -> np.ndarray:
        """Rows that the eigenbasis route must redo, shape ``(n,)``: ``q`` at the most likely
        component may exceed ``2^20`` (bounded by ``2 (max_k b_k − top)``), or is not finite."""
        return ~(2.0 * (ev.co.max_const - ev.top) <= MAX_DIRECT_Q)

    @staticmethod
    def _combine(ev: LowRankEvaluation, terms: np.ndarray) -> np.ndarray:
        """``Σ_k r_k terms_k`` for ``terms`` ``(K, d, n)``, shape ``(n, d)``."""
        return np.ascontiguousarray(np.add.reduce(ev.resp[:, None, :] * terms, axis=0).T)

    def component_velocity(self, ev: LowRankEvaluation) -> np.ndarray:
        """``m_k = α̇ μ_k + α α̇ F ũ + (α α̇ D + σ σ̇) ⊙ h``, shape ``(K, d, n)``."""
        co = ev.co
        g = co.alpha_dalpha * self.diagonal + co.sigma_dsigma
        return co.dalpha * self.means + co.alpha_dalpha * ev.fu + g * ev.h

    def velocity(self, ev: LowRankEvaluation) -> np.ndarray:
        return self._combine(ev, self.component_velocity(ev))

    def denoiser(self, ev: LowRankEvaluation) -> np.ndarray:
        co = ev.co
        return self._combine(ev, self.means + co.alpha * (ev.fu + self.diagonal * ev.h))

    def expected_noise(self, ev: LowRankEvaluation) -> np.ndarray:
        return self._combine(ev, ev.co.sigma * ev.h)

    def score(self, ev: LowRankEvaluation) -> np.ndarray:
        return -self._combine(ev, ev.h)

    @staticmethod
    def log_prob(ev: LowRankEvaluation) -> np.ndarray:
        return ev.log_p

    def velocity_jacobian(self, ev: LowRankEvaluation) -> np.ndarray:
        """``∇v``, shape ``(n, d, d)``."""
        return np.ascontiguousarray(np.moveaxis(self.points_last(ev)[1], 2, 0))

    def points_last(self, ev: LowRankEvaluation) -> tuple[np.ndarray, np.ndarray]:
        """``(v, ∇v)`` points last: shapes ``(d, n)`` and ``(d, d, n)`` (module docstring)."""
        co = ev.co
        m = self.component_velocity(ev)
        rb = ev.resp[:, None, :]
        v = np.sum(rb * m, axis=0)
        h_bar = np.sum(rb * ev.h, axis=0)
        grad = -np.einsum("kin,kjn->ijn", rb * (m - v), ev.h - h_bar)
        g_e = (co.alpha_dalpha * self.diagonal + co.sigma_dsigma) * co.e  # (K, d, m)
        d = v.shape[0]
        idx = np.arange(d)
        grad[idx, idx] += np.sum(np.broadcast_to(rb * g_e, (rb.shape[0], d, rb.shape[2])), axis=0)
        coef = (co.alpha * co.sigma * co.wronskian).reshape(-1)  # (m,)
        m_inv = self._m_inv_dense(co)
        if m_inv.ndim == 3:  # one time: B_k's low-rank part once per component
            for k in range(self.factors.shape[0]):  # one d × d matrix at a time
                p = co.e[k, :, 0, None] * self.factors[k]  # (d, r)
                low = (p @ m_inv[k]) @ p.T
                grad -= low[:, :, None] * (coef[0] * ev.resp[k])
        else:
            p = co.e[:, :, None, :] * self.factors[:, :, :, None]  # (K, d, r, n)
            pm = np.einsum("kirn,knrs->kisn", p, m_inv)
            grad -= coef * np.einsum("kn,kirn,kjrn->ijn", ev.resp, pm, p)
        return v, grad

    def first_pass(self, t: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(v, ∇v, redo)`` points last on one block: the rows in ``redo`` are far from the
        data and must take the eigenbasis route."""
        ev = self.evaluate(t, x)
        return (*self.points_last(ev), self.needs_dense(ev))
