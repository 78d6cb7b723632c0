"""The closed forms of a mixture path on trusted input (exact layer): the mixture in the
layouts of the vectorized formulas, the interpolant's coefficients, the *direct route*
and the combination of its terms into conditional expectations.

:class:`~cmverify.exact.MixturePath` validates ``t`` and ``x`` at its public methods and
calls these with ``t`` a float64 array of shape ``()`` or ``(n,)`` in ``[0, 1]`` and ``x``
a finite float64 array of shape ``(n, d)``; nothing here checks them again. The formulas
are in :mod:`cmverify.exact._path`; the *scaled route* that takes over far from the data
is in :mod:`cmverify.exact._scaled`.

**Extreme scales (direct route).** ``log det C_k = Σ_i log c_k,i`` never forms the
product of the ``c_k,i`` where it would under- or overflow (``d = 16``, ``λ = 1e-21``),
and the Mahalanobis terms are ``q_k = |C_k^{-1/2} y_k|²``, finite also where ``|y_k|²``
is not. The direct formulas round each ``q_k`` to ``eps · q_k``: rows where ``q`` at the
most likely component may exceed ``2^20`` (:data:`MAX_DIRECT_Q`: the exponents of the
responsibilities would blur by more than ``2e-10``) take the scaled route.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..symbolic import Interpolant
from ._mixture import _LOG_2PI, GaussianMixture

#: Array entries (components × coordinates × points) evaluated per block of rows.
BLOCK_ENTRIES = 2**17
#: Rows whose Mahalanobis term ``q`` at the most likely component may exceed this take
#: the scaled route: the direct route rounds each ``q_k`` to ``eps · q_k``, which then
#: blurs the exponents of the responsibilities by up to ``2^20 · 2.2e-16 ≈ 2e-10``.
MAX_DIRECT_Q = 2.0**20
#: ``log det`` as ``log Π c`` while the product stays inside this range.
PRODUCT_RANGE = (1e-290, 1e290)


@dataclass(frozen=True)
class Coefficients:
    """The interpolant's coefficients at the times of a block and what follows from
    them alone. ``alpha`` … ``wronskian`` have shape ``(1, 1, m)`` with ``m = 1``
    for a scalar time and ``m = n`` for per-point times; ``inv_c = 1/c`` and
    ``inv_sqrt_c = sqrt(1/c)`` have shape ``(K', d, m)`` with ``K' = K``, or ``K' = 1``
    where every component has the same covariance eigenvalues (then so has ``c``:
    one row serves all, by broadcasting); ``log_det = Σ_i log c_k,i`` shape ``(K', m)``;
    ``const = b_k = log w_k − ½ (d log 2π + log_det)`` shape ``(K, m)``, ``max_const``
    (its maximum over ``k``) shape ``(m,)``."""

    alpha: np.ndarray
    sigma: np.ndarray
    dalpha: np.ndarray
    alpha_dalpha: np.ndarray
    sigma_dsigma: np.ndarray
    wronskian: np.ndarray
    inv_c: np.ndarray
    inv_sqrt_c: np.ndarray
    log_det: np.ndarray
    const: np.ndarray
    max_const: np.ndarray


@dataclass(frozen=True)
class Evaluation:
    """Everything shared by the path quantities at ``(t, x)``, in the layout
    *components, coordinates, points* (points last and contiguous: every elementwise
    operation and every reduction over ``k`` or ``d`` then runs over long rows).

    ``yk`` has shape ``(K, d, n)``: the eigenbasis coordinates ``y_k`` on the direct
    route, ``y_k / 2^e`` on the scaled route, where ``scale`` holds ``2^e`` (shape
    ``(n,)``; ``None`` on the direct route). ``resp`` and ``log_comp`` have shape
    ``(K, n)``: ``log_comp`` is ``log(w_k N_k)`` on the direct route and
    ``log(w_k N_k) − log(w_j N_j)`` (reference ``j``) on the scaled one; ``top`` is its
    maximum over ``k`` and ``log_total = log Σ_k exp(log_comp_k − top)`` (shape ``(n,)``).
    ``log_p`` has shape ``(n,)``.
    """

    co: Coefficients
    yk: np.ndarray
    resp: np.ndarray
    log_comp: np.ndarray
    top: np.ndarray
    log_total: np.ndarray
    log_p: np.ndarray
    scale: np.ndarray | None = None

    @property
    def log_resp(self) -> np.ndarray:
        """``log r_k = (log_comp_k − top) − log_total``, shape ``(K, n)``: the difference
        first, so that ``log Σ exp`` is not lost against a huge ``|log p|``."""
        return (self.log_comp - self.top) - self.log_total


#: ``(scale_k, offset_k)`` of a conditional expectation ``Σ_k r_k [offset_k + U_k (scale_k ⊙ y_k)]``.
Terms = tuple[np.ndarray, np.ndarray | None]


class Evaluator:
    """A mixture and an interpolant in the layouts of the vectorized formulas, and the
    direct route on trusted input (see the module docstring).

    Attributes (shapes ``(K, d, 1)`` unless stated): ``eigvals`` (``(1, d, 1)`` where all
    components share their eigenvalues, see :class:`Coefficients`), ``means``,
    ``means_eig = U_kᵀ μ_k``; ``eigvecs_t`` (``(K, d, d)``, the ``U_kᵀ``);
    ``identity_basis`` (every ``U_k = I``: the basis changes are skipped);
    ``log_norm_const = log w_k − ½ d log 2π`` (``(K, 1)``); ``positive`` (``w_k > 0``,
    ``(K,)``); ``block_rows``; for the scaled route ``max_abs_mean``, ``mean_exponent``
    ``f`` with ``max |μ̂| ∈ [1, 2)``, ``means_hat = μ / 2^f`` (``(K, d)``) and
    ``means_hat_eig``.
    """

    def __init__(self, mixture: GaussianMixture, interpolant: Interpolant) -> None:
        self.mixture = mixture
        self.interpolant = interpolant
        eigvals = mixture.eigvals
        # Components with the same spectrum (eight_gaussians, seed_bimodal) share c_k, 1/c_k
        # and log det C_k: computed once per time, not K times (bit for bit the same).
        self.eigvals = (eigvals[:1] if np.all(eigvals == eigvals[:1]) else eigvals)[:, :, None]
        self.means = mixture.means[:, :, None]
        self.identity_basis = mixture.structure in ("isotropic", "diagonal") or bool(
            np.array_equal(
                mixture.eigvecs, np.broadcast_to(np.eye(mixture.dim), mixture.eigvecs.shape)
            )
        )
        self.means_eig = self.to_eigenbasis(self.means)
        self.log_norm_const = (mixture.log_weights - 0.5 * mixture.dim * _LOG_2PI)[:, None]
        self.positive = mixture.weights > 0
        self.block_rows = max(256, BLOCK_ENTRIES // (mixture.n_components * mixture.dim))
        self.max_abs_mean = float(np.max(np.abs(mixture.means)))
        # Means scaled by a power of two to max |μ̂| ∈ [1, 2) (exact), for the scaled route.
        self.mean_exponent = int(np.frexp(self.max_abs_mean)[1]) - 1 if self.max_abs_mean else 0
        self.means_hat = np.ldexp(mixture.means, -self.mean_exponent)
        self.means_hat_eig = np.ldexp(self.means_eig, -self.mean_exponent)
        self._kernel_coefficients = interpolant._numeric_stack(
            ("alpha", "sigma", "dalpha", "alpha_dalpha", "sigma_dsigma", "wronskian")
        )

    @property
    def eigvecs_t(self) -> np.ndarray:
        """The ``U_kᵀ``, shape ``(K, d, d)`` (a view; never used where every ``U_k = I``)."""
        return np.swapaxes(self.mixture.eigvecs, 1, 2)

    def to_eigenbasis(self, v: np.ndarray) -> np.ndarray:
        """``U_kᵀ v_k`` for ``v`` of shape ``(K, d, n)``."""
        return v if self.identity_basis else np.matmul(self.eigvecs_t, v)

    def from_eigenbasis(self, v: np.ndarray) -> np.ndarray:
        """``U_k v_k`` for ``v`` of shape ``(K, d, n)``."""
        return v if self.identity_basis else np.matmul(self.mixture.eigvecs, v)

    def coefficients(self, t: np.ndarray) -> Coefficients:
        """The :class:`Coefficients` at validated times ``t``.

        Called on every Runge–Kutta stage, often for a few rows: the five coefficients
        come from one generated function and the reductions call the ufuncs directly
        (about 4× less overhead per call than one evaluation per coefficient)."""
        alpha, sigma, dalpha, alpha_dalpha, sigma_dsigma, wronskian = np.reshape(
            self._kernel_coefficients(t), (6, 1, 1, -1)
        )
        c = alpha * alpha * self.eigvals + sigma * sigma
        # Σ_i log c_i as log Π_i c_i (one log per component) while the product stays far
        # from under/overflow; the sum of logs otherwise (λ = 1e-21 or 1e20 in d = 16).
        inv_c = 1.0 / c
        det = np.multiply.reduce(c, axis=1)
        lo, hi = PRODUCT_RANGE
        if det.size == 0 or (det.min() > lo and det.max() < hi):
            log_det = np.log(det)
        else:
            log_det = np.add.reduce(np.log(c), axis=1)
        const = self.log_norm_const - 0.5 * log_det
        return Coefficients(
            alpha=alpha,
            sigma=sigma,
            dalpha=dalpha,
            alpha_dalpha=alpha_dalpha,
            sigma_dsigma=sigma_dsigma,
            wronskian=wronskian,
            inv_c=inv_c,
            inv_sqrt_c=np.sqrt(inv_c),
            log_det=log_det,
            const=const,
            max_const=np.maximum.reduce(const, axis=0),
        )

    def evaluate(self, t: np.ndarray, x: np.ndarray) -> Evaluation:
        """The direct route for validated ``t`` and ``x``: accurate to rounding on the rows
        that :meth:`needs_scaling` does not flag (``q`` at the top component ≤ 2^20)."""
        co = self.coefficients(t)
        yk = self.to_eigenbasis(np.ascontiguousarray(x.T)[None] - co.alpha * self.means)
        # Mahalanobis terms as |y_k / sqrt(c_k)|²: finite wherever the term is, also where
        # |y_k|² alone overflows (|y_k| ≥ 1.4e154 against a variance c_k ≥ 1).
        z = yk * co.inv_sqrt_c
        log_comp = co.const - 0.5 * np.add.reduce(z * z, axis=1)
        top, resp, log_total = normalize(log_comp)
        return Evaluation(
            co=co,
            yk=yk,
            resp=resp,
            log_comp=log_comp,
            top=top,
            log_total=log_total,
            log_p=top + log_total,
        )

    @staticmethod
    def needs_scaling(ev: Evaluation) -> np.ndarray:
        """Rows of a direct evaluation that the scaled route must redo, shape ``(n,)``:
        ``q`` at the most likely component, bounded by ``2 (max_k b_k − top)``, may exceed
        :data:`MAX_DIRECT_Q`, or is not finite."""
        return ~(2.0 * (ev.co.max_const - ev.top) <= MAX_DIRECT_Q)

    def combine(self, ev: Evaluation, terms: Terms) -> np.ndarray:
        """``Σ_k r_k [offset_k + U_k (scale_k ⊙ y_k)]``, shape ``(n, d)``.

        On the scaled route ``2^e Σ_k r_k [offset_k / 2^e + U_k (scale_k ⊙ ŷ_k)]``, with
        the components of zero responsibility left out (their terms may overflow).
        """
        scale, offset = terms
        inner = self.from_eigenbasis(scale * ev.yk)
        if ev.scale is None:
            if offset is not None:
                inner += offset
            return np.ascontiguousarray(np.add.reduce(ev.resp[:, None, :] * inner, axis=0).T)
        if offset is not None:
            inner = inner + offset / ev.scale
        r = ev.resp[:, None, :]
        total = np.sum(np.where(r > 0.0, r * inner, 0.0), axis=0)
        return np.ascontiguousarray((total * ev.scale).T)

    # -- the terms of each conditional expectation (see MixturePath) -------------------
    def denoiser_terms(self, co: Coefficients) -> Terms:
        return co.alpha * self.eigvals * co.inv_c, self.means

    def expected_noise_terms(self, co: Coefficients) -> Terms:
        return co.sigma * co.inv_c, None

    def score_terms(self, co: Coefficients) -> Terms:
        return -co.inv_c, None

    def velocity_terms(self, co: Coefficients) -> Terms:
        return (co.alpha_dalpha * self.eigvals + co.sigma_dsigma) * co.inv_c, co.dalpha * self.means


def normalize(log_terms: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log-sum-exp over components (axis 0) of ``log_terms`` ``(K, n)``: the maximum
    ``top`` ``(n,)``, the responsibilities ``exp(log_terms − top) / Σ`` ``(K, n)`` and
    ``log Σ_k exp(log_terms_k − top)`` ``(n,)``."""
    top = np.maximum.reduce(log_terms, axis=0)
    shifted = np.exp(log_terms - top)
    total = np.add.reduce(shifted, axis=0)
    return top, shifted / total, np.log(total)


def finite_rows(out: np.ndarray) -> np.ndarray:
    """Rows of ``out`` (shape ``(n,)``, ``(n, d)`` or ``(n, d, d)``) that are entirely finite."""
    finite = np.isfinite(out)
    return finite if finite.ndim == 1 else np.all(finite, axis=tuple(range(1, finite.ndim)))


def finite_columns(v: np.ndarray) -> np.ndarray:
    """Points of ``v`` (shape ``(K, d, n)``) whose entries are all finite, shape ``(n,)``."""
    return np.all(np.isfinite(v), axis=(0, 1))


def caller_rows(offset: int | np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The caller's indices of the rows ``mask`` selects from a block whose rows are numbered
    from ``offset`` (an int) or by ``offset`` (an array)."""
    return np.flatnonzero(mask) + offset if np.ndim(offset) == 0 else offset[mask]
