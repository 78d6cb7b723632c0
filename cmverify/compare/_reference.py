"""The exact side of a comparison, computed once and shared by every model compared.

:class:`ReferenceSet` holds, for one path, grid, size and seed, the points ``x_t ~ p_t``,
the targets ``f*(t, x_t)``, the maps ``X_{t→s}(x_t)`` to the previous grid time, and the
data and noise samples of the boundary check and the samplers. Building one costs
``len(times) × n`` ODE solves; :func:`reference_set` keeps the last
:data:`CACHE_SIZE` in memory.

The cache is keyed by the path's *value* (:func:`path_key`: the mixture's parameters
and the interpolant's SymPy expressions), never by ``id(path)`` (which Python reuses once
an object is collected): two separately built but equal paths share one reference set,
and a path with different parameters can never be handed another's.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from ..exact import MixturePath
from ..reference import ReferenceFlow

__all__ = ["CACHE_SIZE", "ReferenceSet", "path_key", "reference_set"]

#: How many reference sets :func:`reference_set` keeps (least recently used dropped first).
CACHE_SIZE = 8


def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


@dataclass(frozen=True)
class ReferenceSet:
    """Exact quantities shared by every comparison on one path, grid, size and seed.

    ``points[i]``, ``targets[i]`` and ``previous[i]`` have shape ``(n, d)`` (``previous[0]``
    is ``None``: no earlier time); ``data``, ``data_twin`` and ``noise`` have shape
    ``(n_samples, d)``, ``sampler_noise`` shape ``(4, n_samples, d)``. Every array is
    read-only (models only ever see copies). ``path`` is the path it was built from: a
    cached set may be shared by paths equal in value (:func:`path_key`).
    """

    path: MixturePath
    times: tuple[float, ...]
    points: tuple[np.ndarray, ...]  # x_t ~ p_t, one (n, d) array per time
    targets: tuple[np.ndarray, ...]  # f*(t, x_t)
    previous: tuple[np.ndarray | None, ...]  # X_{t→s}(x_t), s the previous time
    data: np.ndarray  # x0 ~ data (boundary and sample quality), (n_samples, d)
    data_twin: np.ndarray  # an independent data sample of the same size (the floor)
    noise: np.ndarray  # x1 ~ N(0, I) for the samplers, (n_samples, d)
    sampler_noise: np.ndarray  # fresh z for multistep sampling, (4, n_samples, d)

    @classmethod
    def build(
        cls, path: MixturePath, times: Sequence[float], n: int, seed: int, n_samples: int
    ) -> ReferenceSet:
        """Sample and solve everything from ``np.random.default_rng(seed)`` (the same
        arguments give the same arrays)."""
        rng = np.random.default_rng(seed)
        flow = ReferenceFlow(path)
        points, targets, previous = [], [], []
        for i, t in enumerate(times):
            x = path.sample(t, n, rng)
            points.append(_read_only(x))
            targets.append(_read_only(flow.consistency(t, x)))
            previous.append(None if i == 0 else _read_only(flow.map(x, t, times[i - 1])))
        d = path.dim
        return cls(
            path=path,
            times=tuple(float(t) for t in times),
            points=tuple(points),
            targets=tuple(targets),
            previous=tuple(previous),
            data=_read_only(path.mixture.sample(n_samples, rng)),
            data_twin=_read_only(path.mixture.sample(n_samples, rng)),
            noise=_read_only(rng.standard_normal((n_samples, d))),
            sampler_noise=_read_only(rng.standard_normal((4, n_samples, d))),
        )


def path_key(path: MixturePath) -> Hashable:
    """What a path's exact quantities depend on, as a hashable value: the mixture's
    weights, means and covariances (shapes and float64 bytes) and the interpolant itself,
    whose equality is symbolic and whose hash agrees with it (``from_sympy(1 - s, s, s)``
    keys like :meth:`~cmverify.symbolic.Interpolant.linear`). Names take no part."""
    mix = path.mixture
    arrays = tuple((a.shape, a.tobytes()) for a in (mix.weights, mix.means, mix.covs))
    return arrays, path.interpolant


class _Cache:
    """A small least-recently-used map, safe to use from several threads (a value is
    built outside the lock; two threads may build the same one, and one of them wins)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, ReferenceSet] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> ReferenceSet | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Hashable, value: ReferenceSet) -> ReferenceSet:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_CACHE = _Cache(CACHE_SIZE)


def reference_set(
    path: MixturePath, times: tuple[float, ...], n: int, seed: int, n_samples: int
) -> ReferenceSet:
    """The :class:`ReferenceSet` of ``path`` on ``times`` with ``n`` points per time,
    ``n_samples`` data and noise samples and ``seed``: from the cache when a path of the
    same value (:func:`path_key`) was used with the same arguments, else built and cached."""
    key = (path_key(path), tuple(float(t) for t in times), n, seed, n_samples)
    cached = _CACHE.get(key)
    if cached is None:
        cached = _CACHE.put(key, ReferenceSet.build(path, times, n, seed, n_samples))
    return cached
