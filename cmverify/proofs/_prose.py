"""Prose of the documents: Unicode math shorthand to LaTeX, for Markdown and LaTeX.

Prose (titles, assumptions, statements, reasons, notes) is written with its mathematics
between ``$…$``, in Unicode shorthand (``$x_{s−Δ} = y − δΔ + ½ γ Δ²$``); :func:`math_latex`
turns a math span into LaTeX for both renderings, so the Markdown (GitHub renders
``$…$``) and the LaTeX export show real math, never ``x_{s-Δ}`` as text. Text outside
``$…$`` is plain prose; code goes between backticks.
"""

from __future__ import annotations

import itertools
import re

__all__ = ["latex_prose", "mark_math", "markdown_prose", "math_latex", "unmarked_math"]

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
    "τ": r"\tau",
    "φ": r"\varphi",
    "ψ": r"\psi",
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
    "≪": r"\ll",
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


def mark_math(text: str, formulas: tuple[str, ...]) -> str:
    """``text`` (plain Unicode, e.g. a catalogue title) with every occurrence of each of
    ``formulas`` put between ``$…$``; ValueError if two occurrences overlap or ``text``
    already holds a ``$``."""
    if "$" in text:
        raise ValueError(f"text to mark already holds a $: {text!r}")
    cuts: list[tuple[int, int]] = []
    for formula in formulas:
        start = text.find(formula)
        while formula and start >= 0:
            cuts.append((start, start + len(formula)))
            start = text.find(formula, start + len(formula))
    cuts.sort()
    for (_, end), (start, _) in itertools.pairwise(cuts):
        if start < end:
            raise ValueError(f"formulas overlap in {text!r}: {formulas}")
    out, done = [], 0
    for start, end in cuts:
        out += [text[done:start], "$", text[start:end], "$"]
        done = end
    return "".join([*out, text[done:]])


#: Non-ASCII characters that prose may use outside ``$…$`` (typographic, not math).
_TYPOGRAPHIC = set("…–—’“”")


def unmarked_math(text: str) -> set[str]:
    """The characters of ``text`` outside ``$…$`` and backticks that only mathematics uses
    (``_ ^ { } * | \\``, Greek letters, operators, super- and subscripts): each would be
    typeset as text. Empty for well-formed prose; ValueError if a ``$`` is unpaired."""
    stray: set[str] = set()
    for is_math, chunk in _spans(text):
        if not is_math:
            words = re.sub(r"`[^`]*`", "", chunk)
            stray |= {c for c in words if c in "_^{}*|\\" or not (c.isascii() or c in _TYPOGRAPHIC)}
    return stray


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
