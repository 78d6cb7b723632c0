"""MixturePath.to_torch: the exact path as differentiable torch functions (issue 15, part 1)."""

from __future__ import annotations

import numpy as np
import pytest

import cmverify as cmv

torch = pytest.importorskip("torch")

QUANTITIES = ("velocity", "denoiser", "expected_noise", "score", "log_prob", "velocity_jacobian")


def _paths():
    return [
        cmv.MixturePath(cmv.mixtures.eight_gaussians(), cmv.Interpolant.linear()),
        cmv.MixturePath(cmv.mixtures.mild_bimodal(), cmv.Interpolant.trig()),
        # full covariances (a non-identity eigenbasis) and distinct spectra, d = 3
        cmv.MixturePath(cmv.mixtures.random_mixture(3, 4, rng=1), cmv.Interpolant.trig()),
    ]


@pytest.mark.parametrize("path", _paths(), ids=lambda p: f"{p.mixture.name}/{p.interpolant.name}")
def test_float64_agrees_with_the_numpy_path(path):
    """Per-point times over all of [0, 1] (both endpoints included) and a scalar time:
    every quantity within 1e-13 of the numpy path, relative to its largest value or 1
    (the denoiser of a symmetric mixture at t = 1 is its mean, 0 up to rounding)."""
    rng = np.random.default_rng(0)
    x = path.sample(0.5, 400, rng) * rng.uniform(0.5, 2.0, (400, 1))
    t = rng.random(400)
    t[:2] = (0.0, 1.0)
    tp = path.to_torch()
    for name in QUANTITIES:
        for tt in (t, 0.37, 0.0, 1.0):
            exact = getattr(path, name)(tt, x)
            got = getattr(tp, name)(torch.tensor(tt) if np.ndim(tt) else tt, torch.tensor(x))
            assert got.dtype == torch.float64 and tuple(got.shape) == exact.shape
            scale = max(np.max(np.abs(exact)), 1.0)
            assert np.max(np.abs(got.numpy() - exact)) <= 1e-13 * scale, (name, np.ndim(tt))


def test_float32_errors_are_those_of_single_precision():
    """float32: the velocity within 2e-6 of the float64 value relative to its largest
    value (measured 3.2e-7 on eight_gaussians at t = 0.5; 2^-23 = 1.2e-7)."""
    path = _paths()[0]
    x = path.sample(0.5, 10_000, np.random.default_rng(1))
    exact = path.velocity(0.5, x)
    got = path.to_torch(torch.float32).velocity(0.5, torch.tensor(x, dtype=torch.float32))
    assert got.dtype == torch.float32
    assert np.max(np.abs(got.double().numpy() - exact)) <= 2e-6 * np.max(np.abs(exact))


def test_gradcheck_in_t_and_x():
    path = _paths()[2]
    tp = path.to_torch()
    x = torch.tensor(path.sample(0.4, 4, np.random.default_rng(2)), requires_grad=True)
    t = torch.tensor([0.1, 0.4, 0.7, 0.95], dtype=torch.float64, requires_grad=True)
    for name in ("velocity", "denoiser", "score", "log_prob"):
        assert torch.autograd.gradcheck(lambda t, x, n=name: getattr(tp, n)(t, x), (t, x))


def test_jacobians_by_torch_func_match_the_closed_forms():
    """``jacrev`` of the torch velocity = the numpy path's closed-form ``∇v``; ``jvp`` in
    ``t`` = central differences of the numpy velocity (step 1e-5: error ~1e-10·v''')."""
    path = _paths()[2]
    tp = path.to_torch()
    x = path.sample(0.6, 5, np.random.default_rng(3))
    jac = torch.func.vmap(torch.func.jacrev(lambda z: tp.velocity(0.6, z)))(torch.tensor(x))
    np.testing.assert_allclose(jac.numpy(), path.velocity_jacobian(0.6, x), atol=1e-12)
    one = torch.tensor(1.0, dtype=torch.float64)
    _, dv_dt = torch.func.jvp(
        lambda t: tp.velocity(t, torch.tensor(x)), (torch.tensor(0.6, dtype=torch.float64),), (one,)
    )
    h = 1e-5
    diff = (path.velocity(0.6 + h, x) - path.velocity(0.6 - h, x)) / (2 * h)
    np.testing.assert_allclose(dv_dt.numpy(), diff, atol=1e-8 * np.max(np.abs(diff)))


def test_vmap_over_single_points_and_times():
    path = _paths()[0]
    tp = path.to_torch()
    x = path.sample(0.5, 6, np.random.default_rng(4))
    t = np.linspace(0.0, 1.0, 6)
    out = torch.func.vmap(tp.velocity)(torch.tensor(t), torch.tensor(x))
    np.testing.assert_allclose(out.numpy(), path.velocity(t, x), atol=1e-13)


def test_bad_input_is_refused_with_the_argument_named():
    path = _paths()[0]
    tp = path.to_torch()
    x = torch.zeros(3, 2, dtype=torch.float64)
    with pytest.raises(TypeError, match="dtype"):
        tp.velocity(0.5, x.float())
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        tp.velocity(0.5, np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        tp.velocity(0.5, torch.zeros(3, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"t must have shape"):
        tp.velocity(torch.zeros(2, dtype=torch.float64), x)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        tp.velocity(1.5, x)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        tp.velocity(float("nan"), x)
    with pytest.raises(ValueError, match="finite"):
        tp.velocity(0.5, x + float("inf"))
    with pytest.raises(TypeError, match=r"float64 or torch\.float32"):
        path.to_torch(torch.float16)
    assert "TorchMixturePath" in repr(tp) and tp.dim == 2


def test_rows_beyond_the_direct_route_are_nan_not_garbage():
    """Far from every mode the direct route blurs the responsibilities' exponents: the
    Jacobian at |x| = 1e6, t = 1 came out [[-343, 344], [344, -343]] (review); float32 at
    |x| = 300 was off 20×. Those rows are NaN; the others are untouched."""
    path = _paths()[0]
    x = np.array([[0.3, 0.2], [1e6, 0.0], [300.0, 0.0]])
    jac = path.to_torch().velocity_jacobian(1.0, torch.tensor(x)).numpy()
    np.testing.assert_allclose(jac[0], path.velocity_jacobian(1.0, x[:1])[0], atol=1e-13)
    assert np.all(np.isnan(jac[1])) and not np.any(np.isnan(jac[2]))
    v32 = path.to_torch(torch.float32).velocity(0.5, torch.tensor(x, dtype=torch.float32))
    assert not torch.any(torch.isnan(v32[0])) and torch.all(torch.isnan(v32[1:]))
