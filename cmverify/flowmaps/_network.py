"""The base of the exact networks: a kind, a convention and one reference flow
(flowmaps floor)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np

from .._validation import as_points
from ..exact import VelocityField
from ..reference import ReferenceFlow
from ._kinds import KIND_INFO

__all__ = ["ExactNetwork"]


class ExactNetwork:
    """The exact network of one kind: what a perfectly trained network of that method
    computes on ``path``, called with the method's own signature (see the subclass).

    Points are float64 arrays of shape ``(n, d)``; times are floats or arrays of shape
    ``(n,)``; the result is a fresh float64 array of shape ``(n, d)``. Every value comes
    from one :class:`~cmverify.reference.ReferenceFlow` (:attr:`flow`), accurate per
    trajectory to its ``rtol`` (default 1e-10). Built by :func:`~cmverify.flowmaps.exact`.

    Attributes:
        kind: the kind (one of :data:`~cmverify.flowmaps.KINDS`).
        path: the path given to :func:`~cmverify.flowmaps.exact`.
        flow: the reference flow every value is computed from (for ``trigflow``, the
            flow of the scaled path :func:`~cmverify.flowmaps.trigflow_path`).
        convention: the convention keywords, resolved (read-only).
    """

    kind: ClassVar[str] = ""

    def __init__(
        self, path: VelocityField, convention: Mapping[str, Any], flow: ReferenceFlow
    ) -> None:
        self._path = path
        self._flow = flow
        self._convention = MappingProxyType(dict(convention))

    @property
    def path(self) -> VelocityField:
        return self._path

    @property
    def flow(self) -> ReferenceFlow:
        return self._flow

    @property
    def convention(self) -> Mapping[str, Any]:
        return self._convention

    @property
    def dim(self) -> int:
        return int(self._path.dim)

    def _points(self, x: object, name: str) -> np.ndarray:
        return as_points(x, self.dim, name)

    def __repr__(self) -> str:
        info = KIND_INFO[self.kind]
        keywords = "".join(
            f", {k}={v!r}" for k, v in self._convention.items() if k != "rtol" and v is not None
        )
        return (
            f"<exact {self.kind} network {info.signature} of {self._path!r}{keywords}, "
            f"rtol={self._flow.rtol:g}: {info.to_ours}>"
        )
