"""Validation of the floors' arguments and their dimension limit (loss-floors layer)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .._validation import as_real, as_times
from ..exact import MixturePath

__all__ = ["MAX_DIM", "check_options", "check_path", "check_rtol", "check_times"]

#: The largest dimension the floors reach (cubature: ``2^d + 2d² + 2d + 1`` nodes a box).
MAX_DIM = 4


def check_path(path: object) -> MixturePath:
    """``path`` if it is a :class:`~cmverify.exact.MixturePath` of ``d ≤`` :data:`MAX_DIM`."""
    if not isinstance(path, MixturePath):
        raise TypeError(f"path must be a MixturePath, got {type(path).__name__}")
    if path.dim > MAX_DIM:
        raise ValueError(
            f"the floors' quadrature rules are limited to d ≤ {MAX_DIM} (adaptive cubature "
            f"costs 2^d nodes a box), got d = {path.dim}"
        )
    return path


def check_times(path: object, t: object, r: object) -> tuple[MixturePath, np.ndarray, np.ndarray]:
    """``(path, t, r)`` validated: a mixture path of ``d ≤ MAX_DIM``, times broadcast to
    1-d float64 arrays with ``r ≤ t``."""
    path = check_path(path)
    t_arr, r_arr = np.atleast_1d(as_times(t, name="t")), np.atleast_1d(as_times(r, name="r"))
    if t_arr.ndim != 1 or r_arr.ndim != 1:
        raise ValueError("t and r must be floats or 1-d arrays")
    t_arr, r_arr = np.broadcast_arrays(t_arr, r_arr)
    bad = r_arr > t_arr
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"MeanFlow's u(z, r, t) has r ≤ t (X_{{t→r}} towards the data), got r = "
            f"{float(r_arr[i])!r} > t = {float(t_arr[i])!r}"
        )
    return path, t_arr.astype(np.float64), r_arr.astype(np.float64)


def check_rtol(rtol: object) -> float:
    """``rtol`` as a float: ``TypeError`` unless a real number (not a bool), ``ValueError``
    unless ``0 < rtol < 1``."""
    value = as_real(rtol, "rtol")
    if not 0 < value < 1:
        raise ValueError(f"rtol must be a number in (0, 1), got {rtol!r}")
    return value


def check_options(rtol: object, max_solves: object, progress: Callable | None) -> None:
    """``TypeError`` unless ``rtol`` is a real number, ``max_solves`` ``None`` or a whole
    number (not a bool) and ``progress`` ``None`` or callable; ``ValueError`` unless
    ``0 < rtol < 1`` and ``max_solves ≥ 1``."""
    check_rtol(rtol)
    if max_solves is not None:
        if isinstance(max_solves, bool) or not isinstance(max_solves, int | np.integer):
            raise TypeError(f"max_solves must be a whole number ≥ 1, got {max_solves!r}")
        if max_solves < 1:
            raise ValueError(f"max_solves must be a whole number ≥ 1, got {max_solves!r}")
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be callable (a str → None), got {progress!r}")
