"""Boundary claims (claims layer): what holds at ``t = 0`` and ``t = 1`` by construction.

- INT-BOUNDARY: ``α_0 = σ_1 = 1``, ``α_1 = σ_0 = 0`` proven in SymPy for the case's
  interpolant, and samples of ``x_t = α_t x0 + σ_t x1`` against the closed-form marginal
  ``Σ w_k N(α μ_k, α² Σ_k + σ² I)``: ``n |x̄ − m|²_{Cov⁻¹}`` is asymptotically ``χ²_d``, so
  the tolerance is its quantile at a stated false-alarm rate.
- PARAM-BOUNDARY: ``f(t, x) = c_skip(t) x + c_out(t) F(t, x)`` with the scalings of
  :func:`cmverify.symbolic.consistency_scalings` (the numpy code the trainer runs) gives
  ``c_skip(0) = 1``, ``c_out(0) = 0`` and ``f(0, x) = x`` bit for bit — for ``σ_d`` the
  data's scale and the extremes of the range whose square is a normal float, at data
  points and at ``|x| = 1e3``.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import special

from ..symbolic import Interpolant, consistency_scalings_numeric, prove_boundary_conditions
from ._case import BatteryConfig, Case
from ._functions import TimeTanhNetwork
from ._results import Check

__all__ = ["FALSE_ALARM", "int_boundary", "param_boundary"]

#: False-alarm probability of each moment test in INT-BOUNDARY.
FALSE_ALARM = 1e-6
#: Times of the moment tests.
MOMENT_TIMES = (0.3, 0.7)
#: ``σ_d`` whose squares are the smallest and largest normal float64 magnitudes used.
EXTREME_SIGMA_DATA = (1e-150, 1e150)


@functools.cache
def _proven(interp: Interpolant) -> int:
    """How many of the four boundary conditions SymPy proves (cached per interpolant)."""
    e = interp.expressions
    try:
        return len(prove_boundary_conditions(e.alpha, e.sigma, e.t))
    except ValueError:
        return 0


def int_boundary(case: Case, settings: BatteryConfig, rng: np.random.Generator) -> list[Check]:
    """INT-BOUNDARY on one case: the symbolic proof of the interpolant's boundary
    conditions, then the sample mean of ``settings.n_samples`` draws of ``x_t`` against
    the closed-form marginal at ``t = 0.3, 0.7``."""
    path = case.path
    checks = [
        Check(
            "boundary conditions of the interpolant left unproven (of 4)",
            "",
            4.0 - _proven(path.interpolant),
            0.0,
            "symbolic proof",
        )
    ]
    n = settings.n_samples
    # the χ²_d quantile isf(p) = 2 Q⁻¹(d/2, p) (Q the regularized upper incomplete gamma
    # function): scipy.stats.chi2.isf's own formula, without importing scipy.stats (0.25 s)
    threshold = float(2.0 * special.gammainccinv(path.dim / 2, FALSE_ALARM))
    for t in MOMENT_TIMES:
        marginal = path.marginal(t)
        diff = path.sample(t, n, rng).mean(axis=0) - marginal.mean()
        chi2 = float(n * diff @ np.linalg.solve(marginal.covariance(), diff))
        checks.append(
            Check(
                f"sample mean of x_t vs closed-form marginal (χ², t={t})",
                "",
                chi2,
                threshold,
                f"χ²_{path.dim} quantile at false-alarm rate {FALSE_ALARM:g}",
            )
        )
    return checks


def param_boundary(case: Case, settings: BatteryConfig, rng: np.random.Generator) -> list[Check]:
    """PARAM-BOUNDARY on one case: ``c_skip(0) − 1``, ``c_out(0)`` and ``f(0, x) − x`` for a
    fixed random network ``F`` (all exactly zero), at the case's ``α_0``, ``σ_0``."""
    path = case.path
    interp = path.interpolant
    scalings = consistency_scalings_numeric()
    data_scale = float(np.sqrt(np.mean(np.diagonal(path.marginal(0.0).covariance()))))
    sigma_data = np.array([data_scale, *EXTREME_SIGMA_DATA])
    alpha0, sigma0 = np.full(3, float(interp.alpha(0.0))), np.full(3, float(interp.sigma(0.0)))
    c_skip, c_out = (np.broadcast_to(c, (3,)) for c in scalings(alpha0, sigma0, sigma_data))
    x = np.vstack(
        [path.sample(0.0, settings.n_points, rng), 1e3 * np.eye(path.dim), -1e3 * np.eye(path.dim)]
    )
    F = TimeTanhNetwork(path.dim, seed=3)(0.0, x)
    worst = max(
        float(np.max(np.abs(skip * x + out * F - x)))
        for skip, out in zip(c_skip, c_out, strict=True)
    )
    budget = "exact in float64: α_0² + σ_0²/σ_d² = 1 + 0"
    sigmas = ", ".join(f"{s:.3g}" for s in sigma_data)
    return [
        Check(
            "max(|c_skip(0) − 1|, |c_out(0)|)",
            "",
            float(max(np.max(np.abs(c_skip - 1.0)), np.max(np.abs(c_out)))),
            0.0,
            budget,
            detail=f"σ_d = {sigmas}",
        ),
        Check(
            "f(0, x) = x for a random network F, max |Δ| (data and |x| = 1e3)",
            "",
            worst,
            0.0,
            budget,
            detail=f"σ_d = {sigmas}; F = time-tanh-net(seed=3)",
        ),
    ]
