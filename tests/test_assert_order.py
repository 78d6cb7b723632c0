"""cmverify.testing.assert_order: the project's order fit as a test assertion; it passes
on the order of a closed-form error, fails with the table of Δ, error and local order,
and refuses what it cannot fit."""

import math

import numpy as np
import pytest

from cmverify.reference import OrderFit, euler_step, heun_step
from cmverify.testing import assert_order


def _quadratic(delta):
    return 3 * delta**2 + delta**3


def test_a_closed_form_error_passes_for_its_order_and_returns_the_fit():
    fit = assert_order(_quadratic, 2)
    assert isinstance(fit, OrderFit)
    # halved from 1/8 until the last three local orders agree within 0.02
    assert fit.deltas == tuple(0.125 * 2.0**-j for j in range(len(fit.deltas)))
    assert 6 <= len(fit.deltas) <= 14
    assert fit.errors == tuple(_quadratic(d) for d in fit.deltas)
    # local orders of 3Δ² + Δ³ tend to 2 from above: log2(3 + 2Δ)/(3 + Δ)) + 2
    expected_local = [2 + math.log2((3 + 2 * d) / (3 + d)) for d in fit.deltas[1:]]
    np.testing.assert_allclose(fit.local_orders, expected_local, rtol=1e-12)
    assert abs(fit.order - 2) < 0.01 and fit.constant == pytest.approx(3, rel=0.05)


def test_the_wrong_order_fails_with_the_table():
    with pytest.raises(AssertionError) as caught:
        assert_order(_quadratic, 1)
    message = str(caught.value)
    assert "expected order 1 ± 0.1, fitted slope 2.00" in message
    assert "local order" in message and "error" in message
    # one row per Δ: the first without a local order, the fitted ones marked
    assert "0.125     0.0488281\n" in message  # 3/64 + 1/512
    assert "*   0.00390625" in message and "2.002" in message
    assert message.count("\n*") == 4  # the last four step sizes are fitted


def test_tol_is_the_largest_accepted_difference():
    def power(delta):
        return delta**1.15  # every local order is 1.15 exactly

    with pytest.raises(AssertionError, match=r"expected order 1 ± 0\.1, fitted slope 1\.150"):
        assert_order(power, 1)
    assert assert_order(power, 1, tol=0.2).order == pytest.approx(1.15, abs=1e-12)
    assert assert_order(power, 1.2, tol=0.06).order == pytest.approx(1.15, abs=1e-12)


def test_explicit_deltas_are_measured_and_fitted_as_given():
    seen = []

    def error_at(delta):
        seen.append(delta)
        return 5 * delta

    fit = assert_order(error_at, 1, deltas=[0.1, 0.05, 0.025, 0.0125])
    assert seen == [0.1, 0.05, 0.025, 0.0125]
    assert fit.order == pytest.approx(1, abs=1e-12) and fit.constant == pytest.approx(5)
    # fit_order's default range: all but the largest two, at least three
    assert fit.range_used == (0.0125, 0.05)
    with pytest.raises(AssertionError, match="expected order 2"):
        assert_order(error_at, 2, deltas=(0.3, 0.2, 0.1))


def test_euler_is_second_order_locally_and_heun_third():
    """One step of dx/dt = x backwards from t = 1: X_{1→1−Δ}(x) = x e^{−Δ}; Euler's local
    error is x Δ²/2 + O(Δ³), Heun's x Δ³/6 + O(Δ⁴)."""
    x = np.array([[1.0], [-2.5]])

    def velocity(t, x):
        return x

    def euler_error(delta):
        return float(np.max(np.abs(euler_step(velocity, 1.0, delta, x) - x * math.exp(-delta))))

    def heun_error(delta):
        return float(np.max(np.abs(heun_step(velocity, 1.0, delta, x) - x * math.exp(-delta))))

    euler = assert_order(euler_error, 2)
    # at the smallest Δ: 2.5 (Δ²/2 − Δ³/6 + Δ⁴/24 …) / Δ² = 1.25 (1 − Δ/3) + O(Δ²)
    h = euler.deltas[-1]
    assert euler.errors[-1] / h**2 == pytest.approx(1.25 * (1 - h / 3), rel=1e-5)
    with pytest.raises(AssertionError, match=r"expected order 1 ± 0\.1, fitted slope 1\.99"):
        assert_order(euler_error, 1)
    heun = assert_order(heun_error, 3, tol=0.05)
    h = heun.deltas[-1]  # 2.5 (Δ³/6 − Δ⁴/24 + …) / Δ³
    assert heun.errors[-1] / h**3 == pytest.approx(2.5 / 6 * (1 - h / 4), rel=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"error_at": 2.0}, TypeError, "error_at must be callable"),
        ({"expected_order": "2"}, TypeError, "expected_order must be a real number"),
        ({"expected_order": True}, TypeError, "expected_order must be a real number"),
        ({"expected_order": 0}, ValueError, "expected_order must be finite and > 0"),
        ({"expected_order": -1.0}, ValueError, "expected_order must be finite and > 0"),
        ({"expected_order": math.nan}, ValueError, "expected_order must be finite and > 0"),
        ({"expected_order": math.inf}, ValueError, "expected_order must be finite and > 0"),
        ({"tol": 0.0}, ValueError, "tol must be finite and > 0"),
        ({"tol": -0.1}, ValueError, "tol must be finite and > 0"),
        ({"tol": math.nan}, ValueError, "tol must be finite and > 0"),
        ({"tol": None}, TypeError, "tol must be a real number"),
        ({"deltas": [0.1, 0.05]}, ValueError, "at least 3 step sizes"),
        ({"deltas": [[0.1, 0.05, 0.02]]}, ValueError, "at least 3 step sizes"),
        ({"deltas": [0.1, -0.05, 0.02]}, ValueError, "deltas must be > 0, got -0.05"),
        ({"deltas": [0.1, 0.0, 0.02]}, ValueError, "deltas must be > 0, got 0.0"),
        ({"deltas": [0.1, 0.05, 0.1]}, ValueError, "deltas must be distinct"),
        ({"deltas": [0.1, math.nan, 0.02]}, ValueError, "deltas contains NaN or inf"),
        ({"deltas": "0.1"}, TypeError, "deltas must be numeric"),
    ],
)
def test_bad_arguments_are_named(kwargs, error, match):
    arguments = {"error_at": _quadratic, "expected_order": 2, **kwargs}
    with pytest.raises(error, match=match):
        assert_order(**arguments)


@pytest.mark.parametrize("bad", [math.nan, math.inf, 0.0, -1e-3])
def test_an_unusable_error_names_its_step_size(bad):
    def error_at(delta):
        return bad if delta < 0.05 else delta**2

    with pytest.raises(ValueError, match=r"error_at\(0\.03125\) returned .*finite error > 0"):
        assert_order(error_at, 2)
    with pytest.raises(ValueError, match=r"error_at\(0\.01\) returned"):
        assert_order(error_at, 2, deltas=[0.2, 0.1, 0.01])


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (np.array([1e-3, 2e-3]), r"error_at\(0\.125\) must return one real number, got shape"),
        (1e-3 + 1e-4j, r"error_at\(0\.125\) must return one real number, got dtype"),
        (None, r"error_at\(0\.125\) must return a real number, got NoneType"),
        (True, r"error_at\(0\.125\) must return a real number, got bool"),
    ],
)
def test_an_error_that_is_not_one_real_number_is_refused(value, match):
    with pytest.raises(TypeError, match=match):
        assert_order(lambda delta: value, 2)


def test_numpy_scalars_fractions_and_zero_d_arrays_are_accepted():
    from fractions import Fraction

    assert assert_order(lambda d: Fraction(d) ** 2, 2).order == pytest.approx(2, abs=1e-12)
    assert assert_order(lambda d: np.float32(d) ** 2, 2, deltas=[0.25, 0.125, 0.0625]).order == (
        pytest.approx(2, abs=1e-5)
    )
    assert assert_order(lambda d: np.asarray(d**3), 3).order == pytest.approx(3, abs=1e-9)


def test_exported_lazily_from_cmverify_testing():
    import cmverify.testing as testing

    assert "assert_order" in testing.__all__ and "assert_order" in dir(testing)
    from cmverify.testing._order import assert_order as defined

    assert testing.assert_order is defined
