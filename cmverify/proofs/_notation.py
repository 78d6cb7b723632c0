"""The symbols the derivations share: a generic interpolant ``α(t)``, ``σ(t)`` (SymPy
functions: every step holds for any differentiable interpolant), the step ``Δ``, an
eigenvalue ``λ`` of the data covariance."""

from __future__ import annotations

import sympy as sp

from ..symbolic import LAMBDA

__all__ = ["Delta", "TexSymbol", "alpha", "lam", "s_", "sigma", "t"]

t = sp.Symbol("t", real=True)
s_ = sp.Symbol("s", real=True)
alpha = sp.Function("alpha", real=True)(t)
sigma = sp.Function("sigma", real=True)(t)
lam = LAMBDA  # an eigenvalue of the data covariance
Delta = sp.Symbol("Delta", positive=True)


class TexSymbol(sp.Symbol):
    """A symbol whose name is its LaTeX (``\\mathbb{E}[x_{1}]``), printed verbatim."""

    def _latex(self, printer) -> str:
        return self.name
