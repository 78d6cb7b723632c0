"""The step-by-step derivation format (:class:`Step`, :class:`Derivation`) and its
Markdown and LaTeX renderings.

Prose fields keep their mathematics between ``$…$`` (:mod:`._prose`); equations are
printed in the documents' notation and, in the LaTeX export, broken when too wide
(:mod:`._latex`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from ..claims import CATALOGUE
from ._latex import LINE_WIDTH, display_latex, expr_latex
from ._prose import latex_prose, mark_math, markdown_prose, unmarked_math

__all__ = ["Derivation", "Step", "article_latex", "derivation_latex"]


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


@dataclass(frozen=True, kw_only=True)
class Derivation:
    """A claim's derivation: the claim's ID, assumptions, statement and checked steps.

    ``claim`` is an ID of :data:`cmverify.claims.CATALOGUE`; the heading is the
    catalogue's title (:attr:`title`), never a retyped copy. ``statement`` is what the
    steps establish, stated more specifically than the catalogue where the derivation is
    (one dimension, a coordinate form); ``None`` takes the catalogue's statement.
    ``catalogue_math`` lists the formulas of the catalogue's plain-Unicode title (and
    statement, when taken) to typeset as math, e.g. ``("O(Δ²)",)``.

    Prose fields keep their mathematics between ``$…$`` (:mod:`._prose`); a character
    that only mathematics uses outside them is a ValueError, as is an unknown claim ID."""

    claim: str
    assumptions: tuple[str, ...]
    steps: tuple[Step, ...]
    measured_by: str
    statement: str | None = None
    notes: tuple[str, ...] = ()
    catalogue_math: tuple[str, ...] = ()
    #: The catalogue's title with ``catalogue_math`` marked (set from ``claim``).
    title: str = field(init=False)

    def __post_init__(self) -> None:
        if self.claim not in CATALOGUE:
            raise ValueError(
                f"claim {self.claim!r} is not in cmverify.claims.CATALOGUE "
                f"(known: {', '.join(CATALOGUE)})"
            )
        for name in ("assumptions", "steps", "notes", "catalogue_math"):
            value = getattr(self, name)
            if isinstance(value, str):
                raise TypeError(f"{self.claim}: {name} must be a tuple, not one string")
            object.__setattr__(self, name, tuple(value))
        entry = CATALOGUE[self.claim]
        from_catalogue = {"title": entry.title}
        if self.statement is None:
            from_catalogue["statement"] = entry.statement
        # the catalogue's statement is searched even when the derivation states its own:
        # dataclasses.replace() passes the statement taken (and marked) before
        for formula in self.catalogue_math:
            if formula not in entry.title and formula not in entry.statement:
                raise ValueError(
                    f"{self.claim}: catalogue_math {formula!r} is in neither the catalogue's "
                    "title nor its statement"
                )
        for name, text in from_catalogue.items():
            marked = mark_math(text, self.catalogue_math)
            if name == "statement" and not marked.endswith("."):
                marked += "."  # a table cell in the catalogue, a sentence here
            object.__setattr__(self, name, marked)
        prose = {
            "title": self.title,
            "statement": self.statement,
            "measured_by": self.measured_by,
            **{f"assumptions[{i}]": a for i, a in enumerate(self.assumptions)},
            **{f"notes[{i}]": n for i, n in enumerate(self.notes)},
            **{f"steps[{i}].reason": step.reason for i, step in enumerate(self.steps)},
        }
        for name, text in prose.items():
            stray = unmarked_math(text)
            if stray:
                hint = " (list the formula in catalogue_math)" if name in from_catalogue else ""
                raise ValueError(
                    f"{self.claim}: {name} has math outside $…$ "
                    f"({''.join(sorted(stray))}): {text!r}{hint}"
                )

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
            display_latex(step.lhs, step.rhs, f"eq:{d.claim}.{i}", width, step.relation),
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
