"""Train layer: a compact PyTorch trainer for consistency models on Gaussian-mixture data.

- ``_model``: ``f_θ(t, x) = c_skip(t) x + c_out(t) F_θ(t, x)`` with ``c_skip(0) = 1``,
  ``c_out(0) = 0`` exactly (PARAM-BOUNDARY), and a small MLP ``F_θ``;
- ``_losses``: consistency training (CT) and distillation (CD) losses;
- ``_trainer``: the training loop (EMA target, Δt curriculum, evaluation by
  :func:`cmverify.compare.compare`) and :class:`TrainConfig`;
- ``_jvp``: :func:`jvp_precision`, the float32-vs-float64 error of a MeanFlow JVP target
  and the model's tangent against the exact one;
- ``_checkpoint``: the atomic checkpoint written at every evaluation, and
  :class:`TrainingInterrupted`; ``_clock``: elapsed time and ETA of the progress lines.

Needs ``torch`` (``pip install cmverify[torch]``). Depends on the compare layer.
"""

from ._checkpoint import TrainingInterrupted as TrainingInterrupted
from ._jvp import JvpPrecision as JvpPrecision
from ._jvp import jvp_precision as jvp_precision
from ._model import MLP as MLP
from ._model import ConsistencyModel as ConsistencyModel
from ._model import boundary_scalings as boundary_scalings
from ._trainer import TrainConfig as TrainConfig
from ._trainer import TrainResult as TrainResult
from ._trainer import train as train

__all__ = [
    "MLP",
    "ConsistencyModel",
    "JvpPrecision",
    "TrainConfig",
    "TrainResult",
    "TrainingInterrupted",
    "boundary_scalings",
    "jvp_precision",
    "train",
]
