"""cmverify: the ground truth that consistency-model work is checked against.

Layers (each depends only on those above it; see DESIGN.md):

- symbolic: :mod:`cmverify.symbolic`, :mod:`cmverify.interpolant`, :mod:`cmverify.numdiff`
- exact: :mod:`cmverify.mixture`, :mod:`cmverify.mixtures`, :mod:`cmverify.path`,
  :mod:`cmverify.identities`

Conventions: data at ``t = 0``, noise at ``t = 1``; ``x_t = α_t x0 + σ_t x1``;
argument order ``(t, x)`` with ``x`` of shape ``(n, d)``.
"""

from . import mixtures
from .interpolant import Interpolant
from .mixture import GaussianMixture
from .path import MixturePath, PosteriorMixture

__version__ = "0.1.0"

__all__ = [
    "GaussianMixture",
    "Interpolant",
    "MixturePath",
    "PosteriorMixture",
    "__version__",
    "mixtures",
]
