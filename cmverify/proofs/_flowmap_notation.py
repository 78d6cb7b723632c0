"""The notation of the flow-map documents (FLOWMAP-IDENTITIES, MEANFLOW-IDENTITY,
CONVENTIONS): flow maps, velocities and densities as SymPy functions that know their
definitions, and the Gaussian closed forms.

A flow map is a SymPy function ``X(s, t, x)``, printed ``X_{s→t}(x)``, that SymPy
differentiates by its definition: ``∂_t X = v(t, X)`` (L), ``X(s, s, x) = x`` and
``∂_x X(s, s, x) = 1`` (B); its derivatives in the start time and the point are the
functions ``∂_s X``, ``∂_x X``, whose ``t``-derivative is that of L in ``x`` (mixed partial
derivatives commute). With ``eulerian=True`` it also knows E (``∂_s X = −∂_x X v(s, x)``),
which FLOWMAP-IDENTITIES proves: the later documents may use it. A derivative at a point
that is not a symbol (``∂_x v(t, X_{s→t}(x))``) is such a named function, never SymPy's
``Subs`` with a dummy variable (which the documents would print).

The Gaussian closed forms (:class:`Explicit`) are printed by name (``X_{s→t}(x)``,
``v(t, x)``); :meth:`~sympy.Basic.doit` (run by :meth:`Step.holds`) and differentiation
replace them by their formulas, which each document states first as a definition.
"""

from __future__ import annotations

import sympy as sp

from ._derivation import Step
from ._notation import TexSymbol, alpha, s_, t

__all__ = [
    "Cdf",
    "Explicit",
    "GaussLogP",
    "GaussP",
    "GaussU",
    "GaussV",
    "GaussVx",
    "GaussX",
    "Grouped",
    "MeanU",
    "Named",
    "P",
    "V",
    "Vx",
    "X",
    "Xs",
    "Xx",
    "flow_map",
    "gauss_definitions",
    "gauss_log_density",
    "gauss_map",
    "gauss_velocity",
    "velocity",
]

r, h = sp.Symbol("r", real=True), sp.Symbol("h", positive=True)
x, y, z, mu = sp.symbols("x y z mu", real=True)
c = sp.Function("c", positive=True)  # the Gaussian variance c(t) = α² λ + σ² > 0


def _tex_args(printer, args) -> list[str]:
    """The arguments as printed, a fraction inline (``x / \\alpha(t)``, not ``\\frac``)."""
    inline = type(printer)({"fold_short_frac": True})
    return [inline._print(a) for a in args]


def _map_tex(printer, name: str, args: tuple[sp.Expr, ...]) -> str:
    """``X_{s \\to t}(x)`` for ``args = (s, t, x)``; a time that is a sum in parentheses
    (``X_{(1 - \\tau) \\to (1 - \\tau - d)}``)."""
    start, end, point = _tex_args(printer, args)
    start, end = (
        f"({tex})" if isinstance(a, sp.Add) else tex
        for a, tex in zip(args[:2], (start, end), strict=True)
    )
    return f"{name}_{{{start} \\to {end}}}({point})"


class Named(sp.Function):
    """An applied function printed by ``_tex`` (``{0}`` … the printed arguments)."""

    _tex = "f({0})"
    is_real = True

    def _latex(self, printer, exp=None):
        tex = self._tex.format(*_tex_args(printer, self.args))
        return tex if exp is None else f"\\left({tex}\\right)^{{{exp}}}"

    def _eval_as_leading_term(self, var, logx=None, cdir=0):
        """The first nonzero term of the Taylor series in ``var`` at 0 (SymPy asks for it when
        an order term ``O(var^n)`` meets the function)."""
        for n in range(1, 5):
            poly = self._eval_nseries(var, n, logx, cdir).removeO()
            if poly != 0:
                return poly.as_leading_term(var, logx=logx, cdir=cdir)
        return super()._eval_as_leading_term(var, logx=logx, cdir=cdir)


class Explicit(Named):
    """A closed form printed by name; ``doit()`` substitutes the formula ``_value``."""

    @classmethod
    def _value(cls, *args: sp.Expr) -> sp.Expr:
        raise NotImplementedError

    def doit(self, **hints):
        return self._value(*(a.doit(**hints) for a in self.args))

    def _eval_derivative(self, var):
        return self.doit().diff(var)  # also inside Subs, which differentiates before doit()


class Grouped(sp.Function):
    """``(expr)``, kept whole: ``∂_y (p v)`` prints with its parentheses (SymPy prints a
    derivative of a product without them); ``doit()`` and derivatives see ``expr``."""

    nargs = 1

    def _latex(self, printer, exp=None):
        tex = f"\\left({printer._print(self.args[0])}\\right)"
        return tex if exp is None else f"{tex}^{{{exp}}}"

    def doit(self, **hints):
        return self.args[0].doit(**hints)

    def _eval_derivative(self, var):
        return self.args[0].diff(var)


def velocity(tex: str = "v") -> tuple[type[Named], type[Named]]:
    """A generic velocity ``v(t, x)`` and its space derivative ``∂_x v(t, x)``."""

    name = tex.replace("{", "{{").replace("}", "}}")  # a format string below

    class Vx(Named):
        nargs = 2
        _tex = f"\\partial_x {name}({{0}}, {{1}})"

    class V(Named):
        nargs = 2
        _tex = f"{name}({{0}}, {{1}})"

        def fdiff(self, argindex=1):
            return Vx(*self.args) if argindex == 2 else super().fdiff(argindex)

    return V, Vx


def flow_map(
    v: type[Named], tex: str = "X", eulerian: bool = False
) -> tuple[type[Named], type[Named], type[Named]]:
    """The flow map ``X(s, t, x)`` of ``v`` and its derivatives ``∂_s X``, ``∂_x X``, as
    SymPy knows them (module docstring); ``eulerian=True``: ``∂_s X`` by E."""

    class Xs(Named):
        nargs = 3

        def _latex(self, printer, exp=None):
            return f"\\partial_s {_map_tex(printer, tex, self.args)}"

    class Xx(Named):
        nargs = 3

        @classmethod
        def eval(cls, s, t_, point):
            return sp.Integer(1) if s == t_ else None  # ∂_x of X(s, s, x) = x

        def fdiff(self, argindex=1):
            if argindex != 2:
                return super().fdiff(argindex)
            s, t_, point = self.args  # ∂_t ∂_x X = ∂_x ∂_t X = ∂_x v(t, X): L differentiated in x
            q = sp.Dummy("q", real=True)
            return sp.diff(v(t_, X(s, t_, q)), q).subs(q, point)

        def _latex(self, printer, exp=None):
            return f"\\partial_x {_map_tex(printer, tex, self.args)}"

    class X(Named):
        nargs = 3

        @classmethod
        def eval(cls, s, t_, point):
            return point if s == t_ else None  # B

        def fdiff(self, argindex=1):
            s, t_, point = self.args
            if argindex == 2:
                return v(t_, self)  # L
            if argindex == 3:
                return Xx(s, t_, point)
            return -Xx(s, t_, point) * v(s, point) if eulerian else Xs(s, t_, point)

        def _latex(self, printer, exp=None):
            tex_ = _map_tex(printer, tex, self.args)
            return tex_ if exp is None else f"{tex_}^{{{exp}}}"

    return X, Xs, Xx


V, Vx = velocity()
X, Xs, Xx = flow_map(V)


class P(Named):
    """The density ``p_t(x)``; its derivatives are named functions."""

    nargs = 2
    _tex = "p_{{{0}}}({1})"

    def fdiff(self, argindex=1):
        return (Pt if argindex == 1 else Px)(*self.args)


class Pt(Named):
    nargs = 2
    _tex = "\\partial_t p_{{{0}}}({1})"


class Px(Named):
    nargs = 2
    _tex = "\\partial_x p_{{{0}}}({1})"


class Cdf(Named):
    """The distribution function ``F_t(x)``: ``∂_x F_t = p_t``."""

    nargs = 2
    _tex = "F_{{{0}}}({1})"

    def fdiff(self, argindex=1):
        return P(*self.args) if argindex == 2 else CdfT(*self.args)


class CdfT(Named):
    nargs = 2
    _tex = "\\partial_t F_{{{0}}}({1})"


# --- Gaussian data: p_t = N(α_t μ, c_t), one eigen-direction ---------------------------


def _at(expr: sp.Expr, time: sp.Expr) -> sp.Expr:
    return expr.subs(t, time)


def gauss_velocity(time: sp.Expr, point: sp.Expr) -> sp.Expr:
    """``α̇ μ + ċ/(2c) (x − α μ)`` at ``(time, point)``."""
    speed = sp.diff(alpha, t) * mu + sp.diff(c(t), t) / (2 * c(t)) * (y - alpha * mu)
    return _at(speed, time).subs(y, point)


def gauss_map(s: sp.Expr, t_: sp.Expr, point: sp.Expr) -> sp.Expr:
    """``α_t μ + √(c_t/c_s) (x − α_s μ)``."""
    return _at(alpha, t_) * mu + sp.sqrt(c(t_) / c(s)) * (point - _at(alpha, s) * mu)


def gauss_log_density(time: sp.Expr, point: sp.Expr) -> sp.Expr:
    """``log N(x; α_t μ, c_t)``."""
    return -((point - _at(alpha, time) * mu) ** 2) / (2 * c(time)) - sp.log(2 * sp.pi * c(time)) / 2


class GaussV(Explicit):
    nargs = 2
    _tex = "v({0}, {1})"
    _value = staticmethod(gauss_velocity)


class GaussVx(Explicit):
    nargs = 2
    _tex = "\\partial_x v({0}, {1})"

    @staticmethod
    def _value(time, point):
        return sp.diff(gauss_velocity(time, y), y).subs(y, point)


class GaussX(Explicit):
    nargs = 3
    _value = staticmethod(gauss_map)

    def _latex(self, printer, exp=None):
        tex = _map_tex(printer, "X", self.args)
        return tex if exp is None else f"\\left({tex}\\right)^{{{exp}}}"


class GaussLogP(Explicit):
    nargs = 2
    _tex = "\\log p_{{{0}}}({1})"
    _value = staticmethod(gauss_log_density)


class GaussP(Explicit):
    nargs = 2
    _tex = "p_{{{0}}}({1})"

    @staticmethod
    def _value(time, point):
        return sp.exp(gauss_log_density(time, point))


def gauss_definitions(point: sp.Expr = x) -> tuple[Step, ...]:
    """The definitions (:=) of the Gaussian velocity and flow map, as printed."""
    return (
        Step(
            TexSymbol(f"v(t, {point})"),
            gauss_velocity(t, point),
            "The velocity of FLOW-VELOCITY for this data: $v = α̇ μ + (α α̇ λ + σ σ̇)/c · (x − α μ)$, "
            "and $α α̇ λ + σ σ̇ = ċ/2$ (FLOW-GAUSS.1).",
            definition=True,
        ),
        Step(
            TexSymbol(f"X_{{s \\to t}}({point})"),
            gauss_map(s_, t, point),
            "The flow map of FLOW-GAUSS.",
            definition=True,
        ),
    )


class MeanU(Explicit):
    """MeanFlow's ``u(z, r, t) = (z − X_{t→r}(z))/(t − r)`` of the generic flow map."""

    nargs = 3
    _tex = "u({0}, {1}, {2})"

    @staticmethod
    def _value(point, r_, t_):
        return (point - X(t_, r_, point)) / (t_ - r_)


class GaussU(MeanU):
    @staticmethod
    def _value(point, r_, t_):
        return (point - gauss_map(t_, r_, point)) / (t_ - r_)
