"""Derivations of the loss-shape claims: sCM's tangent (SCM-TANGENT) and the pseudo-Huber
fixed point (PSEUDO-HUBER)."""

from __future__ import annotations

import sympy as sp

from ._derivation import Derivation, Step
from ._flowmap_notation import Grouped, V, gauss_map, gauss_velocity, z
from ._notation import Delta, TexSymbol, alpha, sigma, t

__all__ = ["pseudo_huber", "scm_tangent"]


def scm_tangent() -> Derivation:
    f = sp.Function("f", real=True)(t, z)
    v_c, eps, g = sp.symbols("v_c epsilon g", real=True)
    h = sp.Symbol("h", positive=True)  # 1/c
    norm = TexSymbol("\\lVert g\\rVert", positive=True)  # a symbol: SymPy's series mishandles Abs
    phi = sp.Function("phi", real=True)
    d = sp.Symbol("delta", real=True)
    fstar = gauss_map(t, sp.Integer(0), z)
    tangent = sp.Derivative(f, t) + sp.Derivative(f, z) * V(t, z)
    steps = (
        Step(
            sp.Derivative(fstar, t) + sp.Derivative(fstar, z) * gauss_velocity(t, z),
            sp.Integer(0),
            "sCD's tangent $∂_t f + ∂_z f · v$ at $f = f* = X_{t→0}$ is zero: the Eulerian "
            "identity (E) of FLOWMAP-IDENTITIES, here for Gaussian data, where "
            "$f*(t, z) = α_0 μ + \\sqrt{c(0)/c(t)}(z − α_t μ)$ with $c(t) = α_t² λ + σ_t²$. Zero divided by "
            "$(0 + c)$ is zero: normalization keeps $f*$ a fixed point of sCD.",
        ),
        Step(
            sp.Derivative(f, t) + sp.Derivative(f, z) * v_c,
            sp.Derivative(f, z) * (v_c - V(t, z)) + Grouped(tangent),
            "sCT's tangent uses $dx/dt = v_c = α̇ x_0 + σ̇ x_1$; regrouped, the bracket is "
            "sCD's tangent, zero at $f*$, so $g_c = ∂_z f* (v_c − v)$ …",
        ),
        Step(
            sp.Derivative(f, z) * sp.Add(V(t, z) + eps, -V(t, z), evaluate=False),
            sp.Derivative(f, z) * eps,
            "… with $v_c = v + ε$, $E[ε | x_t] = 0$ (FLOW-VELOCITY): linear in $ε$, of "
            "conditional mean 0 — the unnormalized sCT keeps $f*$.",
        ),
        Step(
            g / (norm + 1 / h),
            g * h - g * norm * h**2 + sp.O(h**3),
            "Normalized, $g/(\\lVert g\\rVert + c)$ with $h = 1/c$: its conditional mean is "
            "$E[g] h − E[g \\lVert g\\rVert] h² + O(h³) = −E[g \\lVert g\\rVert]/c² + O(c^{-3})$, "
            "zero for a law of $g_c$ symmetric about 0 (Gaussian data), and in general not "
            "(its leading term is nonzero wherever $E[g_c ‖g_c‖ | x_t] ≠ 0$): "
            "$f*$ is not the fixed point of normalized sCT.",
        ),
        Step(
            (phi(0) - phi(d)) / d,
            -sp.Subs(sp.Derivative(phi(Delta), Delta), Delta, 0)
            - d * sp.Subs(sp.Derivative(phi(Delta), Delta, 2), Delta, 0) / 2
            + sp.O(d**2),
            "The discrete consistency gradient of one pair, with $φ(δ) = f*(t − δ, "
            "x_{t−δ})$, $x_τ = α_τ x_0 + σ_τ x_1$: $(f*(t, x_t) − φ(δ))/δ = −φ'(0) − "
            "\\tfrac12 φ''(0) δ + O(δ²)$, and by the chain rule $−φ'(0) = ∂_t f* + ∂_z f* "
            "v_c = g_c$ ($dx_{t−δ}/dδ = −v_c$ at $δ = 0$): it tends to the continuous "
            "tangent at order $δ$.",
        ),
    )
    return Derivation(
        claim="SCM-TANGENT",
        catalogue_math=("f*",),
        assumptions=(
            "sCM (Lu & Song 2024) trains $f_θ$ with the tangent $g = ∂_t f^- + ∇f^- · dx/dt$ "
            "of the target network along the path, $dx/dt = v$ (sCD) or $v_c$ (sCT), "
            "normalized as $g/(\\lVert g\\rVert + c)$.",
            "$f*(t, x) = X_{t→0}(x)$ satisfies (E): $∂_t f* + ∇f* v = 0$ "
            "(FLOWMAP-IDENTITIES); $E[v_c | x_t] = v(t, x_t)$ (FLOW-VELOCITY).",
            "One dimension shown; in $d$ dimensions $∂_z f$ is the Jacobian (the normalization "
            "step holds as written for vectors $g$).",
        ),
        statement=(
            "At $f*$ sCD's tangent is 0 (normalized or not); sCT's is $g_c = ∇f*(v_c − v)$, "
            "of conditional mean 0, but its normalized mean is $−E[g_c \\lVert g_c\\rVert | x_t]/c² "
            "+ O(c^{-3})$, nonzero wherever $E[g_c \\lVert g_c\\rVert | x_t] ≠ 0$; the discrete gradient tends to $g_c$ at "
            "order $Δ$."
        ),
        steps=steps,
        measured_by="the SCM-TANGENT row of `cmverify verify` (sCD's tangent by time "
        "differences of reference solves, the normalized mean by posterior quadrature with "
        "its large-$c$ order and coefficient, the discrete gradient's order and coefficient).",
    )


def pseudo_huber() -> Derivation:
    r_, b, w = sp.symbols("r b W", real=True)
    c_ = sp.Symbol("c", positive=True)
    m2, m3, m_, y = sp.symbols("m_2 m_3 m y", real=True)
    d = Delta
    psi = r_ / sp.sqrt(r_**2 + c_**2)
    # E[ψ(b − Δ W)] to third order, with E W = 0, E W² = m_2, E W³ = m_3:
    cubic = sp.expand((b - d * w) ** 3).subs({w**3: m3, w**2: m2, w: 0})
    residual = b / c_ - cubic / (2 * c_**3)
    predicted = -(d**3) * m3 / (2 * c_**2)
    at = lambda expr: expr.subs(t, t - d)  # noqa: E731
    ddim = (at(sigma) / sigma) * y + ((at(alpha) * sigma - at(sigma) * alpha) / sigma) * m_
    median_velocity = sp.diff(alpha, t) * m_ + sp.diff(sigma, t) * (y - alpha * m_) / sigma
    steps = (
        Step(
            psi,
            r_ / c_ - r_**3 / (2 * c_**3) + sp.O(r_**5),
            "The pseudo-Huber loss $\\sqrt{r² + c²} − c$ has the derivative $ψ_c(r) = "
            "r/\\sqrt{r² + c²}$: linear, as the squared loss's $r/c$, up to a cubic term.",
        ),
        Step(
            residual.subs(b, predicted),
            3 * d**5 * m2 * m3 / (4 * c_**5) + sp.O(d**6),
            "One CT step's fixed point $a$ solves $E[ψ_c(a − Z) | x_t] = 0$. Write $Z = a_2 "
            "+ Δ W$ with $a_2 = E[Z | x_t]$ (the squared loss's fixed point), so $E W = 0$, "
            "and $a = a_2 + b$: to third order the equation is $b/c − E[(b − ΔW)³]/(2c³) = "
            "0$. At $b = −Δ³ m_3/(2c²)$ ($m_k = E W^k$) its residual is $O(Δ^5)$ and its slope "
            "in $b$ is $1/c + O(Δ²)$, so $a − a_2 = −Δ³ E[W³]/(2c²) + O(Δ^4)$ (the $O(Δ^4)$ "
            "from $W$'s own expansion $W = ∇F(v − v_c) + O(Δ)$): order 3, below CT's local "
            "$O(Δ²)$. The expansion needs $Δ \\lvert W\\rvert ≪ c$.",
        ),
        Step(
            ddim,
            y
            - d
            * (
                sp.diff(sigma, t) / sigma * y
                + (sp.diff(alpha, t) - sp.diff(sigma, t) * alpha / sigma) * m_
            )
            + sp.O(d**2),
            "At $c = 0$ the loss is $\\lvert r\\rvert$ and $a$ is the median of $Z$. In one "
            "dimension the induction's $f_{t−Δ}$ is increasing (a composition of increasing "
            "maps), medians commute with it, and $x_{t−Δ} = (σ_{t−Δ}/σ_t) x_t + "
            "((α_{t−Δ} σ_t − σ_{t−Δ} α_t)/σ_t) x_0$ is increasing in $x_0$: "
            "$f_t(y) = f_{t−Δ}(\\text{this map at } x_0 = m)$, $m$ the posterior median of "
            "$x_0$ given $x_t = y$ — a DDIM step with the median denoiser, which moves $y$ by "
            "$−Δ \\tilde{v} + O(Δ²)$ …",
        ),
        Step(
            median_velocity,
            sp.diff(sigma, t) / sigma * y
            + (sp.diff(alpha, t) - sp.diff(sigma, t) * alpha / sigma) * m_,
            "… with the median velocity $\\tilde{v} = α̇ m + σ̇ (y − α m)/σ$: the same formula as "
            "$v$ with the posterior median in place of the posterior mean. So the $c = 0$ "
            "induction converges at order 1 to the flow of $\\tilde{v}$, not of $v$, and its local "
            "error $f_{t−Δ}(y − Δ \\tilde{v}) − f_{t−Δ}(X_{t→t−Δ}(y)) = Δ ∂_y f_{t−Δ} (v − \\tilde{v}) + O(Δ²)$ (with $f_{t−Δ} = f*$ at the step measured) is of order 1 "
            "wherever the posterior is skewed.",
        ),
    )
    return Derivation(
        claim="PSEUDO-HUBER",
        assumptions=(
            "iCT (Song & Dhariwal 2023) and ECT (Geng et al. 2024) train consistency models "
            "with $ρ_c(r) = \\sqrt{\\lVert r\\rVert² + c²} − c$; one CT step regresses the online "
            "value at $x_t$ on $Z = F(x_{t−Δ})$ of the same pair, $F$ the target network "
            "($f*(t − Δ, ·)$ in the induction).",
            "$F$ smooth; $Z − F(X_{t→t−Δ}(x_t)) = Δ ∇F (v − v_c) + O(Δ²)$ (CT-LOCAL's expansion).",
            "One dimension shown; in $d$ dimensions $W³$ is $W \\lVert W\\rVert²$ and the median "
            "the geometric median (which commutes with similarities only: no velocity flow).",
        ),
        statement=(
            "For $c > 0$ the fixed point is the squared loss's minus $Δ³ E[W³ | x_t]/(2c²)$ "
            "(order 3: consistent); for $c = 0$ it is the median, and in one dimension the "
            "induction is DDIM with the posterior-median denoiser, converging to the flow of "
            "the median velocity $\\tilde{v}$ instead of $f*$."
        ),
        steps=steps,
        measured_by="the PSEUDO-HUBER row of `cmverify verify` (the fixed points by Newton's "
        "method on Gauss–Hermite rules and exact medians; the $c = 0$ chain against the "
        "median flow by DOP853).",
    )
