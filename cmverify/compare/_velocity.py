"""Compare a user's velocity-type model (flow matching, diffusion in ``x0``/noise/score form)
with the exact velocity of a mixture path.

:func:`compare_velocity` converts the model's output to ``v`` by the path's identities
(:mod:`cmverify.compare._parameterizations`) and measures, for every ``t`` of a grid, on
``x_t = α x0 + σ x1`` with ``x0 ~ data`` and ``x1 ~ N(0, I)``:

- the error ``|v_θ − v|``: RMSE, RMSE relative to ``RMS(v)``, 95th percentile, maximum
  and where it lies;
- the **loss split** of the flow-matching loss at ``t``: the model's loss
  ``mean |v_θ − v_c|²`` (``v_c = α̇ x0 + σ̇ x1``, the target it was trained on) with its
  standard error, the exact **floor** ``E |v_c − v|²`` that no model can go below
  (:func:`cmverify.loss_floors.flow_matching`, by quadrature to 1e-9 in d ≤ 2, 1e-7 in
  d = 3, 1e-6 in d = 4) and the
  **excess** ``mean |v_θ − v|²``: loss = floor + excess up to sampling noise, so a
  plateau at the floor is the optimum, not a bug;

and, for the whole model, the **induced flow**: the model's own ODE ``dx/dt = v_θ``
integrated from ``t = 1`` to ``0`` by the batched per-trajectory DOP853 solver (the model
called once per stage on all active trajectories, with one time per row), against the
exact map ``X_{1→0}`` of the same starting points, with the energy distance of its
samples to the data (and the i.i.d. floor) and their exact mean log-density. Where the
parameterization does not determine ``v`` at an endpoint (``x0`` at ``t = 0``; ``noise``
and ``score`` at ``t = 1``), the flow starts or stops 1e-3 from it.

Model failures (raise, NaN/inf, wrong shape, complex output) are reported per time in
``failures``, never averaged, as in :func:`~cmverify.compare.compare`.
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from .._validation import as_count, as_times
from ..exact import MixturePath
from ..loss_floors import DEFAULT_RTOL, MAX_DIM, FloorQuadrature, flow_matching_quadrature
from ..reference import ReferenceFlow, SolverFailure, solve_batched
from ._compare import _path_label, _positive
from ._models import ModelAdapter, ModelError, ModelFailure
from ._parameterizations import (
    PARAMETERIZATIONS,
    TIME_CONVENTIONS,
    check_choice,
    check_times,
    default_times,
    model_time,
    to_velocity,
    usable_interval,
)
from ._statistics import energy_distance, rms, row_errors
from ._velocity_report import InducedFlowReport, VelocityComparison, VelocityTimeReport

__all__ = ["INDUCED_RTOL", "compare_velocity"]

#: Local tolerance of the induced flow's solve (far below the errors it is to show).
INDUCED_RTOL = 1e-8


class _VelocityModel:
    """The user's model as ``v(t, x)`` in cmverify's convention, with one time per row or
    one for all; raises :class:`ModelError` (with our time ``t``) on any failure."""

    def __init__(self, adapter: ModelAdapter, parameterization: str, convention: str, path):
        self.adapter, self.parameterization, self.convention = adapter, parameterization, convention
        self.interpolant = path.interpolant
        self.calls = 0  # calls of the network itself

    def __call__(self, t: float | np.ndarray, x: np.ndarray) -> np.ndarray:
        tau = model_time(t, self.convention)
        scalar_rows = np.ndim(t) and self.adapter.time_format == "scalar"
        self.calls += np.unique(np.asarray(t)).size if scalar_rows else 1
        try:
            out = self.adapter.call_rows(tau, x) if np.ndim(t) else self.adapter(tau, x)
        except ModelError as exc:  # report our time, not the network's
            f = exc.failure
            rows = f.rows or (0,)
            when = float(t) if np.ndim(t) == 0 else float(np.asarray(t)[rows[0]])
            raise ModelError(replace(f, t=when)) from None
        v = to_velocity(self.parameterization, self.convention, out, t, x, self.interpolant)
        bad = ~np.all(np.isfinite(v), axis=1)
        if np.any(bad):
            rows = tuple(int(i) for i in np.flatnonzero(bad))
            when = float(t) if np.ndim(t) == 0 else float(np.asarray(t)[rows[0]])
            raise ModelError(
                ModelFailure(
                    when,
                    "non-finite error",
                    f"the velocity converted from the {self.parameterization} output overflows",
                    rows,
                    tuple(tuple(float(v) for v in x[i]) for i in rows[:3]),
                )
            )
        return v


def _time_report(
    model: _VelocityModel,
    path: MixturePath,
    t: float,
    n: int,
    rng: np.random.Generator,
    floor: FloorQuadrature | None,
) -> VelocityTimeReport:
    at = path.interpolant.at(t)
    x0 = path.mixture.sample(n, rng)
    x1 = rng.standard_normal(x0.shape)
    xt = float(at.alpha) * x0 + float(at.sigma) * x1
    target = float(at.dalpha) * x0 + float(at.dsigma) * x1  # v_c, the training target
    v = path.velocity(t, xt)
    report = VelocityTimeReport(t=t)
    if floor is not None:
        report.loss_floor, report.loss_floor_error = floor.value, floor.error_estimate
    try:
        v_model = model(t, xt)
    except ModelError as exc:
        report.failure = exc.failure
        return report
    err = row_errors(v_model, v)
    if not np.all(np.isfinite(err)):
        rows = tuple(int(i) for i in np.flatnonzero(~np.isfinite(err)))
        report.failure = ModelFailure(
            t, "non-finite error", "the error |v_θ − v| overflows float64", rows, ()
        )
        return report
    worst = int(np.argmax(err))
    scale = rms(np.linalg.norm(v, axis=1))
    sq = err**2
    loss = np.sum((v_model - target) ** 2, axis=1)
    report.rmse = rms(err)
    report.relative_rmse = report.rmse / scale if scale > 0 else None
    report.p95_error = float(np.quantile(err, 0.95))
    report.max_error = float(err[worst])
    report.worst_point = [float(c) for c in xt[worst]]
    report.excess_loss = float(np.mean(sq))
    report.excess_loss_se = float(np.std(sq, ddof=1) / np.sqrt(n)) if n > 1 else None
    report.model_loss = float(np.mean(loss))
    report.model_loss_se = float(np.std(loss, ddof=1) / np.sqrt(n)) if n > 1 else None
    return report


def _induced(
    model: _VelocityModel, path: MixturePath, parameterization: str, n: int, seed: int
) -> InducedFlowReport:
    start, end = usable_interval(parameterization)
    rng = np.random.default_rng([seed, 1])
    x = path.sample(start, n, rng)
    exact = ReferenceFlow(path).map(x, start, end)
    twin = path.sample(end, n, rng)
    twin2 = path.sample(end, n, rng)
    report = InducedFlowReport(t_start=start, t_end=end, rtol=INDUCED_RTOL)
    failures: list[ModelFailure] = []

    def rhs(t: np.ndarray, y: np.ndarray) -> np.ndarray:
        try:
            return model(t, y)
        except ModelError as exc:
            failures.append(exc.failure)
            return np.full_like(y, np.nan)

    calls_before = model.calls
    try:
        if model.adapter.time_format == "scalar":  # one time for all rows: lockstep
            y = _lockstep(rhs, x, start, end)
        else:
            y = solve_batched(
                rhs,
                x,
                np.full(n, start),
                np.full(n, end),
                rtol=INDUCED_RTOL,
                atol=INDUCED_RTOL,
                max_steps=20_000,
            ).y
    except SolverFailure as exc:
        report.failure = (
            failures[0]
            if failures
            else ModelFailure(
                start,
                "non-finite",
                f"the model's ODE could not be integrated: {exc}",
                tuple(int(i) for i in exc.indices),
                (),
            )
        )
        return report
    if failures:
        report.failure = failures[0]
        return report
    err = row_errors(y, exact)
    scale = float(np.sqrt(np.trace(path.mixture.covariance())))
    report.rmse = rms(err)
    report.relative_rmse = report.rmse / scale
    report.max_error = float(np.max(err))
    report.energy_distance = energy_distance(y, twin)
    report.energy_distance_floor = energy_distance(twin2, twin)
    report.log_likelihood = float(np.mean(path.log_prob(end, y)))
    report.data_log_likelihood = float(np.mean(path.log_prob(end, twin)))
    report.model_calls = int(model.calls - calls_before)
    return report


def _lockstep(rhs: Callable, x: np.ndarray, start: float, end: float) -> np.ndarray:
    """The ODE of all rows as one system with one time (DOP853 of ``solve_ivp``, the
    error control over all rows at once: the tolerance on the RMS of the scaled errors):
    a model that takes one time per call is then called once per stage, not once per
    row."""
    from scipy.integrate import solve_ivp

    shape = x.shape

    def flat(t: float, y: np.ndarray) -> np.ndarray:
        return rhs(float(t), y.reshape(shape)).ravel()

    sol = solve_ivp(
        flat, (start, end), x.ravel(), method="DOP853", rtol=INDUCED_RTOL, atol=INDUCED_RTOL
    )
    if not sol.success or not np.all(np.isfinite(sol.y[:, -1])):
        rows = np.arange(shape[0])
        raise SolverFailure(f"DOP853 stopped: {sol.message}", rows, [sol.message] * rows.size)
    return sol.y[:, -1].reshape(shape)


def compare_velocity(
    model: Callable[..., Any],
    path: MixturePath,
    *,
    parameterization: str = "velocity",
    time_convention: str = "data_at_0",
    times: Sequence[float] | None = None,
    n: int = 1000,
    seed: int = 0,
    signature: str = "t,x",
    time_format: str = "vector",
    induced_flow: bool = True,
    name: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> VelocityComparison:
    """Compare a velocity-type ``model`` with the exact velocity of ``path`` (module
    docstring).

    Arguments:
        model: a numpy callable or ``torch.nn.Module`` (adapted as in
            :func:`~cmverify.compare.compare`: copies in, float64 out, eval mode).
        path: the :class:`~cmverify.exact.MixturePath`.
        parameterization: what the model predicts: ``velocity``, ``x0`` (the denoiser
            ``E[x0 | x_t]``), ``noise`` (``E[x1 | x_t]``) or ``score`` (``∇ log p_t``).
        time_convention: ``data_at_0`` (cmverify's) or ``noise_at_0`` (flow_matching,
            torchcfm: the model is called at ``τ = 1 − t`` and a velocity is negated).
        times: our times in ``[0, 1]`` (default ``0, 0.1, …, 1`` without the endpoint the
            parameterization cannot convert).
        n: points per time and trajectories of the induced flow; ``seed``: their seed.
        signature, time_format: the model's argument order and time format (default
            ``"vector"``: one time per row, shape ``(n,)``, as in training code; with
            ``"scalar"`` the induced flow calls the model once per distinct time).
        induced_flow: integrate the model's ODE (default true).
        progress: called with a line after each time.
    """
    start = _time.perf_counter()
    if not isinstance(path, MixturePath):
        raise TypeError(f"path must be a MixturePath, got {type(path).__name__}")
    parameterization = check_choice(parameterization, "parameterization", PARAMETERIZATIONS)
    time_convention = check_choice(time_convention, "time_convention", TIME_CONVENTIONS)
    grid = default_times(parameterization) if times is None else times
    grid_arr = np.atleast_1d(as_times(grid, name="times"))
    if grid_arr.ndim != 1 or grid_arr.size == 0:
        raise ValueError(f"times must be a non-empty 1-d sequence, got {times!r}")
    check_times(parameterization, grid_arr)
    n, seed = _positive(n, "n"), as_count(seed, "seed")
    adapter = (
        model if isinstance(model, ModelAdapter) else ModelAdapter(model, signature, time_format)
    )
    velocity = _VelocityModel(adapter, parameterization, time_convention, path)
    floors, notes = _floors(path, grid_arr)
    reports, failures = [], []
    for i, t in enumerate(float(v) for v in grid_arr):
        rng = np.random.default_rng([seed, 0, i])
        report = _time_report(velocity, path, t, n, rng, floors[i])
        reports.append(report)
        if report.failure is not None:
            failures.append(report.failure)
        if progress:
            done = "failed" if report.failure else f"RMSE {report.rmse:.3g}"
            progress(f"t = {t:g}: {done}")
    induced = None
    if induced_flow:
        induced = _induced(velocity, path, parameterization, n, seed)
        if induced.failure is not None:
            failures.append(induced.failure)
        if progress:
            done = "failed" if induced.failure else f"RMSE {induced.rmse:.3g}"
            progress(f"induced flow: {done}")
    return VelocityComparison(
        model=name or adapter.name,
        path=_path_label(path),
        dim=path.dim,
        n=n,
        seed=seed,
        parameterization=parameterization,
        time_convention=time_convention,
        data_scale=float(np.sqrt(np.trace(path.mixture.covariance()))),
        per_time=reports,
        induced=induced,
        failures=failures,
        wall_seconds=_time.perf_counter() - start,
        notes=notes,
    )


def _floors(path: MixturePath, times: np.ndarray) -> tuple[list[FloorQuadrature | None], list[str]]:
    """The loss floor at each time (``None`` beyond :data:`cmverify.loss_floors.MAX_DIM`),
    and a note for each floor the report cannot vouch for."""
    if path.dim > MAX_DIM:
        note = (
            f"loss floor not computed: its quadrature reaches d ≤ {MAX_DIM}, the path has "
            f"d = {path.dim} (the excess loss mean |v_θ − v|² is exact up to sampling)"
        )
        return [None] * times.size, [note]
    floors = flow_matching_quadrature(path, times)  # warns where a rule did not converge
    notes = [
        f"loss floor at t = {f.t:g}: quadrature error estimate {f.error_estimate:.1e} "
        f"({f.error_estimate / f.value:.1e} relative), above the {DEFAULT_RTOL[path.dim]:g} "
        "aimed at"
        for f in floors
        if not f.converged
    ]
    return list(floors), notes
