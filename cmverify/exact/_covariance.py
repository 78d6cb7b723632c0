"""Structured component covariances of a Gaussian mixture (exact layer).

Three structures besides a full ``(K, d, d)`` array, each stored without any ``d × d``
array:

- ``isotropic``: ``Σ_k = s_k I`` from ``variances`` of shape ``(K,)``;
- ``diagonal``: ``Σ_k = diag(D_k)`` from ``variances`` of shape ``(K, d)``;
- ``low_rank``: ``Σ_k = F_k F_kᵀ + diag(D_k)`` from ``factors`` ``(K, d, r)`` and
  ``diagonal`` ``(K, d)``, ``r ≥ 0`` (``r ≪ d`` is where it pays).

Isotropic and diagonal covariances are their own eigen-decompositions (``U_k = I``,
``λ_k = D_k`` in coordinate order); a low-rank covariance is evaluated by the Woodbury
identity (:mod:`cmverify.exact._lowrank`). This module validates the parameters and
forms what a caller asks for densely (``covs``, and a low-rank mixture's ``eigh``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .._validation import as_float_array

if TYPE_CHECKING:
    from ._mixture import GaussianMixture

__all__ = [
    "STRUCTURES",
    "check_diagonal",
    "check_low_rank",
    "check_weights_means",
    "dense_covs",
    "marginal_mixture",
    "positive_floor",
    "woodbury_inverse",
]

#: Tolerance on ``|Σ w_k − 1|``; weights within it are divided by their sum.
WEIGHT_SUM_TOLERANCE = 1e-6
#: Weights whose sum is within this of 1 (float64 rounding) are kept exactly as given.
WEIGHT_SUM_ROUNDING = 1e-12
#: The covariance structures of :class:`~cmverify.exact.GaussianMixture`.
STRUCTURES = ("full", "isotropic", "diagonal", "low_rank")


def positive_floor(
    name: str, values: np.ndarray, largest: np.ndarray, d: int, *, eigen: bool = False
) -> None:
    """``ValueError`` unless every row of ``values`` ``(K, d)`` is above ``d · eps · largest``
    (``largest`` ``(K,)``: the largest eigenvalue or a bound on it) and is a normal float64
    (``≥ 2.2e-308``, so that its inverse is representable): the full form's
    positive-definiteness test (``eigen=True``: ``values`` are the eigenvalues), or a
    sufficient form of it on a lower bound of the smallest eigenvalue."""
    tiny = np.finfo(float).tiny
    for i in range(values.shape[0]):
        lo = float(np.min(values[i]))
        hi = float(largest[i])
        if not lo > d * np.finfo(float).eps * hi:
            what = "eigenvalues range" if eigen else "values range"
            bound = "" if eigen else " (a bound of the largest eigenvalue)"
            raise ValueError(
                f"{name}[{i}] is not positive definite: {what} from {lo:.3e} to {hi:.3e}{bound}"
            )
        if lo < tiny:
            raise ValueError(
                f"{name}[{i}] has {'an eigenvalue' if eigen else 'a value'} {lo:.3e} below "
                f"the smallest normal float64 ({tiny:.3e}): its inverse is not representable"
            )


def check_diagonal(variances: object, k: int, d: int, *, isotropic: bool) -> np.ndarray:
    """The per-coordinate variances ``(K, d)`` of an isotropic (``variances`` ``(K,)``) or a
    diagonal (``(K, d)``) mixture, validated: finite and positive (normal float64)."""
    var = as_float_array(variances, "variances")
    want = (k,) if isotropic else (k, d)
    if var.shape != want:
        kind = "an isotropic" if isotropic else "a diagonal"
        raise ValueError(
            f"variances of {kind} mixture must have shape {want} to match weights and "
            f"means, got {var.shape}"
        )
    _positive("variances", var)
    full = np.repeat(var[:, None], d, axis=1) if isotropic else var.copy()
    positive_floor("variances", full, np.max(full, axis=1), 0)  # exact eigenvalues
    return full


def _positive(name: str, values: np.ndarray) -> None:
    """``ValueError`` naming the first entry of ``values`` that is not positive."""
    if np.any(values <= 0):
        i = tuple(int(a) for a in np.argwhere(values <= 0)[0])
        where = i[0] if len(i) == 1 else i
        raise ValueError(f"{name} must be positive, got {name}[{where}] = {float(values[i])!r}")


def check_low_rank(factors: object, diagonal: object, k: int, d: int) -> tuple[np.ndarray, ...]:
    """``(factors (K, d, r), diagonal (K, d))`` of ``Σ_k = F_k F_kᵀ + diag(D_k)``, validated:
    finite, ``D_k > 0`` and ``min D_k > d · eps · (max D_k + ‖F_k‖_F²)`` (a lower bound of
    the smallest eigenvalue against an upper bound of the largest: the full form's test
    made sufficient)."""
    fac = as_float_array(factors, "factors")
    diag = as_float_array(diagonal, "diagonal")
    if fac.ndim != 3 or fac.shape[:2] != (k, d):
        raise ValueError(
            f"factors must have shape (K, d, r) = ({k}, {d}, r) to match weights and means, "
            f"got {fac.shape}"
        )
    if diag.shape != (k, d):
        raise ValueError(
            f"diagonal must have shape (K, d) = ({k}, {d}) to match weights and means, "
            f"got {diag.shape}"
        )
    _positive("diagonal", diag)
    with np.errstate(over="ignore"):
        bound = np.max(diag, axis=1) + np.einsum("kdr,kdr->k", fac, fac)
    if not np.all(np.isfinite(bound)):
        i = int(np.argmax(~np.isfinite(bound)))
        raise ValueError(f"factors[{i}] is too large: ‖F_{i}‖² overflows float64")
    for i in range(k):
        lo = float(np.min(diag[i]))
        if not lo > d * np.finfo(float).eps * bound[i]:
            raise ValueError(
                f"component {i} is too ill-conditioned for float64: min diagonal[{i}] = "
                f"{lo:.3e} is not above d · eps · (max diagonal + ‖F‖²) = "
                f"{d * np.finfo(float).eps * bound[i]:.3e}"
            )
    positive_floor("diagonal", diag, bound, 0)
    return fac, diag


def dense_covs(
    structure: str,
    variances: np.ndarray | None,
    factors: np.ndarray | None,
    diagonal: np.ndarray | None,
) -> np.ndarray:
    """The ``(K, d, d)`` covariances of a structured mixture (on request only)."""
    if structure in ("isotropic", "diagonal"):
        k, d = variances.shape
        out = np.zeros((k, d, d))
        idx = np.arange(d)
        out[:, idx, idx] = variances
        return out
    out = np.matmul(factors, np.swapaxes(factors, 1, 2))
    idx = np.arange(diagonal.shape[1])
    out[:, idx, idx] += diagonal
    return out


def low_rank_eigh(factors: np.ndarray, diagonal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues ``(K, d)`` (ascending) and orthonormal eigenvectors ``(K, d, d)`` of
    ``Σ_k = F_k F_kᵀ + diag(D_k)``. Where ``D_k = s_k 1`` (probabilistic PCA) from the thin
    SVD ``F_k = U S Vᵀ``: ``s_k + S²`` on ``U`` and exactly ``s_k`` on its orthogonal
    complement (the trailing columns of a complete QR of ``U``); ``S_i²`` to about
    ``eps S_max / S_i`` of itself (the SVD's absolute accuracy: 6.7e-10 for singular values
    1 … 1e-7, found in review), where the dense ``eigh`` puts every eigenvalue within
    ``eps ‖Σ_k‖`` only (``s_k = 1e-8`` under ``‖F‖² = 1e2``: 9.99999916e-9). Other
    diagonals: from the SVD of ``B_k = [F_k, diag(√D_k)]`` (``Σ_k = B_k B_kᵀ``): squared
    singular values, each to about ``eps ‖B_k‖ / σ_i`` of itself — ``√κ(Σ_k)`` units of
    rounding where the dense ``eigh`` of the formed ``Σ_k`` gives ``κ(Σ_k)``."""
    k, d, _ = factors.shape
    eigvals, eigvecs = np.empty((k, d)), np.empty((k, d, d))
    for i in range(k):
        s = diagonal[i, 0]
        if not np.all(diagonal[i] == s):
            root = np.concatenate([factors[i], np.diag(np.sqrt(diagonal[i]))], axis=1)
            u, sv, _ = np.linalg.svd(root, full_matrices=False)  # (d, d), (d,)
            eigvals[i], eigvecs[i] = sv[::-1] ** 2, u[:, ::-1]
            continue
        u, sv, _ = np.linalg.svd(factors[i], full_matrices=False)  # (d, m), m = min(d, r)
        m = sv.size
        complement = np.linalg.qr(u, mode="complete")[0][:, m:]  # (d, d − m)
        values = np.concatenate([np.full(d - m, s), s + sv[::-1] ** 2])
        vectors = np.concatenate([complement, u[:, ::-1]], axis=1)
        order = np.argsort(values, kind="stable")
        eigvals[i], eigvecs[i] = values[order], vectors[:, order]
    return eigvals, eigvecs


def check_weights_means(
    weights: object, means: object, name: str | None
) -> tuple[np.ndarray, np.ndarray]:
    """``(weights, means)`` validated (and ``name``): weights non-negative, summing to 1
    within :data:`WEIGHT_SUM_TOLERANCE` (renormalized beyond rounding)."""
    if name is not None:
        if not isinstance(name, str):
            raise TypeError(f"name must be a string or None, got {type(name).__name__}")
        if not name.strip() or "/" in name:
            raise ValueError(f"name must be a non-empty string without '/', got {name!r}")
    w = as_float_array(weights, "weights")
    mu = as_float_array(means, "means")
    if w.ndim != 1 or w.shape[0] == 0:
        raise ValueError(f"weights must have shape (K,) with K ≥ 1, got {w.shape}")
    k = w.shape[0]
    if mu.ndim != 2 or mu.shape[0] != k or mu.shape[1] == 0:
        raise ValueError(
            f"means must have shape (K, d) = ({k}, d) to match weights, got {mu.shape}"
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
    return w, mu


def marginal_mixture(mix: GaussianMixture, a: float, s: float) -> GaussianMixture:
    """``Σ_k w_k N(a μ_k, a² Σ_k + s² I)`` in ``mix``'s structure (low rank: ``a F`` and
    ``a² D + s²``)."""
    from ._mixture import GaussianMixture

    if mix.structure == "low_rank":
        diag = a * a * mix.diagonal_term + s * s
        return GaussianMixture.low_rank(mix.weights, a * mix.means, a * mix.factors, diag)
    if mix.structure == "diagonal":
        return GaussianMixture.diagonal(mix.weights, a * mix.means, a * a * mix.eigvals + s * s)
    if mix.structure == "isotropic":
        return GaussianMixture.isotropic(
            mix.weights, a * mix.means, a * a * mix.eigvals[:, 0] + s * s
        )
    covs = a * a * mix.covs + s * s * np.eye(mix.dim)[None]
    return GaussianMixture(mix.weights, a * mix.means, covs)


def woodbury_inverse(
    factors_t: np.ndarray, factors: np.ndarray, e: np.ndarray, a2: float | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(M⁻¹, log det M)`` of ``M = I_r + a2 · Fᵀ diag(e) F``, the ``r × r`` matrix of the
    Woodbury identity for ``(a2 F Fᵀ + diag(1/e))⁻¹``: ``factors_t`` ``(..., r, d)``,
    ``factors`` ``(..., d, r)``, ``e`` ``(..., d)`` and ``a2`` broadcasting against the
    leading axes (used at ``a2 = 1, e = 1/D`` for the mixture's own density and at
    ``a2 = α², e = 1/(α² D + σ²)`` for the path, :mod:`cmverify.exact._lowrank`)."""
    m = np.matmul(factors_t * e[..., None, :], factors) * a2
    m += np.eye(factors.shape[-1])
    return np.linalg.inv(m), np.linalg.slogdet(m)[1]
