"""Loading a user's model from ``module:attribute`` or ``file.py:attribute``."""

from __future__ import annotations

import sys

from .. import _threads
from ._common import _one_line


def _load_model(spec: str, checkpoint: str | None):
    """``FILE.py:NAME`` → the object ``NAME`` of that file (a class is instantiated with no
    arguments); with ``checkpoint``, a torch state dict loaded with ``weights_only=True``.

    Every way a user's file can fail — not found, not Python, a SyntaxError or an
    exception when imported, no such name, a class that needs arguments, an object that
    is not callable, a checkpoint that does not fit — raises a one-line ``ValueError``.
    """
    import importlib.util
    import pathlib

    file, sep, name = spec.rpartition(":")
    if not sep or not file or not name:
        raise ValueError(f"model must be given as FILE.py:NAME, got {spec!r}")
    source = pathlib.Path(file)
    if not source.is_file():
        raise ValueError(f"no such file: {file}")
    module_name = f"_cmverify_user_{source.stem}"
    module_spec = importlib.util.spec_from_file_location(module_name, source)
    if module_spec is None or module_spec.loader is None:
        raise ValueError(f"{file} is not a Python file (FILE.py:NAME)")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module  # as an import would (dataclasses, pickling need it)
    try:
        module_spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:  # the user's code: anything can happen
        del sys.modules[module_name]
        raise ValueError(f"could not import {file}: {_one_line(exc)}") from None
    finally:
        _threads.refresh_limits()  # the file may have imported torch or a BLAS
    if not hasattr(module, name):
        defined = sorted(
            k for k, v in vars(module).items() if callable(v) and not k.startswith("_")
        )
        raise ValueError(
            f"{file} has no attribute {name!r}"
            + (f"; it defines {', '.join(defined[:12])}" if defined else "")
        )
    model = getattr(module, name)
    if isinstance(model, type):
        try:
            model = model()
        except Exception as exc:
            raise ValueError(
                f"{name} in {file} is a class that could not be created with no "
                f"arguments ({_one_line(exc)}); give an instance or a function instead"
            ) from None
    if not callable(model):
        raise ValueError(
            f"{name} in {file} is not callable (type {type(model).__name__}); it must be a "
            "function (f(t, x), or the signature of --kind), a torch module or a class"
        )
    if checkpoint is not None:
        import torch

        if not isinstance(model, torch.nn.Module):
            raise ValueError("--checkpoint needs NAME to be a torch.nn.Module (or its class)")
        try:
            state = torch.load(checkpoint, map_location="cpu", weights_only=True)
            model.load_state_dict(state)
        except Exception as exc:  # unreadable, unsafe (non-tensor objects) or mismatched
            detail = " ".join(str(exc).split())  # torch's messages span lines
            if "weights_only" in detail:  # torch's advice (weights_only=False) is unsafe here
                detail = (
                    "not a file of tensors that torch.load(weights_only=True) reads (save one "
                    "with torch.save(model.state_dict(), path); other pickles are not loaded)"
                )
            raise ValueError(f"could not load {checkpoint} as a state dict: {detail}") from None
    return model
