"""Loss floors: the irreducible part of training losses, exactly (loss-floors floor).

- ``_flow_matching``: :func:`flow_matching` — ``E ‖v_c − v(t, x_t)‖²``, the flow-matching
  loss of the exact velocity; a model's loss minus the floor is its excess error.
- ``_meanflow``: :func:`meanflow` — ``E ‖∇X_{t→r}(v_c − v)‖²``, the unweighted MeanFlow
  loss of the exact average velocity.
- ``_rules``: the quadrature rules both use, with their error estimates (adaptive
  Gauss–Legendre in ``d = 1``, doubled tensor Gauss–Hermite in ``d = 2 … 4``).
- ``_reduction``: mixtures whose MeanFlow floor reduces exactly (one shared covariance):
  products of 1-d mixtures to a sum of 1-d floors; means in a subspace that the covariance
  maps into itself to the rules of that subspace's dimension (on a line, of ``d = 1``).
- ``_cubature``: adaptive Genz–Malik cubature over the components' whitened boxes, where
  Gauss–Hermite does not converge (separated modes in ``d ≥ 2``).

Depends on the exact and reference floors.
"""

from ._arguments import MAX_DIM as MAX_DIM
from ._flow_matching import DEFAULT_RTOL as DEFAULT_RTOL
from ._flow_matching import FloorQuadrature as FloorQuadrature
from ._flow_matching import flow_matching as flow_matching
from ._flow_matching import flow_matching_quadrature as flow_matching_quadrature
from ._meanflow import meanflow as meanflow
from ._meanflow import meanflow_quadrature as meanflow_quadrature

__all__ = [
    "DEFAULT_RTOL",
    "MAX_DIM",
    "FloorQuadrature",
    "flow_matching",
    "flow_matching_quadrature",
    "meanflow",
    "meanflow_quadrature",
]
