"""The trainer's set-up: the method's online model and the flow-map methods' exact
teacher (train layer)."""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from ..exact import MixturePath
from ._config import TrainConfig
from ._flow_nets import MeanFlowNet, ShortcutNet
from ._model import MLP, ConsistencyModel

__all__ = ["Velocity", "build_model", "check_teacher", "exact_teacher"]

Velocity = Callable[[np.ndarray, np.ndarray], np.ndarray]


def build_model(config: TrainConfig, path: MixturePath, network: nn.Module | None) -> nn.Module:
    """The online model of the method: ``f_θ`` (CT, CD; ``network`` its ``F_θ``), or the
    flow-map network itself (``network`` replaces the default MLP)."""
    dim = path.dim
    sizes = {"width": config.width, "depth": config.depth, "n_frequencies": config.frequencies}
    if config.method == "meanflow":
        return network if network is not None else MeanFlowNet(dim, **sizes)
    if config.method == "shortcut":
        return network if network is not None else ShortcutNet(dim, config.sc_d_min, **sizes)
    mix = path.mixture
    sigma_data = float(np.sqrt(np.trace(mix.covariance()) / mix.dim))
    model = ConsistencyModel(path.interpolant, dim, sigma_data)
    model.network = network if network is not None else MLP(dim, **sizes)
    return model


SIGNATURES = {
    "ct": "F(t, x)",
    "cd": "F(t, x)",
    "meanflow": "u(z, r, t)",
    "shortcut": "s(x, tau, d)",
}


def probe(config: TrainConfig, model: nn.Module, velocity: Velocity | None, dim: int) -> None:
    """Call the model (and the exact teacher) once on 3 rows before training: a clear
    ``ValueError`` naming the expected signature and shapes instead of a torch error deep in
    the loss, or a run that trains on broadcast garbage."""
    params = list(model.parameters())
    if not params:
        raise ValueError("the network has no parameters to train")
    dtype, device = params[0].dtype, params[0].device
    model = copy.deepcopy(model).eval()  # no BatchNorm statistics or dropout draws touched
    x = torch.zeros(3, dim, dtype=dtype, device=device)
    t = torch.tensor([0.25, 0.5, 1.0], dtype=dtype, device=device)
    if config.method == "meanflow":
        args = (x, t / 2, t)
    elif config.method == "shortcut":
        args = (x, 1 - t, torch.full_like(t, config.sc_d_min))
    else:
        args = (t, x)
    signature = SIGNATURES[config.method]
    try:
        with torch.no_grad():
            out = model(*args)
    except Exception as exc:  # a user's network: any error, said in one line
        raise ValueError(
            f"the {config.method} network must be {signature} with x of shape (n, {dim}) and "
            f"times of shape (n,); calling it failed: {type(exc).__name__}: {exc}"
        ) from exc
    if isinstance(out, torch.Tensor) and out.shape == (3, dim) and not torch.isfinite(out).all():
        raise ValueError(
            f"the {config.method} network returns NaN or inf at its first call (zeros for x)"
        )
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (3, dim) or out.dtype != dtype:
        got = (
            f"{out.dtype} of shape {tuple(out.shape)}"
            if isinstance(out, torch.Tensor)
            else type(out).__name__
        )
        raise ValueError(
            f"the {config.method} network {signature} must return {dtype} of shape (n, {dim}), "
            f"got {got} for n = 3"
        )
    if velocity is not None and config.method != "cd":  # CD's teacher: called per step
        v = np.asarray(velocity(np.array([0.25, 0.5, 1.0]), np.zeros((3, dim))))
        if v.shape != (3, dim) or not np.all(np.isfinite(v)):
            raise ValueError(
                f"the teacher velocity v(t, x) must return finite values of shape (n, {dim}), "
                f"got shape {v.shape}" + ("" if np.all(np.isfinite(v)) else " with NaN or inf")
            )


def check_teacher(config: TrainConfig, velocity: Velocity | None) -> None:
    """Refuse a teacher ``velocity`` that the run would ignore (CT; the flow-map methods
    with ``teacher="conditional"``)."""
    if velocity is None or config.method == "cd" or config.teacher == "exact":
        return
    with_teacher = "" if config.method == "ct" else f" with teacher={config.teacher!r}"
    raise ValueError(
        "a teacher velocity is used by method='cd' and by teacher='exact'; "
        f"method={config.method!r}{with_teacher} would ignore it"
    )


def exact_teacher(
    config: TrainConfig, path: MixturePath, velocity: Velocity | None
) -> Velocity | None:
    """The teacher velocity ``v(t, z)`` the loss uses: CD's (``velocity``, or ``None`` for
    the exact path's numpy velocity); for the flow-map methods with ``teacher="exact"``
    ``velocity`` or the exact torch path's, and ``None`` (the conditional velocity)
    otherwise. A ``velocity`` that nothing would use is refused."""
    if config.method == "cd":
        return velocity
    check_teacher(config, velocity)
    if config.method == "ct" or config.teacher != "exact":
        return None
    if velocity is not None:
        return velocity
    exact = path.to_torch(torch.float64)
    return lambda t, z: exact.velocity(torch.as_tensor(t), torch.as_tensor(z)).numpy()
