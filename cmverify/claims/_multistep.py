"""MULTISTEP: the seed's multistep sampler with the exact consistency function keeps
every intermediate state distributed as ``p_t`` (claims layer).

Sampler (:func:`cmverify.reference.multistep_sample`) over decreasing times ``1 = t_0 > t_1 > … > t_m``: ``x_{t_0} ~ N(0, I)``;
``x̂0 = f*(t_{i−1}, x_{t_{i−1}})``; ``x_{t_i} = α_{t_i} x̂0 + σ_{t_i} z_i`` with fresh
``z_i ~ N(0, I)``. Since ``f*(t, ·)`` pushes ``p_t`` to the data exactly, ``x̂0 ~ data``
and ``x_{t_i} ~ p_{t_i}`` at every step.

Test: one-sample Kolmogorov–Smirnov statistics against exact CDFs — in ``d = 1`` the
mixture CDF of ``p_{t_i}``; in ``d ≥ 2`` the CDFs of 8 random one-dimensional projections
(a projected Gaussian mixture is a 1-d Gaussian mixture). All statistics of a run share
a family-wise false-alarm rate of 1e-3 (Bonferroni): the check compares the largest
``D_n`` with the critical value at ``1e-3 / (number of tests)``.

Reference: ``f*`` from a :class:`~cmverify.reference.ReferenceFlow` at ``rtol = 1e-6``
with steps up to 1/4 (:data:`REFERENCE_RTOL`, :data:`REFERENCE_MAX_STEP`), certified per
trajectory like every reference solve (measured on eight_gaussians/linear, 1000 points
from ``t = 1``: max error 2.9e-8, 4.3 times faster than the default 1e-10 with steps up
to 1/32). Samples each moved by at most ``ε`` change ``D_n`` by at most ``ε sup p``
plus ``1/n`` times the most samples in one interval of length ``2ε``: at ``ε ≈ 3e-6``
and ``n = 4000`` a few, so ``≲ 1e-3`` against critical values ≥ 0.03.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..exact import GaussianMixture, MixturePath
from ..reference import ReferenceFlow, mixture_log_cdf, multistep_sample
from ._case import BatteryConfig, Case
from ._results import Check

__all__ = ["FALSE_ALARM", "measure_multistep", "multistep"]

FALSE_ALARM = 1e-3
#: The reference ``f*``'s tolerance and step cap (module docstring: its error budget).
REFERENCE_RTOL = 1e-6
REFERENCE_MAX_STEP = 0.25
DEFAULT_TIMES = (1.0, 0.8, 0.6, 0.4, 0.2, 0.05)
N_PROJECTIONS = 8

Consistency = Callable[[float, np.ndarray], np.ndarray]


def _projected(mixture: GaussianMixture, u: np.ndarray) -> GaussianMixture:
    var = np.einsum("i,kij,j->k", u, mixture.covs, u)
    return GaussianMixture(mixture.weights, (mixture.means @ u)[:, None], var[:, None, None])


def multistep(
    path: MixturePath,
    *,
    consistency: Consistency | None = None,
    times: tuple[float, ...] = DEFAULT_TIMES,
    n: int = 4000,
    seed: int | np.random.Generator = 0,
) -> list[Check]:
    """MULTISTEP with ``f*`` from the reference flow at :data:`REFERENCE_RTOL` (or the
    ``consistency`` given); ``seed`` an integer or a generator."""
    from scipy import stats  # imported here: 0.25 s that only MULTISTEP needs

    rng = np.random.default_rng(seed)
    if consistency is None:
        consistency = ReferenceFlow(
            path, rtol=REFERENCE_RTOL, max_step=REFERENCE_MAX_STEP
        ).consistency
    x1 = rng.standard_normal((n, path.dim))
    states = multistep_sample(path.interpolant, consistency, times, x1, rng, final=False).states
    directions = rng.normal(size=(N_PROJECTIONS, path.dim))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    statistics = []
    for t, x in zip(times[1:], states[1:], strict=True):
        marginal = path.marginal(t)
        projections = [np.ones(1)] if path.dim == 1 else list(directions)
        for u in projections:
            law = marginal if path.dim == 1 else _projected(marginal, u)
            sample = x[:, 0] if path.dim == 1 else x @ u
            cdf = lambda z, law=law: np.exp(mixture_log_cdf(law, np.asarray(z, dtype=float)))  # noqa: E731
            statistics.append(stats.kstest(sample, cdf).statistic)
    critical = float(stats.kstwo.isf(FALSE_ALARM / len(statistics), n))
    return [
        Check(
            f"MULTISTEP: largest KS statistic over {len(statistics)} tests (times {', '.join(map(str, times[1:]))})",
            "",
            max(statistics),
            critical,
            f"KS critical value, family-wise false-alarm rate {FALSE_ALARM:g}, n = {n}; "
            f"reference f* at rtol {REFERENCE_RTOL:g} moves D_n by ≲ 1e-3",
        )
    ]


def measure_multistep(case: Case, settings: BatteryConfig, rng: np.random.Generator) -> list[Check]:
    """MULTISTEP on one case with ``settings.multistep_samples`` samples."""
    return multistep(case.path, n=settings.multistep_samples, seed=rng)
