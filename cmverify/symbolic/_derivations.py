"""Symbolic derivations behind the claims (symbolic layer).

Each function returns SymPy expressions derived from an interpolant's ``α``, ``σ``; the
numeric functions the claims use are generated from them.

- Probability-flow coefficients (FLOW-VELOCITY): ``λ_t = −d log α/dt`` and
  ``g_t² = σ² d/dt log(σ²/α²)``; the probability-flow velocity
  ``−λ x − ½ g² ∇log p`` equals ``α̇ D + σ̇ E[x1 | x_t]`` once ``x = α D + σ E[x1 | x_t]``
  and ``∇log p = −E[x1 | x_t]/σ`` are substituted (:func:`probability_flow_identity`
  proves it).
- CT-GAUSS: for Gaussian data the CT recursion with step ``Δ`` multiplies each
  eigen-coordinate (variance ``λ``) of the affine consistency map by
  ``ρ = ⟨φ(s−Δ), φ(s)⟩ / |φ(s)|²`` where ``φ = (α √λ, σ)``, while the exact map gains
  ``|φ(s−Δ)| / |φ(s)|``: their ratio is ``cos θ`` with ``θ`` the angle swept by ``φ``.
  Summing ``log cos θ ≈ −θ²/2`` over the grid, ``f_N = f* · exp(−½ Δ I(λ) + O(Δ²))`` with
  ``I(λ) = ∫_0^1 θ'(t)² dt`` and ``θ' = √λ (α σ̇ − σ α̇) / (α² λ + σ²)``: the global
  error is ``f_N(y) − f*(1, y) ≈ −½ Δ √λ I(λ) y`` per eigen-coordinate at ``t = 1``.
- PARAM-BOUNDARY: the consistency-model scalings ``c_skip``, ``c_out``
  (:func:`consistency_scalings`), written here once; the proof and the trainer
  (:mod:`cmverify.train._model`, through :func:`consistency_scalings_numeric`) use these
  very expressions.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import sympy as sp
from scipy import integrate

from ._interpolant import Interpolant

__all__ = [
    "ALPHA_T",
    "LAMBDA",
    "SIGMA_DATA",
    "SIGMA_T",
    "angular_speed_squared",
    "consistency_scalings",
    "consistency_scalings_numeric",
    "ct_gauss_angular_speed",
    "ct_gauss_rate",
    "drift_and_diffusion",
    "probability_flow_coefficients",
    "probability_flow_identity",
]

LAMBDA = sp.Symbol("lambda", positive=True)

#: The interpolant's coefficients at one time, and the data scale, as the symbols of
#: :func:`consistency_scalings`.
ALPHA_T, SIGMA_T = sp.symbols("alpha_t sigma_t", real=True)
SIGMA_DATA = sp.Symbol("sigma_d", positive=True)


def drift_and_diffusion(alpha: sp.Expr, sigma: sp.Expr, t: sp.Symbol) -> tuple[sp.Expr, sp.Expr]:
    """``(λ_t, g_t²) = (−d log α/dt, σ² d/dt log(σ²/α²))`` for any expressions (unsimplified)."""
    return -sp.diff(sp.log(alpha), t), sigma**2 * sp.diff(sp.log(sigma**2 / alpha**2), t)


def angular_speed_squared(alpha: sp.Expr, sigma: sp.Expr, t: sp.Symbol) -> sp.Expr:
    """``θ'(t)² = λ (α σ̇ − σ α̇)² / (α² λ + σ²)²``: the squared angular speed of
    ``φ = (α √λ, σ)`` (unsimplified)."""
    w = alpha * sp.diff(sigma, t) - sigma * sp.diff(alpha, t)
    return LAMBDA * w**2 / (alpha**2 * LAMBDA + sigma**2) ** 2


def probability_flow_coefficients(interp: Interpolant) -> tuple[sp.Expr, sp.Expr]:
    """``(λ_t, g_t²)`` with ``λ = −d log α/dt`` and ``g² = σ² d/dt log(σ²/α²)``, simplified."""
    e = interp.expressions
    lam, g2 = drift_and_diffusion(e.alpha, e.sigma, e.t)
    return sp.simplify(lam), sp.simplify(g2)


def probability_flow_identity(interp: Interpolant) -> bool:
    """Prove ``−λ x − ½ g² s = α̇ D + σ̇ E`` with ``x = α D + σ E`` and ``s = −E/σ``
    (``D``, ``E`` free symbols standing for the denoiser and the expected noise)."""
    e = interp.expressions
    d, en = sp.symbols("D E")
    lam, g2 = probability_flow_coefficients(interp)
    x = e.alpha * d + e.sigma * en
    score = -en / e.sigma
    lhs = -lam * x - sp.Rational(1, 2) * g2 * score
    rhs = sp.diff(e.alpha, e.t) * d + sp.diff(e.sigma, e.t) * en
    return sp.simplify(lhs - rhs) == 0


def ct_gauss_angular_speed(interp: Interpolant) -> sp.Expr:
    """``θ'(t)² = λ (α σ̇ − σ α̇)² / (α² λ + σ²)²`` in the symbols ``t`` and ``λ``."""
    e = interp.expressions
    return sp.simplify(angular_speed_squared(e.alpha, e.sigma, e.t))


@functools.cache
def _rate_integrand(interp: Interpolant):
    return sp.lambdify((interp.expressions.t, LAMBDA), ct_gauss_angular_speed(interp), "numpy")


def ct_gauss_rate(interp: Interpolant, lam: float) -> float:
    """``I(λ) = ∫_0^1 θ'(t)² dt``, by adaptive quadrature of the SymPy integrand
    (absolute error ≲ 1e-13; SymPy's closed form where it has one is checked in tests)."""
    f = _rate_integrand(interp)
    value, err = integrate.quad(
        lambda t: float(f(t, lam)), 0.0, 1.0, epsabs=1e-14, epsrel=1e-13, limit=200
    )
    if not np.isfinite(value) or err > 1e-10 * max(1.0, abs(value)):
        raise ValueError(
            f"I(λ = {lam}) does not converge for {interp!r} (estimate {value}, error {err})"
        )
    return float(value)


@functools.cache
def consistency_scalings() -> tuple[sp.Expr, sp.Expr]:
    """``(c_skip, c_out)`` of ``f_θ(t, x) = c_skip x + c_out F_θ(t, x)`` as SymPy expressions
    in ``α_t``, ``σ_t`` (:data:`ALPHA_T`, :data:`SIGMA_T`) and ``σ_d > 0``
    (:data:`SIGMA_DATA`), the only place they are written:

        c_skip = α / (α² + σ²/σ_d²),      c_out = σ / √(α² + σ²/σ_d²).

    These are the EDM scalings ``α σ_d² / (α² σ_d² + σ²)`` and
    ``σ σ_d / √(α² σ_d² + σ²)`` (``c_skip`` is the linear part of the denoiser
    ``E[x0 | x_t = x]`` for data ``N(0, σ_d²)``) with ``σ_d²`` divided out; PARAM-BOUNDARY
    proves the equality and ``c_skip = 1``, ``c_out = 0`` at ``α = 1``, ``σ = 0`` on these
    objects. In this form the generated float64 code gives exactly 1 and 0 at ``t = 0``
    (``α² + 0/σ_d² = 1``) for every ``σ_d`` whose square is a positive normal float. The
    same tuple is returned on every call (cached), so an identity check links the proof to
    the trainer."""
    ratio = ALPHA_T**2 + SIGMA_T**2 / SIGMA_DATA**2
    return ALPHA_T / ratio, SIGMA_T / sp.sqrt(ratio)


ScalingsFunction = Callable[[np.ndarray, np.ndarray, float], tuple[np.ndarray, np.ndarray]]


@functools.cache
def consistency_scalings_numeric() -> ScalingsFunction:
    """``(alpha, sigma, sigma_d) ↦ (c_skip, c_out)`` on float64 arrays (broadcasting),
    generated by :func:`sympy.lambdify` (numpy, common subexpressions shared) from
    :func:`consistency_scalings`; the function's ``expressions`` attribute is that very
    tuple. No validation: callers pass finite ``σ_d > 0``."""
    expressions = consistency_scalings()
    function = sp.lambdify((ALPHA_T, SIGMA_T, SIGMA_DATA), expressions, "numpy", cse=True)
    function.expressions = expressions
    return function
