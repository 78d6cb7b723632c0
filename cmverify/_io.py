"""File-system helpers shared by the CLI, the trainer and compare (no heavy imports)."""

from __future__ import annotations

import os
import pathlib
import tempfile

__all__ = ["check_writable"]


def check_writable(folder: str | os.PathLike[str], name: str = "checkpoint_dir") -> pathlib.Path:
    """Create ``folder`` (with its parents) and prove a file can be written in it; raise
    ``ValueError`` naming ``name`` and the reason otherwise. Call before long work."""
    if not os.fspath(folder):
        raise ValueError(f"{name} must name a folder, got an empty string")
    out = pathlib.Path(folder)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".cmverify-write-test-"):
            pass
    except FileExistsError:
        raise ValueError(f"{name} {str(out)!r} exists and is not a folder") from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ValueError(f"{name} {str(out)!r} is not writable: {reason}") from None
    return out
