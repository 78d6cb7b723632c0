"""The conditional covariance of the flow-matching target in closed form (exact layer).

Given ``x_t = y`` the target ``v_c = α̇ x0 + σ̇ x1`` is ``(σ̇/σ) y − (W/σ) x0`` with
``W = α σ̇ − α̇ σ`` (the interpolant's ``wronskian``), so ``Cov(v_c | y) = (W/σ)² Cov(x0 |
y)``. Over the posterior's components (:class:`~cmverify.exact.PosteriorMixture`: weights
``r_k``, covariances ``U_k diag(λ_k σ²/c_k) U_kᵀ``) and with the component velocities
``m_k = α̇ μ_k + U_k (g_k ⊙ y_k)`` (the conditional means of ``v_c`` per component; their
``r``-average is ``v``):

    ``tr Cov(v_c | y) = W² Σ_k r_k Σ_i λ_k,i / c_k,i + Σ_k r_k |m_k − v|²``,

the law of total variance with the ``σ²`` of the within-component part cancelled against
``(W/σ)²``: regular on all of ``[0, 1]`` (``d σ̇²`` at ``t = 0``, ``α̇² tr Cov(x0)`` at
``t = 1``). Its mean over ``p_t`` is the flow-matching loss floor
(:mod:`cmverify.loss_floors`).
"""

from __future__ import annotations

import numpy as np

from ._evaluation import Evaluation, Evaluator
from ._jacobian import component_terms

__all__ = ["velocity_target_covariance", "velocity_target_variance"]


def velocity_target_variance(evaluator: Evaluator, ev: Evaluation) -> np.ndarray:
    """``tr Cov(α̇ x0 + σ̇ x1 | x_t = y)`` from one evaluation, shape ``(n,)`` (module
    docstring); on the scaled route the between-component part is ``4^e`` times its scaled
    form, over the components of positive responsibility."""
    co = ev.co
    _, m, _ = component_terms(evaluator, ev)
    r = ev.resp
    if ev.scale is not None:  # components of zero responsibility may hold inf
        m = np.where((r > 0.0)[:, None, :], m, 0.0)
    v = np.sum(r[:, None, :] * m, axis=0)
    between = np.sum(r * np.sum((m - v) ** 2, axis=1), axis=0)
    if ev.scale is not None:
        between = (between * ev.scale) * ev.scale
    ratio = np.sum(evaluator.eigvals * co.inv_c, axis=1)  # (K', m): Σ_i λ_i / c_i
    within = np.sum(r * ratio, axis=0) if ratio.shape[0] > 1 else ratio[0] * np.sum(r, axis=0)
    return co.wronskian[0, 0] ** 2 * within + between


def velocity_target_covariance(evaluator: Evaluator, ev: Evaluation) -> np.ndarray:
    """``Cov(α̇ x0 + σ̇ x1 | x_t = y)``, shape ``(n, d, d)``: ``W² Σ_k r_k U_k diag(λ_k/c_k)
    U_kᵀ + Σ_k r_k (m_k − v)(m_k − v)ᵀ`` (the matrix whose trace
    :func:`velocity_target_variance` gives)."""
    co = ev.co
    _, m, _ = component_terms(evaluator, ev)
    r = ev.resp
    if ev.scale is not None:  # components of zero responsibility may hold inf
        m = np.where((r > 0.0)[:, None, :], m, 0.0)
    dm = m - np.sum(r[:, None, :] * m, axis=0)
    between = np.einsum("kn,kin,kjn->nij", r, dm, dm)
    if ev.scale is not None:
        between = between * (ev.scale * ev.scale)[:, None, None]
    ratio = evaluator.eigvals * co.inv_c  # (K', d, m): λ_k,i / c_k,i
    vecs = evaluator.mixture.eigvecs
    if ratio.shape[0] == 1 and vecs.shape[0] > 1:
        ratio = np.broadcast_to(ratio, (vecs.shape[0], *ratio.shape[1:]))
    per_component = np.einsum("kai,kim,kbi->kmab", vecs, ratio, vecs)  # (K, m, d, d)
    if per_component.shape[1] == 1:
        within = np.einsum("kn,kab->nab", r, per_component[:, 0])
    else:
        within = np.einsum("kn,knab->nab", r, per_component)
    w = co.wronskian.reshape(-1)
    return (w * w)[:, None, None] * within + between
