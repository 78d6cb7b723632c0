"""Compare layer: a user's model ``f(t, x)`` against the exact consistency
function — reference sets, the report (:class:`Comparison`), model adapters and plots.
Depends on the reference layer.
"""

from ._compare import METRICS as METRICS
from ._compare import Comparison as Comparison
from ._compare import Exceedance as Exceedance
from ._compare import ReferenceSet as ReferenceSet
from ._compare import SampleReport as SampleReport
from ._compare import Threshold as Threshold
from ._compare import TimeReport as TimeReport
from ._compare import compare as compare
from ._compare import energy_distance as energy_distance
from ._models import FAILURE_KINDS as FAILURE_KINDS
from ._models import TIME_FORMATS as TIME_FORMATS
from ._models import ModelAdapter as ModelAdapter
from ._models import ModelError as ModelError
from ._models import ModelFailure as ModelFailure

__all__ = [
    "FAILURE_KINDS",
    "METRICS",
    "TIME_FORMATS",
    "Comparison",
    "Exceedance",
    "ModelAdapter",
    "ModelError",
    "ModelFailure",
    "ReferenceSet",
    "SampleReport",
    "Threshold",
    "TimeReport",
    "compare",
    "energy_distance",
]
