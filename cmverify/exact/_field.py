"""The velocity-field protocol: what a flow map needs of a path (exact layer)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["VelocityField"]


@runtime_checkable
class VelocityField(Protocol):
    """A time-dependent velocity field ``v(t, x)`` on ``[0, 1] × R^d``: what
    :class:`~cmverify.reference.ReferenceFlow` integrates.

    :class:`~cmverify.exact.MixturePath` is one. Any object with these two members is
    another — for instance a wrapper around a path that perturbs its velocity, to see
    how a check or a flow map reacts:

    .. code-block:: python

        class Perturbed:
            def __init__(self, path, eps):
                self.path, self.eps, self.dim = path, eps, path.dim

            def velocity(self, t, x):
                return (1 + self.eps) * self.path.velocity(t, x)

    Members:
        dim: the dimension ``d`` (a positive integer).
        velocity(t, x): ``v(t, x)``, shape ``(n, d)``, for ``x`` a float64 array of shape
            ``(n, d)`` and ``t`` a float64 array in ``[0, 1]`` of shape ``()`` or
            ``(n,)`` (one time per row; a flow map's solver passes the latter).
    """

    @property
    def dim(self) -> int: ...

    def velocity(self, t: np.ndarray, x: np.ndarray) -> np.ndarray: ...
