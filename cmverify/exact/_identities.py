"""Measured residuals of the identities the closed-form path must satisfy (exact layer).

Each function returns a per-point residual, shape ``(n,)``, that is zero in exact
arithmetic; the docstrings state how far from zero rounding and finite differences
put it (the error budget a caller compares against).
"""

from __future__ import annotations

import numpy as np

from .._validation import as_points, as_times
from ..symbolic import divergence, gradient, time_derivative
from ._path import MixturePath

__all__ = [
    "continuity_residual",
    "decomposition_residual",
    "score_gradient_residual",
    "spatial_step",
    "time_step",
    "velocity_decomposition_residual",
]

#: Largest time step of the finite difference in ``t`` (6th-order stencil).
MAX_TIME_STEP = 1e-3
#: Smallest time step (guards against a coefficient whose derivative is infinite).
MIN_TIME_STEP = 1e-6
#: Time step as a fraction of the time scale on which ``p_t`` changes (see ``time_step``).
RELATIVE_TIME_STEP = 0.005
#: Spatial step as a fraction of the smallest standard deviation of ``p_t``'s components.
RELATIVE_SPATIAL_STEP = 1e-3


def _scalar_time(t: object) -> float:
    tt = as_times(t)
    if tt.ndim != 0:
        raise ValueError(f"t must be a single time here, got shape {tt.shape}")
    return float(tt)


def spatial_step(path: MixturePath, t: float) -> float:
    """``1e-3 × sqrt(min_k,i c_k,i(t))``: small against the narrowest component of ``p_t``."""
    return RELATIVE_SPATIAL_STEP * float(np.sqrt(path.marginal(t).eigvals.min()))


def time_step(path: MixturePath, t: float) -> float:
    """``min(1e-3, 0.005 τ)`` with ``τ`` the time scale on which ``p_t`` changes at ``t``.

    The components' variances ``c = α² λ + σ²`` and means ``m = α μ_k`` set it:
    ``τ = min(c / |ċ|, sqrt(c / |c̈|), sqrt(c) / |ṁ|, (sqrt(c) / |m̈|)^{1/2})`` over
    components and eigen-directions, with ``ċ = 2 (α α̇ λ + σ σ̇)`` and
    ``c̈ = 2 (d(α α̇)/dt λ + d(σ σ̇)/dt)`` from the symbolic layer. Both rates matter:
    for the trig interpolant ``ċ = 0`` at ``t = 0`` but ``c`` doubles within
    ``t ≈ 0.06`` when ``λ = 0.01``.
    """
    mix = path.mixture
    at = path.interpolant.at(t)
    lam = mix.eigvals
    c = at.alpha**2 * lam + at.sigma**2
    mu = np.linalg.norm(mix.means, axis=1)[:, None]
    c1 = np.abs(2 * (at.alpha_dalpha * lam + at.sigma_dsigma))
    c2 = np.abs(2 * (at.d_alpha_dalpha * lam + at.d_sigma_dsigma))
    m1 = np.abs(at.dalpha) * mu
    m2 = np.abs(at.ddalpha) * mu
    with np.errstate(divide="ignore", invalid="ignore"):
        scales = [c / c1, np.sqrt(c / c2), np.sqrt(c) / m1, np.sqrt(np.sqrt(c) / m2)]
    tau = min(float(np.nanmin(s)) for s in scales)
    return max(MIN_TIME_STEP, min(MAX_TIME_STEP, RELATIVE_TIME_STEP * tau))


def continuity_residual(path: MixturePath, t: float, x: object) -> np.ndarray:
    """Relative residual of the continuity equation ``∂_t p + ∇·(p v) = 0`` at ``(t, x)``.

    Divided by ``p``: ``R = ∂_t log p + ∇·v + v·∇log p``, reported as
    ``|R| / (1 + |∂_t log p| + |∇·v| + |v·∇log p|)``: relative to the size of the terms,
    absolute (in units of 1/time) where they all vanish, as for the trig interpolant at
    ``t = 0``, where ``v ≡ 0``. ``∂_t log p`` and ``∇·v`` by 6th-order differences
    (``h_t`` from :func:`time_step`, one-sided near the ends of ``[0, 1]``;
    ``h_x = 1e-3 × smallest component std``); ``∇ log p`` is the closed-form score.

    ``path`` may also be a wrapper that replaces a path's ``velocity`` and delegates every
    other member to it (a :class:`~cmverify.exact.VelocityField` with the path's density):
    the residual then measures that velocity against the path's ``p_t``.

    Error budget: truncation ``≈ C (h/τ)^6 · |y|²/c`` with ``h/τ ≤ 0.005`` in ``t``
    (``C ≲ 10²`` for the one-sided stencil, ``|y|²/c ≲ 30`` for points drawn from
    ``p_t``) and ``h/ℓ = 1e-3`` in ``x``: ``≲ 1e-10``; rounding
    ``≈ 10 eps |log p| / h_t ≲ 3e-10`` with ``h_t ≥ 3e-5``. Measured ``≤ 2e-10`` over
    the named mixtures and interpolants; a correct velocity stays below ``1e-8``, while
    a velocity off by a relative ``ε`` gives about ``ε``.
    """
    t = _scalar_time(t)
    x = as_points(x, path.dim)
    dlogp_dt = time_derivative(lambda s: path.log_prob(s, x), t, time_step(path, t))
    div_v = divergence(lambda z: path.velocity(t, z), x, spatial_step(path, t))
    v_dot_score = np.sum(path.velocity(t, x) * path.score(t, x), axis=1)
    scale = 1.0 + np.abs(dlogp_dt) + np.abs(div_v) + np.abs(v_dot_score)
    return np.abs(dlogp_dt + div_v + v_dot_score) / scale


def score_gradient_residual(path: MixturePath, t: float, x: object) -> np.ndarray:
    """``|score − ∇ log p| / (|score| + 1/s_min)`` with ``∇ log p`` by 6th-order differences.

    ``s_min`` is the smallest component std of ``p_t``, so ``1/s_min`` is the natural
    scale of the score. Error budget as in :func:`continuity_residual`: ``≲ 1e-9``.
    """
    t = _scalar_time(t)
    x = as_points(x, path.dim)
    h = spatial_step(path, t)
    fd = gradient(lambda z: path.log_prob(t, z), x, h)
    score = path.score(t, x)
    scale = np.linalg.norm(score, axis=1) + RELATIVE_SPATIAL_STEP / h
    return np.linalg.norm(score - fd, axis=1) / scale


def decomposition_residual(path: MixturePath, t: object, x: object) -> np.ndarray:
    """``|α_t D + σ_t E[x1 | x_t] − x| / (1 + |x|)``: zero up to rounding (``≲ 1e-14``).

    Holds because ``x_t = α_t x0 + σ_t x1`` exactly, so its conditional expectation
    given ``x_t = x`` is ``x``.
    """
    x = as_points(x, path.dim)
    t = as_times(t, x.shape[0])
    at = path.interpolant.at_trusted(t)
    a, s = np.reshape(at.alpha, (-1, 1)), np.reshape(at.sigma, (-1, 1))
    recon = a * path.denoiser(t, x) + s * path.expected_noise(t, x)
    return np.linalg.norm(recon - x, axis=1) / (1.0 + np.linalg.norm(x, axis=1))


def velocity_decomposition_residual(path: MixturePath, t: object, x: object) -> np.ndarray:
    """``|v − (α̇ D + σ̇ E[x1 | x_t])| / (1 + |v|)``, where ``σ̇`` is finite.

    The velocity is computed from the simplified products ``α α̇``, ``σ σ̇``; this checks
    it against the textbook form ``E[α̇ x0 + σ̇ x1 | x_t] = α̇ D + σ̇ E[x1 | x_t]``.
    Rounding only: ``≲ 1e-13 × (1 + |x| / min c)``.
    """
    x = as_points(x, path.dim)
    t = as_times(t, x.shape[0])
    at = path.interpolant.at_trusted(t)
    da, ds = np.reshape(at.dalpha, (-1, 1)), np.reshape(at.dsigma, (-1, 1))
    if not np.all(np.isfinite(ds)):
        raise ValueError("dsigma is infinite at some t; the textbook form is undefined there")
    v = path.velocity(t, x)
    textbook = da * path.denoiser(t, x) + ds * path.expected_noise(t, x)
    return np.linalg.norm(v - textbook, axis=1) / (1.0 + np.linalg.norm(v, axis=1))
