"""Equations in the documents' notation, and where a long one is broken (LaTeX export).

Equations are printed by a SymPy LaTeX printer with the documents' notation: an undefined
function ``α`` of one variable prints as ``α(t)``, its derivatives with primes
(``α'(s)``, ``α''(s)``), also where SymPy holds a derivative at a point as
``Subs(Derivative(α(ξ), ξ), ξ, s)``. In the LaTeX export an equation wider than the line
is broken across lines (``split``) between the sides of ``=`` and between the terms of a
long sum; nothing is scaled.
"""

from __future__ import annotations

import re

import sympy as sp
from sympy.core.function import AppliedUndef
from sympy.printing.latex import LatexPrinter

__all__ = ["LINE_WIDTH", "display_latex", "expr_latex", "tex_width"]


class _ProofPrinter(LatexPrinter):
    r"""SymPy's LaTeX printer with primes for derivatives of undefined functions.

    ``alpha(t)`` → ``\alpha(t)``; ``alpha(t)**2`` → ``\alpha(t)^{2}``;
    ``Derivative(alpha(t), t, 2)`` → ``\alpha''(t)``; ``Subs(Derivative(F(ξ), ξ), ξ, y)``
    → ``F'(y)``; order ≥ 4 → ``F^{(4)}(y)``. A sum whose first term would be negative is
    printed from its first positive term (``t - \Delta``, not ``- \Delta + t``).
    """

    def _applied(self, expr: AppliedUndef, order: int = 0, at: sp.Expr | None = None, exp=None):
        name = self._hprint_Function(expr.func.__name__)
        if order:
            name += "'" * order if order <= 3 else f"^{{({order})}}"
        args = [self._print(a) for a in ((at,) if at is not None else expr.args)]
        inner = ", ".join(args)
        tex = f"{name}\\left({inner}\\right)" if "\\frac" in inner else f"{name}({inner})"
        return f"{tex}^{{{exp}}}" if exp is not None else tex

    @staticmethod
    def _prime_form(expr: sp.Expr) -> tuple[AppliedUndef, int] | None:
        """``(f(x), n)`` when ``expr`` is the n-th derivative of an undefined ``f`` of one
        variable ``x`` in that variable, else None."""
        if not isinstance(expr, sp.Derivative):
            return None
        f = expr.expr
        if not isinstance(f, AppliedUndef) or len(f.args) != 1 or not f.args[0].is_Symbol:
            return None
        if set(expr.variables) != {f.args[0]}:
            return None
        return f, int(expr.derivative_count)

    def _print_Function(self, expr, exp=None):
        if isinstance(expr, AppliedUndef):
            return self._applied(expr, exp=exp)
        return super()._print_Function(expr, exp)

    def _print_Derivative(self, expr):
        form = self._prime_form(expr)
        if form is None:
            return super()._print_Derivative(expr)
        return self._applied(form[0], order=form[1])

    def _print_Subs(self, subs):
        expr, old, new = subs.args
        form = self._prime_form(expr)
        if form is not None and len(old) == 1 and old[0] == form[0].args[0]:
            return self._applied(form[0], order=form[1], at=new[0])
        return super()._print_Subs(subs)

    def _print_Pow(self, expr):
        base = expr.base
        primed = self._prime_form(base) or (
            isinstance(base, sp.Subs) and self._prime_form(base.args[0]) is not None
        )
        if primed and expr.exp.is_Integer and expr.exp > 0:
            return f"{self._print(base)}^{{{self._print(expr.exp)}}}"
        return super()._print_Pow(expr)

    def _add_terms(self, expr: sp.Add) -> list[sp.Expr]:
        terms = self._as_ordered_terms(expr)
        first_positive = next(
            (
                i
                for i, t in enumerate(terms)
                if not t.could_extract_minus_sign() and not isinstance(t, sp.Order)
            ),
            0,
        )
        return [terms[first_positive], *terms[:first_positive], *terms[first_positive + 1 :]]

    def signed_terms(self, expr: sp.Add) -> list[str]:
        """The terms of a sum as printed, each after the first with its sign:
        ``["a", "- b", "+ c"]``."""
        out = []
        for i, term in enumerate(self._add_terms(expr)):
            sign = ""
            if i and term.could_extract_minus_sign():
                sign, term = "- ", -term
            elif i:
                sign = "+ "
            tex = self._print(term)
            if self._needs_add_brackets(term):
                tex = f"\\left({tex}\\right)"
            out.append(sign + tex)
        return out

    def _print_Add(self, expr, order=None):
        return " ".join(self.signed_terms(expr))


def expr_latex(expr: sp.Expr) -> str:
    """LaTeX of a SymPy expression in the documents' notation (primes for derivatives)."""
    return _ProofPrinter().doprint(expr)


_TOKEN = re.compile(r"\\[A-Za-z]+|\\.|[{}^_]|\s+|.")
_ZERO_WIDTH = {"\\displaystyle", "\\textstyle", "\\limits", "\\nolimits", "\\mathrm"}
_ARGUMENT_ONLY = {
    "\\operatorname": 1.0,
    "\\mathbb": 1.0,
    "\\mathcal": 1.0,
    "\\mathbf": 1.0,
    "\\text": 1.0,
    "\\bar": 1.0,
    "\\dot": 1.0,
    "\\ddot": 1.0,
    "\\hat": 1.0,
    "\\tilde": 1.0,
    "\\substack": 1.0,
}
_SPACES = {"\\,": 0.3, "\\;": 0.5, "\\:": 0.4, "\\quad": 2.0, "\\qquad": 4.0, "\\ ": 0.6}
_BINARY = {"+", "-", "=", "<", ">", "\\to", "\\cdot", "\\le", "\\ge", "\\neq", "\\mid", "\\approx"}


def tex_width(tex: str) -> float:
    r"""Estimated width of display-math LaTeX in units of one letter (6–7 pt at 10 pt):
    letters and Greek letters 1, binary operators and relations 1.8 (with their spacing),
    scripts 0.7 of their content, ``\frac{a}{b}`` the wider of ``a`` and ``b``, delimiters
    0.5. Used to decide where an equation is broken; the compile test checks the result
    (no overfull line)."""
    tokens = [tok for tok in _TOKEN.findall(tex) if not tok.isspace()]

    def atom(i: int) -> tuple[float, int]:
        if i >= len(tokens):
            return 0.0, i
        if tokens[i] == "{":
            return seq(i + 1, closing=True)
        return sequence_item(i)

    def sequence_item(i: int) -> tuple[float, int]:
        tok = tokens[i]
        if tok in ("\\frac", "\\dfrac", "\\tfrac"):
            top, i = atom(i + 1)
            bottom, i = atom(i)
            scale = 0.7 if tok == "\\tfrac" else 1.0
            return scale * max(top, bottom) + 0.4, i
        if tok == "\\sqrt":
            inner, i = atom(i + 1)
            return inner + 1.0, i
        if tok in ("\\left", "\\right", "\\bigl", "\\bigr", "\\Bigl", "\\Bigr"):
            return (0.0 if i + 1 < len(tokens) and tokens[i + 1] == "." else 0.5), i + 2
        if tok in _ARGUMENT_ONLY:
            inner, i = atom(i + 1)
            return _ARGUMENT_ONLY[tok] * inner, i
        if tok in _ZERO_WIDTH:
            return 0.0, i + 1
        if tok in _SPACES:
            return _SPACES[tok], i + 1
        if tok in _BINARY:
            return 1.8, i + 1
        if tok in ("(", ")", "[", "]", "|", "'", ",", ".", ";", "\\{", "\\}", "\\Vert"):
            return 0.5, i + 1
        return 1.0, i + 1

    def seq(i: int, closing: bool = False) -> tuple[float, int]:
        total, script = 0.0, 0.0
        while i < len(tokens):
            tok = tokens[i]
            if tok == "}":
                return total + script, i + 1
            if tok in ("^", "_"):
                width, i = atom(i + 1)
                script = max(script, 0.7 * width)  # sub- and superscript stack
                continue
            total, script = total + script, 0.0
            width, i = sequence_item(i) if tok != "{" else seq(i + 1, closing=True)
            total += width
        return total + script, i

    return seq(0)[0]


#: Width of a display in :func:`tex_width` units: the export's 17.6 cm text block (499 pt)
#: less the equation number, at the widest measured 7.25 pt per unit.
LINE_WIDTH = 62.0


def _lines(expr: sp.Expr, budget: float, printer: _ProofPrinter) -> list[str]:
    """``expr`` as one line, or a long sum as several, each (if possible) within ``budget``;
    lines after the first start with the sign of their first term."""
    tex = printer.doprint(expr)
    if tex_width(tex) <= budget or not isinstance(expr, sp.Add):
        return [tex]
    lines: list[str] = []
    for term in printer.signed_terms(expr):
        if lines and tex_width(f"{lines[-1]} {term}") <= budget:
            lines[-1] = f"{lines[-1]} {term}"
        else:
            lines.append(term)
    return lines


def display_latex(
    lhs: sp.Expr, rhs: sp.Expr, label: str, width: float = LINE_WIDTH, relation: str = "="
) -> str:
    """``lhs = rhs`` (or another ``relation``, e.g. ``:=``) as a numbered display: one line
    if it fits, else a ``split`` with ``lhs`` on the first line(s) and ``= rhs`` below,
    long sums broken between terms."""
    printer = _ProofPrinter()
    one_line = f"{printer.doprint(lhs)} {relation} {printer.doprint(rhs)}"
    if tex_width(one_line) <= width:
        return f"\\begin{{equation}}\n  {one_line}\n  \\label{{{label}}}\n\\end{{equation}}"
    indent = 4.0  # \qquad
    rows = []
    for side, lines in enumerate(
        (_lines(lhs, width, printer), _lines(rhs, width - indent, printer))
    ):
        for k, line in enumerate(lines):
            if side == 1 and k == 0:
                rows.append(f"&{{}}{relation} {line}")
            elif k == 0:
                rows.append(f"&{line}")
            else:
                rows.append(f"&\\qquad {{}}{line}")
    body = " \\\\\n    ".join(rows)
    return (
        f"\\begin{{equation}}\n  \\begin{{split}}\n    {body}\n  \\end{{split}}\n"
        f"  \\label{{{label}}}\n\\end{{equation}}"
    )
