"""The exact two-time flow map's derivatives: ``MixturePath.velocity_jacobian`` (closed form),
``ReferenceFlow.jacobian`` (variational equation) and ``ReferenceFlow.average_velocity``
(direct integration), against differences, the one-dimensional density ratio, Liouville's
``log det`` identity, and the series of ``u`` as ``t → s``."""

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cmverify.exact import GaussianMixture, MixturePath, acceleration, mixtures
from cmverify.reference import JacobianSolution, ReferenceFlow
from cmverify.symbolic import interpolants
from cmverify.testing import strategies as cst

LINEAR, TRIG = interpolants.linear(), interpolants.trig()


def random_mixture(d: int, k: int, seed: int) -> GaussianMixture:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(k, d, d))
    covs = a @ np.swapaxes(a, 1, 2) / d + 0.05 * np.eye(d)
    return GaussianMixture(rng.dirichlet(np.ones(k) * 2), 2.0 * rng.normal(size=(k, d)), covs)


def central_jacobian(fun, x: np.ndarray, h: float) -> np.ndarray:
    """4th-order central differences of ``fun`` (rows) in ``x``, shape ``(n, d, d)``; ``fun``
    is called once, on all the shifted points (a reference solve is per trajectory, so
    batching changes nothing but the cost)."""
    n, d = x.shape
    shifts = np.array([1, -1, 2, -2])[:, None, None, None] * h * np.eye(d)[None, :, None, :]
    values = fun((x[None, None] + shifts).reshape(-1, d)).reshape(4, d, n, -1)
    cols = (8 * (values[0] - values[1]) - (values[2] - values[3])) / (12 * h)  # (d, n, m)
    return np.transpose(cols, (1, 2, 0))


PATHS = {
    "eight_gaussians/linear": MixturePath(mixtures.eight_gaussians(), LINEAR),
    "eight_gaussians/trig": MixturePath(mixtures.eight_gaussians(), TRIG),
    "random3d/trig": MixturePath(random_mixture(3, 4, 7), TRIG),
    "seed_bimodal/linear": MixturePath(mixtures.seed_bimodal(), LINEAR),
}


# -- the closed-form ∇v --------------------------------------------------------------------
@pytest.mark.parametrize("name", PATHS)
@pytest.mark.parametrize("t", [0.0, 0.2, 0.7, 1.0])
def test_velocity_jacobian_matches_differences_and_is_symmetric(name, t):
    path = PATHS[name]
    x = path.sample(max(t, 0.1), 40, 3)
    jac = path.velocity_jacobian(t, x)
    assert jac.shape == (40, path.dim, path.dim)
    # 4th-order differences with h = 1e-3: truncation h⁴ |∂⁵v| ≲ 1e-9 here, rounding
    # eps |v| / h ≈ 1e-12; seed_bimodal's narrow modes (std 0.03 at t = 0) need more
    fd = central_jacobian(lambda z: path.velocity(t, z), x, 1e-3 if "seed" not in name else 1e-5)
    scale = 1.0 + np.max(np.abs(jac))
    assert np.max(np.abs(jac - fd)) / scale < 2e-7
    assert np.max(np.abs(jac - np.swapaxes(jac, 1, 2))) <= 1e-13 * scale


def test_velocity_jacobian_far_from_the_data_is_finite_and_right():
    """The scaled route: ``|x| = 1e200`` has one responsible component, ``∇v`` its gain."""
    path = PATHS["random3d/trig"]
    far = np.array([[1e200, 0.0, 0.0], [0.0, -3e5, 1e5]])
    jac = path.velocity_jacobian(0.4, far)
    assert np.all(np.isfinite(jac))
    fd = central_jacobian(lambda z: path.velocity(0.4, z), far[1:], 1e-2)
    assert np.max(np.abs(jac[1:] - fd)) < 1e-6


def test_velocity_jacobian_validates_like_the_velocity():
    path = PATHS["eight_gaussians/linear"]
    with pytest.raises(ValueError, match="t"):
        path.velocity_jacobian(1.5, np.zeros((2, 2)))
    with pytest.raises(ValueError):
        path.velocity_jacobian(0.5, np.full((2, 2), np.nan))
    with pytest.raises(ValueError):
        path.velocity_jacobian(0.5, np.zeros((2, 3)))


def test_trace_of_velocity_jacobian_is_the_divergence_of_the_continuity_equation():
    """``∂_t log p + ∇·v + v·∇log p = 0``: with ``∇·v = tr ∇v`` (closed form) and
    ``∂_t log p`` by 6th-order differences (error ≲ 1e-9)."""
    path = PATHS["random3d/trig"]
    x = path.sample(0.5, 50, 11)
    h = 1e-3
    lp = [path.log_prob(0.5 + k * h, x) for k in (-3, -2, -1, 1, 2, 3)]
    dlogp = (lp[5] - 9 * lp[4] + 45 * lp[3] - 45 * lp[2] + 9 * lp[1] - lp[0]) / (60 * h)
    div = np.trace(path.velocity_jacobian(0.5, x), axis1=1, axis2=2)
    transport = np.sum(path.velocity(0.5, x) * path.score(0.5, x), axis=1)
    assert np.max(np.abs(dlogp + div + transport)) < 1e-7


# -- ReferenceFlow.jacobian ------------------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["eight_gaussians/linear", "eight_gaussians/trig", "random3d/trig"]
)
@pytest.mark.parametrize(("s", "t"), [(1.0, 0.0), (0.3, 0.9)])
def test_reference_jacobian_against_differences_and_liouville(name, s, t):
    path = PATHS[name]
    flow = ReferenceFlow(path)
    x = path.sample(s, 16, 5)
    sol = flow.solve_jacobian(x, s, t)
    assert isinstance(sol, JacobianSolution)
    assert sol.jacobian.shape == (16, path.dim, path.dim)
    assert np.array_equal(sol.x, flow.map(x, s, t)) or np.allclose(
        sol.x, flow.map(x, s, t), 0, 1e-9
    )
    assert np.all(sol.jacobian_error_estimate <= sol.jacobian_target)
    # 4th-order differences of solves at rtol 1e-12 with h = 1e-5: noise ≲ 1.5e-12 / h =
    # 1.5e-7, truncation h⁴ |∂⁵X| negligible (h = 1e-3 was 0.6 off next to a separatrix);
    # the sharp checks are Liouville's below and the 1-d density ratio
    tight = ReferenceFlow(path, rtol=1e-12)
    fd = central_jacobian(lambda z: tight.map(z, s, t), x, 1e-5)
    scale = 1.0 + np.linalg.norm(sol.jacobian, axis=(1, 2))
    assert np.max(np.linalg.norm(sol.jacobian - fd, axis=(1, 2)) / scale) < 2e-7
    # J: log det ∇X_{s→t}(x) = log p_s(x) − log p_t(X_{s→t}(x)) with closed-form densities
    sign, logdet = np.linalg.slogdet(sol.jacobian)
    assert np.all(sign > 0)
    assert np.max(np.abs(logdet - (path.log_prob(s, x) - path.log_prob(t, sol.x)))) < 1e-8


@pytest.mark.parametrize("interp", [LINEAR, TRIG], ids=["linear", "trig"])
def test_one_dimensional_jacobian_is_the_density_ratio(interp):
    """In 1-d ``∂_x X_{s→t}(x) = p_s(x) / p_t(X_{s→t}(x))`` (``X = F_t⁻¹ ∘ F_s``)."""
    path = MixturePath(mixtures.mild_bimodal(), interp)
    flow = ReferenceFlow(path)
    x = np.linspace(-3, 3, 41)[:, None]
    for s, t in [(1.0, 0.0), (0.2, 0.9), (0.6, 0.05)]:
        sol = flow.solve_jacobian(x, s, t)
        ratio = np.exp(path.log_prob(s, x) - path.log_prob(t, sol.x))
        rel = np.abs(sol.jacobian[:, 0, 0] - ratio) / ratio
        assert np.max(rel) < 1e-8, (s, t)


def test_jacobian_at_equal_times_is_the_identity():
    path = PATHS["random3d/trig"]
    x = path.sample(0.4, 5, 1)
    assert np.array_equal(
        ReferenceFlow(path).jacobian(x, 0.4, 0.4), np.broadcast_to(np.eye(3), (5, 3, 3))
    )


def test_jacobian_of_a_custom_field_needs_its_velocity_jacobian():
    path = PATHS["eight_gaussians/linear"]

    class Plain:
        dim = 2

        def velocity(self, t, x):
            return path.velocity(t, x)

    class WithJacobian(Plain):
        def velocity_jacobian(self, t, x):
            out = path.velocity_jacobian(t, x)
            x += 1.0  # hostile: edits its input (a copy)
            return out

    x = path.sample(1.0, 6, 2)
    with pytest.raises(TypeError, match="velocity_jacobian"):
        ReferenceFlow(Plain()).jacobian(x, 1.0, 0.0)
    got = ReferenceFlow(WithJacobian()).jacobian(x, 1.0, 0.0)
    assert np.allclose(got, ReferenceFlow(path).jacobian(x, 1.0, 0.0), rtol=0, atol=1e-12)

    class WrongShape(Plain):
        def velocity_jacobian(self, t, x):
            return np.zeros((len(x), 2))

    with pytest.raises(ValueError, match="shape"):
        ReferenceFlow(WrongShape()).jacobian(x, 1.0, 0.0)


# -- ReferenceFlow.average_velocity -----------------------------------------------------------
def test_average_velocity_equals_the_velocity_at_equal_times_to_rounding():
    path = PATHS["random3d/trig"]
    x = path.sample(0.3, 30, 4)
    for s in (0.0, 0.3, 1.0):
        u = ReferenceFlow(path).average_velocity(x, s, s)
        v = path.velocity(s, x)
        assert np.max(np.abs(u - v)) <= 8 * np.finfo(float).eps * (1 + np.max(np.abs(v)))


@pytest.mark.parametrize(
    "name", ["eight_gaussians/linear", "eight_gaussians/trig", "random3d/trig"]
)
def test_average_velocity_as_t_tends_to_s(name):
    """For ``|h| = |t − s|`` from 1e-3 to 1e-12, ``u(x; s→s+h)`` against two independent
    truths: (1) ``(1/h) ∫ v(τ, X_τ) dτ`` by 8-node Gauss–Legendre on the trajectory
    (solves at rtol 1e-12; quadrature error ~ h^16 |∂^16 v| ≪ 1e-12), and (2) for
    ``|h| ≤ 1e-6`` the limit ``v + h a / 2`` (the next term ``h² |ȧ| / 6 ≤ 1e-12 · 112 / 6``
    here: ``|ȧ| ≤ 112`` measured on eight_gaussians; ``a`` by 6th-order differences). The difference quotient ``(X − x)/h``
    would be ``1e-10 / |h|`` off."""
    path = PATHS[name]
    flow = ReferenceFlow(path)
    tight = ReferenceFlow(path, rtol=1e-12)
    s = 0.5
    x = flow.map(path.sample(0.0, 16, 9), 0.0, s)  # points of p_s from the data's modes
    v = path.velocity(s, x)
    a = acceleration(path, s, x)
    nodes, weights = np.polynomial.legendre.leggauss(8)
    worst_quadrature = worst_limit = 0.0
    for h in (1e-3, -1e-3, 1e-4, 1e-5, -1e-6, 1e-8, 1e-10, -1e-12):
        u = flow.average_velocity(x, s, s + h)
        taus = s + h * (nodes + 1) / 2
        integral = sum(
            w / 2 * path.velocity(tau, tight.map(x, s, tau))
            for w, tau in zip(weights, taus, strict=True)
        )
        worst_quadrature = max(worst_quadrature, float(np.max(np.abs(u - integral))))
        if abs(h) <= 1e-6:
            worst_limit = max(worst_limit, float(np.max(np.abs(u - (v + h * a / 2)))))
    assert worst_quadrature < 1e-9
    assert worst_limit < 1e-9


def test_average_velocity_reproduces_the_map():
    path = PATHS["eight_gaussians/trig"]
    flow = ReferenceFlow(path)
    x = path.sample(0.9, 50, 6)
    s = np.full(50, 0.9)
    t = np.linspace(0.0, 1.0, 50)
    u = flow.average_velocity(x, s, t)
    mapped = flow.map(x, s, t)
    err = np.linalg.norm(x + (t - s)[:, None] * u - mapped, axis=1)
    assert np.max(err / (1 + np.linalg.norm(mapped, axis=1))) < 3e-10


def test_average_velocity_validates_its_times():
    flow = ReferenceFlow(PATHS["eight_gaussians/linear"])
    with pytest.raises(ValueError):
        flow.average_velocity(np.zeros((2, 2)), 0.5, 1.2)
    with pytest.raises(ValueError):
        flow.average_velocity(np.zeros((2, 2)), np.array([0.1, 0.2, 0.3]), 0.0)


# -- S and J over random mixtures and time pairs (Hypothesis) ---------------------------------
@given(
    path=cst.paths(cst.mixtures(dims=st.integers(1, 3), n_components=st.integers(1, 3))),
    times=st.tuples(cst.times(), cst.times(), cst.times()),
    seed=st.integers(0, 2**16),
)
def test_semigroup_and_liouville_on_random_mixtures(path, times, seed):
    s, u, t = times
    flow = ReferenceFlow(path)
    x = path.sample(s, 8, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an AccuracyWarning would void the bound below
        direct = flow.solve_jacobian(x, s, t)
        mid = flow.map(x, s, u)
        composed = flow.map(mid, u, t)
    # S: three solves, each within atol + rtol |X| (rtol = atol = 1e-10), amplified by ∇X
    amp = 1.0 + np.linalg.norm(direct.jacobian, axis=(1, 2))
    err = np.linalg.norm(composed - direct.x, axis=1)
    assert np.all(err <= 3e-10 * amp * (1 + np.linalg.norm(direct.x, axis=1)))
    # J: log det ∇X = log p_s(x) − log p_t(X); the Jacobian to 1e-10 ‖J‖ moves log det
    # by ≲ d · 1e-10 · cond(J)
    logdet = np.linalg.slogdet(direct.jacobian)[1]
    cond = np.linalg.cond(direct.jacobian)
    expected = path.log_prob(s, x) - path.log_prob(t, direct.x)
    assert np.all(np.abs(logdet - expected) <= 1e-8 * (1 + cond))


def test_jacobian_refuses_an_overridden_velocity_with_the_inherited_jacobian():
    """Review finding: a MixturePath subclass that perturbs ``velocity`` but inherits the
    closed-form ``velocity_jacobian`` had its Jacobian silently taken from the unperturbed
    path (0.2–0.58 off per entry)."""

    class Perturbed(MixturePath):
        def velocity(self, t, x):
            return super().velocity(t, x) + 0.5 * np.asarray(x)

    path = Perturbed(mixtures.eight_gaussians(), LINEAR)
    with pytest.raises(TypeError, match="velocity_jacobian"):
        ReferenceFlow(path).jacobian(np.zeros((2, 2)) + 0.3, 1.0, 0.0)
