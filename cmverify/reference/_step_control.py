"""Step control from the path's marginal covariances (reference layer).

Every marginal covariance of a :class:`~cmverify.exact.MixturePath` is, in its
component's eigenbasis, ``c(t) = α_t² λ + σ_t²`` per eigenvalue ``λ``; the velocity's
Jacobian has the eigenvalues ``g = (α α̇ λ + σ σ̇) / c = ċ / (2c)`` there (plus the
responsibilities' terms), so over ``[t, t + h]`` the flow stretches such a direction by
``√(c(t + h) / c(t))``. Two rules follow, both measured on forward maps from the data
side, ``X_{r→t}`` with ``r ≤ 10⁻³``, of one Gaussian of standard deviation
``s ∈ {10⁻², 10⁻⁴, 10⁻⁶}`` (five interpolants, 2,000 points each, against the closed form):
before them, trajectories the certificate passed ended up to 209 times their target off
(``s = 10⁻⁶``; 1.56 times at ``s = 10⁻²``, linear, ``0 → ½``), after them at most 0.1 of it.

- **Absolute tolerance where the error is made** (:meth:`CovarianceControl.step`):
  an error made at ``t`` reaches the end ``t₁`` stretched by up to
  ``max_λ √(c(t₁) / c(t))`` — ``5·10⁵`` from data of ``s = 10⁻⁶`` to ``t = ½`` — so the
  absolute tolerance meant at ``t₁`` applies at ``t`` times ``min(1, min_λ √(c(t) /
  c(t₁)))``. Without it the solver controlled the error of states of size ``10⁻⁶`` in
  absolute units of ``10⁻¹²`` (a relative ``10⁻⁶``), and the two levels of the certificate
  shared that error (the largest case: 209 times the target, estimates below it).
- **Steps that resolve the covariances' growth** (:meth:`CovarianceControl.step`):
  each step is halved until ``max_λ [log c(t + h) − log c(t)] ≤ κ`` (:data:`KAPPA`, and
  the level's step-cap factor): where the flow stretches, ``h g ≲ κ / 2``. DOP853's error
  estimate was fooled by steps across the growth of ``c`` at ``t ≈ s`` (linear,
  ``s = 10⁻²``, ``10⁻³ → ½``: 0.42 of the target with estimates below the errors; ``κ = ½``
  left that, ``¼`` made it 0.002). Over the whole step, not from ``ċ(t)`` alone: under
  trig ``ċ`` vanishes at ``t = 0`` while ``c`` grows by its own size by ``t ≈ √λ``. Where
  ``c`` shrinks along the step (towards the data), errors contract and no limit applies:
  the certificate's worst case over 10⁶ trajectories towards the data held without it,
  and the limit there cost up to +11% of the evaluations (five modes of std 0.01).

``c(t + h) / c(t)`` and ``c(t) / c(t₁)`` are Möbius functions of ``λ``, monotone, so their
extremes lie at the ends of the spectrum, and bounds of it suffice (the smallest and
largest eigenvalue; for low-rank components ``min D`` and ``max D + max_k ‖F_k‖²_F``).
Cost (velocity evaluations per trajectory, 500 each): towards the data (1 → 0) unchanged
(eight_gaussians, random 8-d, seed_bimodal, five and nineteen narrow modes); from it
(0 → 1) +2% … +5% on eight_gaussians and the random 8-d mixture, +8% … +27% on the 1-d
mixtures of narrow modes.
"""

from __future__ import annotations

import numpy as np

from ..exact import MixturePath
from ._certified import row_norm

__all__ = ["KAPPA", "CovarianceControl"]

#: The largest growth of ``log c`` over one step of the first level (module docstring).
KAPPA = 0.25
#: Halvings at most per step (1 → 1e-15).
_MAX_HALVINGS = 50


def spectrum_ends(mixture) -> np.ndarray:
    """Bounds ``[λ_min, λ_max]`` of the components' eigenvalues, shape ``(2,)``."""
    if mixture.structure == "low_rank":
        diag, factors = mixture.diagonal_term, mixture.factors
        frob = float(np.max(np.einsum("kdr,kdr->k", factors, factors), initial=0.0))
        return np.array([float(np.min(diag)), float(np.max(diag)) + frob])
    lam = mixture.eigvals
    return np.array([float(np.min(lam)), float(np.max(lam))])


class CovarianceControl:
    """The two rules of the module docstring for a :class:`MixturePath`; ``hooks`` gives
    :func:`~cmverify.reference._batched_rk.solve_batched` its ``step_control`` for one
    batch."""

    def __init__(self, path: MixturePath) -> None:
        self._ends = spectrum_ends(path.mixture)
        self._alpha_sigma = path.interpolant._numeric_stack(("alpha", "sigma"))

    def c(self, t: np.ndarray) -> np.ndarray:
        """``c`` at the spectrum's ends, shape ``(m, 2)`` for times ``(m,)`` in [0, 1]."""
        t = np.ascontiguousarray(t, dtype=np.float64)
        # the generated α, σ in one call (the interpolant's door for hot loops: 5.5 µs
        # against 16 µs through at_trusted at 1,000 times)
        alpha, sigma = np.broadcast_to(self._alpha_sigma(t), (2, t.size))[:, :, None]
        return alpha * alpha * self._ends + sigma * sigma

    def step(
        self, t: np.ndarray, h: np.ndarray, growth: np.ndarray, c_end: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(h', atol factor)`` for steps ``h`` (signed, ``t + h`` in [0, 1]) from times
        ``t``: each step halved until no ``c`` grows by more than the factor ``growth``
        (``e^κ``) over it, never below ``10 × spacing(t)`` (the solver's own floor), and
        ``min(1, min_λ √(c / c_end))`` at the smaller of its two ends; shapes ``(m,)``,
        ``c_end`` ``(m, 2)``. One pass serves both rules, in ratios, not logs: as two
        hooks with four logs a step they had cost 13% of an eight_gaussians solve."""
        h = np.array(h, dtype=np.float64)
        floor = 10.0 * np.abs(np.spacing(t))
        start, end = self.c(t), self.c(t + h)
        rows = np.arange(len(t))
        for _ in range(_MAX_HALVINGS):
            ratio = np.max(end[rows] / start[rows], axis=1)
            rows = rows[~(ratio <= growth[rows]) & (0.5 * np.abs(h[rows]) >= floor[rows])]
            if rows.size == 0:
                break
            h[rows] *= 0.5
            end[rows] = self.c(t[rows] + h[rows])
        return h, self._scale(np.minimum(start, end), c_end)

    def atol_scale(self, t: np.ndarray, t_end: np.ndarray) -> np.ndarray:
        """``min(1, min_λ √(c(t) / c(t_end)))``, shape ``(m,)``."""
        return self._scale(self.c(t), self.c(t_end))

    @staticmethod
    def _scale(c: np.ndarray, c_end: np.ndarray) -> np.ndarray:
        return np.sqrt(np.minimum(1.0, np.min(c / c_end, axis=1)))

    def hook(self, kappa: np.ndarray, t_end: np.ndarray):
        """The ``step_control`` of :func:`~cmverify.reference._batched_rk.solve_batched`
        for a batch with per-row ``kappa`` and end times ``t_end`` (shapes ``(n,)``),
        called with the active rows' indices (``e^κ`` and ``c`` at the ends formed once
        per batch, not per step)."""
        growth, c_end = np.exp(kappa), self.c(t_end)
        return lambda t, h, rows: self.step(t, h, growth[rows], c_end[rows])

    def rounding_floor(
        self, x: np.ndarray, s: np.ndarray, t: np.ndarray, y: np.ndarray, steps: np.ndarray
    ) -> np.ndarray:
        """What float64 cannot resolve, per trajectory from ``x`` ``(n, d)`` at ``s`` to
        ``y`` at ``t`` in ``steps`` steps: each step rounds the state by ``eps |y|``, which
        the covariances stretch by up to ``1 / atol_scale`` to the end, and ``N`` such
        roundings add up like a random walk: ``eps √N max(|x| / atol_scale(s, t), |y|)``.
        Both levels of the certificate carry it, so their difference does not see it: data
        of std 1e-6 at 1 (not 0), forward to ½, had ended 7.3 times the target off, passed
        (review); in every check of the certificate the floor keeps such trajectories over
        target: refined, then ``unresolved`` (6.4e-9 there)."""
        start = row_norm(x) / self.atol_scale(s, t)
        size = np.maximum(start, row_norm(y))
        return np.finfo(np.float64).eps * np.sqrt(np.maximum(steps, 1)) * size
