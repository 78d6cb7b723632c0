"""Old import paths of the flat layout (cmverify ≤ 0.1), kept for one release.

``import cmverify.flow`` and ``from cmverify.path import MixturePath`` still work: a
meta-path finder hands back the module that now lives in a layer subpackage — the same
module object, so ``cmverify.flow is cmverify.reference._flow`` — and warns
(``DeprecationWarning``) with the public path to use instead. The catalogues
``cmverify.mixtures`` and ``cmverify.interpolants`` and the strategies module
``cmverify.strategies`` are public names of the contract (DESIGN.md): they resolve the
same way but without a warning.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import warnings

#: Old dotted name → (new dotted name, public replacement or ``None`` for no warning).
ALIASES: dict[str, tuple[str, str | None]] = {
    "cmverify.mixtures": ("cmverify.exact.mixtures", None),
    "cmverify.interpolants": ("cmverify.symbolic.interpolants", None),
    "cmverify.strategies": ("cmverify.testing.strategies", None),
    "cmverify.interpolant": ("cmverify.symbolic._interpolant", "cmverify.symbolic"),
    "cmverify.numdiff": ("cmverify.symbolic._numdiff", "cmverify.symbolic"),
    "cmverify.derivations": ("cmverify.symbolic._derivations", "cmverify.symbolic"),
    "cmverify.mixture": ("cmverify.exact._mixture", "cmverify.exact"),
    "cmverify.path": ("cmverify.exact._path", "cmverify.exact"),
    "cmverify.identities": ("cmverify.exact._identities", "cmverify.exact"),
    "cmverify.kinematics": ("cmverify.exact._kinematics", "cmverify.exact"),
    "cmverify.flow": ("cmverify.reference._flow", "cmverify.reference"),
    "cmverify.batched_rk": ("cmverify.reference._batched_rk", "cmverify.reference"),
    "cmverify.gaussian_flow": ("cmverify.reference._gaussian", "cmverify.reference"),
    "cmverify.quantile": ("cmverify.reference._quantile", "cmverify.reference"),
    "cmverify.quadrature": ("cmverify.reference._quadrature", "cmverify.reference"),
    "cmverify.orders": ("cmverify.reference._orders", "cmverify.reference"),
    "cmverify.results": ("cmverify.claims._results", "cmverify.claims"),
    "cmverify.battery": ("cmverify.claims", "cmverify.claims"),
    "cmverify.claims.local": ("cmverify.claims._local", "cmverify.claims"),
    "cmverify.claims.induction": ("cmverify.claims._induction", "cmverify.claims"),
    "cmverify.claims.losses": ("cmverify.claims._losses", "cmverify.claims"),
    "cmverify.claims.sampling": ("cmverify.claims._multistep", "cmverify.claims"),
    "cmverify.claims.velocity": ("cmverify.claims._velocity", "cmverify.claims"),
    "cmverify.claims.functions": ("cmverify.claims._functions", "cmverify.claims"),
    "cmverify.models": ("cmverify.compare._models", "cmverify.compare"),
    "cmverify.pytest_plugin": ("cmverify.testing._plugin", "cmverify.testing"),
    "cmverify.proofs.core": ("cmverify.proofs._derivation", "cmverify.proofs"),
    "cmverify.proofs.documents": ("cmverify.proofs._documents", "cmverify.proofs"),
    "cmverify.train.model": ("cmverify.train._model", "cmverify.train"),
    "cmverify.train.losses": ("cmverify.train._losses", "cmverify.train"),
    "cmverify.train.trainer": ("cmverify.train._trainer", "cmverify.train"),
    "cmverify.train.checkpoint": ("cmverify.train._checkpoint", "cmverify.train"),
}


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target: str, public: str | None) -> None:
        self.target = target
        self.public = public

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        if self.public is not None:
            warnings.warn(
                f"{spec.name} is deprecated and will be removed; import from {self.public}",
                DeprecationWarning,
                stacklevel=2,
            )
        module = importlib.import_module(self.target)
        self._spec = module.__spec__
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        # the import system stamped the alias spec on the real module: put its own back
        module.__spec__ = self._spec


class _AliasFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname not in ALIASES:
            return None
        new, public = ALIASES[fullname]
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(new, public))


def install() -> None:
    """Put the finder on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, _AliasFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _AliasFinder())
