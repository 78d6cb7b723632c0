"""What a reference flow map returns: :class:`FlowSolution`, and the
:class:`AccuracyWarning` for trajectories it cannot certify (reference layer)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["AccuracyWarning", "FlowSolution", "JacobianSolution"]


class AccuracyWarning(UserWarning):
    """Some trajectories could not be shown to meet the target accuracy.

    Raised (as a warning) by :meth:`ReferenceFlow.solve` when, after the refinements, a
    trajectory's error estimate still exceeds ``atol + rtol |X|``: the flow amplifies
    perturbations along it so much (near a separatrix between modes) that float64 cannot
    resolve it to the target. ``FlowSolution.unresolved`` lists them.
    """


@dataclass(frozen=True)
class FlowSolution:
    """``X_{s→t}(x)`` with its cost and its per-trajectory accuracy check.

    Attributes:
        x: the mapped points, shape ``(n, d)``.
        n_accepted, n_rejected: DOP853 steps per trajectory of the solve whose result is
            returned, shape ``(n,)``.
        n_calls: batched velocity evaluations of all solves (fine, check, refinements,
            certificate); ``n_row_evaluations`` their total rows.
        error_estimate: per trajectory ``|X_k − X_{k−1}|`` (Euclidean): the difference
            between the returned solve and the previous, looser one with longer steps
            (see ``LEVELS``), shape ``(n,)``. It bounds the discretization error, not
            the float64 rounding of the velocity amplified by the flow: measured over
            1,025,000 trajectories, it fell below the true error only on 158, mostly
            between narrow modes, where that error was ≤ 0.19 of the target
            (benchmarks/RESULTS.md).
        target: per trajectory ``atol + rtol |X|``, shape ``(n,)``.
        n_refinements: levels beyond the first two each trajectory went through, shape
            ``(n,)``.
        unresolved: indices of the trajectories whose estimate still exceeds the target
            after the refinements (empty unless an :class:`AccuracyWarning` was issued).
        certificate: how the error was bounded, in words.
    """

    x: np.ndarray
    n_accepted: np.ndarray
    n_rejected: np.ndarray
    n_calls: int
    n_row_evaluations: int
    error_estimate: np.ndarray
    target: np.ndarray
    n_refinements: np.ndarray
    unresolved: np.ndarray
    certificate: str


@dataclass(frozen=True)
class JacobianSolution(FlowSolution):
    """``X_{s→t}(x)`` and its Jacobian ``∇X_{s→t}(x)`` (:meth:`ReferenceFlow.solve_jacobian`):
    the fields of :class:`FlowSolution` for the point, and

    Attributes:
        jacobian: ``∇X_{s→t}(x)``, shape ``(n, d, d)``, ``[i, a, b] = ∂X_a/∂x_b``.
        jacobian_error_estimate: per trajectory ``‖J_k − J_{k−1}‖_F``, shape ``(n,)``.
        jacobian_target: per trajectory ``atol + rtol ‖J‖_F``, shape ``(n,)``.

    ``unresolved`` lists the trajectories over target in either block.
    """

    jacobian: np.ndarray
    jacobian_error_estimate: np.ndarray
    jacobian_target: np.ndarray
