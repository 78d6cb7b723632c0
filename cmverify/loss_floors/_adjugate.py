"""The Jacobian algebra of the MeanFlow floor's data side (loss-floors floor):
``A⁻¹ = adj(A) / det A`` from cofactors, accurate where ``A = ∇X_{r→t}`` is singular to
working precision (a gap of ``p_r`` squeezed into a sheet), and the error of
``tr(adj A C adj Aᵀ)`` that a solve's estimate ``|ΔA|`` implies."""

from __future__ import annotations

import numpy as np

__all__ = ["adjugate", "node_error"]


def adjugate(a: np.ndarray) -> np.ndarray:
    """``adj(A) = det(A) A⁻¹`` of matrices ``(n, d, d)`` from their cofactors (minors of
    order ``d − 1``, no division): accurate where ``A`` is nearly singular along one
    direction, as the Jacobian is where the flow squeezes a gap of ``p_r``."""
    d = a.shape[1]
    if d == 1:
        return np.ones_like(a)
    adj = np.empty_like(a)
    keep = np.arange(d)
    for i in range(d):
        for j in range(d):
            minor = a[:, keep != i][:, :, keep != j]
            adj[:, j, i] = (-1) ** (i + j) * np.linalg.det(minor)
    return adj


def node_error(sol, adj: np.ndarray) -> np.ndarray:
    """Relative error estimate of ``tr(adj C adjᵀ)`` per node from the solve's estimate
    ``|ΔA|``: a cofactor is a determinant of order ``d − 1`` in the entries of ``A``, moved
    by ``≤ (d − 1) ‖A‖^{d−2} |ΔA|``; ``d`` of them per row, and the value quadratic."""
    d = adj.shape[1]
    size = np.linalg.norm(sol.jacobian, axis=(1, 2))
    moved = d * (d - 1) * size ** (d - 2) * sol.jacobian_error_estimate
    return 2.0 * moved / np.linalg.norm(adj, axis=(1, 2))
