"""The MeanFlow floor's integrand on the data side (loss-floors floor).

With ``y ~ p_r``, ``x = X_{r→t}(y)``, ``A = ∇X_{r→t}(y) = ∇X_{t→r}(x)⁻¹`` and ``C =
Cov(v_c | x_t = x)``, the floor is ``E_{y ~ p_r} h(y)``, ``h = tr(A⁻¹ C A⁻ᵀ)``. ``A⁻¹``
is formed as ``adj(A) / det A`` with ``det A = p_r(y) / p_t(x)`` (mass conservation, in
log densities): ``h = (p_t/p_r)² tr(adj A C adj Aᵀ)`` — accurate where ``A`` is singular
to working precision (module docstring of :mod:`._meanflow`). Each node's relative error
(the cofactors', ``x``'s, and the log-determinant's through ``x``) is recorded: most rules
add ``ε |value|`` for the worst ``ε`` since the last reset (:attr:`DataSide.worst`), the
cubature each node's weighed by its weight (:attr:`DataSide.errors`).
"""

from __future__ import annotations

import warnings

import numpy as np

from ..exact import MixturePath
from ..reference import AccuracyWarning, ReferenceFlow, SolverFailure
from ._adjugate import adjugate, node_error
from ._workers import SolvePool

__all__ = ["GAP_PROBE_STEPS", "DataSide"]

#: Steps allowed to each solve that probes a gap of ``p_r`` (:mod:`._gaps`).
GAP_PROBE_STEPS = 800


class DataSide:
    """The data-side integrand of the MeanFlow floor at ``(t, r)`` of ``path``, solved by
    ``flow`` (:meth:`~cmverify.reference.ReferenceFlow.solve_jacobian`, ``r → t``).

    Attributes:
        worst: the largest relative error estimate of a node's value so far (the
            rules reset it to 0 when they start).
        errors: the relative error estimates of the values of the last batch ``(m,)``
            (``inf`` where unknown), for rules that weigh each node's error.
        pool: worker processes that solve large batches (:class:`._workers.SolvePool`),
            or ``None``.
    """

    def __init__(
        self,
        path: MixturePath,
        flow: ReferenceFlow,
        t: float,
        r: float,
        pool: SolvePool | None = None,
    ) -> None:
        self.path, self.flow, self.t, self.r, self.pool = path, flow, t, r, pool
        self.worst = 0.0
        self.errors = np.zeros(0)

    def terms(self, y: np.ndarray, sol) -> tuple[np.ndarray, ...]:
        """``log p_t(x)``, ``log p_r(y)``, ``tr(adj A C adj Aᵀ)`` and ``adj A`` of a solve
        from ``y``."""
        path, t = self.path, self.t
        adj = adjugate(sol.jacobian)
        g = np.einsum("nab,nbc,nac->n", adj, path.velocity_target_covariance(t, sol.x), adj)
        return path.log_prob(t, sol.x), path.log_prob(self.r, y), g, adj

    def log_terms(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``h`` at ``y`` ``(m, d)`` as ``(log a, b)``, ``h = a b`` (``a = (p_t/p_r)²``,
        ``b = tr(adj A C adj Aᵀ)``), the nodes' errors recorded in :attr:`worst`; a large
        batch solved by the :attr:`pool`'s workers where there is one."""
        if self.pool is not None and self.pool.shares(self.path, self.flow, len(y)):
            log_a, b, self.errors = self.pool.log_terms(self.t, self.r, y)
            self.worst = max(self.worst, float(np.max(self.errors)))
            return log_a, b
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AccuracyWarning)  # folded into the estimate
            sol = self.flow.solve_jacobian(y, self.r, self.t)
        log_pt, log_pr, g, adj = self.terms(y, sol)
        score = np.linalg.norm(self.path.score(self.t, sol.x), axis=1)
        # |Δ log det A| through x, and the rounding of the two log densities
        det_error = score * sol.error_estimate + 1e-15 * (np.abs(log_pt) + np.abs(log_pr) + 1)
        node = node_error(sol, adj) + 2.0 * det_error
        self.errors = np.where(node >= 0.0, node, np.inf)  # NaN: unknown, so infinite
        self.worst = max(self.worst, float(np.max(self.errors)))
        return 2.0 * (log_pt - log_pr), g

    def h(self, y: np.ndarray) -> np.ndarray:
        """``h = a b`` of :meth:`log_terms` ``(m,)``, without forming ``A⁻¹``;
        ``ValueError`` where it is beyond float64."""
        log_a, g = self.log_terms(y)
        with np.errstate(over="ignore", divide="ignore"):
            value = np.where(g > 0, np.exp(log_a + np.log(g)), 0.0)
        if not np.all(np.isfinite(value)):
            raise ValueError(
                f"the MeanFlow floor at (t, r) = ({self.t:g}, {self.r:g}) is beyond float64 "
                "here: X_{r→t} compresses a region where p_r is below e^-709 of p_t (a gap "
                "between separated modes; the floor is dominated by it, module docstring)"
            )
        return value

    def log_f(self, y: np.ndarray) -> np.ndarray:
        """``log(p_r h) = 2 log p_t(x) − log p_r(y) + log tr(adj A C adj Aᵀ)`` at ``y``,
        point by point; ``inf`` (unknown) where the solve fails within
        :data:`GAP_PROBE_STEPS`: on the sheet between modes hundreds of standard deviations
        apart the variational equation is stiff (208,408 evaluations, 59 s, for modes
        1,000 apart, found in review)."""
        probe = ReferenceFlow(self.path, max_steps=GAP_PROBE_STEPS)
        out = np.full(len(y), np.inf)
        for i, point in enumerate(y[:, None]):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", AccuracyWarning)
                    sol = probe.solve_jacobian(point, self.r, self.t)
            except SolverFailure:
                continue
            log_pt, log_pr, g, _ = self.terms(point, sol)
            with np.errstate(divide="ignore", invalid="ignore"):
                value = float((2.0 * log_pt - log_pr + np.log(g))[0])
            out[i] = value if np.isfinite(value) else np.inf
        return out
