"""train.jvp_precision: a MeanFlow JVP target's float32 error and the model's tangent
against the exact one (issue 15, item 3)."""

from __future__ import annotations

import numpy as np
import pytest

import cmverify as cmv

torch = pytest.importorskip("torch")
from cmverify.train import jvp_precision  # noqa: E402

MU, LAM = (0.7, -0.4), 0.3


class GaussianMeanFlow(torch.nn.Module):
    """The exact ``u(z, r, t) = (z − X_{t→r}(z))/(t − r)`` for data ``N(μ, λ I)`` under the
    linear interpolant: ``X_{t→r}(z) = α_r μ + √(c_r/c_t) (z − α_t μ)``, ``c = α² λ + σ²``;
    ``bias`` adds ``bias · t`` (a tangent off by ``bias`` in every coordinate)."""

    def __init__(self, bias: float = 0.0):
        super().__init__()
        self.mu = torch.nn.Parameter(torch.tensor(MU, dtype=torch.float64))
        self.bias = bias

    def forward(self, z, r, t):
        a_t, a_r = 1 - t, 1 - r
        c_t, c_r = a_t**2 * LAM + t**2, a_r**2 * LAM + r**2
        end = a_r[:, None] * self.mu + torch.sqrt(c_r / c_t)[:, None] * (z - a_t[:, None] * self.mu)
        return (z - end) / (t - r)[:, None] + self.bias * t[:, None]


PATH = cmv.MixturePath(
    cmv.GaussianMixture([1.0], [MU], [LAM * np.eye(2)]), cmv.Interpolant.linear()
)


def test_the_exact_model_has_exact_tangents_and_a_float32_target_error_of_single_precision():
    got = jvp_precision(GaussianMeanFlow(), PATH, t=0.8, r=0.3, n=256)
    assert got.u <= 1e-9 and got.tangent <= 1e-9  # the reference flow's rtol 1e-10
    assert 1e-9 < got.target_float32 <= 1e-5  # float32 rounding (2^-24 = 6e-8), amplified
    assert "float32 target" in got.describe()


def test_a_biased_tangent_is_measured_at_its_size():
    exact = jvp_precision(GaussianMeanFlow(), PATH, n=256)
    biased = jvp_precision(GaussianMeanFlow(bias=0.01), PATH, n=256)
    assert biased.tangent > 1e3 * exact.tangent and biased.tangent > 1e-3
    assert biased.u > 1e-3  # u itself is off by 0.01 t = 0.008


def test_a_model_that_writes_into_its_input_is_not_trusted_and_bad_input_refused():
    class Mutating(GaussianMeanFlow):
        def forward(self, z, r, t):
            out = super().forward(z, r, t)
            z.mul_(0.0)  # the copy it received, not the caller's data
            return out

    assert jvp_precision(Mutating(), PATH, n=64).tangent <= 1e-9
    with pytest.raises(ValueError, match="r < t"):
        jvp_precision(GaussianMeanFlow(), PATH, t=0.3, r=0.3)
    with pytest.raises(ValueError, match=r"t − r ≥ 0\.001"):
        jvp_precision(GaussianMeanFlow(), PATH, t=0.5, r=0.5 - 1e-9)
    with pytest.raises(ValueError, match="n must be"):
        jvp_precision(GaussianMeanFlow(), PATH, n=0)

    class Narrow(GaussianMeanFlow):
        def forward(self, z, r, t):
            return super().forward(z, r, t)[:, :1]  # (n, 1): would broadcast

    with pytest.raises(ValueError, match="returned"):
        jvp_precision(Narrow(), PATH)

    class Complex(GaussianMeanFlow):
        def forward(self, z, r, t):
            return super().forward(z, r, t) * (1 + 1e-3j)

    with pytest.raises(ValueError, match="complex or half"):
        jvp_precision(Complex(), PATH)

    class Broken(GaussianMeanFlow):
        def forward(self, z, r, t):
            return super().forward(z, r, t) * float("nan")

    with pytest.raises(ValueError, match="not finite"):
        jvp_precision(Broken(), PATH)
    with pytest.raises(TypeError, match=r"torch\.nn\.Module"):
        jvp_precision(lambda z, r, t: z, PATH)
