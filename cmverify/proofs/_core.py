"""The step-by-step derivation format and its Markdown and LaTeX renderings.

Prose (titles, assumptions, statements, reasons, notes) is written with its mathematics
between ``$…$``, in Unicode shorthand (``$x_{s−Δ} = y − δΔ + ½ γ Δ²$``); :func:`math_latex`
turns a math span into LaTeX for both renderings, so the Markdown (GitHub renders
``$…$``) and the LaTeX export show real math, never ``x_{s-Δ}`` as text. Text outside
``$…$`` is plain prose; code goes between backticks.

Equations are printed by a SymPy LaTeX printer with the documents' notation: an undefined
function ``α`` of one variable prints as ``α(t)``, its derivatives with primes
(``α'(s)``, ``α''(s)``), also where SymPy holds a derivative at a point as
``Subs(Derivative(α(ξ), ξ), ξ, s)``. In the LaTeX export an equation wider than the line
is broken across lines (``split``) between the sides of ``=`` and between the terms of a
long sum; nothing is scaled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import sympy as sp
from sympy.core.function import AppliedUndef
from sympy.printing.latex import LatexPrinter

__all__ = [
    "Derivation",
    "Step",
    "article_latex",
    "derivation_latex",
    "expr_latex",
    "latex_prose",
    "markdown_prose",
    "math_latex",
    "tex_width",
]


# --------------------------------------------------------------------------- equations


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


def _display_latex(
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


# --------------------------------------------------------------------------- prose

_MATH_CHARS = {
    "α": r"\alpha",
    "β": r"\beta",
    "γ": r"\gamma",
    "δ": r"\delta",
    "ε": r"\varepsilon",
    "θ": r"\theta",
    "λ": r"\lambda",
    "μ": r"\mu",
    "ξ": r"\xi",
    "π": r"\pi",
    "ρ": r"\rho",
    "σ": r"\sigma",
    "φ": r"\varphi",
    "Δ": r"\Delta",
    "Σ": r"\Sigma",
    "∇": r"\nabla",
    "∂": r"\partial",
    "∫": r"\int",
    "→": r"\to",
    "↦": r"\mapsto",
    "≠": r"\neq",
    "≤": r"\le",
    "≥": r"\ge",
    "≈": r"\approx",
    "∈": r"\in",
    "×": r"\times",
    "·": r"\cdot",
    "∘": r"\circ",
    "⊙": r"\odot",
    "…": r"\dots",
    "⟨": r"\langle",
    "⟩": r"\rangle",
    "‖": r"\Vert",
    "ℓ": r"\ell",
    "~": r"\sim",
    "−": "-",
    "–": "-",
    "ᵀ": r"^{\top}",
    "²": "^{2}",
    "³": "^{3}",
    "½": r"\tfrac{1}{2}",
    "ᵢ": "_{i}",
    "ₜ": "_{t}",
    "ċ": r"\dot{c}",
    "ż": r"\dot{z}",
    "*": "^{*}",
}
_ACCENTS = {"\u0307": "dot", "\u0308": "ddot", "\u0304": "bar"}
_MATH_WORDS = [
    (re.compile(r"(?<![A-Za-z\\])E\["), r"\\mathbb{E}["),
    (re.compile(r"(?<![A-Za-z\\])N\("), r"\\mathcal{N}("),
    (re.compile(r"(?<![A-Za-z\\])(Var|Cov|tr|diag)(?![A-Za-z])"), r"\\operatorname{\1}"),
    (re.compile(r"(?<![A-Za-z\\])(log|exp|cos|sin|sup)(?![A-Za-z])"), r"\\\1"),
    (re.compile(r"(?<![A-Za-z\\])x([01])(?![0-9])"), r"x_{\1}"),
    (re.compile(r"_(skip|out)(?![A-Za-z])"), r"_{\\mathrm{\1}}"),
    (re.compile(r" \| "), r" \\mid "),
    (re.compile(r"⁻¹"), r"^{-1}"),
]


def math_latex(math: str) -> str:
    r"""LaTeX for the Unicode shorthand of one ``$…$`` span of prose.

    Greek letters and operators map to their commands (``α`` → ``\alpha``, ``−`` → ``-``,
    ``→`` → ``\to``), ``²`` → ``^{2}``, ``½`` → ``\tfrac{1}{2}``, a combining dot, double
    dot or bar to ``\dot``, ``\ddot``, ``\bar`` of its letter, ``√λ`` and ``√(…)`` to
    ``\sqrt{…}``, ``f*`` to ``f^{*}``, ``x0``/``x1`` to ``x_{0}``/``x_{1}``, ``E[`` to
    ``\mathbb{E}[``, ``N(`` to ``\mathcal{N}(``, a spaced ``|`` to ``\mid``, and
    ``Var``, ``Cov``, ``tr``, ``diag``, ``log``, ``exp``, ``cos``, ``sup`` to operators.
    LaTeX already in the span passes through. Raises ValueError on a character it cannot
    map (the export must stay ASCII for pdflatex)."""
    for pattern, repl in _MATH_WORDS:
        math = pattern.sub(repl, math)
    out: list[str] = []
    i = 0
    while i < len(math):
        ch = math[i]
        accent = _ACCENTS.get(math[i + 1]) if i + 1 < len(math) else None
        if accent:
            out.append(f"\\{accent}{{{_MATH_CHARS.get(ch, ch)}}}")
            i += 2
            continue
        if ch == "√":
            if math[i + 1 : i + 2] == "(":
                depth, j = 0, i + 1
                while j < len(math):
                    depth += {"(": 1, ")": -1}.get(math[j], 0)
                    if depth == 0:
                        break
                    j += 1
                out.append(f"\\sqrt{{{math_latex(math[i + 2 : j])}}}")
                i = j + 1
            else:
                out.append(f"\\sqrt{{{math_latex(math[i + 1])}}}")
                i += 2
            continue
        tex = _MATH_CHARS.get(ch, ch)
        if ord(tex[0]) > 127:
            raise ValueError(f"no LaTeX for {ch!r} in the math span {math!r}")
        nxt = math[i + 1 : i + 2]
        if tex[0] == "\\" and tex[-1].isalpha() and nxt.isascii() and nxt.isalpha():
            tex += " "  # \alpha t, not \alphat
        out.append(tex)
        i += 1
    return "".join(out)


def _spans(text: str) -> list[tuple[bool, str]]:
    """``text`` cut at ``$``: ``(is_math, chunk)`` pairs; ValueError if a ``$`` is unpaired."""
    parts = text.split("$")
    if len(parts) % 2 == 0:
        raise ValueError(f"unpaired $ in {text!r}")
    return [(i % 2 == 1, part) for i, part in enumerate(parts) if part]


def markdown_prose(text: str) -> str:
    """Prose for Markdown: each ``$…$`` span as LaTeX math (GitHub renders it), text as is."""
    return "".join(f"${math_latex(c)}$" if m else c for m, c in _spans(text))


_TEXT_CHARS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "^": r"\^{}",
    "~": r"\textasciitilde{}",
    "<": r"$<$",
    ">": r"$>$",
    "|": r"$|$",
    "“": "``",
    "”": "''",
    "’": "'",
    "–": "--",
    "—": "---",
    "…": r"\dots{}",
    "−": "-",
}


def _latex_text(text: str) -> str:
    """Plain prose for LaTeX: specials escaped; code in backticks as ``\\texttt`` that may
    break after ``/``, ``.``, ``_`` and ``::``; a stray Unicode math character (the
    documents keep math in ``$…$``) as inline math."""
    out = []
    for k, chunk in enumerate(text.split("`")):
        if k % 2 == 1:  # code
            code = "".join(_TEXT_CHARS.get(ch, ch) for ch in chunk)
            code = re.sub(r"(/|\.|\\_|::)", r"\1\\allowbreak{}", code)
            out.append(f"\\texttt{{{code}}}")
            continue
        for ch in chunk:
            if ch in _TEXT_CHARS:
                out.append(_TEXT_CHARS[ch])
            elif ch.isascii():
                out.append(ch)
            else:
                out.append(f"${math_latex(ch)}$")
    return "".join(out)


def latex_prose(text: str) -> str:
    """Prose for LaTeX: ``$…$`` spans as inline math, the rest as escaped text."""
    return "".join(f"${math_latex(c)}$" if m else _latex_text(c) for m, c in _spans(text))


# --------------------------------------------------------------------------- documents


@dataclass(frozen=True)
class Step:
    """One equation ``lhs = rhs`` with the reason it holds; checked by SymPy.

    Unevaluated parts (``Subs``, ``Sum``, ``Derivative``, ``UnevaluatedExpr``) are shown as
    written and evaluated for the check. If ``rhs`` carries an order term ``O(x^n)``
    (at ``x = 0``), the step claims equality up to that order: the Taylor polynomials of
    degree ``n − 1`` in ``x`` of ``lhs`` and of ``rhs`` without its order term agree.

    With ``definition=True`` the step is ``lhs := rhs``: it gives the expression ``rhs``
    the name ``lhs`` (a symbol that ``rhs`` does not contain), asserts nothing, and is
    neither checked nor counted as proven (:meth:`Derivation.verify` skips it)."""

    lhs: sp.Expr
    rhs: sp.Expr
    reason: str
    definition: bool = False

    def __post_init__(self) -> None:
        if self.definition and not (
            isinstance(self.lhs, sp.Symbol) and self.lhs not in self.rhs.free_symbols
        ):
            raise ValueError(
                "a definition's lhs must be a symbol that its rhs does not contain, "
                f"got {self.lhs} := {self.rhs}"
            )

    @property
    def relation(self) -> str:
        """``":="`` for a definition, else ``"="``."""
        return ":=" if self.definition else "="

    def holds(self) -> bool:
        """True when SymPy proves ``lhs = rhs`` (ValueError for a definition: nothing to prove)."""
        if self.definition:
            raise ValueError(f"{self.lhs} := … is a definition; there is nothing to prove")
        lhs, rhs = self.lhs.doit(), self.rhs.doit()
        orders = [o for o in sp.preorder_traversal(rhs) if isinstance(o, sp.Order)]
        difference = lhs - rhs
        if orders:
            order = orders[0]
            if len(order.variables) != 1 or any(p != 0 for p in order.point):
                raise ValueError(f"a step's order term must be O(x^n) at x = 0, got {order}")
            (var,) = order.variables
            degree = sp.Poly(order.expr, var).degree()
            difference = sp.series(lhs - rhs.removeO(), var, 0, degree).removeO()
        difference = sp.simplify(sp.expand(difference))
        return difference == 0 or difference.equals(0) is True

    def latex(self) -> str:
        """``lhs = rhs`` (``lhs := rhs`` for a definition) on one line, in the documents'
        notation (:func:`expr_latex`)."""
        return f"{expr_latex(self.lhs)} {self.relation} {expr_latex(self.rhs)}"


_PRIMES_NOTE = "Primes are derivatives in the argument: $α'(t) = dα/dt$, $F''(y) = d²F/dy²$."
_ORDER_NOTE = (
    "An equation ending in $O(Δ^k)$ holds up to that order: SymPy compares the Taylor polynomials."
)


@dataclass(frozen=True)
class Derivation:
    """A claim's derivation: ID, title, assumptions, statement and checked steps.

    Prose fields keep their mathematics between ``$…$`` (see the module docstring)."""

    claim: str
    title: str
    assumptions: tuple[str, ...]
    statement: str
    steps: tuple[Step, ...]
    measured_by: str
    notes: tuple[str, ...] = field(default_factory=tuple)

    def verify(self) -> list[int]:
        """Indices of the steps SymPy could not prove (empty: every step that is not a
        definition checked)."""
        return [i for i in self.proven() if not self.steps[i].holds()]

    def proven(self) -> list[int]:
        """Indices of the steps that assert an equation (every step but the definitions)."""
        return [i for i, step in enumerate(self.steps) if not step.definition]

    def _checked_sentence(self, latex: bool) -> str:
        """The sentence that opens the derivation: what SymPy checked."""
        what = "Every equation below was checked by SymPy (`lhs − rhs` simplifies to 0)"
        if latex:
            what = "Every equation was checked by SymPy"
        if len(self.proven()) < len(self.steps):
            what += ", except the definitions ($:=$), which only name an expression"
        return what + "."

    def _derivation_intro(self) -> str:
        """Notation notes for the derivation's equations, each after a space (or "")."""
        notes = []
        if any("'" in step.latex() for step in self.steps):
            notes.append(_PRIMES_NOTE)
        if any(step.rhs.has(sp.Order) for step in self.steps):
            notes.append(_ORDER_NOTE)
        return "".join(" " + note for note in notes)

    def to_markdown(self) -> str:
        lines = [
            f"# {self.claim}: {markdown_prose(self.title)}",
            "",
            "<!-- Generated by `cmverify proofs --write proofs`; do not edit by hand. -->",
            "",
            "**Assumptions.**",
            "",
            *[f"- {markdown_prose(a)}" for a in self.assumptions],
            "",
            f"**Statement.** {markdown_prose(self.statement)}",
            "",
            f"**Derivation.** {markdown_prose(self._checked_sentence(latex=False))}"
            f"{markdown_prose(self._derivation_intro())}",
            "",
        ]
        for i, step in enumerate(self.steps, start=1):
            lines += [
                f"{i}. {markdown_prose(step.reason)}",
                "",
                f"   $$ {step.latex()} \\tag{{{self.claim}.{i}}} $$",
                "",
            ]
        for note in self.notes:
            lines += [f"**Note.** {markdown_prose(note)}", ""]
        lines += [f"**Measured by** {markdown_prose(self.measured_by)}", ""]
        return "\n".join(lines).rstrip() + "\n"


def derivation_latex(d: Derivation, width: float = LINE_WIDTH) -> str:
    """One derivation as a LaTeX section (for ``\\input`` into a paper that loads amsmath
    and amssymb); equations numbered and labelled ``eq:<CLAIM>.<step>``, those wider than
    ``width`` (:func:`tex_width` units; about 30 for one column of a two-column paper)
    broken across lines with ``split``."""
    lines = [
        f"\\section{{{d.claim}: {latex_prose(d.title)}}}",
        f"\\label{{claim:{d.claim}}}",
        "\\paragraph{Assumptions.}",
        "\\begin{itemize}",
        *[f"  \\item {latex_prose(a)}" for a in d.assumptions],
        "\\end{itemize}",
        f"\\paragraph{{Statement.}} {latex_prose(d.statement)}",
        f"\\paragraph{{Derivation.}} {latex_prose(d._checked_sentence(latex=True))}"
        f"{latex_prose(d._derivation_intro())}",
    ]
    for i, step in enumerate(d.steps, start=1):
        lines += [
            "",
            f"\\noindent {latex_prose(step.reason)}",
            _display_latex(step.lhs, step.rhs, f"eq:{d.claim}.{i}", width, step.relation),
        ]
    lines.append("")
    lines += [f"\\paragraph{{Note.}} {latex_prose(n)}" for n in d.notes]
    lines.append(f"\\paragraph{{Measured by.}} {latex_prose(d.measured_by)}")
    return "\n".join(lines) + "\n"


def article_latex(derivations: tuple[Derivation, ...]) -> str:
    """A standalone amsmath article holding the given derivations (ASCII, Computer Modern
    Type 1 fonts: compiles with a basic pdflatex install)."""
    body = "\n".join(derivation_latex(d) for d in derivations)
    return (
        "\\documentclass[10pt]{article}\n"
        "\\usepackage{amsmath,amssymb}\n\\usepackage[margin=2cm]{geometry}\n"
        "\\allowdisplaybreaks\n"
        "\\setlength{\\emergencystretch}{3em}  % long code names: a looser line, not an overfull one\n"
        "\\makeatletter  % article's \\section, ragged right: long titles break, never overflow\n"
        "\\renewcommand\\section{\\@startsection{section}{1}{\\z@}{-3.5ex \\@plus -1ex \\@minus -.2ex}"
        "{2.3ex \\@plus.2ex}{\\normalfont\\Large\\bfseries\\raggedright}}\n"
        "\\makeatother\n"
        "\\title{cmverify: derivations checked by SymPy}\n\\author{cmverify}\n\\date{}\n"
        "\\begin{document}\n\\maketitle\n"
        f"{body}\n"
        "\\end{document}\n"
    )
