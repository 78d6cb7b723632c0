"""Input validation shared by every layer.

Each helper converts its argument to a float64 array and raises ``TypeError`` for
values of the wrong kind and ``ValueError`` for values of the right kind that are
unusable (wrong shape, NaN or inf, out of range); every message names the argument.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["as_float_array", "as_points", "as_rng", "as_times"]


def as_float_array(value: object, name: str) -> np.ndarray:
    """``value`` as a finite float64 array (a copy), or a clear error naming ``name``."""
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name} must be numeric, got {type(value).__name__}")
    try:
        raw = np.asarray(value)
    except Exception as exc:  # ragged nested sequences and the like
        raise ValueError(f"{name} could not be read as an array: {exc}") from None
    if raw.dtype.kind == "c":
        raise TypeError(f"{name} must be real, got complex dtype {raw.dtype}")
    if raw.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric, got dtype {raw.dtype}")
    array = np.array(raw, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        bad = np.argwhere(~np.isfinite(array))
        where = tuple(int(i) for i in bad[0]) if array.ndim else ()
        raise ValueError(
            f"{name} contains NaN or inf ({len(bad)} entr{'y' if len(bad) == 1 else 'ies'}, "
            f"first at index {where})"
        )
    return array


def as_points(x: object, dim: int, name: str = "x") -> np.ndarray:
    """``x`` as a finite float64 array of shape ``(n, dim)``."""
    array = as_float_array(x, name)
    if array.ndim != 2 or array.shape[1] != dim:
        raise ValueError(
            f"{name} must have shape (n, {dim}) for this {dim}-d path, got {array.shape}"
        )
    return array


def refuse_bool(value: object, name: str) -> None:
    """``TypeError`` for a bool or an array of bools where a time is expected (NumPy would
    read ``True`` as ``1.0``: ``s = True`` would mean ``X_{1→t}``)."""
    if (
        isinstance(value, bool | np.bool_)
        or getattr(value, "dtype", None) == np.bool_
        or (isinstance(value, list | tuple) and any(isinstance(v, bool | np.bool_) for v in value))
    ):
        raise TypeError(f"{name} must be a float or an array of floats, got bool")


def as_times(t: object, n: int | None = None, name: str = "t") -> np.ndarray:
    """``t`` as a float64 array in ``[0, 1]``: shape ``()`` for a scalar, ``(n,)`` per point.

    A per-point array must have length ``n`` when ``n`` is given.
    """
    refuse_bool(t, name)
    array = as_float_array(t, name)
    if array.ndim > 1:
        raise ValueError(f"{name} must be a float or a 1-d array, got shape {array.shape}")
    if array.ndim == 1 and n is not None and array.shape[0] != n:
        raise ValueError(f"{name} has {array.shape[0]} entries but x has {n} points")
    outside = (array < 0.0) | (array > 1.0)
    if np.any(outside):
        first = float(np.ravel(array)[np.ravel(outside)][0])
        raise ValueError(f"{name} must lie in [0, 1], got {first!r}")
    return array


def as_rng(rng: object, name: str = "rng") -> np.random.Generator:
    """A ``numpy.random.Generator`` from a Generator, an integer seed or ``None``."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, numbers.Integral) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise TypeError(
        f"{name} must be a numpy Generator, an int seed or None, got {type(rng).__name__}"
    )


def as_real(value: object, name: str) -> float:
    """A real scalar (Python or NumPy; not a bool, string or array) as a float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    return float(value)


def as_count(n: object, name: str = "n") -> int:
    """A non-negative integer count."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(n).__name__}")
    if n < 0:
        raise ValueError(f"{name} must be non-negative, got {n}")
    return int(n)


def velocity_field_problem(path: object) -> str | None:
    """Why ``path`` is not a usable VelocityField (``dim`` a positive integer, ``velocity`` callable), or ``None``."""
    missing = [name for name in ("dim", "velocity") if not hasattr(path, name)]
    if missing:
        return f"has no {' and no '.join(missing)}"
    if not callable(path.velocity):
        return "has a velocity that is not callable"
    dim = path.dim
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
        return f"has dim = {dim!r}, not a positive integer"
    return None
