"""The consistency-model parameterization (PARAM-BOUNDARY).

``f_θ(t, x) = c_skip(t) x + c_out(t) F_θ(t, x)`` with, for data of per-coordinate scale
``σ_d`` and ``c_t = α_t² σ_d² + σ_t²``:

    c_skip(t) = α_t σ_d² / c_t,      c_out(t) = σ_t σ_d / sqrt(c_t).

For Gaussian data ``N(0, σ_d² I)`` the exact consistency function is
``f*(t, x) = sqrt(σ_d² / c_t) x``, and ``c_skip`` is the denoiser's linear part ``E[x0 |
x_t = x] = α σ_d² / c_t · x``; ``c_out`` is the posterior standard deviation scale. At
``t = 0``: ``α = 1``, ``σ = 0``, so ``c_skip = σ_d² / σ_d² = 1`` and ``c_out = 0`` — both
exact in floating point, hence ``f_θ(0, x) = x`` exactly for every network. These are
the EDM/consistency-model scalings rewritten in our time convention (data at ``t = 0``)
and for any interpolant.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ..interpolant import Interpolant

__all__ = ["MLP", "ConsistencyModel", "boundary_scalings"]


def boundary_scalings(
    interp: Interpolant, t: np.ndarray, sigma_data: float
) -> tuple[np.ndarray, np.ndarray]:
    """``(c_skip(t), c_out(t))`` as float64 arrays (see the module docstring)."""
    a, s = interp.alpha(t), interp.sigma(t)
    c = a * a * sigma_data**2 + s * s
    return a * sigma_data**2 / c, s * sigma_data / np.sqrt(c)


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

    ``network`` is any module ``F_θ(t, x)``; default :class:`MLP`. The scalings come from
    the interpolant's generated numerics (float64, then cast to the model's dtype).
    """

    def __init__(
        self, interp: Interpolant, dim: int, sigma_data: float, network: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.interp = interp
        self.sigma_data = float(sigma_data)
        self.network = network if network is not None else MLP(dim)

    def scalings(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c_skip, c_out = boundary_scalings(
            self.interp, t.detach().cpu().double().numpy(), self.sigma_data
        )
        as_tensor = lambda v: torch.as_tensor(v, dtype=t.dtype, device=t.device)[:, None]  # noqa: E731
        return as_tensor(c_skip), as_tensor(c_out)

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if t.ndim == 0:
            t = t.expand(x.shape[0])
        c_skip, c_out = self.scalings(t)
        return c_skip * x + c_out * self.network(t, x)
