"""The floors' adaptive cubature (d = 2 … 4) against truths computed another way: the
Genz–Malik rule's polynomial exactness, and collinear isotropic mixtures, whose floors
reduce to 1-d floors (adaptive Gauss–Legendre, another rule) plus closed forms."""

import itertools
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cmverify as cmv
from cmverify import loss_floors
from cmverify.loss_floors import _rules
from cmverify.loss_floors._cubature import (
    COARSE_EDGES,
    COARSER_EDGES,
    FIRST_EDGES,
    cubature_rule,
    genz_malik,
)
from cmverify.loss_floors._flow_matching import CUBATURE_NODES, DEFAULT_RTOL, MAX_SEPARATION
from cmverify.reference import AccuracyWarning
from cmverify.testing import strategies as cst


@pytest.mark.parametrize("dim", [2, 3, 4])
def test_genz_malik_rules_integrate_polynomials_of_their_degree_exactly(dim):
    """The mean over ``[−1, 1]^d`` of every monomial of degree ≤ 7 (≤ 5 for the embedded
    rule): ``Π_i 1/(e_i + 1)`` for even exponents, 0 otherwise."""
    rule = genz_malik(dim)
    assert rule.nodes.shape == (2**dim + 2 * dim**2 + 2 * dim + 1, dim)
    for exps in itertools.product(range(8), repeat=dim):
        degree = sum(exps)
        if degree > 7:
            continue
        f = np.prod(rule.nodes ** np.array(exps), axis=1)
        exact = float(np.prod([0.0 if e % 2 else 1.0 / (e + 1) for e in exps]))
        assert f @ rule.w7 == pytest.approx(exact, abs=1e-15), exps
        if degree <= 5:
            assert f @ rule.w5 == pytest.approx(exact, abs=1e-15), exps
    # and not of degree 8 / 6: the two rules differ, which is the error estimate
    x8 = rule.nodes[:, 0] ** 8
    assert abs(x8 @ rule.w7 - 1 / 9) > 1e-3
    assert abs(rule.nodes[:, 0] ** 6 @ rule.w5 - 1 / 7) > 1e-3


@pytest.mark.parametrize("dim", [2, 3, 4])
def test_null_rules_annihilate_polynomials_of_their_degree_and_no_more(dim):
    """``nulls`` of degrees 5, 3, 3, 1: each integrates every monomial of its degree or
    less to zero and some monomial of the next even degree not; orthogonal, each of the
    norm of ``w7``; the first is ``w7 − w5`` up to the factor ``kappa``."""
    rule = genz_malik(dim)
    norm = np.linalg.norm(rule.w7)
    gram = rule.nulls @ rule.nulls.T
    np.testing.assert_allclose(gram, norm**2 * np.eye(4), atol=1e-14)
    for null, degree in zip(rule.nulls, (5, 3, 3, 1), strict=True):
        worst_next = 0.0
        for exps in itertools.product(range(degree + 3), repeat=dim):
            f = np.prod(rule.nodes ** np.array(exps), axis=1)
            if sum(exps) <= degree:
                assert abs(f @ null) < 1e-14, (degree, exps)
            elif sum(exps) == degree + 1:
                worst_next = max(worst_next, abs(f @ null))
        assert worst_next > 1e-3, degree  # a null rule, not the zero rule
    diff = rule.w7 - rule.w5
    assert abs(diff @ rule.nulls[0]) == pytest.approx(rule.kappa * norm**2, rel=1e-12)


def test_an_accidentally_small_degree_five_difference_is_caught_by_the_lower_null_rules():
    """Found measuring the estimate: one box's ``|I₇ − I₅|`` was 7e-13 while its error was
    8.6e-9, and ``|I₇ − I₅|`` summed over boxes stopped the cubature 2.1e-9 off at an
    estimate of 8.2e-10 (rtol 1e-9). The degree-3 null rules were 6e-6 there: the
    estimate now takes what they predict. Within the estimate, against the 1-d truth."""
    weights = [0.36314392332153167, 0.05573967539140454, 0.16389709009516717, 0.4172193111918966]
    means = [
        [0.5222219356579141, 1.5524575000178567],
        [0.5117191616413551, 1.4503361295600015],
        [0.48191972050460447, 1.160587938942436],
        [0.29853371204930235, -0.6225248345709847],
    ]
    covs = np.broadcast_to(0.8344731824013463**2 * np.eye(2), (4, 2, 2))
    path = cmv.MixturePath(cmv.GaussianMixture(weights, means, covs), cmv.interpolants.sqrt())
    t = 0.3010586426363173
    truth = _collinear_truth(path, t)
    cub = cubature_rule(path, t, lambda x: path.velocity_target_variance(t, x), 1e-9, 2**22)
    assert cub.converged
    assert abs(cub.value - truth) <= cub.error_estimate


def test_gauss_hermite_is_not_trusted_where_modes_lie_far_out_in_each_others_tails():
    """Found in an 800-case sweep: three modes on a line in d = 3, the outer two 7.2
    standard deviations apart at t = 0.02. Gauss–Hermite with 16 and 32 nodes per axis
    agreed to 8.6e-12 while both were 5.1e-7 off (rtol 1e-7, "converged"): the sheet
    where the responsibilities switch lies out in the tails, where neither rule has
    nodes. Past ``MAX_SEPARATION`` the floor takes the cubature: within rtol and its
    estimate of the 1-d truth."""
    weights = [0.08562989929189183, 0.4862206042486492, 0.4281494964594591]
    means = [
        [0.0176954608784324, 0.01476380064460198, 0.18352693237478876],
        [0.07422494546001485, 0.0619278754679823, 0.7698175616643953],
        [0.2518735119714533, 0.21014486957695624, 2.612284207580384],
    ]
    covs = np.broadcast_to(0.11490519324077104 * np.eye(3), (3, 3, 3))
    path = cmv.MixturePath(cmv.GaussianMixture(weights, means, covs), cmv.Interpolant.linear())
    t = 0.020000000000000004
    assert _rules.widest_separation(path, t) > MAX_SEPARATION
    truth = _collinear_truth(path, t)
    (rec,) = loss_floors.flow_matching_quadrature(path, t)
    assert rec.rule == "genz-malik" and rec.converged
    assert abs(rec.value - truth) <= min(rec.error_estimate, DEFAULT_RTOL[3] * truth)


@settings(max_examples=16)
@given(
    mixture=cst.collinear_mixtures(dims=st.integers(2, 4), min_std=0.05),
    interpolant=cst.interpolants(include_singular=False),
    t=cst.times(0.02, 0.98, endpoints=False),
    edges=st.sampled_from([FIRST_EDGES, COARSE_EDGES, *COARSER_EDGES]),
)
def test_the_cubature_alone_is_within_its_estimate_on_random_collinear_mixtures(
    mixture, interpolant, t, edges
):
    """The adaptive cubature by itself (the floor may take Gauss–Hermite instead), from
    each starting partition it is used from (the MeanFlow floor's are the coarse ones), at
    the default rtol of the dimension: its value within its own error estimate of the
    truth."""
    path = cmv.MixturePath(mixture, interpolant)
    rtol = DEFAULT_RTOL[mixture.dim]
    g = lambda x: path.velocity_target_variance(t, x)  # noqa: E731
    cub = cubature_rule(path, t, g, rtol, 2**22, edges)
    truth = _collinear_truth(path, t)
    assert abs(cub.value - truth) <= cub.error_estimate + 1e-13 * truth


def _collinear_truth(path: cmv.MixturePath, t: float) -> float:
    """``E tr Cov(v_c | x_t)`` of ``Σ w_k N(a_k e + b, s² I)``: the 1-d floor of
    ``Σ w_k N(a_k, s²)`` (line rule at rtol 1e-12) plus ``(d − 1) W² s²/c`` across ``e``
    (``c = α² s² + σ²``: each transverse axis is one Gaussian's)."""
    mix = path.mixture
    d = mix.dim
    spread = mix.means - mix.means.mean(axis=0)
    e = np.linalg.svd(spread)[2][0]
    s2 = float(mix.covs[0, 0, 0])
    line = cmv.GaussianMixture(
        mix.weights, (mix.means @ e)[:, None], np.full((mix.n_components, 1, 1), s2)
    )
    (one_d,) = loss_floors.flow_matching_quadrature(
        cmv.MixturePath(line, path.interpolant), t, rtol=1e-12
    )
    at = path.interpolant.at(t)
    c = float(at.alpha) ** 2 * s2 + float(at.sigma) ** 2
    return one_d.value + (d - 1) * float(at.wronskian) ** 2 * s2 / c


@pytest.mark.parametrize("dim", [3, 4])
@pytest.mark.parametrize("interpolant", ["linear", "trig"])
def test_collinear_floors_in_three_and_four_dimensions_match_their_one_dimensional_reduction(
    dim, interpolant
):
    """Three modes on a rotated line, ``s = 0.25``, 2.3 and 2.7 apart (well separated near
    the data: the responsibilities switch across sheets of width ``~s²/gap``): the floor,
    and the adaptive cubature alone, within the default rtol of the dimension (1e-7 in
    d = 3, 1e-6 in d = 4) of the 1-d truth and within their own error estimates."""
    frame = np.linalg.qr(np.random.default_rng(dim).standard_normal((dim, dim)))[0]
    e, b = frame[:, 0], 0.7 * frame[:, 1]
    means = np.array([-2.0, 0.3, 3.0])[:, None] * e + b
    mix = cmv.GaussianMixture(
        [0.5, 0.3, 0.2], means, np.broadcast_to(0.25**2 * np.eye(dim), (3, dim, dim))
    )
    path = cmv.MixturePath(mix, cmv.interpolants.by_name(interpolant))
    times = (0.02, 0.15, 0.5, 0.9)
    with warnings.catch_warnings():
        warnings.simplefilter("error", AccuracyWarning)
        records = loss_floors.flow_matching_quadrature(path, np.array(times))
    for t, rec in zip(times, records, strict=True):
        truth = _collinear_truth(path, t)
        err = abs(rec.value - truth)
        assert rec.converged and rec.error_estimate <= DEFAULT_RTOL[dim] * rec.value
        assert err <= DEFAULT_RTOL[dim] * truth, (t, rec)
        assert err <= rec.error_estimate + 1e-13 * truth, (t, err, rec)
        if t > 0.2:  # overlapping components: Gauss–Hermite's regime (cubature alone in
            continue  # d = 4 at t = 0.5: 5.5e-6 after 2^25 nodes, measured)
        # near the data the cubature alone (the floor takes it where Gauss–Hermite does not
        # converge), on the separated modes it is for
        cub = cubature_rule(
            path,
            t,
            lambda x, t=t: path.velocity_target_variance(t, x),
            DEFAULT_RTOL[dim],
            CUBATURE_NODES,
        )
        assert cub.converged and abs(cub.value - truth) <= cub.error_estimate + 1e-13 * truth


@settings(max_examples=12)
@given(
    mixture=cst.collinear_mixtures(dims=st.integers(2, 4), min_std=0.1),
    interpolant=cst.interpolants(include_singular=False),
    t=cst.times(0.02, 0.98, endpoints=False),
)
def test_the_error_estimate_bounds_the_error_on_random_collinear_mixtures(mixture, interpolant, t):
    """Whatever rule the floor takes (Gauss–Hermite or cubature), its stated error estimate
    bounds the distance to the 1-d truth, and it meets the default rtol of the dimension."""
    path = cmv.MixturePath(mixture, interpolant)
    with warnings.catch_warnings():
        warnings.simplefilter("error", AccuracyWarning)
        (rec,) = loss_floors.flow_matching_quadrature(path, t)
    truth = _collinear_truth(path, t)
    assert abs(rec.value - truth) <= rec.error_estimate + 1e-13 * truth
    assert rec.error_estimate <= DEFAULT_RTOL[mixture.dim] * rec.value


def _isotropic_axis_truth(path: cmv.MixturePath, t: float) -> float:
    """The floor of isotropic components whose means lie on the first axis: the integrand
    depends on ``(x_1, |x_⊥|)`` only, so it is a 2-d integral (d = 2: ``x_⊥`` on a line,
    ``2 ∫_0^∞ d|x_⊥|``), by composite Gauss–Legendre graded on every component's scale."""
    m = path.marginal(t)
    sds, mus = np.sqrt(m.covs[:, 0, 0]), m.means[:, 0]
    z, w = np.polynomial.legendre.leggauss(10)

    def rule(lo, hi, centres):
        edges = [np.linspace(lo, hi, 201)] + [c + np.linspace(-14, 14, 225) * s for c, s in centres]
        e = np.unique(np.concatenate(edges))
        e = e[(e >= lo) & (e <= hi)]
        mid, half = (e[1:] + e[:-1]) / 2, (e[1:] - e[:-1]) / 2
        return (mid[:, None] + half[:, None] * z).ravel(), (half[:, None] * w).ravel()

    reach = 14 * sds.max()
    xa, wa = rule(mus.min() - reach, mus.max() + reach, list(zip(mus, sds, strict=True)))
    xr, wr = rule(0.0, reach, [(0.0, s) for s in sds])
    total = 0.0
    for i in range(0, xa.size, 200):
        a, b = np.meshgrid(xa[i : i + 200], xr, indexing="ij")
        points = np.stack([a.ravel(), b.ravel()], axis=1)
        weights = np.outer(wa[i : i + 200], 2.0 * wr).ravel()
        total += np.sum(
            weights * np.exp(path.log_prob(t, points)) * path.velocity_target_variance(t, points)
        )
    return float(total)


@pytest.mark.parametrize(
    ("narrow", "broad", "gap", "t"),
    [(0.03, 2.0, 2.19, 0.03), (0.01, 2.0, 3.89, 0.03), (0.01, 1.0, 1.05, 0.01)],
)
def test_a_narrow_component_inside_a_broad_one_is_seen(narrow, broad, gap, t):
    """Found in review: no tensor node (up to 256 per axis) and no cubature node landed in
    the narrow component's region inside the broad one's Gaussian, and every estimate was
    small — 5.9e-7, 4.1e-7, 1.5e-7 off at estimates ≤ 1e-9. Now Gauss–Hermite is skipped
    there and the cubature refines around every other component's centre on its scale."""
    mix = cmv.GaussianMixture(
        [0.5, 0.5], [[0.0, 0.0], [gap, 0.0]], [narrow**2 * np.eye(2), broad**2 * np.eye(2)]
    )
    path = cmv.MixturePath(mix, cmv.Interpolant.linear())
    with warnings.catch_warnings():
        warnings.simplefilter("error", AccuracyWarning)
        (rec,) = loss_floors.flow_matching_quadrature(path, t)
    truth = _isotropic_axis_truth(path, t)
    assert rec.rule == "genz-malik"
    assert abs(rec.value - truth) <= min(rec.error_estimate, 1e-9 * truth) + 1e-14 * truth


def test_boxes_are_aligned_with_the_nearest_component_and_need_fewer_nodes(monkeypatch):
    """Each component's boxes have their first axis towards the nearest other centre (in
    its whitened coordinates): orthogonal frames; for two modes of one covariance the sheet
    where responsibilities switch is then normal to that axis. The flow-matching floor of
    such a pair in d = 3 agrees with the unrotated boxes' within both estimates, with
    fewer nodes (2,669,768 against 3,325,016 at rtol 1e-9; 0.56 and 0.45 of them for
    other draws in d = 3 and 4)."""
    from cmverify.loss_floors import _cubature

    rng = np.random.default_rng(0)
    d = 3
    means = rng.normal(size=(2, d)) * 1.5
    a = rng.normal(size=(d, d))
    cov = a @ a.T / d * 0.3 + 0.05 * np.eye(d)
    mixture = cmv.GaussianMixture([0.3, 0.7], means, np.stack([cov, cov]))
    path = cmv.MixturePath(mixture, cmv.Interpolant.linear())
    t = 0.1
    rotations = _cubature.aligned_rotations(path, t)
    marginal = path.marginal(t)
    for j in range(2):
        q = rotations[j]
        np.testing.assert_allclose(q.T @ q, np.eye(d), atol=1e-14)
        z = _rules.whitening_inverses(marginal)[j] @ (marginal.means[1 - j] - marginal.means[j])
        assert abs(abs(q[:, 0] @ z) - np.linalg.norm(z)) <= 1e-12 * np.linalg.norm(z)

    def g(x):
        return path.velocity_target_variance(t, x)

    aligned = cubature_rule(path, t, g, 1e-9, 2**23)
    monkeypatch.setattr(
        _cubature, "aligned_rotations", lambda p, s: np.broadcast_to(np.eye(d), (2, d, d)).copy()
    )
    plain = cubature_rule(path, t, g, 1e-9, 2**23)
    assert aligned.converged and plain.converged
    assert abs(aligned.value - plain.value) <= aligned.error_estimate + plain.error_estimate
    assert aligned.nodes < plain.nodes


def test_the_nodes_errors_are_weighed_into_the_estimate():
    """``node_errors``: each node's relative error weighed by its rule and Gaussian weights
    (:class:`~cmverify.loss_floors._cubature.CubatureResult`). Zero errors change nothing;
    a constant ``ε`` on a positive integrand moves the estimate by between ``ε`` times the
    value and ``(‖w₇‖₁ + 2) ε`` times it (the rule's weights, some negative, and the control
    variate's two uses); an unknown (infinite) one at a single node makes the estimate
    infinite (review: it had been 1.3e307), not an exception, and nodes' errors above
    ``rtol`` stop the refinement at once (review: it had spent its whole budget)."""
    path = cmv.MixturePath(cmv.mixtures.random_mixture(2, 3, 4), cmv.Interpolant.linear())
    t = 0.4

    def g(x):
        return path.velocity_target_variance(t, x)

    plain = cubature_rule(path, t, g, 1e-8, 40_000)
    calls: list[int] = []

    def errors_of(eps):
        def last():  # the errors of g's last call, as long as that call
            calls.append(1)
            return np.full(last.size, eps)

        return last

    def sized(errors):
        def h(x):
            errors.size = len(x)
            return g(x)

        return h

    zero = errors_of(0.0)
    assert cubature_rule(path, t, sized(zero), 1e-8, 40_000, node_errors=zero) == plain
    assert calls  # asked after every call of g
    eps = 1e-10  # below rtol: the refinement goes on as without
    const = errors_of(eps)
    moved = cubature_rule(path, t, sized(const), 1e-8, 40_000, node_errors=const)
    assert moved.value == plain.value and moved.nodes == plain.nodes
    assert moved.error_estimate == pytest.approx(plain.error_estimate + moved.node_error)
    norm = float(np.abs(genz_malik(2).w7).sum())
    assert eps * plain.value <= moved.node_error <= (norm + 2.0) * eps * plain.value
    start = cubature_rule(path, t, g, 1e-8, 1)  # the starting partition alone
    for eps, where in ((np.inf, 7), (1e-5, slice(None))):  # one unknown; all above rtol
        calls.clear()

        def some(eps=eps, where=where):
            last = np.zeros(some.size)
            if len(calls) == 1:  # the starting boxes' call (after the control variate's)
                last[where] = eps
            calls.append(1)
            return last

        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no RuntimeWarning from inf · 0 either
            lost = cubature_rule(path, t, sized(some), 1e-8, 40_000, node_errors=some)
        assert not lost.converged
        assert lost.error_estimate == np.inf if eps == np.inf else lost.node_error > 1e-8
        # halving cannot shrink what the nodes' errors add: it stops, the budget unspent
        assert lost.nodes == start.nodes
