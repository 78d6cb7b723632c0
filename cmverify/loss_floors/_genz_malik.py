"""The Genz–Malik rule of degree 7 on ``[−1, 1]^d`` with its embedded rule of degree 5 and
null rules, and the error estimate of one box of the adaptive cubature (:mod:`._cubature`;
loss-floors floor).

**A box's error estimate.** ``|I₇ − I₅|`` alone (the error of the degree-5 value, an
upper estimate of the degree-7 value's where the rules converge) can vanish by accident:
measured, a box whose ``|I₇ − I₅|`` was 7e-13 held an error of 8.6e-9 (d = 2, the sqrt
interpolant, four components of standard deviation 0.83 at t = 0.3), and the whole
cubature stopped 2.1e-9 off at an estimate of 8.2e-10 (rtol 1e-9). So each box also
applies null rules of lower degree on the same nodes (:class:`GenzMalik`; the approach of
DCUHRE, Berntsen, Espelid & Genz 1991, with its own constants here): ``n₅`` (degree 5,
``κ n₅ = |I₇ − I₅|``), ``n₃`` (degree 3), ``n₁`` (degree 1). Where the integrand's
Taylor series converges on the box, the terms fall by a ratio ``q`` per two degrees and
``n₅ ≈ q n₃ ≈ q² n₁``; the estimate is ``κ max(n₅, q₃ n₃) · min(1, 10 max(q₃, q₅))``
with ``q₃ = n₃/n₁`` and ``q₅ = n₅/n₃`` (each ≤ 1): the degree-5 level, or what the lower
degrees predict for it if that is larger (the accident above: ``n₃`` was 6e-6), times
the next ratio with a safety factor of 10 (the degree-7 error is one ratio below the
degree-5 level). Measured on 226 random collinear mixtures in d = 2–4 (1-d truths; the
linear, trig and sqrt interpolants; the floors' default rtol; ``t`` in [0.02, 0.98]):
every error within its estimate, the worst at 0.019 of it; ``|I₇ − I₅|`` alone failed
on one (2.6×, the case above) and came within 0.97 of failing on another, with 13–15%
fewer nodes. From each starting partition the floors use, at the default rtol and at a
hundredth of it (two runs of 400 mixtures each): within 0.74
(benchmarks/cubature_estimate_sweep.py).

Where the estimate's margin lies (random_mixture(4, 3, 0), MeanFlow floor at (0.8, 0.6),
RESULTS.md): the boxes' errors add up to a hundredth of the estimate; in the boxes holding
most of it ``q₃ n₃`` exceeds ``n₅`` (the Gaussian weight's low-degree content across a box
1.5 standard deviations wide). Estimates without that guard, and a degree-9 rule with the
same estimate two degrees up, fell short of the error in some boxes and cases: measured,
not adopted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np

__all__ = ["GenzMalik", "box_estimate", "corners", "genz_malik"]

#: Safety factor on the convergence ratio of the null rules in a box's estimate
#: (:func:`box_estimate`).
RATIO_SAFETY = 10.0


@dataclass(frozen=True)
class GenzMalik:
    """The Genz–Malik nodes of ``[−1, 1]^d`` and the weights of the degree-7 and degree-5
    rules, normalized so that ``vol · Σ_p w_p f(u_p)`` is the integral over a box of
    volume ``vol`` (``Σ_p w_p = 1``). ``axis_near``/``axis_far`` index the nodes
    ``±λ₂ e_i`` and ``±λ₄ e_i`` (shape ``(d, 2)``) for the fourth differences.

    ``nulls`` (shape ``(4, p)``): fully symmetric **null rules** on the same nodes, each
    of the Euclidean norm of ``w7`` and orthogonal to the others — one of degree 5 (it
    integrates every polynomial of degree ≤ 5 to zero: ``w7 − w5`` up to a factor), two
    of degree 3, one of degree 1 (Berntsen, Espelid & Genz 1991). ``kappa`` is
    ``‖w7 − w5‖ / ‖w7‖``, so that ``kappa · |nulls[0] · f|`` is ``|I₇ − I₅|``."""

    nodes: np.ndarray
    w7: np.ndarray
    w5: np.ndarray
    axis_near: np.ndarray
    axis_far: np.ndarray
    nulls: np.ndarray
    kappa: float


def corners(d: int) -> np.ndarray:
    """The ``2^d`` corners of ``[−1, 1]^d`` ``(2^d, d)``."""
    return np.array(np.meshgrid(*([[1.0, -1.0]] * d), indexing="ij")).reshape(d, -1).T


@cache
def genz_malik(d: int) -> GenzMalik:
    """The rule in ``d ≥ 2`` dimensions: the centre; ``±λ₂ e_i`` and ``±λ₄ e_i``;
    ``±λ₄ e_i ± λ₄ e_j`` (``i < j``); the ``2^d`` corners ``(±λ₅, …, ±λ₅)``, with
    ``λ₂ = √(9/70)``, ``λ₄ = √(9/10)``, ``λ₅ = √(9/19)``."""
    l2, l4, l5 = math.sqrt(9 / 70), math.sqrt(9 / 10), math.sqrt(9 / 19)
    eye = np.eye(d)
    near = np.stack([eye * l2, -eye * l2], axis=1).reshape(2 * d, d)
    far = np.stack([eye * l4, -eye * l4], axis=1).reshape(2 * d, d)
    pairs = []
    for i in range(d):
        for j in range(i + 1, d):
            for si in (1.0, -1.0):
                for sj in (1.0, -1.0):
                    p = np.zeros(d)
                    p[i], p[j] = si * l4, sj * l4
                    pairs.append(p)
    nodes = np.concatenate([np.zeros((1, d)), near, far, np.array(pairs), l5 * corners(d)])
    n_pairs, n_corners = 2 * d * (d - 1), 2**d
    w7 = np.concatenate(
        [
            [(12824 - 9120 * d + 400 * d * d) / 19683],
            np.full(2 * d, 980 / 6561),
            np.full(2 * d, (1820 - 400 * d) / 19683),
            np.full(n_pairs, 200 / 19683),
            np.full(n_corners, 6859 / 19683 / 2**d),
        ]
    )
    w5 = np.concatenate(
        [
            [(729 - 950 * d + 50 * d * d) / 729],
            np.full(2 * d, 245 / 486),
            np.full(2 * d, (265 - 100 * d) / 1458),
            np.full(n_pairs, 25 / 729),
            np.zeros(n_corners),
        ]
    )
    index = np.arange(2 * d).reshape(d, 2)
    orbit = np.repeat(np.arange(5), [1, 2 * d, 2 * d, n_pairs, n_corners])
    nulls = _null_rules(nodes, orbit, w7)
    kappa = float(np.linalg.norm(w7 - w5) / np.linalg.norm(w7))
    return GenzMalik(nodes, w7, w5, 1 + index, 1 + 2 * d + index, nulls, kappa)


def _null_rules(nodes: np.ndarray, orbit: np.ndarray, w7: np.ndarray) -> np.ndarray:
    """Fully symmetric null rules on ``nodes`` (one weight per ``orbit``) of degrees 5, 3,
    3, 1, orthonormalized in that order and scaled to ``‖w7‖`` (see :class:`GenzMalik`).

    A fully symmetric rule integrates every odd monomial to zero; it is of degree ``k`` when
    it also integrates the even symmetric monomials of degree ≤ ``k`` exactly: ``1``,
    ``x₁²`` (degree 3), ``x₁⁴`` and ``x₁² x₂²`` (degree 5). A null rule integrates them to
    zero: the null space of these moment conditions on the five orbit weights, of
    dimension 1 (degree 5), 3 (degree 3, the degree-5 rule among them), 4 (degree 1)."""
    to_nodes = (orbit[:, None] == np.arange(orbit.max() + 1)).astype(np.float64)
    x1, x2 = nodes[:, 0], nodes[:, 1]
    moments = [np.ones(len(nodes)), x1**2, x1**4, x1**2 * x2**2]
    rules: list[np.ndarray] = []
    for n_conditions in (4, 2, 2, 1):  # degree 5, 3, 3, 1
        conditions = np.array(moments[:n_conditions]) @ to_nodes
        space = np.linalg.svd(conditions)[2][np.linalg.matrix_rank(conditions) :]
        for weights in space @ to_nodes.T:  # candidate rules, per node
            for rule in rules:
                weights = weights - (weights @ rule) * rule
            if np.linalg.norm(weights) > 1e-8 and len(rules) < {4: 1, 2: 3, 1: 4}[n_conditions]:
                rules.append(weights / np.linalg.norm(weights))
    return np.array(rules) * np.linalg.norm(w7)


def box_estimate(rule: GenzMalik, nulls: np.ndarray) -> np.ndarray:
    """Error estimates of boxes from the magnitudes of their null rules ``|N_i · f| · vol``
    (shape ``(n, 4)``: degrees 5, 3, 3, 1; module docstring).

    With ``n₅``, ``n₃`` (the RMS of the two of degree 3) and ``n₁``, and the ratios
    ``q₃ = n₃/n₁``, ``q₅ = n₅/n₃`` (each at most 1): ``κ · max(n₅, q₃ n₃) · min(1,
    RATIO_SAFETY · max(q₃, q₅))`` (``κ n₅ = |I₇ − I₅|``)."""
    n5, n1 = nulls[:, 0], nulls[:, 3]
    n3 = np.sqrt(0.5 * (nulls[:, 1] ** 2 + nulls[:, 2] ** 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        q3 = np.where(n1 > 0, np.minimum(1.0, n3 / n1), 1.0)
        q5 = np.where(n3 > 0, np.minimum(1.0, n5 / n3), 1.0)
    level = np.maximum(n5, q3 * n3)  # |I₇ − I₅|, unless it vanished by accident
    return rule.kappa * level * np.minimum(1.0, RATIO_SAFETY * np.maximum(q3, q5))
