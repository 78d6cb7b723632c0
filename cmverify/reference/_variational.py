"""The flow map's Jacobian and average velocity as augmented ODEs (reference layer).

**Jacobian.** ``J(τ) = ∇X_{s→τ}(x)`` solves the variational equation
``dJ/dτ = ∇v(τ, X_τ) J``, ``J(s) = I``, together with ``dX/dτ = v(τ, X)``: one state of
``d + d²`` numbers per trajectory, integrated by the same per-trajectory DOP853 (its local
error norm over all ``d + d²`` components) and certified block by block: the point against
``atol + rtol |X|``, the Jacobian against ``atol + rtol ‖J‖_F``
(:mod:`cmverify.reference._certified`). ``∇v`` is the closed form of
:meth:`cmverify.exact.MixturePath.velocity_jacobian`, never a difference.

**Average velocity.** ``u(x; s→t) = (X_{s→t}(x) − x) / (t − s)`` would lose all its digits
to cancellation as ``t → s`` (``X − x`` is known to ``≈ 1e-10 (1 + |x|)``, so ``u`` only to
``1e-10 / |t − s|``). Instead, with ``h = t − s`` and ``τ = s + θ h``, the scaled
displacement ``U(θ) = (X_τ − x) / h`` solves

    ``dU/dθ = v(s + θ h, x + h U)``,  ``U(0) = 0``,  ``U(1) = u``,

an ODE on ``θ ∈ [0, 1]`` whose error control is relative to ``|u|`` whatever ``h`` is: no
switch between formulas is needed. At ``h = 0`` the right-hand side is the constant
``v(s, x)`` and ``U(1) = v(s, x)`` to rounding; the step cap in ``θ`` is the map's cap
divided by ``|h|``, so a short interval takes a few steps.
"""

from __future__ import annotations

import numpy as np

from .._threads import limit_threads
from .._validation import as_points, as_times
from ..exact import MixturePath
from ._solution import JacobianSolution

#: Up to this dimension ``∇v J`` is summed entry by entry (points last); above, a batched
#: matmul.
SMALL_DIM = 4

__all__ = ["AverageVelocityField", "FlowDerivatives", "JacobianField"]


class JacobianField:
    """Right-hand side ``(v(τ, X), ∇v(τ, X) J)`` of the state ``[X, vec J]`` (shape
    ``(m, d + d²)``, ``J`` row-major). ``flow`` is the :class:`ReferenceFlow` whose path
    supplies ``∇v``: a :class:`~cmverify.exact.MixturePath` (one evaluation for both), or a
    velocity field with a ``velocity_jacobian(t, x)`` method (its results copied and checked)."""

    with_rows = False

    def __init__(self, flow) -> None:
        path = flow.path
        self.dim = d = flow.path.dim
        # J's error is controlled in its own norm (solve_batched's scale_blocks)
        self.scale_blocks = (slice(d, None),)
        own = getattr(path.velocity, "__func__", None) is MixturePath.velocity
        own_jac = getattr(getattr(path, "velocity_jacobian", None), "__func__", None)
        if own and own_jac is MixturePath.velocity_jacobian:
            self._both = path.velocity_and_jacobian_trusted
            return
        if own_jac is MixturePath.velocity_jacobian:
            raise TypeError(
                f"{type(path).__name__} overrides velocity but not velocity_jacobian: the "
                "inherited closed-form ∇v is that of the unperturbed mixture path; define a "
                "velocity_jacobian(t, x) that matches your velocity"
            )
        jac = getattr(path, "velocity_jacobian", None)
        if not callable(jac):
            raise TypeError(
                f"the Jacobian of the flow needs ∇v: {type(path).__name__} has no "
                "velocity_jacobian(t, x) (a MixturePath has; a custom VelocityField must "
                "provide it, shape (m, d, d))"
            )
        checked_velocity = flow._checked_velocity

        def both(t: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            raw = np.asarray(jac(t.copy(), x.copy()))
            if raw.dtype.kind not in "biuf":
                raise TypeError(f"path.velocity_jacobian returned dtype {raw.dtype}, not real")
            g = raw.astype(np.float64)
            if g.shape != (x.shape[0], d, d):
                raise ValueError(
                    f"path.velocity_jacobian(t, x) returned shape {g.shape} for x of shape "
                    f"{x.shape}; it must return shape (m, {d}, {d})"
                )
            return checked_velocity(t, x).T, np.moveaxis(g, 0, 2)

        self._both = both

    def __call__(self, t: np.ndarray, y: np.ndarray) -> np.ndarray:
        d = self.dim
        v, grad = self._both(t, np.ascontiguousarray(y[:, :d]))  # (d, n), (d, d, n)
        jac = np.ascontiguousarray(y[:, d:].T).reshape(d, d, -1)  # J_ab, points last
        out = np.empty_like(y)
        out[:, :d] = v.T
        if d <= SMALL_DIM:  # (∇v J)_ib = Σ_a ∇v_ia J_ab over long contiguous rows
            dj = np.empty_like(jac)
            for i in range(d):
                for b in range(d):
                    acc = grad[i, 0] * jac[0, b]
                    for a in range(1, d):
                        acc += grad[i, a] * jac[a, b]
                    dj[i, b] = acc
            out[:, d:] = dj.reshape(d * d, -1).T
        else:
            grad_rows = np.ascontiguousarray(np.moveaxis(grad, 2, 0))
            out[:, d:] = np.matmul(grad_rows, y[:, d:].reshape(-1, d, d)).reshape(-1, d * d)
        return out


class AverageVelocityField:
    """Right-hand side ``v(s + θ h, x + h U)`` of the scaled displacement ``U`` (module
    docstring), with per-trajectory ``x`` ``(n, d)``, ``s`` and ``h`` ``(n,)``; called as
    ``(θ, U, rows)`` on the trajectories ``rows`` still active."""

    with_rows = True

    def __init__(self, velocity, x: np.ndarray, s: np.ndarray, h: np.ndarray) -> None:
        self._velocity = velocity
        self.x, self.s, self.h = x, s, h

    def __call__(self, theta: np.ndarray, u: np.ndarray, rows: np.ndarray) -> np.ndarray:
        h = self.h[rows]
        # s + θ h may round past the interval's end (t = 1 + 1 ulp): stay in [0, 1]
        tau = np.clip(self.s[rows] + theta * h, 0.0, 1.0)
        return self._velocity(tau, self.x[rows] + h[:, None] * u)


class FlowDerivatives:
    """The Jacobian and the average velocity of :class:`~cmverify.reference.ReferenceFlow`
    (a base class of it: it uses the flow's levels, certificate and velocity door)."""

    def jacobian(self, x: object, s: object, t: object) -> np.ndarray:
        """``∇_x X_{s→t}(x)``, shape ``(n, d, d)`` (``[i, a, b] = ∂X_a/∂x_b`` at row ``i``).

        Integrates the variational equation ``dJ/dτ = ∇v(τ, X_τ) J``, ``J(s) = I``, with the
        state (``d + d²`` numbers per trajectory) and the closed-form ``∇v`` of the path
        (:mod:`cmverify.reference._variational`). Accuracy: **its own error control** —
        the same per-trajectory levels as :meth:`solve`, the point and the Jacobian checked
        separately, so each returned trajectory satisfies ``‖J − J_exact‖_F ≤ atol + rtol
        ‖J‖_F`` as estimated by the difference of two levels (and ``|X − X_exact| ≤ atol
        + rtol |X|``), or is listed with an :class:`AccuracyWarning`. See
        :meth:`solve_jacobian` for the estimates.
        """
        return self._jacobian(x, s, t, False, stacklevel=3).jacobian

    def solve_jacobian(
        self, x: object, s: object, t: object, *, certify: bool = False
    ) -> JacobianSolution:
        """``X_{s→t}(x)`` and ``∇X_{s→t}(x)`` with both per-trajectory error estimates
        (:class:`JacobianSolution`; ``certify`` as in :meth:`solve`)."""
        return self._jacobian(x, s, t, certify, stacklevel=3)

    def _jacobian(
        self, x: object, s: object, t: object, certify: bool, stacklevel: int
    ) -> JacobianSolution:
        x = as_points(x, self._dim)
        n, d = x.shape
        s_arr = np.broadcast_to(as_times(s, n, "s"), (n,))
        t_arr = np.broadcast_to(as_times(t, n, "t"), (n,))
        field = JacobianField(self)
        y0 = np.concatenate([x, np.tile(np.eye(d).reshape(1, -1), (n, 1))], axis=1)
        with limit_threads(self.threads):
            done = self._certified(
                lambda k, rows: self._level(k, y0[rows], s_arr[rows], t_arr[rows], fun=field),
                n,
                (slice(0, d), slice(d, None)),
                certify,
                stacklevel + 1,
            )
        fields = self._solution_fields(done)
        fields["certificate"] += "; the Jacobian checked as its own block"
        return JacobianSolution(
            x=done.y[:, :d].copy(),
            **fields,
            jacobian=done.y[:, d:].reshape(n, d, d).copy(),
            jacobian_error_estimate=done.error[:, 1],
            jacobian_target=done.target[:, 1],
        )

    def average_velocity(self, x: object, s: object, t: object) -> np.ndarray:
        """``u(x; s→t) = (X_{s→t}(x) − x) / (t − s)``, shape ``(n, d)``; ``v(s, x)`` at ``t = s``.

        Integrated directly, never as that difference: ``U(θ) = (X_{s+θh} − x)/h`` solves
        ``dU/dθ = v(s + θ h, x + h U)`` on ``[0, 1]`` with ``h = t − s``
        (:mod:`cmverify.reference._variational`), so the target ``|u − u_exact| ≤ atol +
        rtol |u|`` holds per trajectory for every ``h``, down to ``h = 0`` where ``u =
        v(s, x)`` to rounding (the difference quotient loses ``1e-10 / |h|``: measured in
        benchmarks/RESULTS.md). MeanFlow's ``u(z, r, t)`` is ``average_velocity(z, t, r)``.
        """
        x = as_points(x, self._dim)
        n, d = x.shape
        s_arr = np.broadcast_to(as_times(s, n, "s"), (n,)).astype(np.float64)
        t_arr = np.broadcast_to(as_times(t, n, "t"), (n,)).astype(np.float64)
        h = t_arr - s_arr
        with np.errstate(divide="ignore"):
            cap_scale = np.where(h != 0, 1.0 / np.abs(h), np.inf)

        def run(k: int, rows: np.ndarray):
            field = AverageVelocityField(self._field, x[rows], s_arr[rows], h[rows])
            start = np.zeros((rows.size, d))
            return self._level(k, start, 0.0, 1.0, fun=field, cap_scale=cap_scale[rows])

        with limit_threads(self.threads):
            return self._certified(run, n, (slice(None),), False, stacklevel=3).y
