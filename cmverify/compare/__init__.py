"""Compare layer: a user's model ``f(t, x)`` against the exact consistency function.

- ``_compare``: :func:`compare`, in named steps (grid, per-time errors, boundary, samplers);
- ``_reference``: :class:`ReferenceSet`, the exact side, cached by the path's value;
- ``_report``: the report data (:class:`Comparison` and its parts), JSON both ways,
  :meth:`Comparison.save`; ``_markdown``: its Markdown; ``_reading``: reading it back
  (``from_json``/``from_dict``), every field checked and named when malformed;
- ``_statistics``: :func:`energy_distance` and the overflow-safe error statistics;
- ``_models``: :class:`ModelAdapter` (numpy or torch, ``(t, x)`` or ``(x, t)``) and
  :class:`ModelFailure`;
- ``_plots``: the figures, drawn from explicit arguments;
- ``_velocity``: :func:`compare_velocity` (velocity, ``x0``, noise or score models against
  the exact velocity: errors, the loss split against the exact floor, the induced flow),
  with ``_parameterizations`` (the conversions), ``_velocity_report`` and
  ``_plots_velocity``;
- ``_flow_map``: :func:`compare_flow_map` (a flow-map network of any
  :mod:`cmverify.flowmaps` kind against ``X_{s→t}``: per-pair errors, its own semigroup
  and Eulerian residuals, ``k``-step chains), with ``_flow_map_report`` and
  ``_plots_flow_map``.

Depends on the reference layer.
"""

from ._compare import compare as compare
from ._flow_map import compare_flow_map as compare_flow_map
from ._flow_map import default_pairs as default_pairs
from ._flow_map_report import ChainReport as ChainReport
from ._flow_map_report import FlowMapComparison as FlowMapComparison
from ._flow_map_report import PairFailure as PairFailure
from ._flow_map_report import PairReport as PairReport
from ._models import FAILURE_KINDS as FAILURE_KINDS
from ._models import TIME_FORMATS as TIME_FORMATS
from ._models import ModelAdapter as ModelAdapter
from ._models import ModelError as ModelError
from ._models import ModelFailure as ModelFailure
from ._reference import ReferenceSet as ReferenceSet
from ._report import METRICS as METRICS
from ._report import Comparison as Comparison
from ._report import Exceedance as Exceedance
from ._report import FigureData as FigureData
from ._report import SampleReport as SampleReport
from ._report import Threshold as Threshold
from ._report import TimeReport as TimeReport
from ._statistics import energy_distance as energy_distance
from ._velocity import compare_velocity as compare_velocity
from ._velocity_report import InducedFlowReport as InducedFlowReport
from ._velocity_report import VelocityComparison as VelocityComparison
from ._velocity_report import VelocityTimeReport as VelocityTimeReport

__all__ = [
    "FAILURE_KINDS",
    "METRICS",
    "TIME_FORMATS",
    "ChainReport",
    "Comparison",
    "Exceedance",
    "FigureData",
    "FlowMapComparison",
    "InducedFlowReport",
    "ModelAdapter",
    "ModelError",
    "ModelFailure",
    "PairFailure",
    "PairReport",
    "ReferenceSet",
    "SampleReport",
    "Threshold",
    "TimeReport",
    "VelocityComparison",
    "VelocityTimeReport",
    "compare",
    "compare_flow_map",
    "compare_velocity",
    "default_pairs",
    "energy_distance",
]
