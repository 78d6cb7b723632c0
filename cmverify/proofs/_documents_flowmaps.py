"""Derivations of the flow-map claims: the exact two-time map's identities
(FLOWMAP-IDENTITIES) and MeanFlow's identity (MEANFLOW-IDENTITY). The notation (flow maps
that SymPy differentiates by their definition, the Gaussian closed forms) is in
:mod:`._flowmap_notation`."""

from __future__ import annotations

import sympy as sp

from ._derivation import Derivation, Step
from ._flowmap_notation import (
    Cdf,
    GaussLogP,
    GaussP,
    GaussU,
    GaussV,
    GaussVx,
    GaussX,
    Grouped,
    MeanU,
    P,
    V,
    Vx,
    X,
    Xs,
    Xx,
    gauss_definitions,
    gauss_log_density,
    h,
    r,
    x,
    y,
    z,
)
from ._notation import TexSymbol, s_, t

__all__ = ["flowmap_identities", "meanflow_identity"]

_D_DIMENSIONS = (
    "One dimension shown. In $d$ dimensions the same steps hold with matrices: $∂_x X$ is the "
    "Jacobian $∇X$, $∂_x v$ is $∇v$, products are matrix products, and $log ∂_x X$ becomes "
    "$log \\det ∇X$ with $d/dt log \\det J = tr(J⁻¹ dJ/dt)$ (Jacobi's formula), so that "
    "$d/dt log \\det ∇X = tr ∇v = ∇ · v$."
)


def flowmap_identities() -> Derivation:
    s = s_
    xs, xr = X(s, t, x), X(s, r, x)  # X_{s→t}(x), X_{s→r}(x)
    through = X(r, t, xr)  # X_{r→t}(X_{s→r}(x))
    inner = X(r, s, x)  # X_{r→s}(x), for E
    continuity = (sp.Derivative(P(t, y), t) + sp.Derivative(Grouped(P(t, y) * V(t, y)), y)) / P(
        t, y
    )
    log_sum = sp.log(Xx(s, t, x)) + sp.log(P(t, xs))
    gx = GaussX(s, t, x)
    generic = (
        Step(
            sp.Derivative(through, t),
            V(t, through),
            "(S) For fixed $s$, $r$, $x$ the curve $t ↦ X_{r→t}(X_{s→r}(x))$ solves the ODE (L) …",
        ),
        Step(
            sp.Subs(through, t, r),
            xr,
            "… and passes through $X_{s→r}(x)$ at $t = r$, as the solution $t ↦ X_{s→t}(x)$ does; "
            "solutions of an ODE with a Lipschitz velocity are unique, so the two curves are one: "
            "$X_{r→t}(X_{s→r}(x)) = X_{s→t}(x)$ for all $t$.",
        ),
        Step(
            sp.Subs(sp.Derivative(xs, t), t, s),
            V(s, x),
            "(B) $X_{t→t}(x) = x$ is the initial condition; the derivative at $t = s$ is L there.",
        ),
        Step(
            sp.Derivative(X(s, t, inner), s),
            Xs(s, t, inner) + Xx(s, t, inner) * V(s, inner),
            "(E) Differentiate S, $X_{s→t}(X_{r→s}(x)) = X_{r→t}(x)$, in the intermediate time $s$ "
            "(chain rule and L); the right side does not depend on $s$, so this is 0 for all $r$ …",
        ),
        Step(
            sp.Subs(sp.Derivative(X(s, t, inner), s), r, s),
            Xs(s, t, x) + Xx(s, t, x) * V(s, x),
            "… in particular at $r = s$, where $X_{r→s}(x) = x$: "
            "$∂_s X_{s→t}(x) + ∂_x X_{s→t}(x) v(s, x) = 0$.",
        ),
        Step(
            sp.Derivative(xs, x, t),
            Vx(t, xs) * Xx(s, t, x),
            "(J) L differentiated in $x$: the variational equation for $∂_x X_{s→t}(x)$, which is 1 "
            "at $t = s$.",
        ),
        Step(
            sp.Derivative(sp.log(Xx(s, t, x)), t),
            Vx(t, xs),
            "Liouville's formula (here $∂_x X > 0$: it is 1 at $t = s$ and solves a linear ODE).",
        ),
        Step(
            sp.Derivative(sp.log(P(t, xs)), t),
            sp.Subs(continuity, y, xs) - Vx(t, xs),
            "Along the flow the log-density changes by the continuity equation (the bracket, 0) minus "
            "the divergence of $v$: $d/dt log p_t(X_{s→t}(x)) = −∂_x v(t, X_{s→t}(x))$.",
        ),
        Step(
            sp.Derivative(log_sum, t),
            sp.Subs(continuity, y, xs),
            "Adding the two: $log ∂_x X_{s→t}(x) + log p_t(X_{s→t}(x))$ does not depend on $t$ …",
        ),
        Step(
            sp.Subs(log_sum, t, s),
            sp.log(P(s, x)),
            "… so it equals its value at $t = s$: "
            "$log ∂_x X_{s→t}(x) = log p_s(x) − log p_t(X_{s→t}(x))$.",
        ),
        Step(
            sp.Derivative(Cdf(t, xs), t),
            sp.Subs(sp.Derivative(Cdf(t, y), t) + P(t, y) * V(t, y), y, xs),
            "One dimension: the continuity equation integrated from $−\\infty$ (where $p v → 0$) is "
            "$∂_t F_t(y) = −p_t(y) v(t, y)$, so $F_t(X_{s→t}(x)) = F_s(x)$: "
            "$X_{s→t} = F_t⁻¹ ∘ F_s$ …",
        ),
        Step(
            sp.Derivative(Cdf(t, xs), x),
            P(t, xs) * Xx(s, t, x),
            "… and in $x$ this is $∂_x F_s(x) = p_s(x)$: $∂_x X_{s→t}(x) = p_s(x)/p_t(X_{s→t}(x))$.",
        ),
    )
    gauss = (
        *gauss_definitions(),
        Step(
            TexSymbol("\\log p_{t}(x)"),
            gauss_log_density(t, x),
            "The log-density of $N(α_t μ, c_t)$.",
            definition=True,
        ),
        Step(sp.Derivative(gx, t), GaussV(t, gx), "(L) for the Gaussian map."),
        Step(
            sp.Derivative(gx, s) + sp.Derivative(gx, x) * GaussV(s, x),
            sp.Integer(0),
            "(E): the change of the start time is undone by moving the start point along $v$.",
        ),
        Step(GaussX(r, t, GaussX(s, r, x)), gx, "(S) for every intermediate time $r$."),
        Step(GaussX(t, t, x), x, "(B) at $t = s$ …"),
        Step(sp.Subs(sp.Derivative(gx, t), t, s), GaussV(s, x), "… and the velocity there."),
        Step(
            sp.Derivative(gx, x, t),
            GaussVx(t, gx) * sp.Derivative(gx, x),
            "(J) The variational equation …",
        ),
        Step(
            sp.log(sp.Derivative(gx, x)),
            GaussLogP(s, x) - GaussLogP(t, gx),
            "… the log-determinant against the closed-form log-densities …",
        ),
        Step(
            sp.Derivative(gx, x),
            GaussP(s, x) / GaussP(t, gx),
            "… and the one-dimensional density ratio.",
        ),
        Step(
            sp.Derivative(GaussP(t, x), t) + sp.Derivative(Grouped(GaussP(t, x) * GaussV(t, x)), x),
            sp.Integer(0),
            "The Gaussian $p_t$ and $v$ satisfy the continuity equation assumed in steps 8–12.",
        ),
    )
    first = len(generic) + 1  # the number of the first Gaussian step
    return Derivation(
        claim="FLOWMAP-IDENTITIES",
        assumptions=(
            "$v(t, x)$ twice continuously differentiable, Lipschitz in $x$. $X_{s→t}(x)$ is the value at "
            "time $t$ of the solution of $dx/d\\tau = v(\\tau, x)$ that is $x$ at $\\tau = s$ (forward or backward "
            "in time): by definition $∂_t X_{s→t}(x) = v(t, X_{s→t}(x))$ (L) and $X_{s→s}(x) = x$.",
            "SymPy differentiates $X$ by this definition: $∂_t X$ is $v(t, X)$, $X_{s→s}(x)$ is $x$ "
            "and $∂_x X_{s→s}(x)$ is 1; the derivatives $∂_s X$ (in the start time) and $∂_x X$ (in "
            "the point) are otherwise unknown functions, and $∂_t ∂_x X = ∂_x ∂_t X$. A derivative "
            "at a point, as $∂_x v(t, X_{s→t}(x))$, is the derivative evaluated there.",
            "$p_t(x) > 0$ is the density of $x_t$ and satisfies the continuity equation "
            "$∂_t p + ∂_x(p v) = 0$ (the velocity of FLOW-VELOCITY transports $p_t$); $F_t$ is its "
            "distribution function.",
            f"Steps {first}–{first + len(gauss) - 1}, Gaussian data: $x0 ~ N(μ, λ)$ "
            "(one eigen-direction of $N(μ, Σ)$, as in "
            "FLOW-GAUSS), so $p_t = N(α_t μ, c_t)$ with $c_t = α_t² λ + σ_t² > 0$; the steps hold for "
            "every differentiable $α$ and every positive differentiable $c$.",
            _D_DIMENSIONS,
        ),
        statement=(
            "(L, the definition) $∂_t X_{s→t}(x) = v(t, X_{s→t}(x))$; (E) "
            "$∂_s X_{s→t}(x) + ∂_x X_{s→t}(x) v(s, x) = 0$; (S) $X_{r→t} ∘ X_{s→r} = X_{s→t}$; (B) "
            "$X_{t→t}(x) = x$ and $∂_t X_{s→t}(x) = v(s, x)$ at $t = s$; (J) "
            "$∂_t ∂_x X_{s→t}(x) = ∂_x v(t, X_{s→t}(x)) ∂_x X_{s→t}(x)$, "
            "$d/dt log ∂_x X_{s→t}(x) = ∂_x v(t, X_{s→t}(x))$ (Liouville) and "
            "$log ∂_x X_{s→t}(x) = log p_s(x) − log p_t(X_{s→t}(x))$; in one dimension "
            "$X_{s→t} = F_t⁻¹ ∘ F_s$ and $∂_x X_{s→t}(x) = p_s(x)/p_t(X_{s→t}(x))$. The Gaussian "
            "closed form satisfies each of them."
        ),
        steps=(*generic, *gauss),
        measured_by="`tests/test_flowmap_identities.py` and the FLOWMAP-IDENTITIES row of "
        "`cmverify verify` (L, E, S, B and J of the reference flow of mixtures, the log-determinant "
        "against the closed-form log-densities).",
    )


def meanflow_identity() -> Derivation:
    u = sp.Function("u", real=True)(z, r, t)
    v_c = sp.Symbol("v_c", real=True)
    x_tr = z - (t - r) * u  # X_{t→r}(z)
    gu = GaussU(z, r, t)

    def meanflow_rhs(u_, v_):
        return v_ - (t - r) * (sp.Derivative(u_, t) + sp.Derivative(u_, z) * v_)

    generic = (
        Step(
            TexSymbol("X_{t \\to r}(z)"),
            x_tr,
            "MeanFlow's parameterization of the map from time $t$ back to $r$.",
            definition=True,
        ),
        Step(
            sp.Derivative(x_tr, t) + sp.Derivative(x_tr, z) * V(t, z),
            meanflow_rhs(u, V(t, z)) - u,
            "E for the map $t ↦ X_{t→r}$ (start time $t$, end time $r$) says the left side is 0; "
            "so $u = v − (t − r)(∂_t u + ∂_z u v)$.",
        ),
        Step(
            MeanU(z, t - h, t),
            V(t, z) + sp.O(h),
            "The limit: with $r = t − h$, $X_{t→t−h}(z) = z − h v(t, z) + O(h²)$ (B and L), so "
            "$u(z, r, t) → v(t, z)$ as $r → t$; the identity at $r = t$ says the same.",
        ),
        Step(
            meanflow_rhs(u, v_c) - u,
            sp.Derivative(x_tr, z) * (v_c - V(t, z)) + Grouped(meanflow_rhs(u, V(t, z)) - u),
            "MeanFlow's target $v_c − (t − r)(∂_t u + ∂_z u v_c)$, with $v_c = α̇ x0 + σ̇ x1$ "
            "(FLOW-VELOCITY) in place of $v$, minus $u$: at the exact $u$ the bracket is 0 (step 2), "
            "so the error is $∂_z X_{t→r}(z) (v_c − v)$, of mean 0 given $x_t = z$ "
            "($E[v_c | x_t = z] = v(t, z)$) but not 0: the loss has that floor.",
        ),
    )
    gauss = (
        *gauss_definitions(z),
        Step(
            TexSymbol("u(z, r, t)"),
            GaussU(z, r, t).doit(),
            "The Gaussian average velocity.",
            definition=True,
        ),
        Step(gu, meanflow_rhs(gu, GaussV(t, z)), "The MeanFlow identity for the Gaussian map …"),
        Step(GaussU(z, t - h, t), GaussV(t, z) + sp.O(h), "… and its limit $r → t$."),
    )
    first = len(generic) + 1  # the number of the first Gaussian step
    return Derivation(
        claim="MEANFLOW-IDENTITY",
        assumptions=(
            "$X_{s→t}$ is the flow map of $v$ with L, B and E of FLOWMAP-IDENTITIES (SymPy "
            "differentiates it as there).",
            "MeanFlow (Geng et al. 2025) writes $X_{t→r}(z) = z − (t − r) u(z, r, t)$ for $r ≤ t$ "
            "in our time convention (data at 0): $u(z, r, t) = (z − X_{t→r}(z))/(t − r)$ is the "
            "average velocity over $[r, t]$, for $r < t$; $u$ is differentiable.",
            "One dimension shown; in $d$ dimensions $∂_z u · v$ is the Jacobian-vector product "
            "$∇_z u v$ and $∂_z X$ the Jacobian $∇X$.",
            f"Steps {first}–{first + len(gauss) - 1}, Gaussian data as in FLOWMAP-IDENTITIES: "
            "$p_t = N(α_t μ, c_t)$, $c_t > 0$.",
        ),
        statement=(
            "For $r < t$, $u(z, r, t) = v(t, z) − (t − r)(∂_t u(z, r, t) + ∂_z u(z, r, t) v(t, z))$: "
            "it is E applied to $t ↦ X_{t→r}$; as $r → t$, $u(z, r, t) → v(t, z)$, so "
            "$u(z, t, t) = v(t, z)$. At the exact $u$ MeanFlow's target, the right side with the "
            "conditional velocity $v_c$ in place of $v$, differs from $u$ by "
            "$∂_z X_{t→r}(z) (v_c − v(t, z))$. The Gaussian closed form satisfies the identity "
            "and the limit."
        ),
        steps=(*generic, *gauss),
        measured_by="the MEANFLOW-IDENTITY row of `cmverify verify` (the exact $u$ of the reference, "
        "the residual of the identity from the Jacobian and a time difference, linear and trig "
        "interpolants).",
    )
