"""The public Hypothesis strategies produce what they promise."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import cmverify as cmv
from cmverify import strategies as cst


@given(mix=cst.mixtures())
def test_mixtures_within_bounds(mix):
    assert 1 <= mix.dim <= 4 and 1 <= mix.n_components <= 5
    cond = mix.eigvals[:, -1] / mix.eigvals[:, 0]
    assert np.all(cond <= 10.0 * (1 + 1e-9))
    assert np.all(mix.eigvals >= 0.01 * (1 - 1e-9)) and np.all(mix.eigvals <= 10.0 * (1 + 1e-9))
    assert np.all(np.abs(mix.means) <= 3.0)


@given(mix=cst.mixtures(dims=st.just(2), n_components=st.just(3), max_condition=2.0))
def test_mixture_parameters_are_respected(mix):
    assert (mix.dim, mix.n_components) == (2, 3)
    assert np.all(mix.eigvals[:, -1] / mix.eigvals[:, 0] <= 2.0 * (1 + 1e-9))


@given(t=cst.times(0.2, 0.3, endpoints=False))
def test_open_times(t):
    assert 0.2 < t < 0.3


@given(interp=cst.interpolants(include_singular=False))
def test_regular_interpolants_have_finite_derivatives(interp):
    grid = np.linspace(0, 1, 101)
    assert np.all(np.isfinite(interp.dalpha(grid))) and np.all(np.isfinite(interp.dsigma(grid)))


def test_all_named_interpolants_are_drawn():
    assert set(cst.named_interpolants()) == {"linear", "trig", "quadratic", "cos-linear", "sqrt"}
    assert isinstance(cst.named_interpolants()["linear"], cmv.Interpolant)


@given(path=cst.paths(), data=st.data())
def test_points_have_the_path_dimension(path, data):
    x = data.draw(cst.points(path, 0.5, n=7))
    assert x.shape == (7, path.dim)


def test_times_arguments_are_checked():
    with pytest.raises(ValueError, match="min_value"):
        cst.times(0.5, 0.2)
