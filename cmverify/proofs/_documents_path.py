"""Derivations of the path claims: the interpolant's marginal (INT-BOUNDARY), its
velocity (FLOW-VELOCITY), the Gaussian flow map (FLOW-GAUSS) and the consistency-model
parameterization (PARAM-BOUNDARY)."""

from __future__ import annotations

import sympy as sp

from ..symbolic import (
    ALPHA_T,
    SIGMA_DATA,
    SIGMA_T,
    consistency_scalings,
    drift_and_diffusion,
)
from ._derivation import Derivation, Step
from ._notation import TexSymbol, alpha, lam, s_, sigma, t

__all__ = ["flow_gauss", "flow_velocity", "int_boundary", "param_boundary"]

D, E = sp.symbols("D E", real=True)  # denoiser E[x0|x_t] and expected noise E[x1|x_t]
z_s = sp.Symbol("z_s", real=True)


def int_boundary() -> Derivation:
    mu_k, var_k = sp.symbols("mu_k Sigma_k", real=True)
    a0, s0 = sp.symbols("alpha_t sigma_t", real=True)
    mean_x1 = TexSymbol(r"\mathbb{E}[x_{1}]", real=True)
    mean = sp.Subs(a0 * mu_k + s0 * mean_x1, mean_x1, 0)
    second = a0**2 * (var_k + mu_k**2) + s0**2
    return Derivation(
        claim="INT-BOUNDARY",
        assumptions=(
            "$x_t = α_t x0 + σ_t x1$, $x1 ~ N(0, I)$ independent of $x0 ~ \\sum_k w_k N(μ_k, Σ_k)$; "
            "$α_0 = σ_1 = 1$, $α_1 = σ_0 = 0$ (proven for each interpolant by `Interpolant.from_sympy`).",
            "One dimension shown; covariances add the same way in $d$ dimensions ($α² Σ_k + σ² I$).",
        ),
        statement=(
            "Given component $k$, $x_t$ is Gaussian (a linear map of independent Gaussians) with mean "
            "$α μ_k$ and variance $α² Σ_k + σ²$; so $x_t ~ \\sum_k w_k N(α μ_k, α² Σ_k + σ² I)$, the data "
            "at $t = 0$ and $N(0, I)$ at $t = 1$."
        ),
        steps=(
            Step(mean, a0 * mu_k, "$E[x_t | k] = α E[x0 | k] + σ E[x1] = α μ_k$."),
            Step(
                second - (a0 * mu_k) ** 2,
                a0**2 * var_k + s0**2,
                "$Var(x_t | k) = α² (Σ_k + μ_k²) + σ² − (α μ_k)²$, using $E[x0 x1] = 0$ and $E[x1²] = 1$.",
            ),
            Step(
                sp.Subs(a0**2 * var_k + s0**2, (a0, s0), (1, 0)),
                var_k,
                "At $t = 0$ the component is $N(μ_k, Σ_k)$ …",
            ),
            Step(
                sp.Subs(a0**2 * var_k + s0**2, (a0, s0), (0, 1)),
                sp.Integer(1),
                "… and at $t = 1$ it is $N(0, 1)$.",
            ),
        ),
        measured_by="`tests/test_path.py` (log-density against the marginal mixture, sampled moments) and "
        "the INT-BOUNDARY row of `cmverify verify`.",
    )


def flow_velocity() -> Derivation:
    da, ds = sp.diff(alpha, t), sp.diff(sigma, t)
    x = alpha * D + sigma * E
    x_ = sp.Symbol("x", real=True)
    score = -E / sigma
    drift, g2 = drift_and_diffusion(alpha, sigma, t)
    return Derivation(
        claim="FLOW-VELOCITY",
        assumptions=(
            "$x_t = α_t x0 + σ_t x1$ with $x1 ~ N(0, I)$ independent of $x0$; $α$, $σ$ differentiable, "
            "$α_t σ_t ≠ 0$ on $(0, 1)$.",
            "$D = E[x0 | x_t = x]$ (denoiser), $E = E[x1 | x_t = x]$ (expected noise).",
        ),
        statement=(
            "$v(t, x) = E[α̇ x0 + σ̇ x1 | x_t = x] = α̇ D + σ̇ E$, and it equals the probability-flow "
            "velocity $−λ_t x − ½ g_t² ∇log p_t(x)$ with $λ_t = −d log α_t/dt$, "
            "$g_t² = σ_t² d/dt log(σ_t²/α_t²)$."
        ),
        steps=(
            Step(
                x_,
                x,
                "Definition: conditioning $x_t = α x0 + σ x1$ on $x_t = x$ gives $x = α D + σ E$ "
                "(linearity of $E[· | x_t = x]$); below, $x$ stands for $α D + σ E$.",
                definition=True,
            ),
            Step(
                score,
                sp.Subs(-(x_ - alpha * D) / sigma**2, x_, x),
                "Tweedie: $∇log p_t(x) = −E[x1 | x_t = x]/σ = −(x − α D)/σ²$.",
            ),
            Step(-sp.Derivative(sp.log(alpha), t), -da / alpha, "$λ_t = −d log α_t / dt = −α̇/α$."),
            Step(
                sigma**2 * sp.Derivative(sp.log(sigma**2 / alpha**2), t),
                2 * sigma * ds - 2 * sigma**2 * da / alpha,
                "$g_t² = σ² d/dt log(σ²/α²) = 2 σ σ̇ − 2 σ² α̇/α$.",
            ),
            Step(
                -drift * x - g2 * score / 2,
                da * D + ds * E,
                "Substituting $x$, $∇log p$, and $λ_t$, $g_t²$ as `cmverify.symbolic.drift_and_diffusion` "
                "computes them: the probability-flow velocity is $α̇ D + σ̇ E$.",
            ),
        ),
        measured_by="`tests/test_path.py` (continuity equation, conversions) and the FLOW-VELOCITY row of "
        "`cmverify verify` (quadrature and probability-flow forms against the closed form).",
    )


def flow_gauss() -> Derivation:
    c = alpha**2 * lam + sigma**2
    speed = (alpha * sp.diff(alpha, t) * lam + sigma * sp.diff(sigma, t)) / c
    c_s = c.subs(t, s_)
    z_t = sp.sqrt(c / c_s) * z_s
    return Derivation(
        claim="FLOW-GAUSS",
        assumptions=(
            "$x0 ~ N(μ, Σ)$, $Σ = U diag(λ) Uᵀ$; then $x_t ~ N(α μ, C_t)$, $C_t = U diag(c_t) Uᵀ$, "
            "$c_t = α² λ + σ²$.",
            "Coordinates $z = Uᵀ(x − α_t μ)$; one eigenvalue $λ$ at a time.",
        ),
        statement=(
            "$X_{s→t}(x) = α_t μ + C_t^{1/2} C_s^{-1/2} (x − α_s μ)$, i.e. $z_t = √(c_t / c_s) z_s$; for "
            "the linear interpolant $X_{1→0}(x1) = μ + Σ^{1/2} x1$."
        ),
        steps=(
            Step(
                speed,
                sp.diff(c, t) / (2 * c),
                "The velocity in these coordinates is $ż = (α α̇ λ + σ σ̇)/c · z$, and $α α̇ λ + σ σ̇ = ċ/2$.",
            ),
            Step(
                sp.diff(z_t, t),
                sp.diff(c, t) / (2 * c) * z_t,
                "$z_t = √(c_t/c_s) z_s$ solves $ż = (ċ/2c) z$ …",
            ),
            Step(sp.Subs(z_t, t, s_), z_s, "… with $z_s$ at $t = s$: it is the flow."),
            Step(
                sp.Subs(sp.sqrt(lam * (1 - t) ** 2 + t**2), t, 0),  # sqrt(c_t / c_1), c_1 = 1
                sp.sqrt(lam),
                "Linear interpolant from $s = 1$ ($c_1 = 1$, $α_1 = 0$) to $t = 0$ ($c_0 = λ$): the factor "
                "is $√λ$, so $X_{1→0}(x1) = μ + Σ^{1/2} x1$.",
            ),
        ),
        notes=(
            "For the linear interpolant the map $x1 ↦ μ + Σ^{1/2} x1$ is the gradient of the convex "
            "quadratic $μ · x1 + ½ x1ᵀ Σ^{1/2} x1$: it is the optimal-transport (Brenier) map from "
            "$N(0, I)$ to $N(μ, Σ)$.",
        ),
        measured_by="`tests/test_flow.py` (the reference flow against the closed form, $d$ up to 32; the closed "
        "form solves the ODE) and the FLOW-GAUSS row of `cmverify verify`.",
    )


def param_boundary() -> Derivation:
    c_skip, c_out = consistency_scalings()  # the objects the trainer's code is generated from
    a, s, sd = ALPHA_T, SIGMA_T, SIGMA_DATA
    c = a**2 * sd**2 + s**2
    at_zero = ((a, s), (1, 0))
    F = sp.Symbol("F", real=True)
    x = sp.Symbol("x", real=True)
    return Derivation(
        claim="PARAM-BOUNDARY",
        catalogue_math=(  # the statement is the catalogue's: the steps prove it as stated
            "f(t, x) = c_skip(t) x + c_out(t) F_θ(t, x)",
            "c_skip(0) = 1",
            "c_out(0) = 0",
            "f(0, x) = x",
        ),
        assumptions=(
            "$f_θ(t, x) = c_skip(t) x + c_out(t) F_θ(t, x)$ with $c_skip$, $c_out$ the expressions "
            "of `cmverify.symbolic.consistency_scalings` in $α_t$, $σ_t$ and $σ_d > 0$ (the trainer, "
            "`cmverify.train._model`, evaluates code generated from these very expressions); "
            "$F_θ$ finite.",
            "Boundary conditions $α_0 = 1$, $σ_0 = 0$.",
        ),
        steps=(
            Step(
                c_skip,
                a * sd**2 / c,
                "Multiplying by $σ_d²/σ_d²$: $c_skip$ is the EDM scaling $α σ_d² / (α² σ_d² + σ²)$, the "
                "linear part of the denoiser $E[x0 | x_t = x]$ for data $N(0, σ_d²)$.",
            ),
            Step(
                c_out,
                s * sd / sp.sqrt(c),
                "Likewise ($σ_d > 0$): $c_out$ is the EDM scaling $σ σ_d / √(α² σ_d² + σ²)$.",
            ),
            Step(
                sp.Subs(c_skip, *at_zero),
                sp.Integer(1),
                "At $t = 0$ ($α_0 = 1$, $σ_0 = 0$): $c_skip = 1 / (1 + 0) = 1$.",
            ),
            Step(sp.Subs(c_out, *at_zero), sp.Integer(0), "At $t = 0$: $c_out = 0 / 1 = 0$."),
            Step(
                sp.Subs(c_skip * x + c_out * F, *at_zero),
                x,
                "Hence $f_θ(0, x) = x$, whatever $F_θ(0, x)$ is.",
            ),
        ),
        measured_by="`tests/test_train.py::test_boundary_condition_is_exact_for_random_weights` "
        "(bit-for-bit equality, float32 and float64) and "
        "`tests/test_proofs.py::test_param_boundary_checks_the_expressions_the_trainer_evaluates`.",
    )
