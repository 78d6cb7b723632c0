"""The derivations, one per claim that has one, in catalogue order (:data:`DERIVATIONS`)."""

from __future__ import annotations

import functools

from ..claims import CATALOGUE
from ._derivation import Derivation
from ._documents_conventions import conventions
from ._documents_ct import ct_gauss, ct_global, ct_local, swap_local
from ._documents_flowmaps import flowmap_identities, meanflow_identity
from ._documents_losses import pseudo_huber, scm_tangent
from ._documents_path import flow_gauss, flow_velocity, int_boundary, param_boundary
from ._documents_targets import meanflow_floor, shortcut_base

__all__ = ["DERIVATIONS", "derivations"]

#: Claim ID → the function that builds its :class:`Derivation` (runs SymPy), in the order
#: of :data:`cmverify.claims.CATALOGUE`; claims measured only (e.g. EULER-LOCAL) have none.
DERIVATIONS = {
    "INT-BOUNDARY": int_boundary,
    "FLOW-VELOCITY": flow_velocity,
    "FLOW-GAUSS": flow_gauss,
    "SWAP-LOCAL": swap_local,
    "CT-LOCAL": ct_local,
    "CT-GLOBAL": ct_global,
    "CT-GAUSS": ct_gauss,
    "PARAM-BOUNDARY": param_boundary,
    "FLOWMAP-IDENTITIES": flowmap_identities,
    "MEANFLOW-IDENTITY": meanflow_identity,
    "MEANFLOW-FLOOR": meanflow_floor,
    "SHORTCUT-BASE": shortcut_base,
    "SCM-TANGENT": scm_tangent,
    "PSEUDO-HUBER": pseudo_huber,
    "CONVENTIONS": conventions,
}


@functools.cache
def derivations() -> tuple[Derivation, ...]:
    """All derivations, in catalogue order (ValueError for an ID of :data:`DERIVATIONS`
    not in the catalogue, or a builder filed under another claim's ID)."""
    unknown = [claim for claim in DERIVATIONS if claim not in CATALOGUE]
    if unknown:
        raise ValueError(f"DERIVATIONS has claims not in cmverify.claims.CATALOGUE: {unknown}")
    built = []
    for claim in (c for c in CATALOGUE if c in DERIVATIONS):
        derivation = DERIVATIONS[claim]()
        if derivation.claim != claim:
            raise ValueError(f"DERIVATIONS[{claim!r}] builds the derivation of {derivation.claim}")
        built.append(derivation)
    return tuple(built)
