"""The consistency-model parameterization (PARAM-BOUNDARY).

``f_θ(t, x) = c_skip(t) x + c_out(t) F_θ(t, x)`` with, for data of per-coordinate scale
``σ_d`` and ``c_t = α_t² σ_d² + σ_t²``:

    c_skip(t) = α_t σ_d² / c_t,      c_out(t) = σ_t σ_d / sqrt(c_t).

The expressions are written once, in SymPy
(:func:`cmverify.symbolic.consistency_scalings`, in the equivalent form
``α / (α² + σ²/σ_d²)``, ``σ / √(α² + σ²/σ_d²)``); PARAM-BOUNDARY's derivation checks
those objects, and :func:`boundary_scalings` evaluates the numpy code generated from them
(:func:`~cmverify.symbolic.consistency_scalings_numeric`) at the interpolant's float64
``α_t``, ``σ_t``. The model casts the float64 result to its dtype.

For Gaussian data ``N(0, σ_d² I)`` the exact consistency function is
``f*(t, x) = sqrt(σ_d² / c_t) x``, and ``c_skip`` is the denoiser's linear part ``E[x0 |
x_t = x] = α σ_d² / c_t · x``; ``c_out`` is the posterior standard deviation scale. At
``t = 0``: ``α = 1``, ``σ = 0``, so ``c_skip = 1 / (1 + 0) = 1`` and ``c_out = 0 / 1 = 0``
— both exact in floating point, hence ``f_θ(0, x) = x`` exactly for every network (with
finite output), in float32 and float64. These are the EDM/consistency-model scalings
rewritten in our time convention (data at ``t = 0``) and for any interpolant.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from .._validation import as_real
from ..symbolic import Interpolant, consistency_scalings_numeric

__all__ = ["MLP", "ConsistencyModel", "boundary_scalings"]


#: The range of ``σ_d`` whose square is a positive normal float64.
_SIGMA_DATA_RANGE = (
    float(np.sqrt(np.finfo(np.float64).tiny)),
    float(np.sqrt(np.finfo(np.float64).max)),
)


def _sigma_data(value: object) -> float:
    """``σ_d`` as a float, or a one-line error: a real number whose square is a positive
    normal float (else ``σ²/σ_d²`` is ``0/0`` at ``t = 0``, or ``α² + σ²/σ_d² = 0`` at
    ``t = 1``)."""
    sd = as_real(value, "sigma_data")
    low, high = _SIGMA_DATA_RANGE
    if not low <= sd <= high:
        raise ValueError(
            f"sigma_data must lie in [{low:.4g}, {high:.4g}] (σ_d² a positive normal float), got {sd}"
        )
    return sd


_SCALINGS = consistency_scalings_numeric()


def _scalings(
    interp: Interpolant, t: np.ndarray, sigma_data: float
) -> tuple[np.ndarray, np.ndarray]:
    c = interp.at(t)
    a, s = c.alpha, c.sigma
    with np.errstate(over="ignore"):  # σ²/σ_d² = inf (tiny σ_d): c_skip = c_out = 0
        c_skip, c_out = _SCALINGS(a, s, np.float64(sigma_data))
    return np.asarray(c_skip, dtype=np.float64), np.asarray(c_out, dtype=np.float64)


def boundary_scalings(
    interp: Interpolant, t: np.ndarray, sigma_data: float
) -> tuple[np.ndarray, np.ndarray]:
    """``(c_skip(t), c_out(t))`` as float64 arrays of the shape of ``t``: the code generated
    from :func:`cmverify.symbolic.consistency_scalings` at ``α_t``, ``σ_t`` of
    ``interp`` (see the module docstring). ``sigma_data`` must lie in ``[1.5e-154,
    1.3e154]`` (its square a positive normal float), else ValueError."""
    return _scalings(interp, t, _sigma_data(sigma_data))


class MLP(nn.Module):
    """``F_θ(t, x)``: an MLP on ``[x, Fourier features of t]`` with SiLU activations."""

    def __init__(self, dim: int, width: int = 128, depth: int = 3, n_frequencies: int = 8) -> None:
        super().__init__()
        self.register_buffer(
            "frequencies", math.pi * 2.0 ** torch.arange(n_frequencies, dtype=torch.float32)
        )
        layers: list[nn.Module] = []
        size = dim + 2 * n_frequencies
        for _ in range(depth):
            layers += [nn.Linear(size, width), nn.SiLU()]
            size = width
        layers.append(nn.Linear(size, dim))
        self.net = nn.Sequential(*layers)

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        angles = t[:, None] * self.frequencies.to(x.dtype)
        return self.net(torch.cat([x, torch.sin(angles), torch.cos(angles)], dim=1))


class ConsistencyModel(nn.Module):
    """``f_θ(t, x) = c_skip(t) x + c_out(t) F_θ(t, x)`` with ``t`` of shape ``(n,)``.

    ``network`` is any module ``F_θ(t, x)``; default :class:`MLP`. The scalings are
    :func:`boundary_scalings` (float64 code generated from the SymPy expressions, then cast
    to the model's dtype); ``sigma_data`` as there.
    """

    def __init__(
        self, interp: Interpolant, dim: int, sigma_data: float, network: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.interp = interp
        self.sigma_data = _sigma_data(sigma_data)
        self.network = network if network is not None else MLP(dim)

    def scalings(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c_skip, c_out = _scalings(self.interp, t.detach().cpu().double().numpy(), self.sigma_data)
        as_tensor = lambda v: torch.as_tensor(v, dtype=t.dtype, device=t.device)[:, None]  # noqa: E731
        return as_tensor(c_skip), as_tensor(c_out)

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if t.ndim == 0:
            t = t.expand(x.shape[0])
        c_skip, c_out = self.scalings(t)
        return c_skip * x + c_out * self.network(t, x)
