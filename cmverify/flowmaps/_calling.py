"""Calling a user's flow-map network defensively: a numpy callable or a
``torch.nn.Module`` (flowmaps floor).

As :class:`cmverify.compare.ModelAdapter` does for consistency models:

- each call gets its own copies of the points and times, so a network that edits its
  input in place cannot corrupt the caller's arrays (nor the conversion that uses them);
- the output is copied into a fresh float64 array (a network that returns a view of its
  input, or reuses a buffer, cannot change earlier results);
- a ``torch.nn.Module`` is fed tensors in the dtype (and on the device) of its first
  floating parameter (float32 if it has none; buffers count after parameters), times as
  tensors of shape ``(n,)``, and evaluated in ``eval()`` mode under ``torch.no_grad()``;
  every submodule's training flag is restored afterwards, also when it raises. Torch is
  never imported here: a module implies it is loaded (``sys.modules``);
- complex output, the wrong shape, a non-numeric or boolean output, NaN or inf are
  :class:`InvalidOutput` (a ``ValueError``) naming the kind, the times and the problem; an exception of the network itself
  propagates unchanged, with a note naming the kind and the times.

Numpy callables get float64 arrays: points ``(n, d)`` and times ``(n,)``.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

__all__ = ["InvalidOutput", "NetworkCaller"]


class InvalidOutput(ValueError):
    """The network answered, but its output is unusable (not numeric or boolean, the
    wrong shape, complex, NaN or inf, or overflowing in the conversion to ``X``)."""


def _torch() -> Any:
    return sys.modules.get("torch")


def _is_torch_module(model: object) -> bool:
    torch = _torch()
    return torch is not None and isinstance(model, torch.nn.Module)


def _to_numpy(raw: Any) -> np.ndarray:
    """The output as a numpy array (tensors detached, on the CPU, floating ones widened
    to float64, complex ones kept complex)."""
    torch = _torch()
    if torch is not None and isinstance(raw, torch.Tensor):
        raw = raw.detach()
        if raw.is_complex():
            return raw.resolve_conj().resolve_neg().to("cpu", torch.complex128).numpy()
        if raw.is_floating_point():
            return raw.to("cpu", torch.float64).numpy()
        return raw.to("cpu").numpy()
    return np.asarray(raw)


def _describe(names: Sequence[str], times: Sequence[np.ndarray], row: int | None = None) -> str:
    """``"r = 0.2, t = 0.5"`` (one value each), ``"r ∈ [0.1, 0.4], …"`` (per row), or the
    values of one ``row``."""
    parts = []
    for name, value in zip(names, times, strict=True):
        if row is not None:
            parts.append(f"{name} = {float(value[row])!r}")
        elif value.size == 0:
            parts.append(f"{name} = []")
        elif np.all(value == value[0]):
            parts.append(f"{name} = {float(value[0])!r}")
        else:
            parts.append(f"{name} ∈ [{float(value.min())!r}, {float(value.max())!r}]")
    return ", ".join(parts)


class NetworkCaller:
    """Call ``model`` (a user's network of ``kind``) on float64 arrays, defensively.

    ``caller([(name, array), …])`` calls ``model(*arrays)`` in that order — one array the
    points ``(n, d)``, the others times ``(n,)``, named in messages — and returns a fresh
    float64 array of shape ``(n, d)``; see the module docstring for what is checked.
    """

    def __init__(self, model: Callable[..., Any], kind: str) -> None:
        if not callable(model):
            raise TypeError(f"model must be callable, got {type(model).__name__}")
        self.model = model
        self.kind = kind
        self.torch = _is_torch_module(model)

    def _dtype_device(self) -> tuple[Any, Any]:
        torch = _torch()
        for tensor in (*self.model.parameters(), *self.model.buffers()):
            if tensor.is_floating_point():
                return tensor.dtype, tensor.device
        return torch.float32, torch.device("cpu")

    def tensors(self, arrays: Sequence[np.ndarray]) -> list[Any]:
        """Copies of ``arrays`` as tensors in the module's dtype, on its device."""
        torch = _torch()
        dtype, device = self._dtype_device()
        return [torch.tensor(a, dtype=dtype, device=device) for a in arrays]

    @contextlib.contextmanager
    def evaluating(self) -> Iterator[None]:
        """The module in ``eval()`` mode under ``torch.no_grad()``; every submodule's
        training flag restored afterwards, also when the body raises."""
        torch = _torch()
        modes = [(module, module.training) for module in self.model.modules()]
        try:
            self.model.eval()
            with torch.no_grad():
                yield
        finally:
            self.model.train(modes[0][1])  # the module's own train(), then each flag exactly
            for module, mode in modes:
                module.training = mode

    def _call_torch(self, arrays: Sequence[np.ndarray]) -> Any:
        tensors = self.tensors(arrays)
        with self.evaluating():
            return self.model(*tensors)

    def __call__(self, arguments: Sequence[tuple[str, np.ndarray]]) -> np.ndarray:
        names = [name for name, _ in arguments]
        arrays = [np.asarray(value, dtype=np.float64) for _, value in arguments]
        n, d = next(a for a in arrays if a.ndim == 2).shape  # the points
        clocks = [(name, a) for name, a in zip(names, arrays, strict=True) if a.ndim == 1]
        names, times = [c[0] for c in clocks], [c[1] for c in clocks]
        where = _describe(names, times)
        fresh = [np.array(a, dtype=np.float64) for a in arrays]  # the network's own copies
        try:
            raw = self._call_torch(fresh) if self.torch else self.model(*fresh)
        except Exception as exc:
            if hasattr(exc, "add_note"):  # Python ≥ 3.11
                mode = " (torch module in eval() mode under no_grad)" if self.torch else ""
                exc.add_note(f"while calling the {self.kind} network{mode} at {where}")
            raise
        prefix = f"the {self.kind} network at {where}"
        try:
            out = _to_numpy(raw)
            if out.dtype.kind == "O":
                out = np.array(out, dtype=np.float64)
        except Exception as exc:
            raise InvalidOutput(
                f"{prefix}: output is not numeric ({type(raw).__name__}): {exc}"
            ) from None
        if out.dtype.kind not in "iufc":
            what = "boolean" if out.dtype.kind == "b" else "not numeric"
            raise InvalidOutput(
                f"{prefix}: output is {what} ({type(raw).__name__} of dtype {out.dtype})"
            )
        if out.shape != (n, d):
            hint = "; return shape (n, 1) for d = 1" if d == 1 and out.shape == (n,) else ""
            raise InvalidOutput(f"{prefix}: output has shape {out.shape}, expected {(n, d)}{hint}")
        if out.dtype.kind == "c":
            rows = np.flatnonzero(np.any(out.imag != 0, axis=1))
            raise InvalidOutput(
                f"{prefix}: output is complex ({out.dtype}, {rows.size} rows with a nonzero "
                "imaginary part); a flow-map network returns real values"
            )
        out = np.array(out, dtype=np.float64)  # a fresh copy
        bad = ~np.all(np.isfinite(out), axis=1)
        if np.any(bad):
            i = int(np.flatnonzero(bad)[0])
            raise InvalidOutput(
                f"{prefix}: output contains NaN or inf in {int(bad.sum())} of {n} rows, first "
                f"row {i} ({_describe(names, times, i)})"
            )
        return out
