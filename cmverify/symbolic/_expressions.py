"""Symbolic layer: interpolant coefficients as SymPy expressions, their derivatives,
the symbolic proof of the boundary conditions, and the generation of numeric code.

The interpolant is ``x_t = α_t x0 + σ_t x1`` with ``x0 ~ data`` and ``x1 ~ N(0, I)``.
Everything numeric about ``α`` and ``σ`` is generated here from one pair of SymPy
expressions: the derivatives come from :func:`sympy.diff`, the products that the
velocity needs (``α α̇`` and ``σ σ̇``) are simplified symbolically *before* they are
made numeric, so that for ``σ = sqrt(1 − (1 − t)²)`` the product ``σ σ̇ = 1 − t``
stays finite at ``t = 0`` although ``σ̇`` itself is infinite there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

import numpy as np
import sympy as sp

__all__ = [
    "BOUNDARY_CONDITIONS",
    "InterpolantExpressions",
    "derive_interpolant",
    "numeric_function",
    "positive_inside",
    "prove_boundary_conditions",
]

#: The four boundary conditions of an interpolant: (coefficient, time, required value).
BOUNDARY_CONDITIONS: tuple[tuple[str, int, int], ...] = (
    ("alpha", 0, 1),
    ("alpha", 1, 0),
    ("sigma", 0, 0),
    ("sigma", 1, 1),
)


@dataclass(frozen=True)
class InterpolantExpressions:
    """SymPy expressions of an interpolant and of everything derived from it.

    Attributes are expressions in the symbol ``t``, each simplified (``simplify(factor(·))``)
    so that the generated numerics avoid cancellation: ``alpha``, ``sigma``; their first
    derivatives ``dalpha``, ``dsigma``; second derivatives ``ddalpha``, ``ddsigma``
    (they enter ``γ = α̈ x0 + σ̈ x1``); and the simplified products
    ``alpha_dalpha = α α̇`` and ``sigma_dsigma = σ σ̇`` and their time derivatives
    ``d_alpha_dalpha = α̇² + α α̈`` and ``d_sigma_dsigma = σ̇² + σ σ̈`` (also simplified:
    they are half the second derivatives of ``α²`` and ``σ²``, which stay finite where
    ``σ̇`` does not); ``wronskian = α σ̇ − α̇ σ`` (1 for the linear interpolant, π/2 for
    trig): given ``x_t``, the flow-matching target is ``v_c = (α̇/α) x_t + (W/α) x1 =
    (σ̇/σ) x_t − (W/σ) x0``, so its conditional covariance is ``W²/σ² Cov(x0 | x_t)``.
    """

    t: sp.Symbol
    alpha: sp.Expr
    sigma: sp.Expr
    dalpha: sp.Expr
    dsigma: sp.Expr
    ddalpha: sp.Expr
    ddsigma: sp.Expr
    alpha_dalpha: sp.Expr
    sigma_dsigma: sp.Expr
    d_alpha_dalpha: sp.Expr
    d_sigma_dsigma: sp.Expr
    wronskian: sp.Expr

    def items(self) -> list[tuple[str, sp.Expr]]:
        """``(name, expression)`` pairs of every derived coefficient (not ``t``)."""
        return [(f.name, getattr(self, f.name)) for f in fields(self) if f.name != "t"]


def _sympify(value: object, name: str) -> sp.Expr:
    if isinstance(value, sp.Expr):
        return value
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:
            return sp.sympify(value)
        except (sp.SympifyError, SyntaxError, TypeError) as exc:
            raise ValueError(f"{name} could not be parsed as a SymPy expression: {exc}") from None
    raise TypeError(
        f"{name} must be a SymPy expression (or a number or string), got {type(value).__name__}"
    )


def _value_at(expr: sp.Expr, t: sp.Symbol, at: int, name: str) -> sp.Expr:
    """``expr`` at ``t = at``; ``ValueError`` if it is undefined there."""
    value = sp.simplify(expr.subs(t, at))
    if value.has(sp.nan, sp.zoo, sp.oo, -sp.oo):
        raise ValueError(f"{name} = {expr} is not defined at t = {at} (it evaluates to {value})")
    return value


def prove_boundary_conditions(alpha: sp.Expr, sigma: sp.Expr, t: sp.Symbol) -> list[str]:
    """Prove ``α_0 = σ_1 = 1`` and ``α_1 = σ_0 = 0`` symbolically.

    Returns the list of proven statements, e.g. ``"alpha(0) = 1"``. Raises
    ``ValueError`` naming the first condition that is violated, or that SymPy could not
    decide (the condition is then not taken as proven).
    """
    exprs = {"alpha": alpha, "sigma": sigma}
    proven = []
    for coeff, at, required in BOUNDARY_CONDITIONS:
        value = _value_at(exprs[coeff], t, at, coeff)
        difference = sp.simplify(value - required)
        statement = f"{coeff}({at}) = {required}"
        is_zero = True if difference == 0 else difference.equals(0)
        if is_zero is True:
            proven.append(statement)
            continue
        if is_zero is False:
            raise ValueError(
                f"interpolant violates the boundary condition {statement}: "
                f"{coeff}({at}) = {value} for {coeff} = {exprs[coeff]}"
            )
        raise ValueError(
            f"could not prove the boundary condition {statement} for {coeff} = {exprs[coeff]} "
            f"(SymPy leaves {coeff}({at}) − {required} = {difference})"
        )
    return proven


def positive_inside(expr: sp.Expr, t: sp.Symbol) -> tuple[bool | None, sp.Expr | None]:
    """Decide symbolically whether ``expr > 0`` for every ``t`` in the open interval ``(0, 1)``.

    Solves ``expr ≤ 0`` on ``(0, 1)`` with :func:`sympy.solveset`. Returns
    ``(True, None)`` when the solution set is empty (proven positive), ``(False, point)``
    with a point of ``(0, 1)`` where ``expr ≤ 0`` (checked by evaluating ``expr``
    there), and ``(None, None)`` when SymPy cannot decide (a ``ConditionSet``, an
    unsupported expression, or a point that does not check out); the caller then
    falls back to a numeric check.
    """
    try:
        found = sp.solveset(expr <= 0, t, sp.Interval.open(0, 1))
    except Exception:  # solveset raises several kinds for what it cannot handle
        return None, None
    if found == sp.S.EmptySet:
        return True, None
    point = _point_in(found)
    if point is None:
        return None, None
    value = sp.N(expr.subs(t, point), 30)
    if value.is_real and bool(value <= 0):
        return False, point
    return None, None


def _point_in(found: sp.Set) -> sp.Expr | None:
    """A point of a solution set inside ``(0, 1)`` (a finite set's smallest element, an
    interval's midpoint), or ``None`` for a set SymPy leaves implicit."""
    if isinstance(found, sp.Union):
        found = found.args[0]
    if isinstance(found, sp.FiniteSet) and found.args:
        return min(found.args, key=lambda p: float(p))
    if isinstance(found, sp.Interval):
        return (found.inf + found.sup) / 2
    return None


def derive_interpolant(alpha: object, sigma: object, t: object) -> InterpolantExpressions:
    """Check an interpolant symbolically and derive all its coefficients.

    ``alpha`` and ``sigma`` are SymPy expressions in the single free symbol ``t``.
    Raises ``TypeError`` for arguments of the wrong kind and ``ValueError`` if another
    symbol occurs or a boundary condition is violated (see
    :func:`prove_boundary_conditions`).
    """
    if not isinstance(t, sp.Symbol):
        raise TypeError(f"t must be a sympy.Symbol, got {type(t).__name__}")
    alpha_expr = _sympify(alpha, "alpha")
    sigma_expr = _sympify(sigma, "sigma")
    for name, expr in (("alpha", alpha_expr), ("sigma", sigma_expr)):
        extra = expr.free_symbols - {t}
        if extra:
            names = ", ".join(sorted(str(s) for s in extra))
            raise ValueError(f"{name} may depend on {t} only, but also depends on {names}")
    prove_boundary_conditions(alpha_expr, sigma_expr, t)
    alpha_expr, sigma_expr = _tidy(alpha_expr), _tidy(sigma_expr)
    dalpha, dsigma = _tidy(sp.diff(alpha_expr, t)), _tidy(sp.diff(sigma_expr, t))
    return InterpolantExpressions(
        t=t,
        alpha=alpha_expr,
        sigma=sigma_expr,
        dalpha=dalpha,
        dsigma=dsigma,
        ddalpha=_tidy(sp.diff(dalpha, t)),
        ddsigma=_tidy(sp.diff(dsigma, t)),
        alpha_dalpha=_tidy(alpha_expr * dalpha),
        sigma_dsigma=_tidy(sigma_expr * dsigma),
        d_alpha_dalpha=_tidy(sp.diff(alpha_expr**2, t, 2) / 2),
        d_sigma_dsigma=_tidy(sp.diff(sigma_expr**2, t, 2) / 2),
        wronskian=_tidy(alpha_expr * dsigma - dalpha * sigma_expr),
    )


def _tidy(expr: sp.Expr) -> sp.Expr:
    """``simplify(factor(expr))``: cancels common factors (so ``σ σ̇`` stays finite where
    ``σ̇`` is not) and factors differences such as ``1 − (1 − t)² = t (2 − t)``, which
    evaluate without cancellation in floating point."""
    return sp.simplify(sp.factor(expr))


def numeric_function(expr: sp.Expr, t: sp.Symbol) -> Callable[[np.ndarray], np.ndarray]:
    """Generate a vectorized float64 function of ``t`` from ``expr`` (via ``lambdify``).

    The result always has the shape of its argument (a constant expression is
    broadcast). Points where the expression is singular give ``inf`` or ``nan``
    silently; callers that need finiteness use the simplified products.
    """
    compiled = sp.lambdify(t, expr, modules="numpy")

    def evaluate(tt: np.ndarray) -> np.ndarray:
        tt = np.asarray(tt, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            out = np.asarray(compiled(tt), dtype=np.float64)
        if out.shape == tt.shape and not np.may_share_memory(out, tt):
            return out  # already a new array of the right shape (half the cost per call)
        return np.array(np.broadcast_to(out, tt.shape))

    evaluate.__doc__ = f"float64 evaluation of {expr} at t (vectorized)"
    return evaluate


def stacked_numeric_function(
    exprs: Sequence[sp.Expr], t: sp.Symbol
) -> Callable[[np.ndarray], np.ndarray]:
    """Generate one vectorized float64 function of ``t`` that evaluates all of ``exprs``
    at once (``lambdify`` with common subexpressions shared), returning an array of
    shape ``(len(exprs), *t.shape)``.

    For hot loops that need several coefficients at the same times (the exact path's
    evaluation on every Runge–Kutta stage): one generated call and one floating-point
    error state instead of one per expression. Values are those of
    :func:`numeric_function` for each expression (singular points give ``inf`` or
    ``nan`` silently).
    """
    exprs = list(exprs)
    compiled = sp.lambdify(t, exprs, modules="numpy", cse=True)

    def evaluate(tt: np.ndarray) -> np.ndarray:
        tt = np.asarray(tt, dtype=np.float64)
        out = np.empty((len(exprs), *tt.shape))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            for i, value in enumerate(compiled(tt)):
                out[i] = value
        return out

    evaluate.__doc__ = f"float64 evaluation of {exprs} at t (vectorized, stacked)"
    return evaluate


def torch_function(exprs: Sequence[sp.Expr], t: sp.Symbol) -> Callable[..., tuple]:
    """The same expressions as :func:`stacked_numeric_function`, lambdified to torch: a
    function of a tensor ``t`` returning one tensor per expression, shaped, typed and
    placed like ``t`` (constants broadcast), differentiable with autograd and
    ``torch.func``. torch is imported by the generated code only (an optional dependency)."""
    exprs = list(exprs)
    compiled = sp.lambdify(t, exprs, modules="torch", cse=True)

    def evaluate(tt):
        import torch

        return tuple(
            v if isinstance(v, torch.Tensor) else torch.full_like(tt, float(v))
            for v in compiled(tt)
        )

    evaluate.__doc__ = f"torch evaluation of {exprs} at t"
    return evaluate
