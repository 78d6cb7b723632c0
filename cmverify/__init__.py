"""cmverify: the ground truth that consistency-model work is checked against.

Layers (each depends only on those above it; see DESIGN.md):

- symbolic: :mod:`cmverify.symbolic`, :mod:`cmverify.interpolant`,
  :mod:`cmverify.interpolants`, :mod:`cmverify.numdiff`
- exact: :mod:`cmverify.mixture`, :mod:`cmverify.mixtures`, :mod:`cmverify.path`,
  :mod:`cmverify.identities`
- reference: :mod:`cmverify.flow` (:class:`ReferenceFlow`), :mod:`cmverify.batched_rk`,
  :mod:`cmverify.gaussian_flow`, :mod:`cmverify.quantile`

Conventions: data at ``t = 0``, noise at ``t = 1``; ``x_t = α_t x0 + σ_t x1``;
argument order ``(t, x)`` with ``x`` of shape ``(n, d)``.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for type checkers; at run time each name is imported on first access
    from . import interpolants, mixtures
    from .batched_rk import SolverFailure
    from .flow import AccuracyWarning, FlowSolution, ReferenceFlow
    from .gaussian_flow import gaussian_flow_map
    from .interpolant import Interpolant
    from .mixture import GaussianMixture
    from .path import MixturePath, PosteriorMixture
    from .quantile import quantile_flow_map

__version__ = "0.1.0"

#: Public name → defining submodule (``None``: the name is the submodule). Importing
#: ``cmverify`` imports none of them, nor NumPy, SciPy or SymPy: the pytest plugin
#: (``cmverify.pytest_plugin``) is loaded by every pytest run of an environment that has
#: cmverify installed and must stay cheap. ``cmverify.<submodule>`` works the same way.
_LAZY = {
    "interpolants": None,
    "mixtures": None,
    "SolverFailure": "batched_rk",
    "AccuracyWarning": "flow",
    "FlowSolution": "flow",
    "ReferenceFlow": "flow",
    "gaussian_flow_map": "gaussian_flow",
    "Interpolant": "interpolant",
    "GaussianMixture": "mixture",
    "MixturePath": "path",
    "PosteriorMixture": "path",
    "quantile_flow_map": "quantile",
}


def __getattr__(name: str) -> Any:
    """Import a public name (or a submodule) of cmverify on first access (PEP 562)."""
    source = _LAZY.get(name, name)
    try:
        module = importlib.import_module(f".{source or name}", __name__)
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{source or name}":
            raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = module if source in (None, name) else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "AccuracyWarning",
    "FlowSolution",
    "GaussianMixture",
    "Interpolant",
    "MixturePath",
    "PosteriorMixture",
    "ReferenceFlow",
    "SolverFailure",
    "__version__",
    "gaussian_flow_map",
    "interpolants",
    "mixtures",
    "quantile_flow_map",
]
