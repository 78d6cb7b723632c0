"""Hypothesis strategies for cmverify objects: mixtures, interpolants, times, paths, points.

Public and composable, in the manner of ``hypothesis.extra.numpy``::

    from hypothesis import given
    from cmverify import strategies as cst

    @given(path=cst.paths(), t=cst.times())
    def test_something(path, t): ...

Requires ``hypothesis`` (``pip install cmverify[test]``).

**Edge cases.** :func:`mixtures` and :func:`points` draw well-conditioned mixtures
and typical points. The scales that once gave silent NaNs in the exact layer (issue 10)
are drawn by :func:`extreme_mixtures` (variance scales :data:`EXTREME_VARIANCES`, e.g.
``1e-21 I`` and ``1e20 I`` in ``d = 16``, whose determinants under/overflow) and
:func:`far_points` (magnitudes :data:`FAR_MAGNITUDES`: ``|x|²`` overflows from
``1.4e154`` on). Every path method must return the exact value there, or raise
``ValueError`` where that value is not representable in float64: never NaN.
"""

from __future__ import annotations

import math

import numpy as np

try:
    from hypothesis import strategies as st
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("cmverify.strategies needs hypothesis: pip install 'cmverify[test]'") from exc

from ..exact import GaussianMixture, MixturePath
from ..symbolic import Interpolant
from ..symbolic import interpolants as _catalogue

__all__ = [
    "EXTREME_VARIANCES",
    "FAR_MAGNITUDES",
    "collinear_mixtures",
    "extreme_mixtures",
    "far_points",
    "interpolants",
    "mixtures",
    "named_interpolants",
    "paths",
    "points",
    "structured_mixtures",
    "times",
]


def named_interpolants() -> dict[str, Interpolant]:
    """The interpolants that :func:`interpolants` draws from, by name: the catalogue
    :mod:`cmverify.interpolants` (``linear``, ``trig``, ``quadratic``, ``cos_linear``,
    ``sqrt``) as a new dict of its shared instances. Prefer
    :func:`cmverify.interpolants.by_name`, which needs no Hypothesis."""
    return {name: _catalogue.by_name(name) for name in _catalogue.names()}


#: Names of the interpolants whose ``σ̇`` or ``α̇`` is infinite somewhere
#: (:data:`cmverify.interpolants.SINGULAR`).
SINGULAR_INTERPOLANTS = _catalogue.SINGULAR


def interpolants(*, include_singular: bool = True) -> st.SearchStrategy[Interpolant]:
    """Interpolants of the catalogue :mod:`cmverify.interpolants`.

    With ``include_singular=False`` only those whose ``α̇`` and ``σ̇`` are finite on
    all of ``[0, 1]``. Shrinks towards ``linear``. The interpolants are built here, once
    (SymPy: up to a second each), not while Hypothesis draws (which its too-slow health
    check and deadline would count).
    """
    names = _catalogue.names(include_singular=include_singular)
    return st.sampled_from([_catalogue.by_name(name) for name in names])


def times(
    min_value: float = 0.0, max_value: float = 1.0, *, endpoints: bool = True
) -> st.SearchStrategy[float]:
    """Times in ``[min_value, max_value] ⊆ [0, 1]``; the endpoints are drawn often when
    ``endpoints`` is true, and never otherwise (then the interval is open)."""
    if not 0.0 <= min_value < max_value <= 1.0:
        raise ValueError(f"need 0 ≤ min_value < max_value ≤ 1, got {min_value}, {max_value}")
    inner = st.floats(
        min_value, max_value, exclude_min=not endpoints, exclude_max=not endpoints, allow_nan=False
    )
    if endpoints:
        return st.one_of(st.sampled_from([min_value, max_value]), inner)
    return inner


def _rotation(seed: int, dim: int) -> np.ndarray:
    """A Haar-random orthogonal matrix from an integer seed."""
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((dim, dim)))
    return q * np.sign(np.diag(r))


def _weights_and_means(
    draw: st.DrawFn, k: int, d: int, mean_scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """Weights proportional to draws in ``[0.1, 1]``; means in ``[−mean_scale, mean_scale]^d``."""
    raw = np.array(draw(st.lists(st.floats(0.1, 1.0), min_size=k, max_size=k)))
    coords = st.floats(-mean_scale, mean_scale, allow_nan=False)
    means = np.array(draw(st.lists(coords, min_size=k * d, max_size=k * d))).reshape(k, d)
    return raw / raw.sum(), means


@st.composite
def mixtures(
    draw: st.DrawFn,
    dims: st.SearchStrategy[int] | None = None,
    n_components: st.SearchStrategy[int] | None = None,
    *,
    max_condition: float = 10.0,
    min_variance: float = 0.01,
    max_variance: float = 1.0,
    mean_scale: float = 3.0,
) -> GaussianMixture:
    """Gaussian mixtures with bounded condition numbers.

    ``d`` from ``dims`` (default 1–4), ``K`` from ``n_components`` (default 1–5); weights
    proportional to draws in ``[0.1, 1]``; means in ``[−mean_scale, mean_scale]^d``;
    each covariance ``U diag(λ) Uᵀ`` with ``U`` Haar-random and ``λ = v · 10^u``,
    ``v`` log-uniform in ``[min_variance, max_variance]`` and ``u ∈ [0, log10
    max_condition]``, so each component's condition number is at most
    ``max_condition`` (rounding aside).
    """
    d = draw(dims if dims is not None else st.integers(1, 4))
    k = draw(n_components if n_components is not None else st.integers(1, 5))
    weights, means = _weights_and_means(draw, k, d, mean_scale)
    log_lo, log_hi = math.log10(min_variance), math.log10(max_variance)
    covs = np.empty((k, d, d))
    for i in range(k):
        base = 10.0 ** draw(st.floats(log_lo, log_hi))
        spread = st.floats(0.0, math.log10(max_condition))
        lam = base * 10.0 ** np.array(draw(st.lists(spread, min_size=d, max_size=d)))
        u = _rotation(draw(st.integers(0, 2**32 - 1)), d)
        cov = (u * lam) @ u.T
        covs[i] = 0.5 * (cov + cov.T)
    return GaussianMixture(weights, means, covs)


#: The structures :func:`structured_mixtures` draws: ``ppca`` is a low-rank mixture
#: with ``D_k = s_k I`` (the product route of :mod:`cmverify.exact._gram`).
STRUCTURED_KINDS = ("isotropic", "diagonal", "low_rank", "ppca")


@st.composite
def structured_mixtures(
    draw: st.DrawFn,
    kinds: st.SearchStrategy[str] | None = None,
    dims: st.SearchStrategy[int] | None = None,
    n_components: st.SearchStrategy[int] | None = None,
    *,
    max_condition: float = 100.0,
    min_variance: float = 0.01,
    max_variance: float = 1.0,
    mean_scale: float = 3.0,
) -> GaussianMixture:
    """Gaussian mixtures with structured covariances (:meth:`GaussianMixture.isotropic`,
    :meth:`~GaussianMixture.diagonal`, :meth:`~GaussianMixture.low_rank`).

    The kind from ``kinds`` (default :data:`STRUCTURED_KINDS`), ``d`` from ``dims``
    (default 1–6), ``K`` from ``n_components`` (default 1–4); weights and means as in
    :func:`mixtures`; variances log-uniform in ``[min_variance, max_variance]``; low-rank
    factors of rank ``0 … min(d, 3)`` with Gaussian entries scaled so that
    ``‖F_k‖_F² ≤ (max_condition − 1) · min D_k`` (condition number ≤ ``max_condition``).
    """
    kind = draw(kinds if kinds is not None else st.sampled_from(STRUCTURED_KINDS))
    d = draw(dims if dims is not None else st.integers(1, 6))
    k = draw(n_components if n_components is not None else st.integers(1, 4))
    weights, means = _weights_and_means(draw, k, d, mean_scale)
    log_var = st.floats(math.log10(min_variance), math.log10(max_variance))
    per_coord = 1 if kind in ("isotropic", "ppca") else d
    var = 10.0 ** np.array(draw(st.lists(log_var, min_size=k * per_coord, max_size=k * per_coord)))
    var = np.broadcast_to(var.reshape(k, per_coord), (k, d)).copy()
    if kind == "isotropic":
        return GaussianMixture.isotropic(weights, means, var[:, 0])
    if kind == "diagonal":
        return GaussianMixture.diagonal(weights, means, var)
    rank = draw(st.integers(0, min(d, 3)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    factors = rng.standard_normal((k, d, rank))
    norms = np.sqrt(np.maximum(np.einsum("kdr,kdr->k", factors, factors), 1e-300))
    target = np.sqrt((max_condition - 1.0) * var.min(axis=1)) * draw(st.floats(0.05, 1.0))
    factors *= (target / norms)[:, None, None]
    return GaussianMixture.low_rank(weights, means, factors, var)


@st.composite
def collinear_mixtures(
    draw: st.DrawFn,
    dims: st.SearchStrategy[int] | None = None,
    n_components: st.SearchStrategy[int] | None = None,
    *,
    min_std: float = 0.05,
    max_std: float = 1.0,
    mean_scale: float = 3.0,
) -> GaussianMixture:
    """Mixtures ``Σ_k w_k N(a_k e + b, s² I)``: one standard deviation ``s`` (log-uniform in
    ``[min_std, max_std]``), the means on a line of Haar-random direction ``e`` (``a_k``
    in ``[−mean_scale, mean_scale]``) through an offset ``b ⊥ e``.

    What makes them useful: the components' responsibilities depend on ``e·x`` only and
    the posterior's between-component spread lies along ``e``, so quantities such as the
    loss floors reduce to the 1-d mixture ``Σ_k w_k N(a_k, s²)`` plus closed forms in the
    ``d − 1`` directions across — 1-d truths for ``d``-dimensional rules. ``d`` from
    ``dims`` (default 2–4), ``K`` from ``n_components`` (default 2–4).
    """
    d = draw(dims if dims is not None else st.integers(2, 4))
    k = draw(n_components if n_components is not None else st.integers(2, 4))
    weights, positions = _weights_and_means(draw, k, 1, mean_scale)
    frame = _rotation(draw(st.integers(0, 2**32 - 1)), d)
    offset = frame[:, 1:] @ np.array(
        draw(st.lists(st.floats(-1.0, 1.0), min_size=d - 1, max_size=d - 1))
    )
    std = 10.0 ** draw(st.floats(math.log10(min_std), math.log10(max_std)))
    means = positions * frame[:, 0] + offset
    return GaussianMixture(weights, means, np.broadcast_to(std**2 * np.eye(d), (k, d, d)))


def paths(
    mixture_strategy: st.SearchStrategy[GaussianMixture] | None = None,
    interpolant_strategy: st.SearchStrategy[Interpolant] | None = None,
) -> st.SearchStrategy[MixturePath]:
    """Mixture paths from :func:`mixtures` and :func:`interpolants` (or the strategies given)."""
    return st.builds(
        MixturePath,
        mixture_strategy if mixture_strategy is not None else mixtures(),
        interpolant_strategy if interpolant_strategy is not None else interpolants(),
    )


def points(path: MixturePath, t: float, n: int = 64) -> st.SearchStrategy[np.ndarray]:
    """``n`` points drawn from ``p_t`` with a Hypothesis-chosen seed, shape ``(n, d)``."""
    return st.integers(0, 2**32 - 1).map(lambda seed: path.sample(t, n, seed))


#: Variance scales of :func:`extreme_mixtures`: a product of sixteen of them under- or
#: overflows float64, and so does a Mahalanobis term far out.
EXTREME_VARIANCES = (1e-21, 1e-100, 1e20, 1e100)
#: Magnitudes ``max_i |x_i|`` of :func:`far_points`: ``|x|²`` overflows from ``1.4e154``
#: on, and ``x − α μ`` rounds every ordinary mean away from ``1e16`` on.
FAR_MAGNITUDES = (1e3, 1e20, 1e155, 1e160, 1e300)


@st.composite
def extreme_mixtures(
    draw: st.DrawFn,
    dims: st.SearchStrategy[int] | None = None,
    n_components: st.SearchStrategy[int] | None = None,
) -> GaussianMixture:
    """Gaussian mixtures at extreme scales (the edge cases of the exact layer).

    ``d`` from ``dims`` (default one of 1, 2, 3, 16), ``K`` from ``n_components``
    (default 1–3). Each component's covariance is ``v U diag(λ) Uᵀ`` with the scale
    ``v`` drawn from :data:`EXTREME_VARIANCES` or ``1``, ``λ ∈ [1, 10]`` and ``U``
    Haar-random (so the condition number is at most 10). Means are uniform in
    ``[−3, 3]^d`` times a scale drawn from ``1``, ``1e-10``, ``1e10``; weights are
    proportional to draws in ``[0.1, 1]``, one of them possibly ``0``.
    """
    d = draw(dims if dims is not None else st.sampled_from([1, 2, 3, 16]))
    k = draw(n_components if n_components is not None else st.integers(1, 3))
    raw = np.array(draw(st.lists(st.floats(0.1, 1.0), min_size=k, max_size=k)))
    if k > 1 and draw(st.booleans()):
        raw[draw(st.integers(0, k - 1))] = 0.0
    mean_scale = draw(st.sampled_from([1.0, 1e-10, 1e10]))
    coords = st.floats(-3.0, 3.0, allow_nan=False)
    flat = draw(st.lists(coords, min_size=k * d, max_size=k * d))
    means = mean_scale * np.array(flat).reshape(k, d)
    covs = np.empty((k, d, d))
    for i in range(k):
        v = draw(st.sampled_from([1.0, *EXTREME_VARIANCES]))
        lam = v * np.array(draw(st.lists(st.floats(1.0, 10.0), min_size=d, max_size=d)))
        u = _rotation(draw(st.integers(0, 2**32 - 1)), d)
        cov = (u * lam) @ u.T
        covs[i] = 0.5 * (cov + cov.T)
    return GaussianMixture(raw / raw.sum(), means, covs)


def far_points(dim: int, n: int = 8) -> st.SearchStrategy[np.ndarray]:
    """``n`` points far out, shape ``(n, dim)``: each row a magnitude from
    :data:`FAR_MAGNITUDES` times a direction with ``max_i |·| = 1`` (random, or a
    coordinate axis), with Hypothesis-chosen signs and seed."""

    def build(args: tuple[list[float], list[bool], int]) -> np.ndarray:
        magnitudes, aligned, seed = args
        axis_aligned = np.array(aligned, dtype=bool)
        rng = np.random.default_rng(seed)
        directions = rng.standard_normal((n, dim))
        axes = rng.integers(0, dim, size=n)
        directions[axis_aligned] = 0.0
        directions[np.flatnonzero(axis_aligned), axes[axis_aligned]] = rng.choice(
            [-1.0, 1.0], size=int(np.sum(axis_aligned))
        )
        directions /= np.max(np.abs(directions), axis=1, keepdims=True)
        return np.array(magnitudes)[:, None] * directions

    return st.tuples(
        st.lists(st.sampled_from(FAR_MAGNITUDES), min_size=n, max_size=n),
        st.lists(st.booleans(), min_size=n, max_size=n),
        st.integers(0, 2**32 - 1),
    ).map(build)
