"""Loss floors: the irreducible part of training losses, exactly (loss-floors floor).

- ``_flow_matching``: :func:`flow_matching` — ``E ‖v_c − v(t, x_t)‖²``, the flow-matching
  loss of the exact velocity; a model's loss minus the floor is its excess error.

Depends on the exact and reference floors.
"""

from ._flow_matching import FloorQuadrature as FloorQuadrature
from ._flow_matching import flow_matching as flow_matching
from ._flow_matching import flow_matching_quadrature as flow_matching_quadrature

__all__ = ["FloorQuadrature", "flow_matching", "flow_matching_quadrature"]
