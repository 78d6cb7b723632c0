"""Derivations of the training-target claims: MeanFlow's floor (MEANFLOW-FLOOR) and the
shortcut recursion's fixed point (SHORTCUT-BASE)."""

from __future__ import annotations

import sympy as sp

from ._derivation import Derivation, Step
from ._flowmap_notation import Grouped, V, c, gauss_map, r, z
from ._notation import TexSymbol, lam, t

__all__ = ["meanflow_floor", "shortcut_base"]


def meanflow_floor() -> Derivation:
    u = sp.Function("u", real=True)(z, r, t)
    v_c, eps, w = sp.symbols("v_c epsilon W", real=True)
    x_tr = z - (t - r) * u  # X_{t→r}(z)
    identity = V(t, z) - (t - r) * (sp.Derivative(u, t) + sp.Derivative(u, z) * V(t, z)) - u
    target = v_c - (t - r) * (sp.Derivative(u, t) + sp.Derivative(u, z) * v_c)
    jac = sp.Derivative(x_tr, z)
    gauss_jac = sp.Derivative(gauss_map(t, r, z), z)
    steps = (
        Step(
            target - u,
            jac * (v_c - V(t, z)) + Grouped(identity),
            "MeanFlow's target minus $u$, regrouped: the bracket is the MeanFlow identity "
            "(MEANFLOW-IDENTITY), zero at the exact $u$, and $1 − (t − r) ∂_z u = ∂_z X_{t→r}$.",
        ),
        Step(
            jac * sp.Add(V(t, z) + eps, -V(t, z), evaluate=False),
            jac * eps,
            "Write $v_c = v + ε$ with $E[ε | x_t = z] = 0$ ($v = E[v_c | x_t]$, FLOW-VELOCITY): "
            "the error is $∂_z X_{t→r}(z) ε$, linear in $ε$, so its conditional mean is 0 "
            "— the semi-gradient of the loss vanishes at $u$ — …",
        ),
        Step(
            sp.Pow(jac * eps, 2, evaluate=False),
            jac**2 * eps**2,
            "… and its square has conditional mean $(∂_z X_{t→r})² Var(v_c | x_t)$: "
            "averaged over $p_t$, the floor $E tr(∇X Cov(v_c | x_t) ∇Xᵀ)$; at $r = t$, "
            "$∂_z X = 1$ and it is the flow-matching floor.",
        ),
        Step(
            gauss_jac**2 * w**2 * lam / c(t),
            w**2 * lam * c(r) / c(t) ** 2,
            "Gaussian data $N(μ, λ)$: $∂_z X_{t→r} = \\sqrt{c_r/c_t}$ (FLOW-GAUSS) and "
            "$Var(v_c | x_t) = W² λ/c_t$ everywhere ($W = α σ̇ − α̇ σ$), so the floor "
            "is $W_t² λ c_r / c_t²$ (the closed form the tests use).",
        ),
    )
    return Derivation(
        claim="MEANFLOW-FLOOR",
        assumptions=(
            "MeanFlow (Geng et al. 2025) regresses $u_θ(z, r, t)$, $r ≤ t$, on "
            "$u_{tgt} = v_c − (t − r)(∂_t u_θ + ∂_z u_θ v_c)$ (derivatives under stop-gradient) "
            "at $z = x_t$, $v_c = α̇ x_0 + σ̇ x_1$.",
            "The exact $u$ satisfies the MeanFlow identity (MEANFLOW-IDENTITY); "
            "$E[v_c | x_t] = v(t, x_t)$ (FLOW-VELOCITY).",
            "One dimension shown; in $d$ dimensions $∂_z X$ is the Jacobian $∇X_{t→r}$ and the "
            "square a squared norm.",
        ),
        statement=(
            "At the exact $u$, $u_{tgt} − u = ∂_z X_{t→r}(z)(v_c − v(t, z))$: its conditional mean "
            "given $x_t$ is 0 and the unweighted loss is $E[(∂_z X_{t→r})² Var(v_c | x_t)]$, "
            "$W_t² λ c_r / c_t²$ for Gaussian data."
        ),
        steps=steps,
        measured_by="the MEANFLOW-FLOOR row of `cmverify verify` (the conditional mean by "
        "posterior quadrature, the loss at the exact $u$ by Monte Carlo against "
        "`loss_floors.meanflow`).",
    )


def shortcut_base() -> Derivation:
    d, h, lam_, span, sigma = sp.symbols("d h lambda D sigma", positive=True)
    point = sp.Symbol("x", real=True)
    error_coefficient = -(lam_**2) * sigma * sp.exp(-lam_ * sigma) * point / 2
    s_d = sp.Function("s_d", real=True)
    first = point + d * s_d(point)
    steps = (
        Step(
            TexSymbol("s_{2d}(x)"),
            (s_d(point) + s_d(first)) / 2,
            "The shortcut recursion's target for the step $2d$ (self-consistency).",
            definition=True,
        ),
        Step(
            point + 2 * d * (s_d(point) + s_d(first)) / 2,
            first + d * s_d(first),
            "At its fixed point one step of $2d$ is two steps of $d$; with the base case "
            "$s_{d_{min}} = −v$ (the flow-matching optimum in the shortcut's time, which runs "
            "from noise to data) one step of $d_{min}$ is an Euler step, so by induction on "
            "$D = 2^k d_{min}$, $x + D s_D(x)$ is $D/d_{min}$ Euler steps of size $d_{min}$.",
        ),
        Step(
            sp.exp((span / h) * sp.log(1 - h * lam_)) * point,
            sp.exp(-lam_ * span) * (1 - h * lam_**2 * span / 2) * point + sp.O(h**2),
            "Euler's global error is first order: for $v = λ x$ ($a = ∂_t v + v_x v = λ² x$) "
            "$D/h$ steps give $(1 − hλ)^{D/h} x$ against $e^{−λD} x$, an error "
            "$−\\tfrac12 h λ² D e^{−λD} x + O(h²)$ …",
        ),
        Step(
            sp.Derivative(error_coefficient, sigma),
            -lam_ * error_coefficient - lam_**2 * sp.exp(-lam_ * sigma) * point / 2,
            "… which is $h E(D)$ with $E(σ) = −½ λ² σ e^{−λσ} x$ solving the linearized error "
            "equation $dE/dσ = −v_x E − ½ a(X_σ)$, $E(0) = 0$, along $X_σ = e^{−λσ} x$. In "
            "general the error is $d_{min} E + O(d_{min}²)$ with that equation's $E$: order 1, "
            "zero in the limit of a $d = 0$ base case.",
        ),
    )
    return Derivation(
        claim="SHORTCUT-BASE",
        assumptions=(
            "Shortcut models (Frans et al. 2024) write $X_{t→t−d}(x) = x + d s(x, τ, d)$, "
            "$τ = 1 − t$; their recursion targets $s(x, τ, 2d)$ with the average of two "
            "$d$-steps and trains $s(x, τ, d_{min})$ by flow matching.",
            "$v$ is smooth along the trajectory (Euler's method converges at order 1).",
            "One dimension and a linear velocity shown for the order; in general $v_x$ is the "
            "Jacobian $∇v$.",
        ),
        statement=(
            "With the base case $s(x, τ, d_{min}) = −v$ the fixed point of the recursion makes "
            "$x + D s(x, τ, D)$ the composition of $D/d_{min}$ Euler steps of size $d_{min}$; its "
            "error against $X_{t→t−D}$ is $d_{min} E + O(d_{min}²)$ with "
            "$dE/dσ = −∇v E − ½ a$, $E(0) = 0$: order 1, and exact in the limit of a $d = 0$ "
            "base case."
        ),
        steps=steps,
        measured_by="the SHORTCUT-BASE row of `cmverify verify` (the Euler composition of the "
        "exact velocity against $X_{1→0}$ as $d_{min}$ halves; $E$ integrated along the "
        "exact trajectory).",
    )
