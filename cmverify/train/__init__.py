"""Compact PyTorch trainer for consistency models on Gaussian-mixture data (torch layer).

- :mod:`.model`: ``f_θ(t, x) = c_skip(t) x + c_out(t) F_θ(t, x)`` with ``c_skip(0) = 1``,
  ``c_out(0) = 0`` exactly (PARAM-BOUNDARY), and a small MLP ``F_θ``;
- :mod:`.losses`: consistency training (CT) and distillation (CD) losses;
- :mod:`.trainer`: the training loop (EMA target, Δt curriculum, evaluation by
  :func:`cmverify.compare.compare`) and :class:`TrainConfig`;
- :mod:`.checkpoint`: the atomic checkpoint written at every evaluation.

Needs ``torch`` (``pip install cmverify[torch]``).
"""

from ._model import MLP, ConsistencyModel, boundary_scalings
from ._trainer import TrainConfig, TrainingInterrupted, TrainResult, train

__all__ = [
    "MLP",
    "ConsistencyModel",
    "TrainConfig",
    "TrainResult",
    "TrainingInterrupted",
    "boundary_scalings",
    "train",
]
