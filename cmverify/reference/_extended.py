"""An extended-precision flow map for verifying the float64 reference (reference layer).

Where the flow amplifies perturbations strongly — trajectories that pass near a
separatrix between modes, with ``|∇X_{τ→0}|`` of 10⁴ and more — float64 solves differ
from one another by the rounding of their many steps times that amplification (measured:
1e-10 between two tight float64 solves of one 8-d trajectory). A truth for such
trajectories must carry more digits. This module evaluates the mixture velocity

    ``v(t, y) = Σ_k r_k(y) [α̇ μ_k + U_k ((α α̇ λ_k + σ σ̇) / c_k ⊙ U_kᵀ (y − α μ_k))]``,
    ``c_k = α² λ_k + σ²``, ``r_k ∝ w_k exp(−½ Σ log c_k − ½ Σ (U_kᵀ(y − α μ_k))² / c_k)``,

in ``np.longdouble`` (80-bit extended on x86-64: unit roundoff 5.4e-20) from the *same*
float64 problem data (weights, means, eigenvectors and eigenvalues of the
:class:`~cmverify.exact.GaussianMixture`, taken as exact), written independently of
:mod:`cmverify.exact`, and integrates it with the batched DOP853 in that precision.
Supported interpolants: ``linear`` and ``trig`` (their coefficients are evaluated in
extended precision here). On platforms where ``longdouble`` is float64 it raises.
"""

from __future__ import annotations

import numpy as np

from ..exact import MixturePath
from ._batched_rk import solve_batched

__all__ = ["extended_flow_map"]

_LD = np.longdouble
_PI = _LD("3.14159265358979323846264338327950288")


def _coefficients(name: str, t: np.ndarray):
    """``α, σ, α̇, σ̇`` in extended precision for the named interpolant."""
    if name == "linear":
        one = np.ones_like(t)
        return 1 - t, t, -one, one
    if name == "trig":
        half = _PI / 2
        return np.cos(half * t), np.sin(half * t), -half * np.sin(half * t), half * np.cos(half * t)
    raise ValueError(f"extended precision supports the linear and trig interpolants, not {name!r}")


def _velocity(path: MixturePath, name: str):
    mix = path.mixture
    logw = np.log(mix.weights.astype(_LD))  # (K,)
    mu = mix.means.astype(_LD)  # (K, d)
    lam = mix.eigvals.astype(_LD)  # (K, d)
    vecs = mix.eigvecs.astype(_LD)  # (K, d, d), columns

    def velocity(t: np.ndarray, y: np.ndarray) -> np.ndarray:
        alpha, sigma, dalpha, dsigma = (c[:, None, None] for c in _coefficients(name, t))
        c = alpha**2 * lam[None] + sigma**2  # (n, K, d)
        diff = y[:, None, :] - alpha * mu[None]  # (n, K, d)
        yk = np.einsum("kdj,nkd->nkj", vecs, diff)  # U_kᵀ (y − α μ_k)
        log_r = logw[None] - 0.5 * (np.sum(np.log(c), axis=2) + np.sum(yk * yk / c, axis=2))
        log_r -= np.max(log_r, axis=1, keepdims=True)
        r = np.exp(log_r)
        r /= np.sum(r, axis=1, keepdims=True)
        inner = (alpha * dalpha * lam[None] + sigma * dsigma) / c * yk
        comp = dalpha * mu[None] + np.einsum("kdj,nkj->nkd", vecs, inner)
        return np.einsum("nk,nkd->nd", r, comp)

    return velocity


def extended_flow_map(
    path: MixturePath,
    x: np.ndarray,
    s: float,
    t: float,
    *,
    rtol: float = 1e-17,
    max_step: float = 1 / 256,
) -> np.ndarray:
    """``X_{s→t}(x)`` in extended precision, returned as float64, shape ``(n, d)``.

    DOP853 with local tolerance ``rtol`` (absolute and relative) per trajectory and steps
    at most ``max_step``; the default leaves local truncation errors near 1e-17, so the
    result's error is the extended rounding (~1e-19 per step) times the flow's
    amplification — about 1e-14 where that amplification is 1e5.
    """
    if np.finfo(_LD).eps >= np.finfo(np.float64).eps:
        raise RuntimeError("np.longdouble is no wider than float64 on this platform")
    name = path.interpolant.name
    velocity = _velocity(path, name)
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    sol = solve_batched(
        velocity,
        x.astype(_LD),
        np.full(n, s, dtype=_LD),
        np.full(n, t, dtype=_LD),
        rtol=rtol,
        atol=rtol,
        max_step=max_step,
        dtype=_LD,
        first_step_factor=1e-3,  # a first step far inside any transition at the start
    )
    return sol.y.astype(np.float64)
