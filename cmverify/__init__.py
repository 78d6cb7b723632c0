"""cmverify: the ground truth that consistency-model work is checked against.

The package is built in floors (:data:`LAYERS`, lowest first); a subpackage imports only
from its own floor and those below it, and ``tests/test_layers.py`` checks every module
against this table:

- ``symbolic``: interpolants as SymPy expressions, derivations, finite-difference stencils;
- ``exact``: Gaussian mixtures and :class:`MixturePath`, everything in closed form;
- ``reference``: per-trajectory ODE flow maps (:class:`ReferenceFlow`), closed-form
  flow maps, quadrature, order fitting, the multistep sampler;
- ``flowmaps``: every flow-map network kind (MeanFlow, shortcut, CTM, TrigFlow, …): its
  exact network and its conversion to ``X_{s→t}`` in our convention;
- ``loss_floors``: the irreducible part of training losses (flow matching, …), exactly;
- ``claims``: the claim catalogue (``claims.CATALOGUE``), each claim a measurement;
- ``proofs``: the derivation of each claim, every step checked by SymPy (they cite the
  catalogue, so they sit above it; they compute with the symbolic floor only);
- ``compare``: a user's model against the exact consistency function;
- ``train``: the compact PyTorch trainer;
- ``testing``: assertions, Hypothesis strategies and the pytest plugin.

At the root: ``cli`` (the command line), ``_legacy`` (old import paths) and private
helpers (``_validation``, ``_threads``, ``_io``, ``_memory``) that belong to no floor.

Conventions: data at ``t = 0``, noise at ``t = 1``; ``x_t = α_t x0 + σ_t x1``;
argument order ``(t, x)`` with ``x`` of shape ``(n, d)``.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for type checkers; at run time each name is imported on first access
    from .compare import compare_flow_map, compare_velocity
    from .exact import GaussianMixture, MixturePath, PosteriorMixture, VelocityField, mixtures
    from .reference import (
        AccuracyWarning,
        FlowSolution,
        ReferenceFlow,
        SolverFailure,
        gaussian_flow_map,
        quantile_flow_map,
        reference_pairs,
    )
    from .symbolic import Interpolant, interpolants

from . import _legacy

_legacy.install()

__version__ = "0.1.0"

#: The floors of the package, lowest first (DESIGN.md's layer table, one entry per
#: subpackage). A module may import from its own floor and those listed before it.
LAYERS = (
    "symbolic",
    "exact",
    "reference",
    "flowmaps",
    "loss_floors",
    "claims",
    "proofs",
    "compare",
    "train",
    "testing",
)

#: Public name → the subpackage that exports it. Importing ``cmverify`` imports none of
#: them, nor NumPy, SciPy or SymPy: the pytest plugin (``cmverify.testing._plugin``) is
#: loaded by every pytest run of an environment that has
#: cmverify installed and must stay cheap. ``cmverify.<submodule>`` works the same way.
_LAZY = {
    "interpolants": "symbolic",
    "mixtures": "exact",
    "SolverFailure": "reference",
    "AccuracyWarning": "reference",
    "FlowSolution": "reference",
    "ReferenceFlow": "reference",
    "gaussian_flow_map": "reference",
    "Interpolant": "symbolic",
    "GaussianMixture": "exact",
    "MixturePath": "exact",
    "PosteriorMixture": "exact",
    "VelocityField": "exact",
    "quantile_flow_map": "reference",
    "reference_pairs": "reference",
    "compare_velocity": "compare",
    "compare_flow_map": "compare",
}


def __getattr__(name: str) -> Any:
    """Import a public name (or a submodule) of cmverify on first access (PEP 562)."""
    legacy = _legacy.ALIASES.get(f"{__name__}.{name}")
    if legacy is not None and legacy[1] is not None:  # warn here, at the caller's line
        import warnings

        warnings.warn(
            f"{__name__}.{name} is deprecated and will be removed; import from {legacy[1]}",
            DeprecationWarning,
            stacklevel=2,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return importlib.import_module(f"{__name__}.{name}")
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
    "VelocityField",
    "__version__",
    "compare_flow_map",
    "compare_velocity",
    "gaussian_flow_map",
    "interpolants",
    "mixtures",
    "quantile_flow_map",
    "reference_pairs",
]
