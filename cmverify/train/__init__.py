"""Train layer: a compact PyTorch trainer for consistency models and flow maps on
Gaussian-mixture data, judged by the exact flow map.

- ``_config``: :class:`TrainConfig` (every field of a run; ``method`` one of
  :data:`METHODS`: ``ct``, ``cd``, ``meanflow``, ``shortcut``);
- ``_model``: ``f_θ(t, x) = c_skip(t) x + c_out(t) F_θ(t, x)`` with ``c_skip(0) = 1``,
  ``c_out(0) = 0`` exactly (PARAM-BOUNDARY), and a small MLP ``F_θ``;
- ``_losses``: consistency training (CT) and distillation (CD) losses;
- ``_flow_nets``: MeanFlow's ``u_θ(z, r, t)`` and shortcut models' ``s_θ(x, τ, d)``;
- ``_meanflow``: MeanFlow's times, JVP target and adaptively weighted loss;
- ``_shortcut``: shortcut models' flow-matching and bootstrap batch and loss;
- ``_setup``: the method's model and exact teacher; ``_flow_eval``: the flow-map methods'
  evaluation (:func:`cmverify.compare.compare_flow_map`, JVP precision);
- ``_trainer``: the training loop (EMA target, Δt curriculum, evaluation by
  :func:`cmverify.compare.compare` or ``compare_flow_map``);
- ``_jvp``: :func:`jvp_precision`, the float32-vs-float64 error of a MeanFlow JVP target
  and the model's tangent against the exact one;
- ``_checkpoint``: the atomic checkpoint written at every evaluation, and
  :class:`TrainingInterrupted`; ``_clock``: elapsed time and ETA of the progress lines.

Needs ``torch`` (``pip install cmverify[torch]``). Depends on the compare layer.
"""

from ._checkpoint import TrainingInterrupted as TrainingInterrupted
from ._config import METHODS as METHODS
from ._flow_nets import MeanFlowNet as MeanFlowNet
from ._flow_nets import ShortcutNet as ShortcutNet
from ._jvp import JvpPrecision as JvpPrecision
from ._jvp import jvp_precision as jvp_precision
from ._model import MLP as MLP
from ._model import ConsistencyModel as ConsistencyModel
from ._model import boundary_scalings as boundary_scalings
from ._trainer import TrainConfig as TrainConfig
from ._trainer import TrainResult as TrainResult
from ._trainer import train as train

__all__ = [
    "METHODS",
    "MLP",
    "ConsistencyModel",
    "JvpPrecision",
    "MeanFlowNet",
    "ShortcutNet",
    "TrainConfig",
    "TrainResult",
    "TrainingInterrupted",
    "boundary_scalings",
    "jvp_precision",
    "train",
]
