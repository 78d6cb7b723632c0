"""Derivations checked step by step by SymPy, rendered as Markdown (symbolic layer).

Each :class:`~cmverify.proofs.Derivation` carries a claim ID of DESIGN.md's
catalogue, its assumptions, its statement, and a list of steps; every step is an
equation ``lhs = rhs`` between SymPy expressions that :meth:`Derivation.verify` proves by
simplifying ``lhs − rhs`` to zero. The documents in ``proofs/`` are generated from here
(``cmverify proofs --write proofs``), and a test regenerates them and fails if the
committed files differ.
"""

from ._core import Derivation, Step, article_latex, derivation_latex
from ._documents import DERIVATIONS, derivations

__all__ = ["DERIVATIONS", "Derivation", "Step", "article_latex", "derivation_latex", "derivations"]
