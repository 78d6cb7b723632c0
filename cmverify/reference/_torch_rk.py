"""Batched DOP853 with per-trajectory step-size control, in torch (reference layer).

The same method, arithmetic and bookkeeping as :func:`cmverify.reference._batched_rk.
solve_batched` — SciPy's DOP853 tableau, each trajectory with its own time, step size,
error norm and accept/reject decision, one right-hand-side call per stage on the
trajectories still active — with the state held as float64 tensors on a torch device
(CPU or CUDA), so that the velocity runs where the tensors are
(:class:`~cmverify.exact.TorchMixturePath`). The error norm and the step rule are those
of the numpy solver's module docstring; :func:`solve_batched_torch` takes and returns
numpy arrays (a :class:`~cmverify.reference._batched_rk.BatchedSolution`), so the
certificate (:mod:`cmverify.reference._certified`) is shared unchanged.

The torch velocity (:meth:`TorchMixturePath.velocity_host_checked
<cmverify.exact.TorchMixturePath.velocity_host_checked>`) hands the rows its routes
cannot bound (far from every mode; flagged by the product route) to the numpy path on
the host, so the backends solve the same field.

Host–device traffic per step: the accept/reject and termination decisions are taken on
the device; the loop reads back one boolean (any trajectory left) and, only where a
trajectory fails, its index and time.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .._rows import finite_rows, row_max_abs, row_squares
from ._batched_rk import (
    _A,
    _B,
    _C,
    _E3,
    _E5,
    _ERROR_EXPONENT,
    _MAX_FACTOR,
    _MIN_FACTOR,
    _N_STAGES,
    _ORDER,
    _SAFETY,
    BatchedSolution,
    SolverFailure,
    StepControl,
)

__all__ = ["solve_batched_torch"]

#: A right-hand side on tensors: ``f(t (m,), y (m, d)) -> (m, d)``.
TorchRightHandSide = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _rms(z: torch.Tensor) -> torch.Tensor:
    return torch.sqrt(row_squares(z) / z.shape[1])


def _floored(atol: torch.Tensor, y: torch.Tensor, floor: float) -> torch.Tensor:
    """``max(atol, floor · min(1, max_j |y_j|))`` per row, as the numpy solver's."""
    if not floor:
        return atol
    return torch.maximum(atol, floor * torch.clamp(row_max_abs(y), max=1.0)[:, None])


def solve_batched_torch(
    fun: TorchRightHandSide,
    y0: np.ndarray,
    t0: np.ndarray,
    t1: np.ndarray,
    *,
    rtol: float | np.ndarray,
    atol: float | np.ndarray,
    max_steps: int | np.ndarray = 100_000,
    max_step: float | np.ndarray = np.inf,
    first_step_factor: float | np.ndarray = 1.0,
    device: torch.device | str = "cpu",
    step_control: StepControl | None = None,
    atol_floor: float = 0.0,
) -> BatchedSolution:
    """Integrate ``dy/dt = fun(t, y)`` from ``t0[i]`` to ``t1[i]`` for every row ``i``, on
    ``device``; arguments and result as :func:`~cmverify.reference._batched_rk.
    solve_batched` (numpy in, numpy out; ``fun`` takes and returns float64 tensors on
    ``device``). Raises :class:`SolverFailure` naming the trajectories that failed."""
    dev = torch.device(device)
    f64 = torch.float64
    y0 = np.asarray(y0, dtype=np.float64)
    n, d = y0.shape

    def tensor(a: object, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.as_tensor(
            np.broadcast_to(np.asarray(a, dtype=np.float64), shape).copy(), device=dev
        )

    y = torch.as_tensor(y0.copy(), device=dev)
    t = tensor(t0, (n,))
    t_end = tensor(t1, (n,))
    direction = torch.sign(t_end - t)
    cap = tensor(max_step, (n,))
    rtol_rows, atol_rows = tensor(rtol, (n,))[:, None], tensor(atol, (n,))[:, None]
    budget = torch.as_tensor(
        np.broadcast_to(np.asarray(max_steps, np.int64), (n,)).copy(), device=dev
    )
    first_factor = tensor(first_step_factor, (n,))
    a_tab, b_tab, c_tab = (
        torch.as_tensor(np.asarray(v, np.float64), device=dev) for v in (_A, _B, _C)
    )
    e3_tab, e5_tab = (torch.as_tensor(np.asarray(v, np.float64), device=dev) for v in (_E3, _E5))
    n_acc = torch.zeros(n, dtype=torch.int64, device=dev)
    n_rej = torch.zeros(n, dtype=torch.int64, device=dev)
    calls, rows = [0], [0]
    failures: dict[int, str] = {}

    def evaluate(tt: torch.Tensor, yy: torch.Tensor) -> torch.Tensor:
        """``fun`` on the rows whose state is finite, NaN on the others."""
        ok = finite_rows(yy)
        calls[0] += 1
        rows[0] += int(yy.shape[0])
        if bool(ok.all()):
            return fun(tt, yy)
        out = torch.full_like(yy, float("nan"))
        if bool(ok.any()):
            out[ok] = fun(tt[ok], yy[ok])
        return out

    def fail(indices: torch.Tensor, why: Callable[[int], str]) -> None:
        for i in indices.tolist():
            failures[int(i)] = why(int(i))

    active = torch.nonzero(direction != 0).flatten()
    if active.numel() == 0:
        return BatchedSolution(y0.copy(), np.zeros(n, np.int64), np.zeros(n, np.int64), 0, 0)
    f = torch.empty_like(y)
    f[active] = evaluate(t[active], y[active])
    bad = ~finite_rows(f[active])
    fail(active[bad], lambda i: f"right-hand side is not finite at the start (t = {float(t[i])!r})")
    active = active[~bad]

    # Hairer's starting step, per trajectory (as the numpy solver's _initial_step)
    h_abs = torch.zeros(n, dtype=f64, device=dev)
    if active.numel():
        ya, fa, da = y[active], f[active], direction[active]
        length = torch.abs(t_end[active] - t[active])
        scale = _floored(atol_rows[active], ya, atol_floor) + torch.abs(ya) * rtol_rows[active]
        d0, d1 = _rms(ya / scale), _rms(fa / scale)
        h0 = torch.where((d0 < 1e-5) | (d1 < 1e-5), torch.full_like(d0, 1e-6), 0.01 * d0 / d1)
        h0 = torch.minimum(h0, length)
        f1 = evaluate(t[active] + h0 * da, ya + (h0 * da)[:, None] * fa)
        d2 = _rms((f1 - fa) / scale) / h0
        dmax = torch.maximum(d1, d2)
        h1 = torch.where(
            dmax <= 1e-15, torch.clamp(h0 * 1e-3, min=1e-6), (0.01 / dmax) ** (1 / _ORDER)
        )
        h = torch.minimum(torch.minimum(100 * h0, h1), length)
        h = torch.where(torch.isfinite(h) & (h > 0), h, 1e-6 * length)
        h_abs[active] = first_factor[active] * h
    just_rejected = torch.zeros(n, dtype=torch.bool, device=dev)
    saw_nonfinite = torch.zeros(n, dtype=torch.bool, device=dev)
    inf = torch.tensor(float("inf"), dtype=f64, device=dev)

    while active.numel():
        ta, ya, da = t[active], y[active], direction[active]
        min_step = 10 * torch.abs(torch.nextafter(ta, da * inf) - ta)
        too_small = h_abs[active] < min_step
        if bool(too_small.any()):
            fail(
                active[too_small],
                lambda i: (
                    f"step size fell below 10 × spacing(t) at t = {float(t[i])!r}"
                    + (" after non-finite right-hand side values" if bool(saw_nonfinite[i]) else "")
                ),
            )
            active = active[~too_small]
            continue
        h = torch.minimum(h_abs[active], cap[active]) * da
        t_new = ta + h
        t_new = torch.where(da * (t_new - t_end[active]) > 0, t_end[active], t_new)
        h = t_new - ta
        factor = None
        if step_control is not None:  # a numpy hook: one host round trip a step
            h_np = h.cpu().numpy()
            limited, factor = step_control(ta.cpu().numpy(), h_np, active.cpu().numpy())
            shortened = torch.as_tensor(limited != h_np, device=dev)
            t_new = torch.where(shortened, ta + torch.as_tensor(limited, device=dev), t_new)
            h = t_new - ta

        k = torch.empty((_N_STAGES + 1, active.numel(), d), dtype=f64, device=dev)
        k[0] = f[active]
        for s in range(1, _N_STAGES):
            dy = torch.tensordot(a_tab[s, :s], k[:s], dims=([0], [0])) * h[:, None]
            k[s] = evaluate(ta + c_tab[s] * h, ya + dy)
        y_new = ya + h[:, None] * torch.tensordot(b_tab, k[:_N_STAGES], dims=([0], [0]))
        f_new = evaluate(t_new, y_new)
        k[_N_STAGES] = f_new

        atol_now = _floored(atol_rows[active], ya, atol_floor)  # then the control's factor
        if factor is not None:
            atol_now = atol_now * torch.as_tensor(factor, device=dev)[:, None]
        scale = atol_now + torch.maximum(torch.abs(ya), torch.abs(y_new)) * rtol_rows[active]
        scale = torch.clamp(scale, min=torch.finfo(f64).tiny)  # never 0 (as numpy's)
        e5 = torch.tensordot(e5_tab, k, dims=([0], [0])) / scale
        e3 = torch.tensordot(e3_tab, k, dims=([0], [0])) / scale
        e5_2, e3_2 = row_squares(e5), row_squares(e3)
        err = torch.abs(h) * e5_2 / torch.sqrt((e5_2 + 0.01 * e3_2) * d)
        err = torch.where((e5_2 == 0) & (e3_2 == 0), torch.zeros_like(err), err)
        finite = finite_rows(y_new) & finite_rows(f_new)
        err = torch.where(finite & torch.isfinite(err), err, inf)
        saw_nonfinite[active[~finite]] = True
        factor = torch.where(
            err == 0, torch.full_like(err, _MAX_FACTOR), _SAFETY * err**_ERROR_EXPONENT
        )

        accept = err < 1
        acc, rej = active[accept], active[~accept]
        grow = torch.clamp(factor[accept], max=_MAX_FACTOR)
        grow = torch.where(just_rejected[acc], torch.clamp(grow, max=1.0), grow)
        h_abs[acc] = torch.abs(h[accept]) * grow
        t[acc], y[acc], f[acc] = t_new[accept], y_new[accept], f_new[accept]
        n_acc[acc] += 1
        just_rejected[acc] = False
        h_abs[rej] = torch.abs(h[~accept]) * torch.clamp(factor[~accept], min=_MIN_FACTOR)
        n_rej[rej] += 1
        just_rejected[rej] = True

        done = t[active] == t_end[active]
        over_budget = (n_acc[active] + n_rej[active] >= budget[active]) & ~done
        if bool(over_budget.any()):
            fail(
                active[over_budget],
                lambda i: (
                    f"more than max_steps = {int(budget[i])} steps (stopped at t = {float(t[i])!r})"
                ),
            )
        active = active[~done & ~over_budget]

    if failures:
        raise SolverFailure.of(failures, n)
    return BatchedSolution(
        y.cpu().numpy(), n_acc.cpu().numpy(), n_rej.cpu().numpy(), calls[0], rows[0]
    )


class TorchBackend:
    """``backend="torch"`` of :class:`~cmverify.reference.ReferenceFlow`: the path's
    closed-form velocity in float64 on ``device`` (:meth:`MixturePath.to_torch`), solved
    by :func:`solve_batched_torch` with torch's intra-op threads set to the flow's
    ``threads`` during a solve."""

    def __init__(self, path: object, device: object, threads: int | None) -> None:
        try:
            self.torch_path = path.to_torch(torch.float64, "cpu" if device is None else device)
        except (AssertionError, RuntimeError, TypeError) as exc:  # no such device here
            raise ValueError(f"device {device!r} is not available to torch here: {exc}") from None
        self.device = self.torch_path.device
        self.threads = threads

    def solve(self, x: np.ndarray, s: np.ndarray, t: np.ndarray, **options) -> BatchedSolution:
        before = torch.get_num_threads()
        if self.threads is not None and self.device.type == "cpu":
            torch.set_num_threads(self.threads)
        try:
            with torch.no_grad():
                return solve_batched_torch(
                    self.torch_path.velocity_host_checked, x, s, t, device=self.device, **options
                )
        finally:
            torch.set_num_threads(before)


def torch_backend(
    path: object, backend: object, device: object, trusted: bool, threads: int | None
) -> TorchBackend | None:
    """The backend of a :class:`~cmverify.reference.ReferenceFlow` (``None`` for numpy),
    validated: ``"torch"`` needs a :class:`~cmverify.exact.MixturePath` whose velocity is
    its own (a field of the user's has no torch form here)."""
    if backend not in ("numpy", "torch"):
        raise ValueError(f"backend must be 'numpy' or 'torch', got {backend!r}")
    if backend == "numpy":
        if device is not None:
            raise ValueError("device applies to backend='torch' only")
        return None
    if not trusted:
        raise TypeError(
            "backend='torch' integrates a MixturePath's own closed-form velocity; got "
            f"{type(path).__name__} (use backend='numpy' for other velocity fields)"
        )
    return TorchBackend(path, device, threads)
