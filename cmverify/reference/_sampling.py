"""Samplers and one-step solvers shared by the claims, ``compare`` and the trainer.

The seed's multistep sampler over decreasing times ``t_0 > t_1 > … > t_m``:

    x̂0_i = f(t_i, x_{t_i}),    x_{t_{i+1}} = α_{t_{i+1}} x̂0_i + σ_{t_{i+1}} z_{i+1},

with fresh ``z_{i+1} ~ N(0, I)``; the sample is ``x̂0_m = f(t_m, x_{t_m})``. With the exact
consistency function ``f*`` every ``x_{t_i}`` is distributed as ``p_{t_i}`` (MULTISTEP).

One step of the probability-flow ODE from ``t`` towards the data, ``t → t − h``:

- Euler:  ``x − h v(t, x)``                                       (order 1);
- Heun:   ``x − ½ h [v(t, x) + v(t − h, x − h v(t, x))]``          (order 2).

Both take any array type with ``+``, ``−`` and ``*`` (NumPy or torch), ``t`` a float or
an array broadcastable against ``x`` (``(n, 1)`` for per-row times).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validation import as_times
from ..symbolic import Interpolant

__all__ = ["MultistepRun", "euler_step", "heun_step", "multistep_sample", "multistep_times"]

#: ``f(t, x)`` or ``v(t, x)`` with ``x`` of shape ``(n, d)``.
Field = Callable[[Any, Any], Any]


def euler_step(velocity: Field, t: Any, h: Any, x: Any) -> Any:
    """``x − h v(t, x)``: one Euler step of ``dx/dt = v`` from ``t`` to ``t − h``."""
    return x - h * velocity(t, x)


def heun_step(velocity: Field, t: Any, h: Any, x: Any, *, t_next: Any = None) -> Any:
    """One Heun (explicit trapezoid) step from ``t`` to ``t_next = t − h``:
    ``x − ½ h [v(t, x) + v(t_next, x − h v(t, x))]``.

    Pass ``t_next`` when ``t − h`` would not round to it (the last step onto ``t = 0``) or
    when ``h`` is shaped for ``x`` (``(n, 1)``) but the velocity takes times ``(n,)``."""
    k1 = velocity(t, x)
    predictor = x - h * k1
    return x - 0.5 * h * (k1 + velocity(t - h if t_next is None else t_next, predictor))


def multistep_times(steps: int) -> tuple[float, ...]:
    """``(1, 1 − 1/steps, …, 1/steps)``: the evenly spaced times of a ``steps``-call sampler."""
    if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    return tuple(float(t) for t in np.linspace(1.0, 0.0, int(steps) + 1)[:-1])


@dataclass(frozen=True)
class MultistepRun:
    """What the sampler visited.

    Attributes:
        times: ``(t_0, …, t_m)``.
        states: ``x_{t_0}, …, x_{t_m}``, each ``(n, d)``.
        samples: ``f(t_m, x_{t_m})``, shape ``(n, d)``; ``None`` when not asked for.
    """

    times: tuple[float, ...]
    states: tuple[np.ndarray, ...]
    samples: np.ndarray | None


def multistep_sample(
    interpolant: Interpolant,
    consistency: Field,
    times: Sequence[float],
    x: np.ndarray,
    noise: np.random.Generator | Sequence[np.ndarray],
    *,
    final: bool = True,
) -> MultistepRun:
    """Run the multistep sampler from ``x = x_{t_0}`` (shape ``(n, d)``).

    ``noise`` is a generator (fresh standard normals) or the ``m = len(times) − 1``
    arrays ``z_1, …, z_m`` to use (``compare`` reuses one draw for every model).
    ``final=False`` skips the last call ``f(t_m, x_{t_m})`` (MULTISTEP tests the states).
    ``times`` must lie in ``[0, 1]`` and decrease strictly; ``x`` and each noise array
    have shape ``(n, d)`` (``ValueError``/``TypeError`` naming the argument otherwise).
    Overflow in ``α x̂0 + σ z`` is not raised here: it gives inf that the next call of a
    checking ``consistency`` (``compare``'s model adapter) reports.
    """
    if not isinstance(interpolant, Interpolant):
        raise TypeError(f"interpolant must be an Interpolant, got {type(interpolant).__name__}")
    if not callable(consistency):
        raise TypeError(f"consistency must be callable f(t, x), got {consistency!r}")
    grid = as_times(times, name="times")
    if grid.ndim != 1 or grid.size == 0 or np.any(np.diff(grid) >= 0):
        raise ValueError(f"times must be a non-empty strictly decreasing sequence, got {times!r}")
    times = tuple(float(t) for t in grid)
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"x must have shape (n, d), got shape {x.shape}")
    if not isinstance(noise, np.random.Generator):
        if isinstance(noise, (str, bytes)) or not isinstance(noise, Sequence | np.ndarray):
            raise TypeError(
                f"noise must be a numpy Generator or a sequence of arrays, got {type(noise).__name__}"
            )
        if len(noise) < len(times) - 1:
            raise ValueError(f"noise holds {len(noise)} arrays, the sampler needs {len(times) - 1}")
        if any(np.shape(z) != x.shape for z in noise[: len(times) - 1]):
            raise ValueError(f"each noise array must have the shape of x, {x.shape}")
    coefficients = interpolant.at_trusted(grid[1:])
    states = [x]
    for i, t in enumerate(times[:-1]):
        x0 = consistency(t, x)
        z = noise.standard_normal(x0.shape) if isinstance(noise, np.random.Generator) else noise[i]
        with np.errstate(over="ignore", invalid="ignore"):
            x = float(coefficients.alpha[i]) * x0 + float(coefficients.sigma[i]) * z
        states.append(x)
    samples = consistency(times[-1], x) if final else None
    return MultistepRun(times, tuple(states), samples)
