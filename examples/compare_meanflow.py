"""Compare a MeanFlow-style torch network with the exact flow map.

Run:  python examples/compare_meanflow.py [--out DIR] [-n N]

``MomentMatchedMeanFlow`` stands in for a trained MeanFlow network ``u(z, t, h)`` with
MeanFlow's second input convention ``(t, h = t − r)`` (``time_inputs="t,t-r"``): it is
the exact average velocity of the *moment-matched Gaussian* — one Gaussian with the
mixture's mean and covariance — in closed form,

    ``X_{t→r}(z) = α_r μ + C_r^{1/2} C_t^{-1/2} (z − α_t μ)``, ``C = α² Σ + σ² I``,
    ``u(z, r, t) = (z − X_{t→r}(z)) / (t − r)``  (``v(t, z)`` at ``r = t``),

a network that learned the data's first two moments and nothing else. What it should
get: its errors grow with ``s − t`` and are largest for ``t → 0`` (the modes it cannot
see); its own semigroup and Eulerian residuals are zero to rounding (the Eulerian one by
``torch.func.jvp``) — it *is* an exact flow, of the wrong data — so the report
points at the velocity it learned, not at a broken consistency law; more steps do not
help (the chains' exact error stays put).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

import cmverify as cmv
from cmverify.compare import compare_flow_map

PATH = cmv.MixturePath(cmv.mixtures.eight_gaussians(), cmv.Interpolant.linear())


class MomentMatchedMeanFlow(torch.nn.Module):
    """``u(z, t, h)`` of the Gaussian with the data's mean and covariance (float64)."""

    def __init__(self, path: cmv.MixturePath) -> None:
        super().__init__()
        lam, vec = np.linalg.eigh(path.mixture.covariance())
        self.register_buffer("mean", torch.tensor(path.mixture.mean()))
        self.register_buffer("lam", torch.tensor(lam))
        self.register_buffer("vec", torch.tensor(vec))

    def forward(self, z: torch.Tensor, t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        r = t - h
        a_t, s_t, a_r, s_r = 1 - t, t, 1 - r, r  # the linear interpolant
        c_t = a_t[:, None] ** 2 * self.lam + s_t[:, None] ** 2
        c_r = a_r[:, None] ** 2 * self.lam + s_r[:, None] ** 2
        y = (z - a_t[:, None] * self.mean) @ self.vec  # eigenbasis
        x_r = a_r[:, None] * self.mean + (torch.sqrt(c_r / c_t) * y) @ self.vec.T
        # at h = 0: the velocity, d/dt of the map: dα μ + U ((α α̇ λ + σ σ̇)/c) y
        v = -self.mean + ((-(a_t[:, None]) * self.lam + s_t[:, None]) / c_t * y) @ self.vec.T
        safe = torch.where(h > 0, h, torch.ones_like(h))[:, None]
        return torch.where(h[:, None] > 0, (z - x_r) / safe, v)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="folder for the report and the heat map")
    parser.add_argument("-n", type=int, default=1000, help="points per pair (default 1000)")
    args = parser.parse_args(argv)
    net = MomentMatchedMeanFlow(PATH).double()
    result = compare_flow_map(net, PATH, kind="meanflow", time_inputs="t,t-r", n=args.n)
    for s, t in ((1.0, 0.0), (1.0, 0.5), (0.5, 0.0), (0.2, 0.1)):
        r = result.at(s, t)
        print(
            f"X({s:g} → {t:g}): relative RMSE {r.relative_rmse:.3g}, max {r.max_error:.3g}; "
            f"semigroup {r.semigroup_rms if r.semigroup_rms is None else f'{r.semigroup_rms:.1e}'}, "
            f"Eulerian {r.eulerian_rms:.1e}"
        )
    for c in result.chains:
        print(f"{c.steps}-step chain: exact error {c.rmse:.3g} (relative {c.relative_rmse:.3g})")
    if args.out:
        from pathlib import Path

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "flow_map_comparison.md").write_text(result.to_markdown())
        for written in result.plot(out):
            print(f"wrote {written}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
