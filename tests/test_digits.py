"""The shipped digits mixture (issue 16, item 3) and its example."""

from __future__ import annotations

import importlib.util
import pathlib

import numpy as np
import pytest

from cmverify.exact import MixturePath, mixtures
from cmverify.reference import ReferenceFlow

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_digits_is_the_ppca_fit_it_claims_to_be():
    mix = mixtures.digits()
    assert (mix.name, mix.structure, mix.dim, mix.n_components) == ("digits", "low_rank", 64, 10)
    assert mixtures.by_name("digits").name == "digits"
    assert mix.factors.shape == (10, 64, 12)
    # Maximum-likelihood PPCA: F = U_r diag(sqrt(λ_r − s)) with U_r orthonormal, so FᵀF is
    # diagonal with descending entries λ_j − s ≥ 0, and D = s I with s > 0.
    gram = np.einsum("kdr,kds->krs", mix.factors, mix.factors)
    diag = np.diagonal(gram, axis1=1, axis2=2)
    off = gram - diag[:, :, None] * np.eye(12)
    assert np.max(np.abs(off)) <= 1e-12 * np.max(diag)
    assert np.all(np.diff(diag, axis=1) <= 0) and np.all(diag >= 0)
    assert np.all(mix.diagonal_term == mix.diagonal_term[:, :1]) and np.all(mix.diagonal_term > 0)
    # Pixels scaled to [−1, 1]: the class means lie inside.
    assert np.all(np.abs(mix.means) <= 1.0)


def test_digits_components_recognise_the_real_digits():
    mix = mixtures.digits()
    images, labels = mixtures.digits_examples()
    assert images.shape == (30, 64) and np.all(np.bincount(labels) == 3)
    predicted = np.argmax(mix.component_log_prob(images), axis=1)
    # Measured on the shipped fit: 29 of 30 (the miss is a 5 that the model calls a 9).
    assert np.sum(predicted == labels) >= 29


def test_class_conditional_digits():
    threes = mixtures.digits([3])
    assert threes.n_components == 1 and threes.name is None
    pair = mixtures.digits([0, 1])
    np.testing.assert_allclose(pair.weights.sum(), 1.0)
    np.testing.assert_array_equal(pair.means, mixtures.digits().means[:2])
    for same in ({1, 0}, range(2), (1, 0, 1), np.array([1, 0])):
        np.testing.assert_array_equal(mixtures.digits(same).means, pair.means)
    np.testing.assert_array_equal(mixtures.digits(3).means, threes.means)
    for bad in ([], [10], ["3"], [[1, 2]], 2.5, [True], [1.0]):
        with pytest.raises(ValueError, match="classes must be"):
            mixtures.digits(bad)


def test_digits_one_step_samples_are_certified():
    path = MixturePath(mixtures.digits())
    x1 = np.random.default_rng(0).standard_normal((5, 64))
    sol = ReferenceFlow(path).solve(x1, 1.0, 0.0)
    assert np.all(sol.error_estimate <= sol.target) and sol.unresolved.size == 0


def _example():
    spec = importlib.util.spec_from_file_location("digits_example", ROOT / "examples" / "digits.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_digits_example_draws_its_figure(tmp_path, capsys):
    out = tmp_path / "digits.png"
    assert _example().main(["--n", "4", "--out", str(out)]) == 0
    assert out.stat().st_size > 10_000
    printed = capsys.readouterr().out
    assert "4 exact one-step samples" in printed and "of the target" in printed


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--n", "0"], "--n must be in"),
        (["--out", "/no/such/folder/x.png"], "does not exist"),
        (["--n", "2", "--out", "/proc/digits.png"], "could not write /proc/digits.png"),
    ],
)
def test_digits_example_refuses_bad_input(argv, message, capsys):
    assert _example().main(argv) == 2
    assert message in capsys.readouterr().err
