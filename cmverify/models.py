"""Calling users' consistency models: numpy callables or ``torch.nn.Module``, ``(t, x)``
or ``(x, t)`` argument order, scalar or per-row times — and reporting what went wrong.

A model maps ``(t, x)`` with ``x`` of shape ``(n, d)`` to ``(n, d)``: the predicted start
``x0`` of the trajectory through ``x`` at time ``t``. :class:`ModelAdapter` calls it in the
form it expects and returns float64 numpy arrays; every problem (an exception, the wrong
shape, NaN or inf) becomes a :class:`ModelFailure` that names the time, the rows and the
cause, never a silently averaged number.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["TIME_FORMATS", "ModelAdapter", "ModelError", "ModelFailure"]

#: How ``t`` is passed: a Python float, a vector of shape ``(n,)``, or a column ``(n, 1)``.
TIME_FORMATS = ("scalar", "vector", "column")


@dataclass(frozen=True)
class ModelFailure:
    """What went wrong when the model was called at time ``t``.

    ``kind`` is ``"exception"``, ``"shape"`` or ``"non-finite"``; ``rows`` lists the
    offending input rows (all rows for an exception or a wrong shape), ``examples`` the
    first few offending inputs, ``message`` a one-line summary and ``traceback`` the last
    frames of an exception.
    """

    t: float
    kind: str
    message: str
    rows: tuple[int, ...] = ()
    examples: tuple[tuple[float, ...], ...] = ()
    traceback: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "t": self.t,
            "kind": self.kind,
            "message": self.message,
            "n_rows": len(self.rows),
            "rows": list(self.rows[:20]),
            "examples": [list(e) for e in self.examples],
            "traceback": self.traceback,
        }

    def describe(self) -> str:
        rows = f" ({len(self.rows)} rows, first {list(self.rows[:5])})" if self.rows else ""
        example = f"; e.g. x = {list(self.examples[0])}" if self.examples else ""
        return f"t = {self.t:g}: {self.kind}: {self.message}{rows}{example}"


class ModelError(RuntimeError):
    """Raised by :meth:`ModelAdapter.__call__` with the :class:`ModelFailure` attached."""

    def __init__(self, failure: ModelFailure) -> None:
        super().__init__(failure.describe())
        self.failure = failure


def _is_torch_module(model: object) -> bool:
    try:
        import torch
    except ImportError:
        return False
    return isinstance(model, torch.nn.Module)


@dataclass
class ModelAdapter:
    """Call ``model`` as ``f(t, x)`` on float64 numpy arrays.

    Arguments:
        model: a callable on numpy arrays, or a ``torch.nn.Module`` (evaluated under
            ``torch.no_grad()`` in its own dtype and on its own device; float32 or float64).
        signature: ``"t,x"`` (default) or ``"x,t"``: the model's argument order.
        time_format: ``"scalar"`` (a float), ``"vector"`` (shape ``(n,)``) or ``"column"``
            (shape ``(n, 1)``). Default: ``"scalar"`` for numpy callables, ``"vector"`` for
            torch modules.
    """

    model: Callable[..., Any]
    signature: str = "t,x"
    time_format: str | None = None
    _torch: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        if not callable(self.model):
            raise TypeError(f"model must be callable, got {type(self.model).__name__}")
        sig = self.signature.replace(" ", "")
        if sig not in ("t,x", "x,t"):
            raise ValueError(f"signature must be 't,x' or 'x,t', got {self.signature!r}")
        self.signature = sig
        self._torch = _is_torch_module(self.model)
        if self.time_format is None:
            self.time_format = "vector" if self._torch else "scalar"
        if self.time_format not in TIME_FORMATS:
            raise ValueError(f"time_format must be one of {TIME_FORMATS}, got {self.time_format!r}")

    def _time_argument(self, t: float, n: int) -> Any:
        if self.time_format == "scalar":
            return float(t)
        if self.time_format == "vector":
            return np.full(n, float(t))
        return np.full((n, 1), float(t))

    def _call_numpy(self, t: float, x: np.ndarray) -> Any:
        targ = self._time_argument(t, x.shape[0])
        return self.model(targ, x) if self.signature == "t,x" else self.model(x, targ)

    def _call_torch(self, t: float, x: np.ndarray) -> Any:
        import torch

        param = next(self.model.parameters(), None)
        dtype = param.dtype if param is not None else torch.float32
        device = param.device if param is not None else torch.device("cpu")
        xt = torch.as_tensor(x, dtype=dtype, device=device)
        targ = self._time_argument(t, x.shape[0])
        if not isinstance(targ, float):
            targ = torch.as_tensor(targ, dtype=dtype, device=device)
        with torch.no_grad():
            out = self.model(targ, xt) if self.signature == "t,x" else self.model(xt, targ)
        return out.detach().to("cpu", torch.float64).numpy()

    def __call__(self, t: float, x: np.ndarray) -> np.ndarray:
        """``f(t, x)`` as float64 ``(n, d)``; raises :class:`ModelError` on any problem."""
        x = np.asarray(x, dtype=np.float64)
        n, d = x.shape
        try:
            raw = self._call_torch(t, x) if self._torch else self._call_numpy(t, x)
        except Exception as exc:  # the user's model failed: report, do not crash
            frames = traceback.format_exception(type(exc), exc, exc.__traceback__)
            summary = "".join(frames[-3:]).strip()
            raise ModelError(
                ModelFailure(
                    float(t),
                    "exception",
                    f"{type(exc).__name__}: {exc}",
                    tuple(range(n)),
                    (),
                    summary,
                )
            ) from exc
        try:
            out = np.asarray(raw, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ModelError(
                ModelFailure(
                    float(t),
                    "shape",
                    f"output is not numeric ({type(raw).__name__}): {exc}",
                    tuple(range(n)),
                )
            ) from None
        if out.shape != (n, d):
            raise ModelError(
                ModelFailure(
                    float(t),
                    "shape",
                    f"output has shape {out.shape}, expected {(n, d)}",
                    tuple(range(n)),
                )
            )
        bad = ~np.all(np.isfinite(out), axis=1)
        if np.any(bad):
            rows = tuple(int(i) for i in np.flatnonzero(bad))
            examples = tuple(tuple(float(v) for v in x[i]) for i in rows[:3])
            raise ModelError(
                ModelFailure(float(t), "non-finite", "output contains NaN or inf", rows, examples)
            )
        return out
