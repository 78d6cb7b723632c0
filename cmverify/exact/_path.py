"""Closed-form probability path of a Gaussian mixture under an interpolant (exact layer).

With ``x0 ~ Σ_k w_k N(μ_k, Σ_k)``, ``Σ_k = U_k diag(λ_k) U_kᵀ``, and
``x_t = α_t x0 + σ_t x1``, ``x1 ~ N(0, I)``:

- marginal: ``x_t ~ Σ_k w_k N(α μ_k, U_k diag(c_k) U_kᵀ)``, ``c_k = α² λ_k + σ²``;
- in component ``k``'s eigenbasis, ``y_k = U_kᵀ (y − α μ_k)``; responsibilities
  ``r_k(y) ∝ w_k N(y; α μ_k, C_k)`` by log-sum-exp;
- posterior of ``x0`` given ``x_t = y``: ``Σ_k r_k N(μ_k + U_k (α λ_k / c_k ⊙ y_k),
  U_k diag(λ_k σ² / c_k) U_kᵀ)``;
- denoiser ``D = E[x0 | y] = Σ r_k [μ_k + U_k (α λ_k / c_k ⊙ y_k)]``;
- expected noise ``E[x1 | y] = Σ r_k U_k (σ / c_k ⊙ y_k)``;
- score ``∇ log p_t(y) = −Σ r_k U_k (y_k / c_k)``  ``(= −E[x1 | y] / σ)``;
- velocity ``v = α̇ D + σ̇ E[x1 | y] = Σ r_k [α̇ μ_k + U_k ((α α̇ λ_k + σ σ̇) / c_k ⊙ y_k)]``;
- its Jacobian ``∇v = Σ r_k U_k diag((α α̇ λ_k + σ σ̇) / c_k) U_kᵀ + Σ r_k (m_k − v)(s_k − s̄)ᵀ``
  (``m_k``, ``s_k`` the component velocity and score, :mod:`cmverify.exact._jacobian`).

No formula divides by ``α`` or ``σ``; ``c_k ≥ min(λ_k, 1) · (α² + σ²) > 0`` on all of
``[0, 1]``, and ``α α̇``, ``σ σ̇`` come simplified from the symbolic layer, so every
quantity is finite on the closed interval.

**Extreme scales.** Near the data the *direct route* (:mod:`cmverify.exact._evaluation`)
is accurate to rounding; far from it (Mahalanobis term above ``2^20``) and where the
direct formulas overflow, the *scaled route* (:mod:`cmverify.exact._scaled`) takes over:
results are finite and accurate wherever the true value is representable in float64.
Where a true value is *not* representable, the method raises ``ValueError`` and says
so: ``log_prob`` below ``−1.8e308`` (e.g. ``|y| = 1e200`` for unit variances, where
``log p ≈ −5e399``), or a vector quantity whose magnitude exceeds ``1.8e308`` (e.g.
the score ``−y / c`` at ``|y| = 1e300``, ``c = 1e-21``). No method returns NaN.

**Structured covariances.** Low-rank mixtures: the hot methods by Woodbury
(:mod:`cmverify.exact._lowrank`), the rest and far rows by the dense eigenbasis route.
Isotropic components and probabilistic PCA: the velocity by products (:mod:`._gram`).

**Validation at the door.** Each public method validates ``t`` and ``x`` once and
evaluates on the validated arrays; :meth:`MixturePath.velocity_trusted` is the door
without checks, for callers that validated already (a flow map's solver, on every stage).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from .._memory import keep_freed_memory
from .._validation import as_count, as_points, as_rng, as_times
from ..symbolic import Interpolant
from ._covariance import marginal_mixture
from ._evaluation import Coefficients, Evaluation, Evaluator, Terms, caller_rows, finite_rows
from ._gram import GramVelocity
from ._jacobian import first_pass, jacobian_blocks, points_last, velocity_jacobian
from ._lowrank import LOW_RANK_QUANTITIES, LowRankEvaluator, takes_woodbury
from ._mixture import GaussianMixture
from ._posterior import PosteriorMixture, posterior_of
from ._scaled import evaluate_scaled
from ._target import velocity_target_covariance, velocity_target_variance

if TYPE_CHECKING:
    from ._torch import TorchMixturePath

__all__ = ["MixturePath"]


class MixturePath:
    """The probability path ``p_t`` of ``x_t = α_t x0 + σ_t x1`` for Gaussian-mixture data.

    Arguments:
        mixture: the data distribution (at ``t = 0``).
        interpolant: defaults to :meth:`Interpolant.linear`.

    Every method takes ``t`` (a float, or an array of shape ``(n,)`` with one time per
    point) in ``[0, 1]`` and ``x`` of shape ``(n, d)``, in closed form and vectorized.
    See the module docstring for the formulas, and for what happens at extreme scales:
    results are finite and accurate wherever the true value is representable in
    float64, and a ``ValueError`` says so where it is not; no method returns NaN.

    A ``MixturePath`` is a :class:`~cmverify.exact.VelocityField` (``dim`` and
    ``velocity``), the protocol :class:`~cmverify.reference.ReferenceFlow` integrates.
    """

    def __init__(self, mixture: GaussianMixture, interpolant: Interpolant | None = None) -> None:
        if not isinstance(mixture, GaussianMixture):
            raise TypeError(f"mixture must be a GaussianMixture, got {type(mixture).__name__}")
        if interpolant is None:
            interpolant = Interpolant.linear()
        if not isinstance(interpolant, Interpolant):
            raise TypeError(f"interpolant must be an Interpolant, got {type(interpolant).__name__}")
        keep_freed_memory()  # block temporaries reused, not page-faulted anew (3× at d = 2)
        self._mixture = mixture
        self._interpolant = interpolant
        self._dense: Evaluator | None = None
        self._lowrank: LowRankEvaluator | None = None
        # r ≥ d, or an uneven D with κ₀ > 100: the eigenbasis route (._lowrank's Accuracy)
        if mixture.structure == "low_rank" and takes_woodbury(mixture):
            self._lowrank = LowRankEvaluator(mixture, interpolant)
            self._product = self._lowrank.gram
        else:
            self._dense = Evaluator(mixture, interpolant)
            self._product = GramVelocity.isotropic(interpolant, mixture)

    @property
    def _evaluator(self) -> Evaluator:
        """The eigenbasis route (formed on first need for a low-rank mixture: a dense
        eigen-decomposition, ``O(K d³)``)."""
        if self._dense is None:
            self._dense = Evaluator(self._mixture, self._interpolant)
        return self._dense

    @property
    def mixture(self) -> GaussianMixture:
        """The data distribution (at ``t = 0``)."""
        return self._mixture

    @property
    def interpolant(self) -> Interpolant:
        """The interpolant ``x_t = α_t x0 + σ_t x1``."""
        return self._interpolant

    @property
    def dim(self) -> int:
        """Dimension ``d`` of the points."""
        return self._mixture.dim

    @property
    def name(self) -> str | None:
        """``"<mixture name>/<interpolant name>"`` (e.g. ``"eight_gaussians/linear"``) when
        the mixture has a name (:attr:`GaussianMixture.name`) and the interpolant's name has
        no ``/`` (a custom interpolant's name is its formulas, e.g. ``sin(pi*t/2)``, which
        would make the split ambiguous), else ``None``."""
        if self._mixture.name is None or "/" in self._interpolant.name:
            return None
        return f"{self._mixture.name}/{self._interpolant.name}"

    def __repr__(self) -> str:
        return f"MixturePath({self._mixture!r}, {self._interpolant!r})"

    def to_torch(self, dtype: object = None, device: object = "cpu") -> TorchMixturePath:
        """This path as differentiable torch functions (:class:`~cmverify.exact.TorchMixturePath`:
        ``velocity``, ``denoiser``, ``expected_noise``, ``score``, ``log_prob``,
        ``velocity_jacobian``), from the same closed forms; ``dtype`` ``torch.float64``
        (default) or ``torch.float32``, on ``device``. Needs torch (``cmverify[torch]``)."""
        import torch

        from ._torch import TorchMixturePath

        return TorchMixturePath(self, torch.float64 if dtype is None else dtype, device)

    # -- shared evaluation ------------------------------------------------------------
    def _validated(self, t: object, x: object) -> tuple[np.ndarray, np.ndarray]:
        """``(t, x)`` checked once: ``x`` a finite float64 ``(n, d)`` array (a copy),
        ``t`` a float64 array of shape ``()`` or ``(n,)`` in ``[0, 1]``."""
        x = as_points(x, self.dim)
        return as_times(t, x.shape[0]), x

    def _rowwise(
        self,
        name: str,
        quantity: Callable[[Evaluation], np.ndarray],
        t: np.ndarray,
        x: np.ndarray,
    ) -> np.ndarray:
        """``quantity`` on validated ``(t, x)``, in blocks of rows; ``ValueError`` where the
        result is not representable (see :meth:`_block`).

        Blocks of about 128k array entries (``K · d · rows``) keep the intermediate
        arrays in cache: 2.4 times faster than one pass at 100,000 points (K = 8, d = 2).
        """
        n = x.shape[0]
        if name == "velocity" and self._product is not None:
            step = self._product.block_rows
        elif self._lowrank is not None and name in LOW_RANK_QUANTITIES:
            step = self._lowrank.block_rows
        else:
            step = self._evaluator.block_rows
        with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
            if n <= step:
                return self._block(name, quantity, t, x, 0)
            parts = [
                self._block(
                    name, quantity, t if t.ndim == 0 else t[i : i + step], x[i : i + step], i
                )
                for i in range(0, n, step)
            ]
        return np.concatenate(parts, axis=0)

    def _block(
        self,
        name: str,
        quantity: Callable[[Evaluation], np.ndarray],
        t: np.ndarray,
        x: np.ndarray,
        offset: int | np.ndarray,
    ) -> np.ndarray:
        """``quantity`` on one block (``offset``: the caller's index of its first row, or of
        each row where the block is a subset): the direct route, then the scaled route on the rows
        that are far from the data (``needs_scaling``) or came back non-finite;
        ``ValueError`` naming ``name`` and the row where the value is still not finite.
        A low-rank mixture's hot quantities take the Woodbury route first
        (:mod:`cmverify.exact._lowrank`) and the eigenbasis route only on its far rows; the
        velocity of isotropic and probabilistic-PCA components takes the product route
        (:mod:`cmverify.exact._gram`) before either."""
        if name == "velocity" and self._product is not None:
            v, ok = self._product.velocity_checked(t, x)
            if not ok.all():
                rest = ~ok
                sub_t = t if t.ndim == 0 else t[rest]
                rows = caller_rows(offset, rest)
                v[rest] = self._block("velocity@direct", quantity, sub_t, x[rest], rows)
            return v
        name = name.removesuffix("@direct")
        if self._lowrank is not None and name in LOW_RANK_QUANTITIES:
            out, redo = self._lowrank.quantity(name, t, x)
            if redo.any():
                sub_t = t if t.ndim == 0 else t[redo]
                rows = caller_rows(offset, redo)
                out[redo] = self._block(name + "@dense", quantity, sub_t, x[redo], rows)
            return out
        ev = self._evaluator.evaluate(t, x)
        out = quantity(ev)
        redo = self._evaluator.needs_scaling(ev)
        if not redo.any() and np.isfinite(out.sum()):  # methods: less overhead per call
            return out
        redo |= ~finite_rows(out)
        if np.any(redo):
            out[redo] = quantity(
                evaluate_scaled(self._evaluator, t if t.ndim == 0 else t[redo], x[redo])
            )
            bad = ~finite_rows(out)
            if np.any(bad):
                name = name.removesuffix("@dense")
                i = int(np.argmax(bad))
                ti = float(t if t.ndim == 0 else t[i])
                what = (
                    "is below −1.8e308" if name == "log_prob" else "has a component beyond ±1.8e308"
                )
                raise ValueError(
                    f"{name} is not representable in float64 at x[{caller_rows(offset, bad)[0]}] "
                    f"(t = {ti:.6g}, max |x| = {np.max(np.abs(x[i])):.3e}): the exact value "
                    f"{what}"
                )
        return out

    def _expectation(self, name: str, t: np.ndarray, x: np.ndarray) -> np.ndarray:
        """``Σ_k r_k [offset_k + U_k (scale_k ⊙ y_k)]`` with ``(scale, offset)`` the
        evaluator's ``<name>_terms(co)``, on validated ``(t, x)``."""

        def quantity(e: Evaluation) -> np.ndarray:
            ev = self._evaluator
            terms: Callable[[Coefficients], Terms] = getattr(ev, f"{name}_terms")
            return ev.combine(e, terms(e.co))

        return self._rowwise(name, quantity, t, x)

    # -- densities --------------------------------------------------------------------
    def log_prob(self, t: object, x: object) -> np.ndarray:
        """``log p_t(x)``, shape ``(n,)``.

        ``ValueError`` where the exact value is below ``−1.8e308`` (not representable),
        e.g. ``|x| ≳ 1e154`` for unit variances.
        """
        return self._rowwise("log_prob", lambda ev: ev.log_p, *self._validated(t, x))

    def marginal(self, t: float) -> GaussianMixture:
        """The law of ``x_t`` at a single time: ``Σ_k w_k N(α μ_k, α² Σ_k + σ² I)``
        (unnamed: it is not the data distribution)."""
        at = self._interpolant.at(t)
        if at.t.ndim != 0:
            raise ValueError(f"t must be a single time for marginal, got shape {at.t.shape}")
        a, s = float(at.alpha), float(at.sigma)
        return marginal_mixture(self._mixture, a, s)

    def posterior(self, t: object, x: object) -> PosteriorMixture:
        """The mixture of ``x0`` given ``x_t = x``, per point (see :class:`PosteriorMixture`).

        ``ValueError`` where a component mean is not representable in float64.
        """
        return posterior_of(self._evaluator, *self._validated(t, x))

    # -- conditional expectations -------------------------------------------------------
    def denoiser(self, t: object, x: object) -> np.ndarray:
        """``D(t, x) = E[x0 | x_t = x] = Σ r_k [μ_k + U_k (α λ_k / c_k ⊙ y_k)]``, shape ``(n, d)``."""
        return self._expectation("denoiser", *self._validated(t, x))

    def expected_noise(self, t: object, x: object) -> np.ndarray:
        """``E[x1 | x_t = x] = Σ r_k U_k (σ / c_k ⊙ y_k)``, shape ``(n, d)``."""
        return self._expectation("expected_noise", *self._validated(t, x))

    def score(self, t: object, x: object) -> np.ndarray:
        """``∇ log p_t(x) = −Σ r_k U_k (y_k / c_k)``, shape ``(n, d)``; finite also at ``t = 0``.

        ``ValueError`` where a component of the exact score exceeds ``±1.8e308``
        (e.g. ``|x| = 1e300`` with variances ``c = 1e-21``).
        """
        return self._expectation("score", *self._validated(t, x))

    def velocity(self, t: object, x: object) -> np.ndarray:
        """``v(t, x) = E[α̇ x0 + σ̇ x1 | x_t = x]``, shape ``(n, d)``.

        Computed as ``Σ r_k [α̇ μ_k + U_k ((α α̇ λ_k + σ σ̇) / c_k ⊙ y_k)]``, regular at
        ``t = 0`` and ``t = 1``.
        """
        return self.velocity_trusted(*self._validated(t, x))

    def velocity_trusted(self, t: np.ndarray, x: np.ndarray) -> np.ndarray:
        """:meth:`velocity` without checking its input: for callers that validated it
        already (:class:`~cmverify.reference.ReferenceFlow`, on every Runge–Kutta stage).

        ``t`` must be a float64 array of shape ``()`` or ``(n,)`` with values in
        ``[0, 1]``, and ``x`` a finite float64 array of shape ``(n, d)`` (neither is
        modified). Other input gives undefined results, not an error. The result is
        bit for bit that of :meth:`velocity` on the same arrays.
        """
        return self._expectation("velocity", t, x)

    def velocity_jacobian(self, t: object, x: object) -> np.ndarray:
        """``∇v(t, x)``, the Jacobian ``∂v_i/∂x_j`` of the velocity, shape ``(n, d, d)``.

        In closed form from the same per-component terms as :meth:`velocity` (never by
        differences): ``Σ r_k U_k diag((α α̇ λ_k + σ σ̇)/c_k) U_kᵀ + Σ r_k (m_k − v)(s_k − s̄)ᵀ``
        with ``m_k`` the component velocity, ``s_k = −U_k (y_k / c_k)`` the component score
        and ``s̄`` the score (:mod:`cmverify.exact._jacobian`). Symmetric (``v`` is a
        gradient field); its trace is ``∇·v``. Regular on all of ``[0, 1]``.
        """
        t, x = self._validated(t, x)
        return self._rowwise(
            "velocity_jacobian", lambda e: velocity_jacobian(self._evaluator, e), t, x
        )

    def velocity_target_variance(self, t: object, x: object) -> np.ndarray:
        """``tr Cov(α̇ x0 + σ̇ x1 | x_t = x)``, shape ``(n,)``: the flow-matching loss's
        irreducible part at ``x`` (its mean over ``p_t`` is the loss floor,
        :func:`cmverify.loss_floors.flow_matching`).

        In closed form (:mod:`cmverify.exact._target`): ``W² Σ_k r_k Σ_i λ_k,i / c_k,i +
        Σ_k r_k |m_k − v|²`` with ``W = α σ̇ − α̇ σ`` and ``m_k`` the component velocities;
        regular on all of ``[0, 1]`` (``d σ̇²`` at ``t = 0``).
        """
        t, x = self._validated(t, x)
        ev = self._evaluator
        return self._rowwise(
            "velocity_target_variance", lambda e: velocity_target_variance(ev, e), t, x
        )

    def velocity_target_covariance(self, t: object, x: object) -> np.ndarray:
        """``Cov(α̇ x0 + σ̇ x1 | x_t = x)``, shape ``(n, d, d)``: the matrix whose trace is
        :meth:`velocity_target_variance` — ``W² Σ_k r_k U_k diag(λ_k/c_k) U_kᵀ + Σ_k r_k
        (m_k − v)(m_k − v)ᵀ``; the MeanFlow loss floor integrates
        ``tr(∇X Cov ∇Xᵀ)`` (:func:`cmverify.loss_floors.meanflow`)."""
        t, x = self._validated(t, x)
        ev = self._evaluator
        return self._rowwise(
            "velocity_target_covariance", lambda e: velocity_target_covariance(ev, e), t, x
        )

    def velocity_and_jacobian_trusted(
        self, t: np.ndarray, x: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(v, ∇v)`` from one evaluation, **points last**: shapes ``(d, n)`` and
        ``(d, d, n)``, without checking the input (the contract of :meth:`velocity_trusted`;
        rows whose value is not representable come back non-finite, not as an error): the
        right-hand side of :meth:`cmverify.reference.ReferenceFlow.jacobian`."""
        if self._lowrank is not None:
            lr = self._lowrank
            return jacobian_blocks(t, x, lr.block_rows, lr.first_pass, self._far_jacobian)
        ev = self._evaluator
        return jacobian_blocks(
            t, x, ev.block_rows, lambda tb, xb: first_pass(ev, tb, xb), self._far_jacobian
        )

    def _far_jacobian(self, t: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(v, ∇v)`` points last by the scaled eigenbasis route."""
        return points_last(self._evaluator, evaluate_scaled(self._evaluator, t, x))

    # -- sampling ---------------------------------------------------------------------
    def sample(
        self,
        t: object,
        n: int,
        rng: np.random.Generator | int | None = None,
        *,
        return_endpoints: bool = False,
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Draw ``x_t = α_t x0 + σ_t x1`` for ``n`` independent pairs, shape ``(n, d)``.

        ``t`` is a float or an array of shape ``(n,)``. With ``return_endpoints=True``
        returns ``(x_t, x0, x1)``.
        """
        n = as_count(n)
        at = self._interpolant.at_trusted(as_times(t, n))
        rng = as_rng(rng)
        x0 = self._mixture.sample(n, rng)
        x1 = rng.standard_normal((n, self.dim))
        alpha, sigma = np.reshape(at.alpha, (-1, 1)), np.reshape(at.sigma, (-1, 1))
        xt = alpha * x0 + sigma * x1
        if return_endpoints:
            return xt, x0, x1
        return xt
