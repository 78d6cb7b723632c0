"""The one sampling module (reference floor): the multistep sampler and Euler/Heun steps
shared by the claims, compare and the trainer."""

import numpy as np
import pytest

import cmverify as cmv
from cmverify.reference import euler_step, heun_step, multistep_sample, multistep_times

PATH = cmv.MixturePath(cmv.mixtures.gaussian(), cmv.Interpolant.trig())


def test_the_sampler_is_the_seed_recursion():
    """x_{t_{i+1}} = α x̂0 + σ z_{i+1} with x̂0 = f(t_i, x_{t_i}), written out by hand."""
    f = lambda t, x: 0.5 * x + t  # noqa: E731
    times = (1.0, 0.6, 0.25)
    x = np.random.default_rng(1).standard_normal((5, 2))
    z = [np.full((5, 2), 0.3), np.full((5, 2), -0.7)]
    run = multistep_sample(PATH.interpolant, f, times, x, z)
    a, s = PATH.interpolant.alpha, PATH.interpolant.sigma
    x1 = a(0.6) * f(1.0, x) + s(0.6) * z[0]
    x2 = a(0.25) * f(0.6, x1) + s(0.25) * z[1]
    assert run.times == times
    np.testing.assert_array_equal(run.states[1], x1)
    np.testing.assert_array_equal(run.states[2], x2)
    np.testing.assert_array_equal(run.samples, f(0.25, x2))
    assert multistep_sample(PATH.interpolant, f, times, x, z, final=False).samples is None


def test_a_generator_draws_fresh_noise_reproducibly():
    f = lambda t, x: x  # noqa: E731
    x = np.zeros((3, 2))
    runs = [
        multistep_sample(PATH.interpolant, f, (1.0, 0.5), x, np.random.default_rng(7))
        for _ in range(2)
    ]
    np.testing.assert_array_equal(runs[0].samples, runs[1].samples)
    z = np.random.default_rng(7).standard_normal((3, 2))
    np.testing.assert_array_equal(runs[0].states[1], PATH.interpolant.sigma(0.5) * z)


def test_multistep_times_are_evenly_spaced_from_one():
    assert multistep_times(1) == (1.0,)
    assert multistep_times(4) == (1.0, 0.75, 0.5, 0.25)
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="steps"):
            multistep_times(bad)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"times": (0.5, 1.0)}, ValueError, "strictly decreasing"),
        ({"times": (1.0, float("nan"))}, ValueError, "times"),
        ({"times": (1.0, -0.5)}, ValueError, "times"),
        ({"times": ()}, ValueError, "times"),
        ({"x": np.zeros(4)}, ValueError, r"shape \(n, d\)"),
        ({"noise": 0}, TypeError, "noise"),
        ({"noise": [np.zeros((4, 2))]}, ValueError, "needs 2"),
        ({"noise": [np.zeros((3, 2))] * 2}, ValueError, "shape of x"),
        ({"interpolant": "linear"}, TypeError, "Interpolant"),
        ({"consistency": 3}, TypeError, "callable"),
    ],
)
def test_bad_input_is_named(kwargs, error, match):
    args = {
        "interpolant": PATH.interpolant,
        "consistency": lambda t, x: x,
        "times": (1.0, 0.5, 0.2),
        "x": np.zeros((4, 2)),
        "noise": np.random.default_rng(0),
    } | kwargs
    with pytest.raises(error, match=match):
        multistep_sample(**args)


def test_euler_and_heun_steps_have_their_local_orders():
    """dx/dt = x from t = 1 to 1 − h: exact e^{−h}; Euler's local error h²/2, Heun's h³/6."""
    v = lambda t, x: x  # noqa: E731
    for h in (1e-2, 5e-3):
        assert abs(euler_step(v, 1.0, h, 1.0) - np.exp(-h)) / (h**2 / 2) == pytest.approx(
            1, rel=0.01
        )
        assert abs(heun_step(v, 1.0, h, 1.0) - np.exp(-h)) / (h**3 / 6) == pytest.approx(
            1, rel=0.01
        )


def test_heun_evaluates_the_second_stage_at_t_next():
    seen = []
    heun_step(lambda t, x: seen.append(t) or x, 0.3, 0.3, np.ones(2), t_next=0.0)
    assert seen == [0.3, 0.0]
