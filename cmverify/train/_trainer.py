"""The training loop for consistency models (CT, CD) and flow maps (MeanFlow, shortcut)
on Gaussian-mixture data.

CT/CD defaults (measured on eight_gaussians, linear interpolant, one CPU thread, about
70 s per run of 15,000 steps of 512): N = 64 fixed, EMA target μ = 0.95, pseudo-Huber
distance (c = 0.03) with 1/Δt weighting, lognormal-shaped time index, Adam 2e-3 with a
cosine schedule, evaluation EMA 0.999. One-step relative RMSE against f*(1, ·): CD
0.043, CT 0.077. Also tried (benchmarks/RESULTS.md): stop-gradient target with the
doubling curriculum 16 → 128 (iCT's choice): CT 0.096; μ = 0.99: CD 0.059; squared L2
without weighting, uniform time index: no better; 4,000 steps: CD 0.15–0.21.
On seed_bimodal CT does not converge (one-step 0.8): its f*(1, ·) jumps between the
modes, and the CT target's averaging smears the jump; CD reaches 0.094.

Improved-training choices (Song & Dhariwal 2023, "Improved techniques for training
consistency models"), all configurable: pseudo-Huber distance, ``1/Δt`` weighting,
stop-gradient target (``μ = 0``), a doubling curriculum for ``N``, a lognormal-shaped
distribution of the time index over the noise-to-signal ratio ``κ_t = σ_t / α_t``, and
an EMA of the weights for evaluation.

The flow-map methods share the loop, the optimizer, the schedule and the evaluation EMA;
their batches and losses are in :mod:`cmverify.train._meanflow` and
:mod:`cmverify.train._shortcut`, their defaults and the study behind them in
:class:`~cmverify.train.TrainConfig` and benchmarks/RESULTS.md.
"""

from __future__ import annotations

import copy
import math
import os
import pathlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from scipy.special import erf
from torch import nn

from .._io import check_writable
from .._threads import limit_threads
from ..compare import Comparison, FlowMapComparison, compare
from ..exact import MixturePath, mixtures
from ..reference import multistep_sample, multistep_times
from ..symbolic import Interpolant, interpolants
from ._checkpoint import TrainingInterrupted, interrupts_held, write_checkpoint
from ._clock import Clock, tell_evaluation
from ._config import TrainConfig
from ._flow_eval import evaluate_flow_map
from ._losses import cd_pairs, consistency_loss, ct_pairs
from ._meanflow import meanflow_loss, meanflow_tangents, meanflow_times
from ._setup import Velocity, build_model, check_teacher, exact_teacher, probe
from ._shortcut import shortcut_batch, shortcut_loss

__all__ = [
    "TrainConfig",
    "TrainResult",
    "TrainingInterrupted",
    "sample",
    "time_index_probabilities",
    "train",
]


@dataclass
class TrainResult:
    """The evaluation (EMA) model, the run's metrics and evaluation history, the loss at
    every step, the final evaluation's :class:`~cmverify.compare.Comparison` (also when
    the model failed it) and the report files it wrote into the checkpoint folder."""

    model: nn.Module  # ConsistencyModel (CT, CD), MeanFlowNet or ShortcutNet
    config: TrainConfig
    metrics: dict
    history: list[dict] = field(default_factory=list)
    #: the training loss at every step (MeanFlow: the unweighted mean ‖Δ‖²)
    losses: list[float] = field(default_factory=list)
    #: the final evaluation against the exact flow map
    comparison: Comparison | FlowMapComparison | None = None
    report_files: list[pathlib.Path] = field(default_factory=list)  # Comparison.save's


def curriculum(config: TrainConfig, step: int) -> int:
    """``N`` at ``step``: doubling from ``n_min`` to ``n_max`` in equal stages."""
    stages = round(math.log2(config.n_max / config.n_min)) + 1
    stage = min(stages - 1, step * stages // config.steps)
    return min(config.n_max, config.n_min * 2**stage)


def time_index_probabilities(
    interp: Interpolant, n_steps: int, p_mean: float, p_std: float
) -> np.ndarray:
    """``P(n)``, ``n = 0 … N−1``, ∝ lognormal mass of ``κ = σ/α`` between ``κ_{t_n}`` and
    ``κ_{t_{n+1}}`` (``κ = ∞`` at ``t = 1``)."""
    t = np.linspace(0.0, 1.0, n_steps + 1)
    c = interp.at(t)
    a, s = c.alpha, c.sigma
    with np.errstate(divide="ignore"):
        log_kappa = np.where(a > 0, np.log(s) - np.log(np.maximum(a, 1e-300)), np.inf)
    cdf = 0.5 * (1 + erf((log_kappa - p_mean) / (math.sqrt(2) * p_std)))
    p = np.diff(cdf)
    return p / p.sum()


def _evaluate(
    model: nn.Module, path: MixturePath, config: TrainConfig, *, final: bool = True
) -> dict[str, Any]:
    """The evaluation's metrics (``failed``: the failures' descriptions, when the model
    failed) and, under ``"comparison"``, its :class:`~cmverify.compare.Comparison` (a
    :class:`~cmverify.compare.FlowMapComparison` for the flow-map methods:
    :func:`~cmverify.train._flow_eval.evaluate_flow_map`)."""
    if config.method in ("meanflow", "shortcut"):  # ``final``: the whole pair grid
        return evaluate_flow_map(model, path, config, final=final)
    result = compare(
        model,
        path,
        times=(0.0, 0.5, 1.0),
        n=config.eval_points,
        seed=config.seed + 1,
        n_samples=min(config.eval_points, 2000),
        name=config.method,
    )
    if not result.ok:
        return {"failed": [f.describe() for f in result.failures], "comparison": result}
    one, two = result.samples[0], result.samples[1]
    return {
        "one_step_rel_rmse": result.at(1.0).relative_rmse,
        "half_rel_rmse": result.at(0.5).relative_rmse,
        "energy_distance": one.energy_distance,
        "energy_distance_floor": one.energy_distance_floor,
        "two_step_energy_distance": two.energy_distance,
        "comparison": result,
    }


PROGRESS_EVERY = 250  # steps between progress lines


def train(
    config: TrainConfig,
    progress: Callable[[str], None] | None = None,
    *,
    network: torch.nn.Module | None = None,
    velocity: Velocity | None = None,
    threads: int | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
) -> TrainResult:
    """Train a consistency model (``ct``, ``cd``) or a flow map (``meanflow``,
    ``shortcut``); deterministic for a given seed on a given machine.

    ``network``: for CT/CD it replaces the default MLP ``F_θ(t, x)`` inside ``f_θ`` (any
    module taking ``t`` of shape ``(n,)`` and ``x`` of shape ``(n, d)``); for MeanFlow the
    whole ``u_θ(z, r, t)``, for shortcut the whole ``s_θ(x, τ, d)`` (shapes ``(n, d)``,
    ``(n,)``, ``(n,)``). ``velocity`` replaces the exact teacher velocity of CD and of
    ``teacher="exact"`` (any ``v(t, x)`` on numpy arrays, ``t`` of shape ``(n,)``; by
    default the exact path's, for the flow-map methods through
    :meth:`~cmverify.exact.MixturePath.to_torch`).

    ``threads``: torch and BLAS threads during training (``None``: leave the process's
    settings, e.g. an enclosing ``limit_threads``). One thread is fastest for the default
    MLP and batch, and far faster on shared cores (the CLI's default): 250 steps took
    2.5 s with one thread and 29 s with two on 2 busy cores, with identical results
    (bitwise equality across thread counts is not promised by torch in general).

    ``checkpoint_dir``: a folder (created, and checked writable before training starts)
    where every evaluation — every ``config.eval_every`` steps and the last step —
    atomically writes ``model.pt`` (the evaluation model's state dict), ``config.json``
    and ``metrics.json`` (``complete``, ``step``, the evaluation's metrics, ``history``);
    see :mod:`cmverify.train._checkpoint`. When the run completes, the final evaluation's
    report is saved there too (:meth:`Comparison.save <cmverify.compare.Comparison.save>`:
    ``comparison.json``, ``comparison.md`` and, when matplotlib is installed, the figures;
    ``TrainResult.report_files``). On Ctrl-C, :class:`TrainingInterrupted` (a
    ``KeyboardInterrupt``) says which step was saved there. A non-finite training loss
    stops the run with ``FloatingPointError`` (naming the step); a network or teacher
    velocity of the wrong signature, shape or dtype is refused with ``ValueError`` before
    the first step.

    ``progress`` receives a line every 250 steps (mean loss over those steps, elapsed
    time and ETA) and one at every evaluation (its one-step relative RMSE — flow maps:
    also the 2- and 4-step ones, and for MeanFlow a line on the JVP's precision —
    elapsed time and ETA); the ETA counts steps and evaluations at their own mean times.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    config = config.resolved()  # the method's defaults for target_mu and frequencies
    check_teacher(config, velocity)  # before the checkpoint folder is made
    out = check_writable(checkpoint_dir) if checkpoint_dir is not None else None
    with limit_threads(threads):
        return _train(config, progress, network, velocity, out)


def _pairs(
    config: TrainConfig,
    path: MixturePath,
    n_steps: int,
    rng: np.random.Generator,
    probabilities: dict[int, np.ndarray],
    velocity: Velocity | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One batch ``(t_lo, t_hi, x_hi, x_lo)``: time indices ``n`` drawn (uniformly or by
    :func:`time_index_probabilities`, cached per ``N`` in ``probabilities``), ``t_lo =
    n/N``, ``t_hi = (n+1)/N``, and the CT or CD pair at those times."""
    if config.time_sampling == "uniform":
        idx = rng.integers(0, n_steps, size=config.batch)
    else:
        if n_steps not in probabilities:
            probabilities[n_steps] = time_index_probabilities(
                path.interpolant, n_steps, config.p_mean, config.p_std
            )
        idx = rng.choice(n_steps, size=config.batch, p=probabilities[n_steps])
    t_lo, t_hi = idx / n_steps, (idx + 1) / n_steps
    x0 = path.mixture.sample(config.batch, rng)
    x1 = rng.standard_normal(x0.shape)
    if config.method == "ct":
        x_hi, x_lo = ct_pairs(path, t_lo, t_hi, x0, x1)
    else:
        x_hi, x_lo = cd_pairs(path, t_lo, t_hi, x0, x1, solver=config.cd_solver, velocity=velocity)
    return t_lo, t_hi, x_hi, x_lo


def _average(averages: list[tuple[torch.nn.Module, float]], model: torch.nn.Module) -> None:
    """``θ_avg ← μ θ_avg + (1 − μ) θ`` for each ``(average model, μ)``."""
    with torch.no_grad():
        for average, mu in averages:
            for p_avg, p in zip(average.parameters(), model.parameters(), strict=True):
                p_avg.mul_(mu).add_(p, alpha=1 - mu)


def _loss(
    config: TrainConfig,
    model: nn.Module,
    target: nn.Module,
    path: MixturePath,
    rng: np.random.Generator,
    n_steps: int,
    probabilities: dict[int, np.ndarray],
    velocity: Velocity | None,
) -> tuple[torch.Tensor, float]:
    """One batch's loss and the number recorded for it (MeanFlow: the unweighted mean
    ‖Δ‖²; otherwise the loss itself)."""
    if config.method == "meanflow":
        r, t = meanflow_times(
            rng,
            config.batch,
            config.mf_ratio,
            law=config.mf_times,
            mean=config.mf_time_mean,
            std=config.mf_time_std,
        )
        z, w = meanflow_tangents(path, r, t, rng, velocity)
        first = next(model.parameters())
        as_t = lambda a: torch.as_tensor(a, dtype=first.dtype, device=first.device)  # noqa: E731
        return meanflow_loss(
            model, as_t(z), as_t(r), as_t(t), as_t(w), p=config.adaptive_p, eps=config.adaptive_eps
        )
    if config.method == "shortcut":
        batch = shortcut_batch(
            path,
            config.batch,
            rng,
            d_min=config.sc_d_min,
            base=config.sc_base,
            fraction=config.sc_bootstrap_fraction,
            exact=velocity,
        )
        loss = shortcut_loss(model, target, batch)
        return loss, float(loss.detach())
    t_lo, t_hi, x_hi, x_lo = _pairs(config, path, n_steps, rng, probabilities, velocity)
    loss = consistency_loss(
        model,
        target,
        t_lo,
        t_hi,
        x_hi,
        x_lo,
        kind=config.distance,
        huber_c=config.huber_c,
        inverse_dt=config.inverse_dt,
    )
    return loss, float(loss.detach())


def _train(
    config: TrainConfig,
    progress: Callable[[str], None] | None,
    network: nn.Module | None,
    velocity: Velocity | None,
    out: pathlib.Path | None,
) -> TrainResult:
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    interp = interpolants.by_name(config.interpolant)
    path = MixturePath(mixtures.by_name(config.mixture), interp)
    model = build_model(config, path, network)
    velocity = exact_teacher(config, path, velocity)
    probe(config, model, velocity, path.dim)
    target = copy.deepcopy(model).requires_grad_(False)
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda k: 0.5 * (1 + math.cos(math.pi * min(k, config.steps) / config.steps)) * 0.95 + 0.05,
    )
    clock = Clock(config)
    start = clock.start
    history: list[dict] = []
    losses: list[float] = []
    probabilities: dict[int, np.ndarray] = {}
    final: dict = {}
    report_files: list[pathlib.Path] = []
    done = 0  # optimizer steps completed
    saved_step: int | None = None
    try:
        for step in range(config.steps):
            n_steps = curriculum(config, step)
            loss, recorded = _loss(
                config, model, target, path, rng, n_steps, probabilities, velocity
            )
            losses.append(recorded)
            if not math.isfinite(recorded):
                raise FloatingPointError(
                    f"the training loss is {recorded} at step {step + 1}: the run diverged "
                    "(a lower lr, or for MeanFlow fewer time frequencies, may help)"
                    + (f"; the last checkpoint in {out} is kept" if out is not None else "")
                )
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            averages = [(ema, config.eval_ema)]
            if config.method != "meanflow":  # MeanFlow has no target network
                averages.append((target, config.target_mu))
            _average(averages, model)
            done = step + 1
            evaluating = done % config.eval_every == 0 or done == config.steps
            if progress and done % PROGRESS_EVERY == 0 and not evaluating:
                filled = done * 30 // config.steps
                recent = float(np.mean(losses[-PROGRESS_EVERY:]))
                progress(
                    f"[{'#' * filled}{'.' * (30 - filled)}] step {done}/{config.steps}  "
                    f"loss {recent:.4g}  {clock.line(done)}"
                )
            if not evaluating:
                continue
            evaluation_start = time.perf_counter()
            final = _evaluate(ema, path, config, final=done == config.steps)
            clock.eval_seconds += time.perf_counter() - evaluation_start
            clock.evals += 1
            entry = {"step": done, "loss": losses[-1], **_numbers(final)}
            if config.method in ("ct", "cd"):
                entry = {"step": done, "loss": losses[-1], "N": n_steps, **_numbers(final)}
            history.append(entry)
            if out is not None:
                complete = done == config.steps
                summary = _summary(config, final, start) if complete else {}
                metrics = {"complete": complete, **summary, **entry, "history": history}
                with interrupts_held():  # saved_step must name what is on disk
                    write_checkpoint(out, ema, config, metrics)
                    saved_step = done
            if progress:
                tell_evaluation(progress, config, entry, clock.line(done), out)
        if out is not None and final.get("comparison") is not None:
            report_files = final["comparison"].save(out)
    except KeyboardInterrupt:
        raise TrainingInterrupted(done, config.steps, saved_step, out) from None
    metrics = _summary(config, final, start)
    return TrainResult(ema, config, metrics, history, losses, final.get("comparison"), report_files)


def _numbers(evaluation: dict[str, Any]) -> dict[str, Any]:
    """An evaluation's JSON-ready metrics (without its ``Comparison``)."""
    return {k: v for k, v in evaluation.items() if k != "comparison"}


def _summary(config: TrainConfig, final: dict, start: float) -> dict:
    """The run's metrics: method, steps, wall time and the last evaluation's numbers."""
    return {
        "method": config.method,
        "steps": config.steps,
        "wall_seconds": time.perf_counter() - start,
        **_numbers(final),
    }


def sample(
    model: torch.nn.Module, path: MixturePath, n: int, steps: int = 1, seed: int = 0
) -> np.ndarray:
    """``n`` samples from the one-step (``steps = 1``) or multistep sampler over
    ``t_i = 1 − i/steps``: ``x_{t_i} = α_{t_i} f(t_{i−1}, x_{t_{i−1}}) + σ_{t_i} z_i``."""
    from ..compare import ModelAdapter

    adapter = ModelAdapter(model)
    rng = np.random.default_rng(seed)
    x1 = rng.standard_normal((n, path.dim))
    return multistep_sample(path.interpolant, adapter, multistep_times(steps), x1, rng).samples
