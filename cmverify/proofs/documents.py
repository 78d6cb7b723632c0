"""The derivations, one per claim family, for a generic interpolant ``α(t)``, ``σ(t)``
(SymPy functions: every step holds for any differentiable interpolant)."""

from __future__ import annotations

import functools

import sympy as sp

from .core import Derivation, Step

__all__ = ["DERIVATIONS", "derivations"]

t = sp.Symbol("t", real=True)
s_ = sp.Symbol("s", real=True)
alpha = sp.Function("alpha", real=True)(t)
sigma = sp.Function("sigma", real=True)(t)
D, E = sp.symbols("D E", real=True)  # denoiser E[x0|x_t] and expected noise E[x1|x_t]
lam = sp.Symbol("lambda", positive=True)  # an eigenvalue of the data covariance
z_s = sp.Symbol("z_s", real=True)


def _flow_velocity() -> Derivation:
    da, ds = sp.diff(alpha, t), sp.diff(sigma, t)
    x = alpha * D + sigma * E
    score = -E / sigma
    drift = -sp.diff(sp.log(alpha), t)
    g2 = sigma**2 * sp.diff(sp.log(sigma**2 / alpha**2), t)
    return Derivation(
        claim="FLOW-VELOCITY",
        title="the velocity of the interpolant and the probability-flow ODE",
        assumptions=(
            "x_t = α_t x0 + σ_t x1 with x1 ~ N(0, I) independent of x0; α, σ differentiable, α_t σ_t ≠ 0 on (0, 1).",
            "D = E[x0 | x_t = x] (denoiser), E = E[x1 | x_t = x] (expected noise).",
        ),
        statement=(
            "v(t, x) = E[α̇ x0 + σ̇ x1 | x_t = x] = α̇ D + σ̇ E, and it equals the probability-flow "
            "velocity −λ_t x − ½ g_t² ∇log p_t(x) with λ = −d log α/dt, g² = σ² d/dt log(σ²/α²)."
        ),
        steps=(
            Step(
                x, alpha * D + sigma * E, "Conditioning x_t = α x0 + σ x1 on itself: x = α D + σ E."
            ),
            Step(
                score,
                -(x - alpha * D) / sigma**2,
                "Tweedie: ∇log p_t(x) = −E[x1 | x_t = x]/σ = −(x − α D)/σ².",
            ),
            Step(drift, -da / alpha, "λ_t = −d log α_t / dt."),
            Step(g2, 2 * sigma * ds - 2 * sigma**2 * da / alpha, "g_t² = σ² d/dt log(σ²/α²)."),
            Step(
                -drift * x - g2 * score / 2,
                da * D + ds * E,
                "Substituting x and ∇log p: the probability-flow velocity is α̇ D + σ̇ E.",
            ),
        ),
        measured_by="`tests/test_path.py` (continuity equation, conversions) and the FLOW-VELOCITY row of "
        "`cmverify verify` (quadrature and probability-flow forms against the closed form).",
    )


def _flow_gauss() -> Derivation:
    c = alpha**2 * lam + sigma**2
    speed = (alpha * sp.diff(alpha, t) * lam + sigma * sp.diff(sigma, t)) / c
    c_s = c.subs(t, s_)
    z_t = sp.sqrt(c / c_s) * z_s
    return Derivation(
        claim="FLOW-GAUSS",
        title="the flow map of Gaussian data",
        assumptions=(
            "x0 ~ N(μ, Σ), Σ = U diag(λ) Uᵀ; then x_t ~ N(α μ, C_t), C_t = U diag(c_t) Uᵀ, c_t = α² λ + σ².",
            "Coordinates z = Uᵀ(x − α_t μ); one eigenvalue λ at a time.",
        ),
        statement=(
            "X_{s→t}(x) = α_t μ + C_t^{1/2} C_s^{-1/2} (x − α_s μ), i.e. z_t = sqrt(c_t / c_s) z_s; for the "
            "linear interpolant X_{1→0}(x1) = μ + Σ^{1/2} x1."
        ),
        steps=(
            Step(
                speed,
                sp.diff(c, t) / (2 * c),
                "The velocity in these coordinates is ż = (α α̇ λ + σ σ̇)/c · z, and α α̇ λ + σ σ̇ = ċ/2.",
            ),
            Step(
                sp.diff(z_t, t),
                sp.diff(c, t) / (2 * c) * z_t,
                "z_t = sqrt(c_t/c_s) z_s solves ż = (ċ/2c) z …",
            ),
            Step(z_t.subs(t, s_), z_s, "… with z_s at t = s: it is the flow."),
            Step(
                sp.sqrt((lam * (1 - t) ** 2 + t**2) / (lam * 0 + 1)).subs(t, 0),
                sp.sqrt(lam),
                "Linear interpolant from s = 1 (c_1 = 1, α_1 = 0) to t = 0 (c_0 = λ): the factor is sqrt(λ), "
                "so X_{1→0}(x1) = μ + Σ^{1/2} x1.",
            ),
        ),
        measured_by="`tests/test_flow.py` (the reference flow against the closed form, d up to 32; the closed "
        "form solves the ODE) and the FLOW-GAUSS row of `cmverify verify`.",
    )


def _param_boundary() -> Derivation:
    sd = sp.Symbol("sigma_d", positive=True)
    c = alpha**2 * sd**2 + sigma**2
    c_skip = alpha * sd**2 / c
    c_out = sigma * sd / sp.sqrt(c)
    a0, s0 = sp.symbols("alpha_0 sigma_0", real=True)
    to_symbols = {alpha: a0, sigma: s0}
    c_skip, c_out = c_skip.subs(to_symbols), c_out.subs(to_symbols)
    at_zero = ((a0, s0), (1, 0))
    F = sp.Symbol("F", real=True)
    x = sp.Symbol("x", real=True)
    return Derivation(
        claim="PARAM-BOUNDARY",
        title="the consistency-model parameterization satisfies f(0, x) = x",
        assumptions=(
            "f_θ(t, x) = c_skip(t) x + c_out(t) F_θ(t, x) with c_skip = α σ_d² / (α² σ_d² + σ²) and "
            "c_out = σ σ_d / sqrt(α² σ_d² + σ²) (cmverify.train.model); σ_d > 0; F_θ finite.",
            "Boundary conditions α_0 = 1, σ_0 = 0.",
        ),
        statement="c_skip(0) = 1 and c_out(0) = 0, so f_θ(0, x) = x for every network F_θ.",
        steps=(
            Step(
                sp.Subs(c_skip, *at_zero),
                sp.Integer(1),
                "At t = 0 (α_0 = 1, σ_0 = 0): c_skip = σ_d² / σ_d² = 1.",
            ),
            Step(sp.Subs(c_out, *at_zero), sp.Integer(0), "At t = 0: c_out = 0 · σ_d / σ_d = 0."),
            Step(
                sp.Subs(c_skip * x + c_out * F, *at_zero),
                x,
                "Hence f_θ(0, x) = x, whatever F_θ(0, x) is.",
            ),
        ),
        measured_by="`tests/test_train.py::test_boundary_condition_is_exact_for_random_weights` "
        "(bit-for-bit equality, float32 and float64).",
    )


DERIVATIONS = {
    "FLOW-VELOCITY": _flow_velocity,
    "FLOW-GAUSS": _flow_gauss,
    "PARAM-BOUNDARY": _param_boundary,
}


@functools.cache
def derivations() -> tuple[Derivation, ...]:
    """All derivations, in catalogue order."""
    return tuple(build() for build in DERIVATIONS.values())
