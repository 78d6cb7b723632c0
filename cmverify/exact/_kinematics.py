"""Kinematics of the flow: acceleration along trajectories and conditional second
derivatives of the interpolant (exact layer).

- ``a(t, x) = ∂_t v + (∇v) v``: the acceleration of the trajectory through ``x``,
  ``d²/dτ² X_{t→τ}(x)`` at ``τ = t``. Computed from the closed-form velocity by 6th-order
  differences (``∂_t`` with the step of :func:`identities.time_step`, ``∇`` with
  :func:`identities.spatial_step`): relative error ≲ 1e-9.
- ``E[γ | x_t]`` with ``γ = α̈ x0 + σ̈ x1 = d²x_t/dt²`` for fixed ``(x0, x1)``: exactly
  ``α̈ D + σ̈ E[x1 | x_t]`` (zero for the linear interpolant).
- ``Cov(δ | x_t = y)`` with ``δ = α̇ x0 + σ̇ x1``: given ``y``, ``x1 = (y − α x0)/σ``, so
  ``δ = κ x0 + σ̇ y/σ`` with ``κ = α̇ − σ̇ α/σ = (α̇ σ − α σ̇)/σ`` and
  ``Cov(δ | y) = κ² Cov(x0 | y)`` (needs ``σ > 0``).
"""

from __future__ import annotations

import numpy as np

from .._validation import as_points, as_times
from ..symbolic import jacobian, time_derivative
from ._identities import spatial_step, time_step
from ._path import MixturePath

__all__ = ["acceleration", "delta_covariance", "expected_gamma"]


def _time(t: object) -> float:
    tt = as_times(t)
    if tt.ndim != 0:
        raise ValueError("t must be a single time")
    return float(tt)


def acceleration(path: MixturePath, t: float, x: object) -> np.ndarray:
    """``a(t, x) = ∂_t v + (∇v) v``, shape ``(n, d)`` (6th-order differences)."""
    t = _time(t)
    x = as_points(x, path.dim)
    dv_dt = time_derivative(lambda s: path.velocity(s, x), t, time_step(path, t))
    jac = jacobian(lambda z: path.velocity(t, z), x, spatial_step(path, t))
    return dv_dt + np.einsum("nij,nj->ni", jac, path.velocity(t, x))


def expected_gamma(path: MixturePath, t: float, x: object) -> np.ndarray:
    """``E[α̈ x0 + σ̈ x1 | x_t = x] = α̈ D + σ̈ E[x1 | x_t = x]``, shape ``(n, d)``."""
    t = _time(t)
    at = path.interpolant.at(t)
    dda, dds = float(at.ddalpha), float(at.ddsigma)
    return dda * path.denoiser(t, x) + dds * path.expected_noise(t, x)


def delta_covariance(path: MixturePath, t: float, x: object) -> np.ndarray:
    """``Cov(α̇ x0 + σ̇ x1 | x_t = x) = κ² Cov(x0 | x_t = x)``, shape ``(n, d, d)``; ``σ_t > 0``."""
    t = _time(t)
    at = path.interpolant.at(t)
    a, s = float(at.alpha), float(at.sigma)
    if s <= 0:
        raise ValueError("Cov(δ | x_t) needs σ_t > 0")
    kappa = (float(at.dalpha) * s - a * float(at.dsigma)) / s
    return kappa**2 * path.posterior(t, x).covariance()
