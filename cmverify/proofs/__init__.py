"""Proofs layer: derivations checked step by step by SymPy, rendered as Markdown and LaTeX.

Each :class:`~cmverify.proofs.Derivation` cites a claim of
:data:`cmverify.claims.CATALOGUE` (its heading is the catalogue's title), its
assumptions, its statement, and a list of steps; every step is an equation ``lhs = rhs``
between SymPy expressions that :meth:`Derivation.verify` proves by simplifying
``lhs − rhs`` to zero (a definition ``lhs := rhs`` only names an expression and is not
counted). The documents in ``proofs/`` are generated from here
(``cmverify proofs --write proofs``), and a test regenerates them and fails if the
committed files differ.

Modules: ``_derivation`` (:class:`Step`, :class:`Derivation`, the renderings),
``_latex`` (equation printer, widths, line breaking), ``_prose`` (Unicode math shorthand
to LaTeX), ``_notation`` and ``_flowmap_notation`` (shared symbols), ``_documents_path``,
``_documents_ct``, ``_documents_flowmaps`` and ``_documents_conventions`` (the
derivations), ``_documents`` (:data:`DERIVATIONS`).
"""

from ._derivation import Derivation, Step, article_latex, derivation_latex
from ._documents import DERIVATIONS, derivations

__all__ = ["DERIVATIONS", "Derivation", "Step", "article_latex", "derivation_latex", "derivations"]
