"""The public Hypothesis strategies produce what they promise."""

import numpy as np
import pytest
from hypothesis import Phase, find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample

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


NO_SHRINKING = settings(phases=[Phase.generate], database=None)


@pytest.mark.parametrize("name", ["linear", "trig", "quadratic", "cos_linear", "sqrt"])
def test_every_named_interpolant_is_drawn(name):
    """Hypothesis draws each interpolant of the catalogue (the catalogue's own instance),
    and ``include_singular=False`` never draws the singular one."""
    drawn = find(cst.interpolants(), lambda i: i.name == name, settings=NO_SHRINKING)
    assert drawn is cmv.interpolants.by_name(name)
    regular = cst.interpolants(include_singular=False)
    if name == "sqrt":
        with pytest.raises(NoSuchExample):
            find(regular, lambda i: i.name == name, settings=NO_SHRINKING)
    else:
        assert find(regular, lambda i: i.name == name, settings=NO_SHRINKING) is drawn


def test_interpolants_shrink_towards_linear():
    assert find(cst.interpolants(), lambda i: True).name == "linear"


def test_named_interpolants_is_the_catalogue():
    named = cst.named_interpolants()
    assert list(named) == cmv.interpolants.names()
    assert all(named[k] is cmv.interpolants.by_name(k) for k in named)


@given(path=cst.paths(), data=st.data())
def test_points_have_the_path_dimension(path, data):
    x = data.draw(cst.points(path, 0.5, n=7))
    assert x.shape == (7, path.dim)


def test_times_arguments_are_checked():
    with pytest.raises(ValueError, match="min_value"):
        cst.times(0.5, 0.2)


@given(mix=cst.extreme_mixtures())
def test_extreme_mixtures_within_bounds(mix):
    """Each component: a scale from {1} ∪ EXTREME_VARIANCES times eigenvalues in [1, 10]."""
    assert mix.dim in (1, 2, 3, 16) and 1 <= mix.n_components <= 3
    scales = np.array([1.0, *cst.EXTREME_VARIANCES])
    for lam in mix.eigvals:
        ratio = lam[:, None] / scales[None]
        assert np.any(np.all((ratio >= 1 - 1e-9) & (ratio <= 10 * (1 + 1e-9)), axis=0))
    assert mix.weights.sum() == pytest.approx(1.0)


def test_extreme_mixtures_reach_the_scales_of_issue_10():
    """The edge cases are drawable: d = 16 with variances ≤ 1e-21 (Π c underflows) and
    ≥ 1e20 (Π c overflows)."""
    no_shrinking = settings(phases=[Phase.generate], database=None)
    assert find(cst.extreme_mixtures(), lambda m: m.dim == 16, settings=no_shrinking)
    sixteen = cst.extreme_mixtures(dims=st.just(16), n_components=st.just(1))
    tiny = find(sixteen, lambda m: m.eigvals.max() < 1e-19, settings=no_shrinking)
    # the scale is 1e-21 or 1e-100 (both have max < 1e-19): bounded by the smallest
    assert tiny.eigvals.min() >= min(cst.EXTREME_VARIANCES) * (1 - 1e-9)
    huge = find(sixteen, lambda m: m.eigvals.min() > 1e19, settings=no_shrinking)
    with np.errstate(over="ignore", under="ignore"):
        assert np.prod(tiny.eigvals[0]) < 1e-300 and np.prod(huge.eigvals[0]) == np.inf


@given(data=st.data(), dim=st.integers(1, 5))
def test_far_points_have_the_promised_magnitudes(data, dim):
    x = data.draw(cst.far_points(dim, n=6))
    assert x.shape == (6, dim)
    assert set(np.max(np.abs(x), axis=1)) <= set(cst.FAR_MAGNITUDES)


def test_far_points_reach_overflowing_squared_norms():
    no_shrinking = settings(phases=[Phase.generate], database=None)
    x = find(cst.far_points(2, n=3), lambda x: np.max(np.abs(x)) >= 1e300, settings=no_shrinking)
    with np.errstate(over="ignore"):
        assert np.max(np.sum(x * x, axis=1)) == np.inf


@given(mix=cst.collinear_mixtures())
def test_collinear_mixtures_have_collinear_means_and_one_isotropic_covariance(mix):
    """The reduction the strategy promises: means on one line (rank ≤ 1 after centring),
    every covariance the same ``s² I``."""
    assert 2 <= mix.dim <= 4 and 2 <= mix.n_components <= 4
    centred = mix.means - mix.means.mean(axis=0)
    sv = np.linalg.svd(centred, compute_uv=False)
    assert sv[1:].max(initial=0.0) <= 1e-12 * max(sv[0], 1.0)
    s2 = mix.covs[0, 0, 0]
    np.testing.assert_array_equal(mix.covs, np.broadcast_to(s2 * np.eye(mix.dim), mix.covs.shape))
    assert 0.05**2 * (1 - 1e-12) <= s2 <= 1.0 + 1e-12
