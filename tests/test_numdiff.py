"""Finite-difference stencils: exact on polynomials of their degree, and of their order."""

import numpy as np
import pytest

from cmverify.symbolic import divergence, gradient, stencil, time_derivative


@pytest.mark.parametrize("accuracy", [2, 4, 6])
def test_time_derivative_exact_on_polynomials(accuracy):
    """A stencil of order p differentiates polynomials of degree ≤ p exactly (rounding aside),
    centrally and one-sidedly."""
    coeffs = np.arange(1.0, accuracy + 2)  # degree = accuracy

    def f(s):
        return np.polyval(coeffs, s)

    dcoeffs = np.polyder(coeffs)
    for t in (0.0, 0.5, 1.0):
        got = time_derivative(f, t, 1e-2, accuracy=accuracy)
        assert got == pytest.approx(np.polyval(dcoeffs, t), rel=1e-9)


def test_time_derivative_order():
    """The error of the 6th-order central stencil on sin falls as h^6 (fitted slope)."""
    hs = np.array([0.08, 0.04, 0.02])
    errs = [abs(time_derivative(np.sin, 0.5, h) - np.cos(0.5)) for h in hs]
    slope = np.polyfit(np.log(hs), np.log(errs), 1)[0]
    assert slope == pytest.approx(6.0, abs=0.1)


def test_stencil_weights_are_the_classical_ones():
    # Central 4th order: (f(−2h) − 8 f(−h) + 8 f(h) − f(2h)) / 12h.
    assert stencil((-2, -1, 0, 1, 2)) == ((-2, 1 / 12), (-1, -2 / 3), (1, 2 / 3), (2, -1 / 12))


def test_gradient_and_divergence():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 3))
    a = rng.normal(size=(3, 3))
    np.testing.assert_allclose(
        gradient(lambda z: np.sum(z**3, axis=1), x, 1e-3), 3 * x**2, rtol=1e-9
    )
    np.testing.assert_allclose(divergence(lambda z: z @ a.T, x, 1e-2), np.trace(a), rtol=1e-10)


def test_accuracy_must_be_even():
    with pytest.raises(ValueError, match="accuracy"):
        time_derivative(np.sin, 0.5, 1e-3, accuracy=3)
