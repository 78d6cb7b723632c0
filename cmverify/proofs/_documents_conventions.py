"""Derivation of CONVENTIONS: how each method's network converts to cmverify's
``X_{s→t}`` — time reversal (Boffi–Albergo–Vanden-Eijnden, shortcut models), MeanFlow and
Align Your Flow, the variance-exploding change of variables (EDM, CTM) and TrigFlow (sCM).
Notation: :mod:`._flowmap_notation`."""

from __future__ import annotations

import sympy as sp

from ._derivation import Derivation, Step
from ._flowmap_notation import (
    Explicit,
    Grouped,
    MeanU,
    Named,
    V,
    X,
    flow_map,
    h,
    r,
    velocity,
    x,
    y,
    z,
)
from ._notation import TexSymbol, alpha, s_, sigma, t

__all__ = ["conventions"]

tau, tau0, d = sp.symbols("tau tau_0 d", real=True)
vs = sp.Symbol("varsigma", positive=True)  # noise levels ς, ς'
vs2 = TexSymbol("\\varsigma'", positive=True)
x0, sigma_d = sp.symbols("x0 sigma_d", positive=True)
eps = TexSymbol("\\varepsilon", real=True)
xh = sp.Symbol("\\hat{x}", real=True)
dh = sp.Symbol("\\hat{D}", real=True)  # the TrigFlow denoiser E[x0/σ_d | x̂]


class Shortcut(Explicit):
    """The shortcut model's ``s(x, τ, d)``: the average velocity in reversed time."""

    nargs = 3
    _tex = "s({0}, {1}, {2})"

    @staticmethod
    def _value(point, tau_, d_):
        return (X(1 - tau_, 1 - tau_ - d_, point) - point) / d_


class AyfF(Explicit):
    """Align Your Flow's ``F(x, t, s)``."""

    nargs = 3
    _tex = "F({0}, {1}, {2})"

    @staticmethod
    def _value(point, t_, s):
        return MeanU(point, s, t_).doit()


class Varsigma(Explicit):
    """The VE noise level ``ς(t) = σ(t)/α(t)``."""

    nargs = 1
    _tex = "\\varsigma({0})"

    @staticmethod
    def _value(time):
        return sigma.subs(t, time) / alpha.subs(t, time)


class Denoiser(Named):
    """The EDM denoiser ``D(y, ς) = E[x0 | x0 + ς ε = y]``."""

    nargs = 2
    _tex = "D({0}, {1})"


def our_velocity(time: sp.Expr, point: sp.Expr) -> sp.Expr:
    """``α̇ D + σ̇ (x − α D)/σ`` with ``D = D(x/α, ς)`` (FLOW-VELOCITY, E[x1 | x] = (x − α D)/σ)."""
    a, s, da, ds = (e.subs(t, time) for e in (alpha, sigma, sp.diff(alpha, t), sp.diff(sigma, t)))
    den = Denoiser(point / a, Varsigma(time))
    return da * den + ds * (point - a * den) / s


class Path(Named):
    """A solution ``x(t)`` of our ODE ``dx/dt = α̇ D + σ̇ (x − α D)/σ``."""

    nargs = 1
    _tex = "x({0})"

    def fdiff(self, argindex=1):
        return our_velocity(self.args[0], self)


class VePath(Explicit):
    """``y(t) = x(t)/α(t)``."""

    nargs = 1
    _tex = "y({0})"

    @staticmethod
    def _value(time):
        return Path(time) / alpha.subs(t, time)


class EdmMap(Named):
    """The EDM flow map ``G(y, ς, ς')`` of ``dy/dς = (y − D(y, ς))/ς``."""

    nargs = 3
    _tex = "G({0}, {1}, {2})"

    @classmethod
    def eval(cls, point, start, end):
        return point if start == end else None

    def fdiff(self, argindex=1):
        if argindex != 3:
            return super().fdiff(argindex)
        end = self.args[2]
        return (self - Denoiser(self, end)) / end


class CtmG(Explicit):
    """CTM's ``g`` in ``G(y, ς, ς') = (ς'/ς) y + (1 − ς'/ς) g(y, ς, ς')``."""

    nargs = 3
    _tex = "g({0}, {1}, {2})"

    @staticmethod
    def _value(point, start, end):
        return (EdmMap(point, start, end) - end / start * point) / (1 - end / start)


Vh, _ = velocity("\\hat{v}")
Xh, _, _ = flow_map(Vh, "\\hat{X}", eulerian=True)


class HatU(Explicit):
    """MeanFlow's average velocity ``u(x̂, 0, t)`` of ``X̂_{t→0}``."""

    nargs = 1
    _tex = "u(\\hat{{x}}, 0, {0})"

    @staticmethod
    def _value(time):
        return (xh - Xh(time, 0, xh)) / time


class TrigF(Explicit):
    """sCM's ``F(x̂, τ) = (cos τ x̂ − X̂_{t→0}(x̂))/sin τ``, ``t = 2τ/π``."""

    nargs = 2
    _tex = "F({0}, {1})"

    @staticmethod
    def _value(point, tau_):
        return (sp.cos(tau_) * point - Xh(2 * tau_ / sp.pi, 0, point)) / sp.sin(tau_)


def _time_reversal() -> tuple[Step, ...]:
    reversed_map = X(1 - tau0, 1 - tau, x)
    return (
        Step(
            sp.Derivative(reversed_map, tau),
            -V(1 - tau, reversed_map),
            "(a) Time reversal: $\\tau ↦ X_{(1−\\tau_0)→(1−\\tau)}(x)$ solves "
            "$dY/d\\tau = w(\\tau, Y)$, $w(\\tau, y) = −v(1 − \\tau, y)$: time $\\tau$ runs from "
            "noise (0) to data (1) …",
        ),
        Step(
            sp.Subs(reversed_map, tau, tau0),
            x,
            "… and it is $x$ at $\\tau = \\tau_0$: by uniqueness it is the flow map of $w$ from "
            "$\\tau_0$ to $\\tau$. Boffi–Albergo–Vanden-Eijnden's map, their time reversed, is "
            "therefore $X^B_{s,t} = X_{(1−s)→(1−t)}$.",
        ),
        Step(
            TexSymbol("s(x, \\tau, d)"),
            Shortcut(x, tau, d).doit(),
            "The shortcut model (Frans et al. 2024) in its own time $\\tau = 1 − t$: its "
            "$s(x, \\tau, d)$ is the average velocity of $w$ over $[\\tau, \\tau + d]$, as is "
            "Boffi's $v^B_{\\tau,\\tau+d}$.",
            definition=True,
        ),
        Step(
            x + d * Shortcut(x, 1 - t, d),
            X(t, t - d, x),
            "The conversion: $X_{t→t−d}(x) = x + d s(x, 1 − t, d)$ …",
        ),
        Step(
            Shortcut(x, tau, d),
            -V(1 - tau, x) + sp.O(d),
            "… and at $d → 0$ (B and L) the reversed velocity: $s(x, \\tau, 0) = −v(1 − \\tau, x)$.",
        ),
    )


def _meanflow_ayf() -> tuple[Step, ...]:
    return (
        Step(
            TexSymbol("u(z, r, t)"),
            MeanU(z, r, t).doit(),
            "(b) MeanFlow's $u$ from the map ($r < t$; MEANFLOW-IDENTITY) …",
            definition=True,
        ),
        Step(z - (t - r) * MeanU(z, r, t), X(t, r, z), "… and the map from $u$."),
        Step(
            TexSymbol("F(x, t, s)"),
            MeanU(x, s_, t),
            "Align Your Flow's network is MeanFlow's $u$ with the times swapped …",
            definition=True,
        ),
        Step(
            x + (s_ - t) * AyfF(x, t, s_),
            X(t, s_, x),
            "… and gives AYF's $X_{t→s}(x) = x + (s − t) F(x, t, s)$, for $s < t$ and $s > t$.",
        ),
    )


def _variance_exploding() -> tuple[Step, ...]:
    start, now = Varsigma(s_), Varsigma(t)
    ve_map = alpha * EdmMap(y, start, now)
    return (
        Step(
            TexSymbol("\\varsigma(t)"),
            Varsigma(t).doit(),
            "(c) The VE noise level; $α_t > 0$ …",
            definition=True,
        ),
        Step(
            TexSymbol("y(t)"),
            VePath(t).doit(),
            "… and the VE coordinate of a solution $x(t)$ of our ODE.",
            definition=True,
        ),
        Step(
            (alpha * x0 + sigma * eps) / alpha,
            x0 + Varsigma(t) * eps,
            "Dividing the interpolant by $α_t$ gives the variance-exploding (EDM) path "
            "$y = x0 + \\varsigma ε$; $E[x0 | x_t = x]$ is therefore the EDM denoiser "
            "$D(x/α_t, \\varsigma_t)$ (the same event).",
        ),
        Step(
            sp.Derivative(VePath(t), t) / sp.Derivative(Varsigma(t), t),
            (VePath(t) - Denoiser(VePath(t), now)) / now,
            "Along our ODE, $dx/dt = α̇ D + σ̇ (x − α D)/σ$ (FLOW-VELOCITY with "
            "$E[x1 | x_t = x] = (x − α D)/σ$), $y$ as a function of $\\varsigma$ solves the EDM ODE "
            "$dy/d\\varsigma = (y − D(y, \\varsigma))/\\varsigma$.",
        ),
        Step(
            sp.Derivative(Grouped(ve_map), t),
            sp.Subs(our_velocity(t, x), x, ve_map),
            "Conversely, with $G(y, \\varsigma, \\varsigma')$ the EDM flow map "
            "($∂_{\\varsigma'} G = (G − D(G, \\varsigma'))/\\varsigma'$, $G(y, \\varsigma, \\varsigma) = y$), "
            "$t ↦ α_t G(y, \\varsigma_s, \\varsigma_t)$ solves our ODE …",
        ),
        Step(
            sp.Subs(ve_map, t, s_),
            alpha.subs(t, s_) * y,
            "… and is $α_s y$ at $t = s$: $X_{s→t}(α_s y) = α_t G(y, \\varsigma_s, \\varsigma_t)$, i.e. "
            "$X_{t→s}(x) = α_s G(x/α_t, \\varsigma_t, \\varsigma_s)$.",
        ),
        Step(
            TexSymbol("g(y, \\varsigma, \\varsigma')"),
            CtmG(y, vs, vs2).doit(),
            "CTM (Kim et al. 2023) parameterizes $G$ by $g$ …",
            definition=True,
        ),
        Step(
            vs2 / vs * y + (1 - vs2 / vs) * CtmG(y, vs, vs2),
            EdmMap(y, vs, vs2),
            "… as $G(y, \\varsigma, \\varsigma') = (\\varsigma'/\\varsigma) y + "
            "(1 − \\varsigma'/\\varsigma) g(y, \\varsigma, \\varsigma')$ …",
        ),
        Step(
            CtmG(y, vs, vs + h),
            Denoiser(y, vs) + sp.O(h),
            "… and $g(y, \\varsigma, \\varsigma) = D(y, \\varsigma)$: at $\\varsigma' = \\varsigma$ "
            "the network is the denoiser.",
        ),
    )


def _trigflow() -> tuple[Step, ...]:
    trig = sp.cos(sp.pi * t / 2) * x0 / sigma_d + sp.sin(sp.pi * t / 2) * z / sigma_d
    time = 2 * tau / sp.pi
    return (
        Step(
            (sp.cos(tau) * x0 + sp.sin(tau) * z) / sigma_d,
            sp.Subs(trig, t, time),
            "(d) TrigFlow's path $x_\\tau = cos \\tau x0 + sin \\tau z$, $z ~ N(0, σ_d²)$, over $σ_d$ is "
            "our trig interpolant ($α = cos(π t/2)$, $σ = sin(π t/2)$) at $t = 2\\tau/π$, for data "
            "$x0/σ_d$ and noise $z/σ_d ~ N(0, 1)$; below $\\hat{X}$, $\\hat{v}$ are the flow map and "
            "velocity of that scaled problem, which SymPy differentiates by L, B and E.",
        ),
        Step(
            TexSymbol("F(\\hat{x}, \\tau)"),
            TrigF(xh, tau).doit(),
            "sCM's network (Lu & Song 2024) in terms of the exact map …",
            definition=True,
        ),
        Step(
            sp.cos(tau) * sigma_d * xh - sp.sin(tau) * sigma_d * TrigF(xh, tau),
            sigma_d * Xh(time, 0, xh),
            "… because then sCM's consistency function $f(x, \\tau) = cos \\tau x − sin \\tau σ_d "
            "F(x/σ_d, \\tau)$ at $x = σ_d \\hat{x}$ is $σ_d \\hat{X}_{t→0}(\\hat{x})$, the exact one.",
        ),
        Step(
            TrigF(xh, tau),
            ((sp.cos(tau) - 1) * xh + time * HatU(time)) / sp.sin(tau),
            "With the average velocity $\\bar{u} = u(\\hat{x}, 0, t)$ of $\\hat{X}_{t→0}$ (MeanFlow's "
            "$u$ at $r = 0$).",
        ),
        Step(
            Xh(t, 0, xh),
            xh - t * Vh(0, xh) + sp.O(t**2),
            "By B and E, $\\hat{X}_{t→0}(\\hat{x}) = \\hat{x} − t \\hat{v}(0, \\hat{x}) + O(t²)$ …",
        ),
        Step(
            TrigF(xh, tau),
            2 / sp.pi * Vh(0, xh) + sp.O(tau),
            "… so $F(\\hat{x}, 0) = (2/π) \\hat{v}(0, \\hat{x})$, the velocity in TrigFlow's time "
            "($dt/d\\tau = 2/π$); for $\\tau > 0$ the consistency model's $F$ is not a velocity.",
        ),
        Step(
            -sp.sin(tau) * dh + sp.cos(tau) * (xh - sp.cos(tau) * dh) / sp.sin(tau),
            (sp.cos(tau) * xh - dh) / sp.sin(tau),
            "By contrast, TrigFlow's diffusion model puts the denoiser $\\hat{D} = E[x0/σ_d | "
            "\\hat{x}]$ in place of $\\hat{X}_{t→0}(\\hat{x})$, and its $F$ is the velocity at every "
            "$\\tau$: $d\\hat{x}/d\\tau = E[−sin \\tau x0/σ_d + cos \\tau ε | \\hat{x}]$ with "
            "$E[ε | \\hat{x}] = (\\hat{x} − cos \\tau \\hat{D})/sin \\tau$.",
        ),
    )


def conventions() -> Derivation:
    return Derivation(
        claim="CONVENTIONS",
        catalogue_math=("X_{s→t}",),
        assumptions=(
            "Our convention: $x_t = α_t x0 + σ_t x1$, data at $t = 0$, noise $x1 ~ N(0, 1)$ at "
            "$t = 1$; $X_{s→t}$ is the flow map of $v$, which SymPy differentiates by L and B of "
            "FLOWMAP-IDENTITIES (and by E in part d).",
            "Each network is taken exact (the thing it is trained to be); the steps derive the "
            "conversion between its arguments and $X_{s→t}$. One dimension shown; every step is "
            "pointwise or coordinatewise, so it holds in $d$ dimensions.",
            "Part c: $α_t > 0$ (true on $[0, 1)$ for our interpolants), $σ_t > 0$, and "
            "$\\varsigma_t = σ_t/α_t$ increasing, so that $\\varsigma$ can replace $t$ as the time.",
        ),
        statement=(
            "(a) The flow map of $w(\\tau, y) = −v(1 − \\tau, y)$ is $X_{(1−\\tau_0)→(1−\\tau)}$: "
            "Boffi et al.'s $X^B_{s,t} = X_{(1−s)→(1−t)}$, and the shortcut model's "
            "$s(x, \\tau, d) = (X_{(1−\\tau)→(1−\\tau−d)}(x) − x)/d$ gives "
            "$X_{t→t−d}(x) = x + d s(x, 1 − t, d)$ and $s(x, \\tau, 0) = −v(1 − \\tau, x)$. "
            "(b) MeanFlow: $X_{t→r}(z) = z − (t − r) u(z, r, t)$; Align Your Flow: "
            "$F(x, t, s) = u(x, s, t)$. (c) With $y = x/α$, $\\varsigma = σ/α$ our path is "
            "$y = x0 + \\varsigma ε$ and our ODE is EDM's $dy/d\\varsigma = (y − D)/\\varsigma$; "
            "$X_{t→s}(x) = α_s G(x/α_t, \\varsigma_t, \\varsigma_s)$ with $G$ the EDM flow map, and "
            "CTM's $g$ has $g(y, \\varsigma, \\varsigma) = D(y, \\varsigma)$. (d) TrigFlow at "
            "$\\tau$ is our trig path at $t = 2\\tau/π$ for data $x0/σ_d$; sCM's "
            "$F(\\hat{x}, \\tau) = (cos \\tau \\hat{x} − \\hat{X}_{t→0}(\\hat{x}))/sin \\tau = "
            "((cos \\tau − 1) \\hat{x} + t \\bar{u})/sin \\tau$ and "
            "$F(\\hat{x}, 0) = (2/π) \\hat{v}(0, \\hat{x})$."
        ),
        steps=(*_time_reversal(), *_meanflow_ayf(), *_variance_exploding(), *_trigflow()),
        measured_by="`tests/test_flowmaps.py` and the CONVENTIONS row of `cmverify verify` (each "
        "kind's exact network converted back to $X_{s→t}$ against the reference).",
    )
