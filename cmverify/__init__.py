"""cmverify: the ground truth that consistency-model work is checked against.

Layers (each depends only on those above it; see DESIGN.md):

- symbolic: :mod:`cmverify.symbolic`, :mod:`cmverify.interpolant`, :mod:`cmverify.numdiff`
- exact: :mod:`cmverify.mixture`, :mod:`cmverify.mixtures`, :mod:`cmverify.path`,
  :mod:`cmverify.identities`
- reference: :mod:`cmverify.flow` (:class:`ReferenceFlow`), :mod:`cmverify.batched_rk`,
  :mod:`cmverify.gaussian_flow`, :mod:`cmverify.quantile`

Conventions: data at ``t = 0``, noise at ``t = 1``; ``x_t = α_t x0 + σ_t x1``;
argument order ``(t, x)`` with ``x`` of shape ``(n, d)``.
"""

from . import mixtures
from .batched_rk import SolverFailure
from .flow import FlowSolution, ReferenceFlow
from .gaussian_flow import gaussian_flow_map
from .interpolant import Interpolant
from .mixture import GaussianMixture
from .path import MixturePath, PosteriorMixture
from .quantile import quantile_flow_map

__version__ = "0.1.0"

__all__ = [
    "FlowSolution",
    "GaussianMixture",
    "Interpolant",
    "MixturePath",
    "PosteriorMixture",
    "ReferenceFlow",
    "SolverFailure",
    "__version__",
    "gaussian_flow_map",
    "mixtures",
    "quantile_flow_map",
]
