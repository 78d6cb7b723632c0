"""Testing layer: what a user's test suite needs to check models and claims.

- :func:`assert_matches_reference`: a model ``f(t, x)`` against the exact consistency
  function, failing with the comparison report;
- :func:`assert_flow_map_matches`: a flow-map network of any kind against ``X_{s→t}``;
- :func:`assert_velocity_matches`: a velocity-type model (velocity, ``x0``, noise or
  score; either time convention) against the exact velocity;
- :func:`named_path`: a :class:`~cmverify.exact.MixturePath` from catalogue names;
- :mod:`cmverify.testing.strategies` (also ``cmverify.strategies``): Hypothesis
  strategies for mixtures, interpolants, paths, times and points;
- the pytest plugin (``cmverify.testing._plugin``, entry point ``pytest11``): fixtures.

The pytest plugin imports this package in every pytest run of an environment that has
cmverify installed, so names are imported on first access (PEP 562), like ``cmverify``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import strategies
    from ._assertions import assert_matches_reference, named_path
    from ._flow_map_assertions import assert_flow_map_matches
    from ._velocity_assertions import assert_velocity_matches

#: Public name → the private module that defines it (``None``: a public submodule).
_LAZY = {
    "assert_matches_reference": "_assertions",
    "assert_flow_map_matches": "_flow_map_assertions",
    "assert_order": "_order",
    "assert_velocity_matches": "_velocity_assertions",
    "named_path": "_assertions",
    "strategies": None,
}


def __getattr__(name: str) -> Any:
    """Import a public name of :mod:`cmverify.testing` on first access."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    source = _LAZY[name]
    module = importlib.import_module(f".{source or name}", __name__)
    value = module if source is None else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "assert_flow_map_matches",
    "assert_matches_reference",
    "assert_order",
    "assert_velocity_matches",
    "named_path",
    "strategies",
]
