"""What a velocity-type network predicts, and its conversion to the velocity ``v(t, x)``.

With ``x = x_t = α x0 + σ x1``, ``D = E[x0 | x_t]`` (the denoiser), ``ε̂ = E[x1 | x_t]``
(the expected noise), ``s = ∇ log p_t = −ε̂/σ`` (the score) and ``W = α σ̇ − α̇ σ`` (the
interpolant's ``wronskian``), the path's identities ``x = α D + σ ε̂`` and
``v = α̇ D + σ̇ ε̂`` give

- ``velocity``: ``v`` itself;
- ``x0``: ``v = (σ̇ x − W D) / σ`` — undefined at ``σ = 0`` (``t = 0``, where ``D = x``
  carries no information about ``v``);
- ``noise``: ``v = (α̇ x + W ε̂) / α`` — undefined at ``α = 0`` (``t = 1``, where ``ε̂ = x``
  says nothing of the data's mean);
- ``score``: ``v = (α̇ x − W σ s) / α`` — undefined at ``t = 1`` likewise, and
  uninformative at ``t = 0``: ``σ = 0`` multiplies the score away, so every network
  output would give ``v = α̇ x / α`` and score zero error; that time is left out too.

Time conventions: ``data_at_0`` (cmverify's: data at ``t = 0``) or ``noise_at_0`` (the
libraries whose time runs from noise to data, e.g. flow_matching and torchcfm): their
network at ``τ`` is ours at ``t = 1 − τ``, and their velocity is ``−v(1 − τ, x)`` (the
other predictions keep their sign).
"""

from __future__ import annotations

import numpy as np

from ..symbolic import Interpolant

__all__ = [
    "PARAMETERIZATIONS",
    "TIME_CONVENTIONS",
    "check_times",
    "model_time",
    "to_velocity",
    "usable_interval",
]

PARAMETERIZATIONS = ("velocity", "x0", "noise", "score")
TIME_CONVENTIONS = ("data_at_0", "noise_at_0")

#: Where each parameterization does not determine ``v``: the excluded endpoints.
_SINGULAR: dict[str, tuple[float, ...]] = {
    "velocity": (),
    "x0": (0.0,),
    "noise": (1.0,),
    "score": (0.0, 1.0),
}
#: How far the induced flow stays from an excluded endpoint.
ENDPOINT_MARGIN = 1e-3


def check_choice(value: object, name: str, choices: tuple[str, ...]) -> str:
    """``value`` if it is one of ``choices``, else a ``ValueError`` listing them."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return value


def check_times(parameterization: str, times: np.ndarray) -> None:
    """``ValueError`` for a time where ``parameterization`` does not determine ``v``, or
    within :data:`ENDPOINT_MARGIN` of it (as the induced flow keeps away from it)."""
    for singular in _SINGULAR[parameterization]:
        near = np.abs(times - singular) < ENDPOINT_MARGIN
        if not np.any(near):
            continue
        where = "σ_t = 0" if singular == 0.0 else "α_t = 0"
        first = float(times[near][0])
        at = "at" if first == singular else f"near (t = {first!r}, within {ENDPOINT_MARGIN:g} of)"
        raise ValueError(
            f"parameterization {parameterization!r} does not determine the velocity {at} "
            f"t = {singular:g} ({where}: the conversion divides by it, so the model's output "
            "is amplified beyond its accuracy or makes no difference); leave that time out"
        )


def default_times(parameterization: str) -> tuple[float, ...]:
    """``0, 0.1, …, 1`` without the endpoint the parameterization cannot use."""
    grid = tuple(float(t) for t in np.round(np.linspace(0.0, 1.0, 11), 12))
    return tuple(t for t in grid if t not in _SINGULAR[parameterization])


def usable_interval(parameterization: str) -> tuple[float, float]:
    """``(start, end)`` of the induced flow (from noise towards data): ``(1, 0)``, with
    :data:`ENDPOINT_MARGIN` kept from an endpoint where ``v`` is undetermined."""
    singular = _SINGULAR[parameterization]
    start = 1.0 - ENDPOINT_MARGIN if 1.0 in singular else 1.0
    end = ENDPOINT_MARGIN if 0.0 in singular else 0.0
    return start, end


def model_time(t: np.ndarray | float, time_convention: str) -> np.ndarray | float:
    """The time the network is called with for our ``t``."""
    return t if time_convention == "data_at_0" else 1.0 - np.asarray(t, dtype=np.float64)


def to_velocity(
    parameterization: str,
    time_convention: str,
    out: np.ndarray,
    t: np.ndarray | float,
    x: np.ndarray,
    interpolant: Interpolant,
) -> np.ndarray:
    """The velocity ``v(t, x)`` (shape ``(n, d)``) that the network output ``out`` (in its
    own parameterization and time convention) stands for (module docstring). ``t`` one
    time or one per row, validated, away from the parameterization's singular endpoint."""
    if parameterization == "velocity":
        return -out if time_convention == "noise_at_0" else out
    at = interpolant.at_trusted(np.asarray(t, dtype=np.float64))

    def col(values: np.ndarray) -> np.ndarray:
        return np.reshape(values, (-1, 1))

    alpha, sigma, dalpha = col(at.alpha), col(at.sigma), col(at.dalpha)
    dsigma, w = col(at.dsigma), col(at.wronskian)
    with np.errstate(over="ignore", invalid="ignore"):
        if parameterization == "x0":
            return (dsigma * x - w * out) / sigma
        if parameterization == "noise":
            return (dalpha * x + w * out) / alpha
        return (dalpha * x - w * sigma * out) / alpha
