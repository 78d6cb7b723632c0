"""Calling users' consistency models: numpy callables or ``torch.nn.Module``, ``(t, x)``
or ``(x, t)`` argument order, scalar or per-row times — and reporting what went wrong.

A model maps ``(t, x)`` with ``x`` of shape ``(n, d)`` to ``(n, d)``: the predicted start
``x0`` of the trajectory through ``x`` at time ``t``. :class:`ModelAdapter` calls it in the
form it expects and returns float64 numpy arrays; every problem (an exception, the wrong
shape, a non-numeric or complex output, NaN or inf) becomes a :class:`ModelFailure` that
names the time, the rows and the cause, never a silently averaged number.

The adapter is defensive against models that misbehave without failing:

- every call gets its own copies of ``x`` and ``t``, so a model that edits its input in
  place (``x -= x.mean(0)``) cannot corrupt the caller's arrays;
- the output is copied into a fresh float64 array, so a model that returns (a view of)
  its input, or reuses one output buffer across calls, cannot change earlier results;
- a ``torch.nn.Module`` is evaluated in ``eval()`` mode under ``torch.no_grad()`` (its
  BatchNorm statistics are used, not overwritten, and dropout is off) and every
  submodule's training flag is restored afterwards, also when the forward pass raises;
- a tensor that requires grad is detached; complex output is a failure (never silently
  truncated to its real part).
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["FAILURE_KINDS", "TIME_FORMATS", "ModelAdapter", "ModelError", "ModelFailure"]

#: How ``t`` is passed: a Python float, a vector of shape ``(n,)``, or a column ``(n, 1)``.
TIME_FORMATS = ("scalar", "vector", "column")

#: The kinds of :class:`ModelFailure`: the call raised; the output has the wrong shape; the
#: output is not numeric; the output is complex; the output holds NaN or inf; the output is
#: finite but so large that ``|f − f*|`` (or a sample statistic) overflows float64.
FAILURE_KINDS = ("exception", "shape", "type", "complex", "non-finite", "non-finite error")

#: Offending rows a failure keeps in its JSON form (``n_rows`` gives the count).
ROWS_KEPT = 20


@dataclass(frozen=True)
class ModelFailure:
    """What went wrong when the model was called at time ``t``.

    ``kind`` is one of :data:`FAILURE_KINDS`; ``rows`` lists the offending input rows (all
    rows for an exception, a wrong shape or a non-numeric output), ``examples`` the first
    few offending inputs ``x`` (as given to the model, before any in-place edit it made),
    ``message`` a one-line summary and ``traceback`` the last frames of an exception.
    ``n_rows`` is the number of offending rows: ``len(rows)`` unless given (a failure read
    back by :meth:`from_dict` keeps only the first :data:`ROWS_KEPT` rows, and the count).
    """

    t: float
    kind: str
    message: str
    rows: tuple[int, ...] = ()
    examples: tuple[tuple[float, ...], ...] = ()
    traceback: str = ""
    n_rows: int = -1

    def __post_init__(self) -> None:
        if self.n_rows < 0:
            object.__setattr__(self, "n_rows", len(self.rows))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data; ``rows`` holds the first :data:`ROWS_KEPT` rows."""
        return {
            "t": self.t,
            "kind": self.kind,
            "message": self.message,
            "n_rows": self.n_rows,
            "rows": list(self.rows[:ROWS_KEPT]),
            "examples": [list(e) for e in self.examples],
            "traceback": self.traceback,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelFailure:
        """The failure written by :meth:`to_dict` (its first :data:`ROWS_KEPT` rows); a
        one-line ``ValueError`` naming the first missing or malformed field otherwise
        (``t`` in [0, 1], ``kind`` in :data:`FAILURE_KINDS`, integer rows, finite
        examples)."""
        from ._reading import read_failure

        try:
            return read_failure(data, "")
        except ValueError as exc:
            raise ValueError(f"not a model failure: {exc}") from None

    def describe(self) -> str:
        rows = f" ({self.n_rows} rows, first {list(self.rows[:5])})" if self.rows else ""
        example = f"; e.g. x = {list(self.examples[0])}" if self.examples else ""
        return f"t = {self.t:g}: {self.kind}: {self.message}{rows}{example}"


class ModelError(RuntimeError):
    """Raised by :meth:`ModelAdapter.__call__` with the :class:`ModelFailure` attached."""

    def __init__(self, failure: ModelFailure) -> None:
        super().__init__(failure.describe())
        self.failure = failure


def _torch():
    """The torch module if it is already imported (a torch model implies it is), else None."""
    return sys.modules.get("torch")


def _is_torch_module(model: object) -> bool:
    torch = _torch()
    return torch is not None and isinstance(model, torch.nn.Module)


def _when(t: float | np.ndarray, rows: tuple[int, ...]) -> float:
    """The time a failure is reported at: ``t``, or with one time per row the first
    offending row's (the first row's when all rows are named)."""
    if np.ndim(t) == 0:
        return float(t)
    return float(np.asarray(t)[rows[0] if rows else 0])


def _examples(x: np.ndarray, rows: tuple[int, ...]) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(float(v) for v in x[i]) for i in rows[:3])


def _to_numpy(raw: Any) -> np.ndarray:
    """The model's output as a numpy array in its own dtype (torch tensors detached and
    moved to the CPU; floating tensors widened to float64, complex ones kept complex)."""
    torch = _torch()
    if torch is not None and isinstance(raw, torch.Tensor):
        raw = raw.detach()
        if raw.is_complex():
            return raw.resolve_conj().resolve_neg().to("cpu", torch.complex128).numpy()
        if raw.is_floating_point():  # includes float16 / bfloat16, which numpy may lack
            return raw.to("cpu", torch.float64).numpy()
        return raw.to("cpu").numpy()
    return np.asarray(raw)


@dataclass
class ModelAdapter:
    """Call ``model`` as ``f(t, x)`` on float64 numpy arrays.

    Arguments:
        model: a callable on numpy arrays, or a ``torch.nn.Module`` (evaluated in
            ``eval()`` mode under ``torch.no_grad()``, in the dtype of its first floating
            parameter or buffer and on its device; float32 or float64). The module's
            training flags are restored after every call.
        signature: ``"t,x"`` (default) or ``"x,t"``: the model's argument order.
        time_format: ``"scalar"`` (a float), ``"vector"`` (shape ``(n,)``) or ``"column"``
            (shape ``(n, 1)``). Default: ``"scalar"`` for numpy callables, ``"vector"`` for
            torch modules.

    Calling the adapter returns ``f(t, x)`` as a fresh float64 array of shape ``(n, d)``
    or raises :class:`ModelError`; it never modifies ``x``.
    """

    model: Callable[..., Any]
    signature: str = "t,x"
    time_format: str | None = None
    _torch: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        if not callable(self.model):
            raise TypeError(f"model must be callable, got {type(self.model).__name__}")
        if not isinstance(self.signature, str):
            raise TypeError(f"signature must be a str, got {type(self.signature).__name__}")
        sig = self.signature.replace(" ", "")
        if sig not in ("t,x", "x,t"):
            raise ValueError(f"signature must be 't,x' or 'x,t', got {self.signature!r}")
        self.signature = sig
        self._torch = _is_torch_module(self.model)
        if self.time_format is None:
            self.time_format = "vector" if self._torch else "scalar"
        if self.time_format not in TIME_FORMATS:
            raise ValueError(f"time_format must be one of {TIME_FORMATS}, got {self.time_format!r}")

    @property
    def name(self) -> str:
        """The model's ``__name__``, else its class name."""
        return getattr(self.model, "__name__", type(self.model).__name__)

    def _time_argument(self, t: float | np.ndarray, n: int) -> float | np.ndarray:
        """A fresh time argument for one call (the model may edit it in place); ``t`` one
        time, or one per row (shape ``(n,)``: the vector and column formats only)."""
        if self.time_format == "scalar":
            return float(t)
        if self.time_format == "vector":
            return np.array(np.broadcast_to(np.asarray(t, dtype=np.float64), (n,)))
        return np.array(np.broadcast_to(np.asarray(t, dtype=np.float64), (n,)))[:, None]

    def call_rows(self, t: np.ndarray, x: np.ndarray) -> np.ndarray:
        """``f(t_i, x_i)`` with one time per row (``t`` shape ``(n,)``), as :meth:`__call__`
        otherwise: one call for the vector and column formats, one call per distinct time
        for the scalar format (slow where all times differ, as in an adaptive solver)."""
        t = np.asarray(t, dtype=np.float64)
        if self.time_format != "scalar":
            return self(t, x)
        out = np.empty(np.shape(x), dtype=np.float64)
        for value in np.unique(t):
            rows = t == value
            out[rows] = self(float(value), np.asarray(x)[rows])
        return out

    def _call_numpy(self, t: float, x: np.ndarray) -> Any:
        targ = self._time_argument(t, x.shape[0])
        return self.model(targ, x) if self.signature == "t,x" else self.model(x, targ)

    def _dtype_device(self) -> tuple[Any, Any]:
        torch = _torch()
        tensors = (*self.model.parameters(), *self.model.buffers())
        for tensor in tensors:
            if tensor.is_floating_point():
                return tensor.dtype, tensor.device
        device = tensors[0].device if tensors else torch.device("cpu")
        return torch.get_default_dtype(), device

    def _call_torch(self, t: float, x: np.ndarray) -> Any:
        torch = _torch()
        dtype, device = self._dtype_device()
        xt = torch.tensor(x, dtype=dtype, device=device)  # a copy, never a view of x
        targ = self._time_argument(t, x.shape[0])
        if not isinstance(targ, float):
            targ = torch.tensor(targ, dtype=dtype, device=device)
        modes = [(m, m.training) for m in self.model.modules()]
        try:
            self.model.eval()
            with torch.no_grad():
                return self.model(targ, xt) if self.signature == "t,x" else self.model(xt, targ)
        finally:
            self.model.train(modes[0][1])  # the module's own train(), then every flag exactly
            for module, mode in modes:
                module.training = mode

    def _failure(
        self, t: float, kind: str, message: str, x: np.ndarray, rows: tuple[int, ...] = ()
    ) -> ModelError:
        return ModelError(ModelFailure(_when(t, rows), kind, message, rows, _examples(x, rows)))

    def __call__(self, t: float, x: np.ndarray) -> np.ndarray:
        """``f(t, x)`` as a fresh float64 ``(n, d)`` array; raises :class:`ModelError` on
        any problem with the model's answer. ``x`` (shape ``(n, d)``) is not modified."""
        x = np.array(x, dtype=np.float64)  # our record of the input, for examples
        if x.ndim != 2:
            raise ValueError(f"x must have shape (n, d), got {x.shape}")
        n, d = x.shape
        given = x.copy()  # the model's own copy: it may edit it in place
        try:
            raw = self._call_torch(t, given) if self._torch else self._call_numpy(t, given)
        except (Exception, SystemExit) as exc:  # the user's model failed (sys.exit too)
            frames = traceback.format_exception(type(exc), exc, exc.__traceback__)
            summary = "".join(frames[-3:]).strip()
            mode = (
                " [torch module evaluated in eval() mode under torch.no_grad()]"
                if self._torch
                else ""
            )
            raise ModelError(
                ModelFailure(
                    _when(t, ()),
                    "exception",
                    f"{type(exc).__name__}: {exc}{mode}",
                    tuple(range(n)),
                    (),
                    summary,
                )
            ) from exc
        try:
            out = _to_numpy(raw)
            if out.dtype.kind == "O":  # e.g. a list of Python numbers mixed with objects
                out = np.array(out, dtype=np.float64)
        except Exception as exc:  # whatever the object is, it is not numeric
            raise self._failure(
                t,
                "type",
                f"output is not numeric ({type(raw).__name__}): {type(exc).__name__}: {exc}",
                x,
                tuple(range(n)),
            ) from None
        if out.dtype.kind not in "iufc":
            what = "boolean" if out.dtype.kind == "b" else "not numeric"
            raise self._failure(
                t,
                "type",
                f"output is {what} ({type(raw).__name__} of dtype {out.dtype})",
                x,
                tuple(range(n)),
            )
        if out.shape != (n, d):
            hint = (
                "; return shape (n, 1) for d = 1 (e.g. out[:, None])"
                if d == 1 and out.shape == (n,)
                else ""
            )
            raise self._failure(
                t,
                "shape",
                f"output has shape {out.shape}, expected {(n, d)}{hint}",
                x,
                tuple(range(n)),
            )
        if out.dtype.kind == "c":
            imag = np.abs(out.imag)
            nonzero = np.any(imag != 0, axis=1)
            rows = tuple(int(i) for i in np.flatnonzero(nonzero)) or tuple(range(n))
            raise self._failure(
                t,
                "complex",
                f"output is complex ({out.dtype}; {int(nonzero.sum())} rows with a nonzero "
                f"imaginary part, largest |Im| = {float(imag.max()):.3g}); the model must "
                "return real values",
                x,
                rows,
            )
        out = np.array(out, dtype=np.float64)  # a fresh copy: never an alias of the model's
        bad = ~np.all(np.isfinite(out), axis=1)
        if np.any(bad):
            rows = tuple(int(i) for i in np.flatnonzero(bad))
            raise self._failure(t, "non-finite", "output contains NaN or inf", x, rows)
        return out
