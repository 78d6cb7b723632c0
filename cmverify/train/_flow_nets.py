"""The flow-map networks of the trainer: MeanFlow's ``u_θ(z, r, t)`` and shortcut models'
``s_θ(x, τ, d)`` (train layer).

Both are MLPs with SiLU activations on the point and Fourier features ``sin(π 2^k a)``,
``cos(π 2^k a)``, ``k = 0 … K − 1``, of their time inputs (``K = n_frequencies``: by
default 4 for MeanFlow, 8 for shortcut, the trainer's defaults), the same body as the
consistency model's :class:`~cmverify.train.MLP`. To load a trainer's ``model.pt``, build
the network with the run's ``config.json``: ``MeanFlowNet(d, width, depth, frequencies)``,
``ShortcutNet(d, sc_d_min, width, depth, frequencies)`` (``d_min`` is also saved, as a
buffer, and restored by ``load_state_dict``).

- :class:`MeanFlowNet`: inputs ``t`` and ``t − r`` (MeanFlow's best choice of
  conditioning); ``X_{t→r}(z) = z − (t − r) u_θ(z, r, t)`` (kind ``"meanflow"`` of
  :mod:`cmverify.flowmaps`, ``time_inputs="r,t"``);
- :class:`ShortcutNet`: inputs ``τ = 1 − t`` and the step's level ``log2(1/d) / (K + 1)``
  (``d = 2^-k``, ``k = 0 … K``, ``d_min = 2^-K``; ``d = 0`` is level ``K + 1``), as the
  released code embeds the step's level rather than ``d``;
  ``X_{t→t−d}(x) = x + d s_θ(x, 1 − t, d)`` (kind ``"shortcut"``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["MeanFlowNet", "ShortcutNet", "fourier", "mlp_body"]


def mlp_body(size: int, dim: int, width: int, depth: int) -> nn.Sequential:
    """``depth`` SiLU layers of ``width`` from ``size`` inputs, then a linear map to ``dim``."""
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Linear(size, width), nn.SiLU()]
        size = width
    layers.append(nn.Linear(size, dim))
    return nn.Sequential(*layers)


def fourier(a: torch.Tensor, frequencies: torch.Tensor) -> torch.Tensor:
    """``[sin(ω a), cos(ω a)]`` per row: shape ``(n, 2 len(ω))`` for ``a`` of shape ``(n,)``."""
    angles = a[:, None] * frequencies.to(a.dtype)
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


def _rows(a: torch.Tensor, n: int) -> torch.Tensor:
    return a.expand(n) if a.ndim == 0 else a


class _TimeMLP(nn.Module):
    def __init__(self, dim: int, n_times: int, width: int, depth: int, n_frequencies: int) -> None:
        super().__init__()
        self.register_buffer(
            "frequencies", math.pi * 2.0 ** torch.arange(n_frequencies, dtype=torch.float32)
        )
        self.net = mlp_body(dim + 2 * n_frequencies * n_times, dim, width, depth)

    def body(self, x: torch.Tensor, *times: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        features = [fourier(_rows(a, n).to(x.dtype), self.frequencies) for a in times]
        return self.net(torch.cat([x, *features], dim=1))


class MeanFlowNet(_TimeMLP):
    """``u_θ(z, r, t)``: ``z`` of shape ``(n, d)``, ``r`` and ``t`` of shape ``(n,)`` or
    ``()``, conditioned on ``t`` and ``t − r``; returns shape ``(n, d)``."""

    def __init__(self, dim: int, width: int = 128, depth: int = 3, n_frequencies: int = 4) -> None:
        super().__init__(dim, 2, width, depth, n_frequencies)

    def forward(self, z: torch.Tensor, r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.body(z, t, t - r)

    def forward_and_tangent(
        self, z: torch.Tensor, r: torch.Tensor, t: torch.Tensor, dz: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(u, du)`` with ``du = d/dε u(z + ε dz, r, t + ε)`` at ``ε = 0`` — MeanFlow's
        total derivative along ``(dz, 0, 1)`` — by forward-mode rules written out
        (Fourier features: ``d sin(ωa) = ω cos(ωa) da``; ``Linear``: ``W dh``; ``SiLU``:
        ``s(a)(1 + a(1 − s(a))) da``, ``s`` the logistic function). ``u`` carries the
        gradient; ``du`` is computed without it (MeanFlow's target stops it): the same
        numbers as ``torch.func.jvp`` (tested), 3× faster on the trainer's MLP."""
        n = z.shape[0]
        t, h = _rows(t, n).to(z.dtype), _rows(t - r, n).to(z.dtype)
        omega = self.frequencies.to(z.dtype)
        primal = [z]
        tangent = [dz]
        for a in (t, h):  # da/dε = 1 for both t and t − r
            angles = a[:, None] * omega
            sin, cos = torch.sin(angles), torch.cos(angles)
            primal += [sin, cos]
            with torch.no_grad():
                tangent += [omega * cos, -omega * sin]
        x = torch.cat(primal, dim=1)
        with torch.no_grad():
            dx = torch.cat(tangent, dim=1)
        for layer in self.net:
            if isinstance(layer, nn.Linear):
                x = layer(x)
                with torch.no_grad():
                    dx = dx @ layer.weight.T
            elif isinstance(layer, nn.SiLU):
                with torch.no_grad():
                    s = torch.sigmoid(x)
                    dx = dx * s * (1 + x * (1 - s))
                x = layer(x)
            else:  # a body this method does not know: the generic route
                raise NotImplementedError(type(layer).__name__)
        return x, dx


class ShortcutNet(_TimeMLP):
    """``s_θ(x, τ, d)``: ``x`` of shape ``(n, d)``, ``τ = 1 − t`` and the step ``d`` of shape
    ``(n,)`` or ``()``; ``d`` enters through its level ``log2(1/d)/(K + 1)``, ``d_min =
    2^-K`` (``d = 0``: level ``K + 1``). Returns shape ``(n, d)``."""

    def __init__(
        self, dim: int, d_min: float, width: int = 128, depth: int = 3, n_frequencies: int = 8
    ) -> None:
        super().__init__(dim, 2, width, depth, n_frequencies)
        # a buffer: saved in model.pt, so a reloaded network keeps the d_min it learned
        self.register_buffer("d_min", torch.tensor(float(d_min), dtype=torch.float64))

    @property
    def levels(self) -> int:
        """``K + 1`` for ``d_min = 2^-K``: the level of ``d = 0``."""
        return round(math.log2(1.0 / float(self.d_min))) + 1

    def forward(self, x: torch.Tensor, tau: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        levels = self.levels
        level = torch.clamp(-torch.log2(d.to(x.dtype)), 0.0, float(levels)) / levels
        return self.body(x, tau, level)
