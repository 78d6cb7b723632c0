"""Exact layer: Gaussian mixtures, the catalogue of named mixtures, and
:class:`MixturePath` (mixture + interpolant) with every conditional quantity in closed
form; the :class:`VelocityField` protocol a flow map integrates; the measured residuals
of the path's identities; acceleration and ``Cov(δ | x_t)``. Depends on the symbolic
layer.
"""

from . import mixtures as mixtures
from ._field import VelocityField as VelocityField
from ._identities import continuity_residual as continuity_residual
from ._identities import decomposition_residual as decomposition_residual
from ._identities import score_gradient_residual as score_gradient_residual
from ._identities import spatial_step as spatial_step
from ._identities import time_step as time_step
from ._identities import velocity_decomposition_residual as velocity_decomposition_residual
from ._kinematics import acceleration as acceleration
from ._kinematics import delta_covariance as delta_covariance
from ._kinematics import expected_gamma as expected_gamma
from ._mixture import GaussianMixture as GaussianMixture
from ._path import MixturePath as MixturePath
from ._posterior import PosteriorMixture as PosteriorMixture

__all__ = [
    "GaussianMixture",
    "MixturePath",
    "PosteriorMixture",
    "VelocityField",
    "acceleration",
    "continuity_residual",
    "decomposition_residual",
    "delta_covariance",
    "expected_gamma",
    "mixtures",
    "score_gradient_residual",
    "spatial_step",
    "time_step",
    "velocity_decomposition_residual",
]


def __getattr__(name: str) -> object:
    """``TorchMixturePath`` on first use: importing it imports torch (optional)."""
    if name == "TorchMixturePath":
        from ._torch import TorchMixturePath

        return TorchMixturePath
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
