"""Old import paths of the flat layout (cmverify ≤ 0.1), kept for one release.

``import cmverify.flow`` and ``from cmverify.path import MixturePath`` still work: a
meta-path finder hands back the module that now lives in a layer subpackage — the same
module object, so ``cmverify.flow is cmverify.reference._flow`` — and warns
(``DeprecationWarning``) with the public path to use instead. The catalogues
``cmverify.mixtures`` and ``cmverify.interpolants`` and the strategies module
``cmverify.strategies`` are public names of the contract (DESIGN.md): they resolve the
same way but without a warning.

A few names of the old modules' ``__all__`` left their module in the move; an old path
that needs them (:data:`EXTRAS`) resolves to a thin module that forwards every other name
to the new module.
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


def _multistep_samples(path, consistency, times, n, rng):
    """The states ``x_{t_0}, …, x_{t_m}`` of the multistep sampler (0.1's
    ``claims.sampling.multistep_samples``; now :func:`cmverify.reference.multistep_sample`)."""
    from .reference import multistep_sample

    x1 = rng.standard_normal((n, path.dim))
    run = multistep_sample(path.interpolant, consistency, times, x1, rng, final=False)
    return list(run.states)


#: Old dotted name → {name: "module:attribute" or a callable} for names of the old
#: module's ``__all__`` that the new module does not hold.
EXTRAS: dict[str, dict[str, object]] = {
    "cmverify.claims.sampling": {"multistep_samples": _multistep_samples},
    "cmverify.proofs.core": {
        "expr_latex": "cmverify.proofs._latex:expr_latex",
        "tex_width": "cmverify.proofs._latex:tex_width",
        "math_latex": "cmverify.proofs._prose:math_latex",
        "markdown_prose": "cmverify.proofs._prose:markdown_prose",
        "latex_prose": "cmverify.proofs._prose:latex_prose",
    },
    "cmverify.train.checkpoint": {"check_writable": "cmverify._io:check_writable"},
}


def _resolve(value: object) -> object:
    if isinstance(value, str):
        module, _, attribute = value.partition(":")
        return getattr(importlib.import_module(module), attribute)
    return value


class _Forwarding(types.ModuleType):
    """An old module path: its extra names, then every name of the new module."""

    def __init__(self, name: str, target: types.ModuleType, extras: dict[str, object]):
        super().__init__(name, target.__doc__)
        self._target = target
        self._extras = extras

    def __getattr__(self, name: str) -> object:
        if name.startswith("__"):
            raise AttributeError(name)
        if name in self._extras:
            return _resolve(self._extras[name])
        return getattr(self._target, name)

    def __dir__(self) -> list[str]:
        return sorted(set(dir(self._target)) | set(self._extras))


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
        if spec.name in EXTRAS:
            self._spec = None
            return _Forwarding(spec.name, module, EXTRAS[spec.name])
        self._spec = module.__spec__
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        # the import system stamped the alias spec on the real module: put its own back
        if self._spec is not None:
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
