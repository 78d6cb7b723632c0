"""The velocity's spatial Jacobian ``∇v(t, x)`` of a mixture path in closed form (exact layer).

With the component terms of :mod:`cmverify.exact._path` — the component velocity
``m_k(y) = α̇ μ_k + U_k (g_k ⊙ y_k)``, ``g_k = (α α̇ λ_k + σ σ̇) / c_k``, the component
score ``s_k(y) = −U_k (y_k / c_k)`` and the responsibilities ``r_k`` with
``∇r_k = r_k (s_k − s̄)``, ``s̄ = Σ_j r_j s_j`` (the score) — the velocity
``v = Σ_k r_k m_k`` has the Jacobian ``(∇v)_ij = ∂v_i/∂y_j``

    ``∇v = Σ_k r_k U_k diag(g_k) U_kᵀ + Σ_k r_k (m_k − v)(s_k − s̄)ᵀ``,

the second sum written with ``m_k − v`` (allowed since ``Σ_k r_k (s_k − s̄) = 0``): a
covariance over the posterior's components, free of the cancellation of
``Σ r_k m_k s_kᵀ − v s̄ᵀ``. Like the velocity it never divides by ``α`` or ``σ``.
Since ``m_k − v = β (s_k − s̄)`` with ``β = α̇ σ²/α − σ σ̇`` (for ``α ≠ 0``), the matrix is
symmetric: ``v`` is a gradient field. Its trace is the divergence ``∇·v``.

On the scaled route (far from the data, :mod:`cmverify.exact._scaled`) ``y_k = 2^e ŷ_k``:
``m_k − v`` and ``s_k − s̄`` are ``2^e`` times their scaled forms and the covariance sum is
``4^e`` times the scaled one, over the components of positive responsibility.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ._evaluation import Evaluation, Evaluator

__all__ = [
    "SMALL_DIM",
    "component_terms",
    "first_pass",
    "jacobian_blocks",
    "points_last",
    "velocity_jacobian",
]

#: Up to this dimension the covariance sum runs one entry ``(i, j)`` at a time (measured
#: faster than ``einsum`` for ``d = 2``).
SMALL_DIM = 4


def component_terms(
    evaluator: Evaluator, ev: Evaluation
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(g, m, s)``: ``g_k`` shape ``(K', d, m)``; ``m_k`` and ``s_k`` shape ``(K, d, n)``,
    divided by ``2^e`` on the scaled route."""
    co = ev.co
    g = (co.alpha_dalpha * evaluator.eigvals + co.sigma_dsigma) * co.inv_c
    offset = co.dalpha * evaluator.means
    if ev.scale is not None:
        offset = offset / ev.scale
    m = evaluator.from_eigenbasis(g * ev.yk) + offset
    s = -evaluator.from_eigenbasis(ev.yk * co.inv_c)
    return g, m, s


def points_last(evaluator: Evaluator, ev: Evaluation) -> tuple[np.ndarray, np.ndarray]:
    """``(v, ∇v)`` from one evaluation, points last: shapes ``(d, n)`` and ``(d, d, n)``."""
    g, m, s = component_terms(evaluator, ev)
    r = ev.resp
    if ev.scale is not None:  # components of zero responsibility may hold inf
        keep = r > 0.0
        m = np.where(keep[:, None, :], m, 0.0)
        s = np.where(keep[:, None, :], s, 0.0)
    rb = r[:, None, :]
    v = np.sum(rb * m, axis=0)  # (d, n)
    score = np.sum(rb * s, axis=0)
    dm, ds = rb * (m - v), s - score
    d = dm.shape[1]
    weighted_g = np.sum(np.broadcast_to(rb * g, dm.shape), axis=0)  # (d, n)
    if d <= SMALL_DIM:  # Σ_k over long contiguous rows, one (i, j) at a time
        grad = np.empty((d, d, v.shape[1]))
        for i in range(d):
            for j in range(d):
                grad[i, j] = np.sum(dm[:, i] * ds[:, j], axis=0)
    else:
        grad = np.einsum("kin,kjn->ijn", dm, ds)
    if ev.scale is not None:
        v = v * ev.scale
        grad = (grad * ev.scale) * ev.scale  # twice: a zero sum stays 0 where 4^e overflows
    if evaluator.identity_basis:
        idx = np.arange(d)
        grad[idx, idx] += weighted_g
    else:
        u = evaluator.mixture.eigvecs
        grad += np.einsum("kia,kan,kja->ijn", u, np.broadcast_to(rb * g, dm.shape), u)
    return v, grad


def velocity_jacobian(evaluator: Evaluator, ev: Evaluation) -> np.ndarray:
    """``∇v`` from one evaluation, shape ``(n, d, d)`` (module docstring)."""
    return np.ascontiguousarray(np.moveaxis(points_last(evaluator, ev)[1], 2, 0))


def jacobian_blocks(
    t: np.ndarray,
    x: np.ndarray,
    step: int,
    first: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]],
    far: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray]:
    """``(v, ∇v)`` points last (``(d, n)``, ``(d, d, n)``) on trusted ``(t, x)`` in blocks of
    ``step`` rows: ``first(t, x) → (v, ∇v, redo)``, then ``far`` on the rows flagged
    ``redo`` or not finite."""
    n, d = x.shape
    v, grad = np.empty((d, n)), np.empty((d, d, n))
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        for lo in range(0, n, step):
            hi = min(n, lo + step)
            tb = t if t.ndim == 0 else t[lo:hi]
            vb, gb, redo = first(tb, x[lo:hi])
            redo = redo | ~np.all(np.isfinite(gb), axis=(0, 1))
            if np.any(redo):
                vb[:, redo], gb[:, :, redo] = far(tb if tb.ndim == 0 else tb[redo], x[lo:hi][redo])
            v[:, lo:hi], grad[:, :, lo:hi] = vb, gb
    return v, grad


def first_pass(
    evaluator: Evaluator, t: np.ndarray, x: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(v, ∇v, redo)`` points last by the direct route on one block; ``redo`` flags the
    rows the scaled route must take."""
    e = evaluator.evaluate(t, x)
    return (*points_last(evaluator, e), evaluator.needs_scaling(e))
