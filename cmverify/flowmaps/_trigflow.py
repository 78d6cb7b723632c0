"""The TrigFlow kind (Lu & Song 2024, sCM): the scaled path and the exact network
(flowmaps floor).

TrigFlow's process on data ``q`` is ``x_τ = cos τ x0 + sin τ z``, ``z ~ N(0, σ_d² I)``,
``τ ∈ [0, π/2]``; its network ``F(x̂, τ)`` is fed ``x̂ = x/σ_d`` and its consistency
function is ``f(x, τ) = cos τ x − sin τ σ_d F(x/σ_d, τ) = X^TF_{τ→0}(x)``. Divided by
``σ_d``, ``x_τ/σ_d = cos τ (x0/σ_d) + sin τ ε`` is our ``trig`` path at ``t = 2τ/π`` for the
data scaled by ``1/σ_d``: the path ``P̂`` of :func:`trigflow_path`. Hence
``X^TF_{τ→0}(x) = σ_d X̂_{t→0}(x/σ_d)`` with ``X̂`` the flow of ``P̂``. It equals the flow of
the user's own ``trig`` path (noise std 1) only when ``σ_d = 1``.
"""

from __future__ import annotations

import numpy as np

from ..exact import GaussianMixture, MixturePath
from ..symbolic import interpolants
from ._kinds import as_network_times, as_sigma_data
from ._network import ExactNetwork

__all__ = ["TrigFlowNetwork", "trigflow_path"]


def trigflow_path(
    path_or_mixture: MixturePath | GaussianMixture, sigma_data: float = 0.5
) -> MixturePath:
    """The path ``P̂`` on which TrigFlow's network is our ``trig`` path: the data scaled by
    ``1/σ_d`` (``GaussianMixture(w, μ/σ_d, Σ/σ_d²)``) under ``interpolants.trig()``.

    Arguments:
        path_or_mixture: the data ``q`` in the user's coordinates: a
            :class:`~cmverify.exact.GaussianMixture`, or a
            :class:`~cmverify.exact.MixturePath` with the ``trig`` interpolant (its
            mixture is taken; another interpolant is a ``ValueError``).
        sigma_data: TrigFlow's ``σ_d`` (> 0, default 0.5).

    The TrigFlow consistency function is then
    ``f(x, τ) = σ_d · ReferenceFlow(P̂).map(x/σ_d, 2τ/π, 0)`` — the ground truth of a
    TrigFlow network wrapped by :func:`as_flow_map` (``.map(x, s, 0)`` with ``τ = π s/2``).
    """
    sigma_data = as_sigma_data(sigma_data)
    if isinstance(path_or_mixture, MixturePath):
        if path_or_mixture.interpolant != interpolants.trig():
            raise ValueError(
                "the trigflow kind needs a path with the trig interpolant (interpolants.trig(): "
                f"TrigFlow's x_τ = cos τ x0 + sin τ z), got {path_or_mixture.interpolant!r}"
            )
        mixture = path_or_mixture.mixture
    elif isinstance(path_or_mixture, GaussianMixture):
        mixture = path_or_mixture
    else:
        raise TypeError(
            "path_or_mixture must be a MixturePath or a GaussianMixture, got "
            f"{type(path_or_mixture).__name__}"
        )
    scaled = GaussianMixture(
        mixture.weights, mixture.means / sigma_data, mixture.covs / sigma_data**2
    )
    return MixturePath(scaled, interpolants.trig())


class TrigFlowNetwork(ExactNetwork):
    """Exact TrigFlow network ``F(x̂, τ)`` (Lu & Song 2024, sCM), ``x̂ = x/σ_d``,
    ``τ ∈ [0, π/2]``; :attr:`path` is the user's (``trig``) path, :attr:`flow` the flow of
    the scaled path ``P̂ = trigflow_path(path, σ_d)``.

    - exact: with ``t = 2τ/π`` and ``X̂`` the flow of ``P̂``,
      ``F(x̂, τ) = (cos τ x̂ − X̂_{t→0}(x̂)) / sin τ``, computed without cancellation as
      ``F = −tan(τ/2) x̂ + (t / sin τ) ū`` with ``ū = (X̂_{t→0}(x̂) − x̂)/(0 − t)`` the
      average velocity on ``P̂``; at ``τ = 0`` the limit ``(2/π) v̂(0, x̂)`` (zero for the
      ``trig`` path, whose velocity vanishes at ``t = 0``);
    - network → ours: ``f(x, τ) = cos τ x − sin τ σ_d F(x/σ_d, τ) = X^TF_{τ→0}(x)
      = σ_d X̂_{t→0}(x/σ_d)``, the flow map ``X_{s→0}`` (``s = 2τ/π``) of the process
      ``α_s x0 + σ_d σ_s ε`` — the user's own path's ``X_{s→0}`` only when ``σ_d = 1``.

    ``F`` is not the velocity (except at ``τ = 0``).
    """

    kind = "trigflow"

    def __call__(self, x_hat: object, tau: object) -> np.ndarray:
        x_hat = self._points(x_hat, "x_hat")
        tau = as_network_times(tau, x_hat.shape[0], "tau", 0.0, np.pi / 2)
        t = np.minimum(tau * (2.0 / np.pi), 1.0)
        average = self.flow.average_velocity(x_hat, t, 0.0)
        sin = np.sin(tau)
        zero = tau == 0.0
        scale = np.where(zero, 2.0 / np.pi, t / np.where(zero, 1.0, sin))
        return -np.tan(tau / 2)[:, None] * x_hat + scale[:, None] * average
