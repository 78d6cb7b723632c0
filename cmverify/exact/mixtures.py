"""Named Gaussian mixtures and a generator of random well-conditioned ones (exact layer).

Every constructor returns a fresh :class:`~cmverify.exact.GaussianMixture`. The named
ones carry their catalogue name (``GaussianMixture.name``, e.g. ``"eight_gaussians"``),
the key under which :func:`by_name` rebuilds them; :func:`random_mixture` and
:func:`gaussian` with explicit arguments give ``name = None``. :func:`by_name` accepts
underscores or dashes (``eight_gaussians``, ``eight-gaussians``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .._validation import as_count, as_float_array, as_rng
from ._mixture import GaussianMixture

__all__ = [
    "EIGHT_GAUSSIANS_RADIUS",
    "EIGHT_GAUSSIANS_STD",
    "by_name",
    "digits",
    "digits_examples",
    "eight_gaussians",
    "gaussian",
    "mild_bimodal",
    "names",
    "random_mixture",
    "seed_bimodal",
]

#: Radius of the circle carrying the modes of :func:`eight_gaussians`.
EIGHT_GAUSSIANS_RADIUS = 2.0
#: Standard deviation (isotropic) of each mode of :func:`eight_gaussians`.
EIGHT_GAUSSIANS_STD = 0.2


def seed_bimodal() -> GaussianMixture:
    """The seed figure's data, ``d = 1``: ``0.8 N(−1, 0.1²) + 0.2 N(2, 0.1²)``."""
    return GaussianMixture(
        [0.8, 0.2], [[-1.0], [2.0]], np.full((2, 1, 1), 0.1**2), name="seed_bimodal"
    )


def mild_bimodal() -> GaussianMixture:
    """``d = 1``: ``0.5 N(−0.5, 0.45²) + 0.5 N(0.6, 0.4²)``: two modes, but close enough
    that ``f*`` has no steep transition between them.

    The global claims (CT-GLOBAL, SONG-T1) are asymptotic statements for smooth ``f*``.
    For ``seed_bimodal`` the data density between the modes is about 1e-49 and
    ``f*(1, ·)`` jumps there on a scale below any grid; even for
    ``0.6 N(−0.7, 0.4²) + 0.4 N(0.9, 0.3²)`` the CT recursion's error still falls like
    ``Δ^{1/2}`` up to ``N ≈ 1000`` (see :func:`cmverify.claims.ct_global`). This mixture
    reaches the ``O(Δ)`` regime by ``N = 32``.
    """
    return GaussianMixture(
        [0.5, 0.5], [[-0.5], [0.6]], [[[0.45**2]], [[0.4**2]]], name="mild_bimodal"
    )


def eight_gaussians() -> GaussianMixture:
    """``d = 2``: eight equally weighted modes ``N(2 (cos θ_k, sin θ_k), 0.2² I)``, ``θ_k = kπ/4``.

    Radius :data:`EIGHT_GAUSSIANS_RADIUS` = 2, standard deviation
    :data:`EIGHT_GAUSSIANS_STD` = 0.2 per coordinate.
    """
    angles = np.arange(8) * (np.pi / 4)
    means = EIGHT_GAUSSIANS_RADIUS * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    covs = np.broadcast_to(EIGHT_GAUSSIANS_STD**2 * np.eye(2), (8, 2, 2))
    return GaussianMixture(np.full(8, 1 / 8), means, covs, name="eight_gaussians")


def gaussian(mean: object = None, cov: object = None) -> GaussianMixture:
    """A single Gaussian ``N(mean, cov)`` as a one-component mixture.

    With no arguments: the anisotropic ``d = 2`` Gaussian with mean ``(0.5, −0.25)`` and
    covariance ``[[0.5, 0.3], [0.3, 0.4]]`` (eigenvalues ≈ 0.755 and 0.145), the
    Gaussian of the ``verify`` battery, named ``"gaussian"``; with arguments the mixture
    has no name (``by_name("gaussian")`` would not rebuild it).
    """
    if mean is None and cov is None:
        return GaussianMixture([1.0], [[0.5, -0.25]], [[[0.5, 0.3], [0.3, 0.4]]], name="gaussian")
    if mean is None or cov is None:
        raise ValueError("gaussian() takes both mean and cov, or neither")
    mean_arr = np.atleast_1d(as_float_array(mean, "mean"))
    cov_arr = np.atleast_2d(as_float_array(cov, "cov"))
    if mean_arr.ndim != 1:
        raise ValueError(f"mean must have shape (d,), got {mean_arr.shape}")
    return GaussianMixture([1.0], mean_arr[None], cov_arr[None])


def random_mixture(
    dim: int,
    n_components: int,
    rng: np.random.Generator | int | None = None,
    *,
    max_condition: float = 10.0,
    min_variance: float = 0.05,
    mean_scale: float = 2.0,
) -> GaussianMixture:
    """A random mixture with well-conditioned components.

    Weights are Dirichlet(2, …, 2); means uniform in ``[−mean_scale, mean_scale]^d``;
    each covariance is ``U diag(λ) Uᵀ`` with ``U`` Haar-random orthogonal and ``λ``
    log-uniform in ``[min_variance, min_variance · max_condition]`` (so every
    condition number is at most ``max_condition``).
    """
    dim, n_components = as_count(dim, "dim"), as_count(n_components, "n_components")
    if dim < 1 or n_components < 1:
        raise ValueError(f"dim and n_components must be ≥ 1, got {dim} and {n_components}")
    if not max_condition >= 1.0:
        raise ValueError(f"max_condition must be ≥ 1, got {max_condition}")
    if not min_variance > 0.0:
        raise ValueError(f"min_variance must be > 0, got {min_variance}")
    rng = as_rng(rng)
    weights = rng.dirichlet(np.full(n_components, 2.0))
    means = rng.uniform(-mean_scale, mean_scale, size=(n_components, dim))
    covs = np.empty((n_components, dim, dim))
    for k in range(n_components):
        q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
        q = q * np.sign(np.diag(r))
        lam = min_variance * np.exp(rng.uniform(0.0, np.log(max_condition), size=dim))
        covs[k] = (q * lam) @ q.T
        covs[k] = 0.5 * (covs[k] + covs[k].T)
    return GaussianMixture(weights / weights.sum(), means, covs)


def _digits_file() -> dict[str, np.ndarray]:
    from importlib.resources import files

    with files("cmverify.exact").joinpath("data", "digits.npz").open("rb") as fh:
        with np.load(fh) as data:
            return {key: data[key] for key in data.files}


def digits(classes: object = None) -> GaussianMixture:
    """``d = 64``: scikit-learn's 8×8 handwritten digits as a mixture of ten
    probabilistic-PCA components, one per class: component ``k`` is digit ``k``, weight
    its share of the 1,797 images, ``N(μ_k, F_k F_kᵀ + s_k I)`` with rank 12 (82–92% of
    each class's variance) and ``s_k`` = 0.019–0.040. Pixels are scaled to
    ``pixel / 8 − 1 ∈ [−1, 1]`` (reshape a point to ``(8, 8)`` to see the image).

    Fitted once by ``benchmarks/fit_digits.py`` (maximum-likelihood PPCA per class) and
    shipped as ``cmverify/exact/data/digits.npz``; a :meth:`GaussianMixture.low_rank`
    mixture, so its velocity costs ``O(K d r)`` per point.

    ``classes``: digits to keep (a digit, or any collection: ``3``, ``[3]`` for the
    class-conditional data of 3s, ``{0, 1}``, ``range(5)``), their weights renormalized;
    default all ten (named ``"digits"``; a subset has no name). Components are always in
    ascending digit order: component ``i`` is ``sorted(set(classes))[i]``.
    :func:`digits_examples` gives real images to compare with.
    """
    data = _digits_file()
    labels = data["labels"]
    keep = np.ones(labels.shape, dtype=bool)
    if classes is not None:
        keep = np.isin(labels, _digit_classes(classes, labels))
    weights = data["weights"][keep]
    d = data["means"].shape[1]
    return GaussianMixture.low_rank(
        weights / weights.sum(),
        data["means"][keep],
        data["factors"][keep],
        np.repeat(data["variances"][keep, None], d, axis=1),
        name="digits" if classes is None else None,
    )


def _digit_classes(classes: object, labels: np.ndarray) -> list[int]:
    """``classes`` (any iterable of digits, or one digit) as a sorted list without repeats."""
    items = [classes] if isinstance(classes, int | np.integer) else classes
    try:
        wanted = list(items)
    except TypeError:
        raise ValueError(
            f"classes must be digits 0–9 (a list, range or set), got {classes!r}"
        ) from None
    ok = all(isinstance(c, int | np.integer) and not isinstance(c, bool) for c in wanted)
    if not wanted or not ok:
        raise ValueError(f"classes must be a non-empty collection of digits 0–9, got {classes!r}")
    unknown = sorted(set(int(c) for c in wanted) - set(labels.tolist()))
    if unknown:
        raise ValueError(f"classes must be digits 0–9, got {unknown}")
    return sorted(set(int(c) for c in wanted))


def digits_examples() -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)``: three real digits per class from the data :func:`digits` was
    fitted to, scaled like it, shapes ``(30, 64)`` and ``(30,)``."""
    data = _digits_file()
    return data["examples"].copy(), data["example_labels"].copy()


_NAMED: dict[str, Callable[[], GaussianMixture]] = {
    "seed_bimodal": seed_bimodal,
    "eight_gaussians": eight_gaussians,
    "mild_bimodal": mild_bimodal,
    "gaussian": gaussian,
    "digits": digits,
}


def names() -> list[str]:
    """Names accepted by :func:`by_name`."""
    return sorted(_NAMED)


def by_name(name: str) -> GaussianMixture:
    """The named mixture; dashes and underscores are interchangeable. Its ``name`` is the
    canonical key (``by_name("Eight-Gaussians").name == "eight_gaussians"``)."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {type(name).__name__}")
    key = name.strip().lower().replace("-", "_")
    if key not in _NAMED:
        raise ValueError(f"unknown mixture {name!r}; known: {', '.join(names())}")
    return _NAMED[key]()
