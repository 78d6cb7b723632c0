"""The torch product route (``cmverify.exact._torch_gram``): the velocity of isotropic and
probabilistic-PCA mixture paths for the torch solver, against the numpy paths.

Contract: where it returns a finite row, within 1e-12 (relative to the batch's largest
entry, as tests/test_structured.py) of the full-covariance eigenbasis route; its rows
flagged for redoing are the numpy product route's; the rows it leaves NaN are those
beyond ``MAX_Q``, as the torch eigenbasis route's.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _product_cases import close_isotropic_pair, far_along_a_factor
from hypothesis import given
from hypothesis import strategies as st

import cmverify.exact._torch_gram as torch_gram
from cmverify import mixtures
from cmverify import strategies as cst
from cmverify.exact import GaussianMixture, MixturePath
from cmverify.reference import ReferenceFlow
from cmverify.symbolic import Interpolant

TOL = 1e-12


def _eigenbasis_velocity(mix: GaussianMixture, interpolant, t, x) -> np.ndarray:
    path = MixturePath(GaussianMixture(mix.weights, mix.means, mix.covs), interpolant)
    path._product = None
    return path.velocity(t, x)


def _check(mix: GaussianMixture, interpolant, t: np.ndarray, x: np.ndarray) -> None:
    path = MixturePath(mix, interpolant)
    tp = path.to_torch()
    assert tp._product is not None
    tt, xt = torch.tensor(t), torch.tensor(x)
    _, ok_t = tp._product.velocity(tt, xt)
    _, ok_np = path._product.velocity_checked(t, x)
    np.testing.assert_array_equal(ok_t.numpy(), ok_np)
    got = tp.velocity_trusted(tt, xt).numpy()
    nan = np.isnan(got).any(axis=1)
    dense_nan = np.isnan(tp._combined("velocity_terms", tt, xt).numpy()).any(axis=1)
    np.testing.assert_array_equal(nan, dense_nan)
    exact = _eigenbasis_velocity(mix, interpolant, t, x)
    scale = max(np.max(np.abs(exact[~nan]), initial=0.0), 1e-280)
    assert np.max(np.abs(got[~nan] - exact[~nan]), initial=0.0) <= TOL * scale


@given(
    mix=cst.structured_mixtures(
        kinds=st.sampled_from(["isotropic", "ppca"]),
        dims=st.integers(8, 12),
        n_components=st.integers(1, 5),
        min_variance=1e-8,
    ),
    interpolant=st.sampled_from([Interpolant.linear(), Interpolant.trig()]),
    t=cst.times(),
    seed=st.integers(0, 2**32 - 1),
    per_point=st.booleans(),
)
def test_torch_product_route_matches_the_full_form(mix, interpolant, t, seed, per_point):
    rng = np.random.default_rng(seed)
    path = MixturePath(mix, interpolant)
    near = path.sample(t, 48, rng)
    x = np.concatenate([near, near + rng.standard_normal((48, mix.dim)), 1e3 * near[:4]])
    times = rng.uniform(0.0, 1.0, len(x)) if per_point else np.full(len(x), t)
    _check(mix, interpolant, times, x)


@pytest.mark.parametrize("every_pair", [True, False], ids=["one-product", "per-group"])
def test_torch_product_route_centres_like_numpy(every_pair, monkeypatch):
    """Points near the data at small t are centred about their most likely mean (both
    ways of forming the differences Δ_jk), and the review cases of the numpy route where
    the expansion cancels (tests/test_structured.py) hold here too."""
    if not every_pair:
        monkeypatch.setattr(torch_gram, "EVERY_PAIR_FLOPS", 0)
    calls = []
    original = torch_gram.TorchGramVelocity._centred
    monkeypatch.setattr(
        torch_gram.TorchGramVelocity,
        "_centred",
        lambda self, *a: calls.append(a[1].shape[0]) or original(self, *a),
    )
    digits = mixtures.digits()
    path = MixturePath(digits)
    for t in (1e-6, 1e-3, 0.05):
        x = path.sample(t, 300, rng=0)
        _check(digits, Interpolant.linear(), np.full(300, t), x)
    assert sum(calls) > 0
    for case in (close_isotropic_pair, far_along_a_factor):  # tests/_product_cases.py
        mix, t, x = case()
        _check(mix, Interpolant.linear(), np.full(len(x), t), x)
    ridge, t, x = far_along_a_factor()
    path = MixturePath(ridge)
    assert not path._product.velocity_checked(np.full(8, t), x)[1].all()  # redone rows


def test_torch_solver_on_digits_takes_the_product_route_and_agrees():
    path = MixturePath(mixtures.digits())
    x1 = path.sample(1.0, 24, rng=3)
    flow = ReferenceFlow(path, backend="torch")
    assert flow._torch.torch_path._product is not None
    a, b = ReferenceFlow(path).solve(x1, 1.0, 0.0), flow.solve(x1, 1.0, 0.0)
    assert np.all(np.linalg.norm(a.x - b.x, axis=1) <= 2 * a.target)


def test_torch_solver_hands_flagged_rows_to_the_numpy_path():
    """Probabilistic PCA with diagonals 1e-8 … 0.5 near the data at t = 1e-6: the product
    route flags most rows, and the torch eigenbasis (a dense eigendecomposition that puts
    the eigenvalue 1e-8 at 9.99999916e-9) had made them 8.9e-4 off and a flow 151× its
    target, passed (review). The solver's door computes them by the numpy path (Woodbury)."""
    rng = np.random.default_rng(5)
    k, d, n = 3, 8, 24
    w = rng.random(k)
    factors = rng.standard_normal((k, d, 2)) * np.array([1.0, 0.1, 3.0])[:, None, None]
    diagonal = np.array([1e-8, 1e-4, 0.5])[:, None] * np.ones((k, d))
    mix = GaussianMixture.low_rank(w / w.sum(), rng.standard_normal((k, d)) * 3, factors, diagonal)
    path = MixturePath(mix, Interpolant.trig())
    co = path.interpolant.at_trusted(np.array([1e-6]))
    x = float(co.alpha[0]) * mix.sample(n, rng) + float(co.sigma[0]) * rng.standard_normal((n, d))
    t = np.full(n, 1e-6)
    tp = path.to_torch()
    _, ok = tp._product.velocity(torch.tensor(t), torch.tensor(x))
    assert not ok.all()
    got = tp.velocity_host_checked(torch.tensor(t), torch.tensor(x)).numpy()
    np.testing.assert_allclose(got, path.velocity(t, x), rtol=1e-12, atol=0)
