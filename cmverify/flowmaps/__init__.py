"""Flow-maps floor: every published flow-map network in cmverify's convention.

Since 2024 most one- and few-step generators learn a flow map ``X_{s→t}`` for two times
(MeanFlow, shortcut models, CTM, Align Your Flow, flow map matching) or a TrigFlow
consistency function. For each kind of network (:data:`KINDS`):

- :func:`exact` builds the exact network — what a perfectly trained one computes — as a
  numpy callable with the method's own signature, from a
  :class:`~cmverify.reference.ReferenceFlow`;
- :func:`as_flow_map` wraps a user's network (numpy callable or ``torch.nn.Module``) into
  an object whose ``.map(x, s, t)`` is ``X_{s→t}(x)`` in our convention, refusing the
  pairs the kind cannot express;
- :func:`trigflow_path` gives the scaled path on which TrigFlow's network is our ``trig``
  path; :func:`ctm_time` the time ``t`` of CTM's ``ς = σ_t/α_t``.

Our convention: data ``x0`` at ``t = 0``, noise ``x1 ~ N(0, I)`` at ``t = 1``,
``x_t = α_t x0 + σ_t x1``. Modules: ``_kinds`` (the kinds, conventions, shared checks),
``_network`` (the exact networks' base), ``_exact`` (the exact networks and
:func:`exact`), ``_ctm`` (the VE change of variables), ``_trigflow``, ``_calling``
(defensive calls of users' networks), ``_wrap`` (:func:`as_flow_map`), ``_tangent``
(the Eulerian residual of a torch network by ``torch.func.jvp``). Depends on the
reference floor.
"""

from ._calling import InvalidOutput as InvalidOutput
from ._ctm import ratio_time as ctm_time
from ._exact import exact as exact
from ._kinds import CONVENTIONS as CONVENTIONS
from ._kinds import KIND_INFO as KIND_INFO
from ._kinds import KINDS as KINDS
from ._kinds import KindInfo as KindInfo
from ._network import ExactNetwork as ExactNetwork
from ._trigflow import trigflow_path as trigflow_path
from ._wrap import FlowMap as FlowMap
from ._wrap import as_flow_map as as_flow_map

__all__ = [
    "CONVENTIONS",
    "KINDS",
    "KIND_INFO",
    "ExactNetwork",
    "FlowMap",
    "InvalidOutput",
    "KindInfo",
    "as_flow_map",
    "ctm_time",
    "exact",
    "trigflow_path",
]
