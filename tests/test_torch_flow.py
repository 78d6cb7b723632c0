"""``ReferenceFlow(..., backend="torch")``: the same per-trajectory DOP853 and certificate
on float64 tensors (CPU here), against the numpy backend."""

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import cmverify as cmv
from cmverify.reference import AccuracyWarning, ReferenceFlow, SolverFailure
from cmverify.testing import strategies as cst


@settings(max_examples=15)
@given(
    path=cst.paths(
        cst.mixtures(dims=st.integers(1, 4), n_components=st.integers(1, 4)),
        cst.interpolants(include_singular=False),
    ),
    data=st.data(),
)
def test_torch_backend_meets_the_same_target_as_numpy(path, data):
    """Each trajectory of both backends within its target ``atol + rtol |X|`` of the
    other's (both are within it of the exact map), the same estimates' scale, and the same
    number of steps on all but a few trajectories (the velocities differ in rounding)."""
    s, t = data.draw(st.sampled_from([(1.0, 0.0), (0.0, 1.0), (0.7, 0.2)]))
    x = data.draw(cst.points(path, s, n=32))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AccuracyWarning)
        a = ReferenceFlow(path).solve(x, s, t)
        b = ReferenceFlow(path, backend="torch").solve(x, s, t)
    target = 1e-10 * (1 + np.linalg.norm(a.x, axis=1))
    ok = np.setdiff1d(np.arange(len(x)), np.union1d(a.unresolved, b.unresolved))
    assert np.all(np.linalg.norm(a.x - b.x, axis=1)[ok] <= 2 * target[ok])
    assert np.all(b.error_estimate[ok] <= b.target[ok])
    assert np.mean(a.n_accepted == b.n_accepted) >= 0.9


def test_torch_backend_certifies_and_reports_like_numpy():
    path = cmv.MixturePath(cmv.mixtures.eight_gaussians(), cmv.Interpolant.trig())
    x = np.random.default_rng(0).standard_normal((64, 2))
    flow = ReferenceFlow(path, backend="torch", device="cpu")
    sol = flow.solve(x, 1.0, 0.0, certify=True)
    ref = ReferenceFlow(path).solve(x, 1.0, 0.0, certify=True)
    assert np.all(sol.n_refinements >= 1) and "DOP853" in sol.certificate
    np.testing.assert_allclose(sol.x, ref.x, rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        flow.consistency(1.0, x), ReferenceFlow(path).consistency(1.0, x), atol=1e-12
    )
    assert flow.backend == "torch" and "ReferenceFlow(" in repr(flow)


def test_torch_backend_refuses_what_it_cannot_do():
    path = cmv.MixturePath(cmv.mixtures.eight_gaussians())
    with pytest.raises(ValueError, match="backend must be 'numpy' or 'torch'"):
        ReferenceFlow(path, backend="jax")
    with pytest.raises(ValueError, match="device applies to backend='torch' only"):
        ReferenceFlow(path, device="cpu")

    class Shifted:
        dim = 2

        def velocity(self, t, x):
            return path.velocity(t, x) + 1.0

    with pytest.raises(TypeError, match="MixturePath's own closed-form velocity"):
        ReferenceFlow(Shifted(), backend="torch")
    for device in ("nonsense", "cuda:7" if torch.cuda.is_available() else "cuda"):
        with pytest.raises(ValueError, match="is not available to torch here"):
            ReferenceFlow(path, backend="torch", device=device)
    flow = ReferenceFlow(path, backend="torch")
    # a point only numpy's scaled route computes: its rows go to the numpy path on the host
    far = np.array([[1e200, 0.0], [3e4, -2e4]])
    np.testing.assert_allclose(flow.map(far, 1.0, 0.0), ReferenceFlow(path).map(far, 1.0, 0.0))
    with pytest.raises(NotImplementedError, match="backend='torch' solves"):
        flow.jacobian(np.zeros((1, 2)), 1.0, 0.0)
    with pytest.raises(SolverFailure, match="more than max_steps = 1 steps") as info:
        ReferenceFlow(path, backend="torch", max_steps=1).map(np.zeros((3, 2)), 1.0, 0.0)
    assert list(info.value.indices) == [0, 1, 2]
    # no integration where s = t; the input is not touched
    x = np.ones((2, 2))
    np.testing.assert_array_equal(flow.map(x, 0.5, 0.5), x)
