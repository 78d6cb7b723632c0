"""The exact network of each kind, and :func:`exact` that builds them (flowmaps floor).

Every exact network is computed from one :class:`~cmverify.reference.ReferenceFlow`:
``flow.map(x, s, t) = X_{s→t}(x)`` and ``flow.average_velocity(x, s, t) =
(X_{s→t}(x) − x)/(t − s)``, integrated directly (no cancellation; ``v(s, x)`` at
``t = s``). The classes of the CTM and TrigFlow kinds live in ``_ctm`` and ``_trigflow``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..exact import VelocityField
from ..reference import ReferenceFlow
from ._ctm import CTMNetwork
from ._kinds import (
    EXACT_ONLY,
    as_network_times,
    check_kind,
    first_row,
    num,
    resolve_convention,
)
from ._network import ExactNetwork
from ._trigflow import TrigFlowNetwork, trigflow_path

__all__ = ["exact"]

#: Rounding allowed where a sum of times must stay in [0, 1] (τ + d ≤ 1, h ≤ t).
ROUNDING = 4 * np.finfo(float).eps


class MapNetwork(ExactNetwork):
    """Exact flow map ``X(x, s, t) = X_{s→t}(x)`` (cmverify's own kind): ``x`` at time
    ``s`` carried to time ``t`` along ``dx/dτ = v(τ, x)``, either direction. Both
    directions of the conversion are the identity."""

    kind = "map"

    def __call__(self, x: object, s: object, t: object) -> np.ndarray:
        x = self._points(x, "x")
        n = x.shape[0]
        return self.flow.map(x, as_network_times(s, n, "s"), as_network_times(t, n, "t"))


class ConsistencyNetwork(ExactNetwork):
    """Exact consistency function ``f(t, x) = X_{t→0}(x)`` (Song et al. 2023, consistency
    models): the start, at the data end ``t = 0``, of the trajectory through ``x`` at
    time ``t``. Network → ours: ``X_{s→0}(x) = f(s, x)`` (only pairs with target 0)."""

    kind = "consistency"

    def __call__(self, t: object, x: object) -> np.ndarray:
        x = self._points(x, "x")
        return self.flow.map(x, as_network_times(t, x.shape[0], "t"), 0.0)


class MeanFlowNetwork(ExactNetwork):
    """Exact MeanFlow average velocity ``u(z, r, t)``, ``0 ≤ r ≤ t ≤ 1`` (Geng et al. 2025,
    MeanFlow; their path ``z_t = (1 − t) x + t ε`` is our ``linear`` one; on another path
    ``u`` is the same formula of that path's flow).

    - exact: ``u(z, r, t) = (z − X_{t→r}(z)) / (t − r)``, the average velocity over
      ``[r, t]`` of the trajectory through ``z`` at ``t``, computed without cancellation
      (``flow.average_velocity(z, t, r)``); ``u(z, t, t) = v(t, z)``;
    - network → ours: ``X_{t→r}(z) = z − (t − r) u(z, r, t)``; ``X_{s→t}`` for ``t ≤ s``
      is ``x − (s − t) u(x, t, s)`` (MeanFlow's ``(r, t) = (t, s)``).

    With ``time_inputs="t,t-r"`` the network is fed ``(t, h = t − r)`` instead: see
    :class:`MeanFlowTHNetwork`.
    """

    kind = "meanflow"

    def __call__(self, z: object, r: object, t: object) -> np.ndarray:
        z = self._points(z, "z")
        n = z.shape[0]
        r, t = as_network_times(r, n, "r"), as_network_times(t, n, "t")
        bad = r > t
        if np.any(bad):
            i = first_row(bad)
            raise ValueError(
                f"meanflow needs r ≤ t, got r = {num(r[i])}, t = {num(t[i])} (row {i})"
            )
        return self.flow.average_velocity(z, t, r)


class MeanFlowTHNetwork(ExactNetwork):
    """Exact MeanFlow average velocity fed ``(t, h)``, ``h = t − r ∈ [0, t]``
    (``time_inputs="t,t-r"``; Geng et al. 2025, MeanFlow): ``u(z, t, h)`` is
    :class:`MeanFlowNetwork`'s ``u(z, r = t − h, t) = (z − X_{t→t−h}(z)) / h``
    (``v(t, z)`` at ``h = 0``). Network → ours: ``X_{s→t}(x) = x − (s − t) u(x, s, s − t)``
    for ``t ≤ s``."""

    kind = "meanflow"

    def __call__(self, z: object, t: object, h: object) -> np.ndarray:
        z = self._points(z, "z")
        n = z.shape[0]
        t, h = as_network_times(t, n, "t"), as_network_times(h, n, "h")
        bad = h > t + ROUNDING
        if np.any(bad):
            i = first_row(bad)
            raise ValueError(
                f"meanflow needs h = t − r ≤ t, got t = {num(t[i])}, h = {num(h[i])} (row {i})"
            )
        return self.flow.average_velocity(z, t, np.maximum(t - h, 0.0))


class AYFNetwork(ExactNetwork):
    """Exact Align-Your-Flow network ``F(x, t, s)`` (Sabour et al. 2025), any ``s, t`` in
    ``[0, 1]``: MeanFlow's ``u`` with the times in the other order and no ordering.

    - exact: ``F(x, t, s) = (X_{t→s}(x) − x) / (s − t)`` without cancellation
      (``flow.average_velocity(x, t, s)``); ``F(x, t, t) = v(t, x)``;
    - network → ours: ``X_{t→s}(x) = x + (s − t) F(x, t, s)``, i.e.
      ``X_{s→t}(x) = x + (t − s) F(x, s, t)``.
    """

    kind = "ayf"

    def __call__(self, x: object, t: object, s: object) -> np.ndarray:
        x = self._points(x, "x")
        n = x.shape[0]
        return self.flow.average_velocity(
            x, as_network_times(t, n, "t"), as_network_times(s, n, "s")
        )


class BoffiNetwork(ExactNetwork):
    """Exact flow map of Boffi, Albergo & Vanden-Eijnden 2024 (flow map matching),
    ``X^B(x, s, t)``, any ``s, t`` in ``[0, 1]``, whose time runs noise (0) → data (1).

    - exact: ``X^B(x, s, t) = X_{(1−s)→(1−t)}(x)``;
    - network → ours: ``X_{s→t}(x) = X^B(x, 1 − s, 1 − t)``.

    (Their ``X^B_{s,t}(x) = x + (t − s) v^B_{s,t}(x)`` defines their average velocity
    ``v^B``; ``v^B_{s,t} = −`` our average velocity over ``1 − s → 1 − t``.)
    """

    kind = "boffi"

    def __call__(self, x: object, s: object, t: object) -> np.ndarray:
        x = self._points(x, "x")
        n = x.shape[0]
        s, t = as_network_times(s, n, "s"), as_network_times(t, n, "t")
        return self.flow.map(x, 1.0 - s, 1.0 - t)


class ShortcutNetwork(ExactNetwork):
    """Exact shortcut network ``s(x, τ, d)`` (Frans et al. 2024, shortcut models), with
    ``τ = 1 − t`` (τ = 0 is noise), step ``d ≥ 0`` and ``τ + d ≤ 1``.

    - exact: ``s(x, τ, d) = −ū(x; 1 − τ → 1 − τ − d)``, minus our average velocity
      (without cancellation), so that one step of size ``d`` lands exactly;
      ``s(x, τ, 0) = −v(1 − τ, x)``;
    - network → ours: ``X_{t→t−d}(x) = x + d · s(x, 1 − t, d)``; ``X_{s→t}`` for
      ``t ≤ s`` is ``x + (s − t) · s(x, 1 − s, s − t)``.

    The exact network accepts any real ``d ≥ 0``; the dyadic grid of the paper
    (``d = 2^-k``, τ a multiple of ``d``) is checked by :func:`as_flow_map` with
    ``dyadic=True``.

    The released code's path is ``τ x0 + (1 − (1 − ε) τ) x1``, ``ε = 10⁻⁵``: not
    ``linear``, and with ``σ = ε ≠ 0`` at the data end, which ``Interpolant.from_sympy``
    refuses as it stands. In our time ``t = 1 − τ`` its marginals, hence its velocity,
    are those of ``α = 1 − t``, ``σ = √(t² + 2ε t (1 − t))`` on the data convolved with
    ``N(0, ε² I)`` (each covariance plus ``ε² I``): per component the covariance
    ``α² Σ + σ_released² I`` is the same, and the velocity ``α̇ μ + ½ Ċ C⁻¹ (x − α μ)``
    depends on nothing else. ``from_sympy`` accepts that interpolant (``σ̇`` is infinite
    at ``t = 0``, ``σ σ̇`` finite); tests/test_flowmaps.py checks the velocities agree.
    """

    kind = "shortcut"

    def __call__(self, x: object, tau: object, d: object) -> np.ndarray:
        x = self._points(x, "x")
        n = x.shape[0]
        tau, d = as_network_times(tau, n, "tau"), as_network_times(d, n, "d")
        end = 1.0 - tau - d
        bad = end < -ROUNDING
        if np.any(bad):
            i = first_row(bad)
            raise ValueError(
                f"shortcut needs τ + d ≤ 1 (the step from t = 1 − τ to 1 − τ − d ≥ 0), got "
                f"τ = {num(tau[i])}, d = {num(d[i])} (row {i})"
            )
        return -self.flow.average_velocity(x, 1.0 - tau, np.maximum(end, 0.0))


_SIMPLE = {
    "map": MapNetwork,
    "consistency": ConsistencyNetwork,
    "ayf": AYFNetwork,
    "boffi": BoffiNetwork,
    "shortcut": ShortcutNetwork,
}


def exact(path: VelocityField, kind: str, **convention: Any) -> ExactNetwork:
    """The exact network of ``kind`` on ``path``: what a perfectly trained network of that
    method computes, as a numpy callable with the method's own signature.

    ============  ==========================  ==================================================
    kind          signature                   exact value (our ``X_{s→t}``, ``ū`` = average
                                              velocity ``(X_{s→t}(x) − x)/(t − s)``)
    ============  ==========================  ==================================================
    map           ``X(x, s, t)``              ``X_{s→t}(x)``
    consistency   ``f(t, x)``                 ``X_{t→0}(x)``
    meanflow      ``u(z, r, t)``, ``r ≤ t``   ``ū(z; t → r)`` (``time_inputs="t,t-r"``:
                                              ``u(z, t, h)``, ``r = t − h``)
    ayf           ``F(x, t, s)``              ``ū(x; t → s)``
    boffi         ``X^B(x, s, t)``            ``X_{(1−s)→(1−t)}(x)``
    shortcut      ``s(x, τ, d)``              ``−ū(x; 1 − τ → 1 − τ − d)``
    ctm           ``G(y, ς, ς')``             ``X_{t→s}(α_t y) / α_s``, ``σ/α = ς, ς'`` at
                                              ``t, s``
    trigflow      ``F(x̂, τ)``                 ``(cos τ x̂ − X̂_{t→0}(x̂)) / sin τ`` on
                                              :func:`trigflow_path`, ``t = 2τ/π``
    ============  ==========================  ==================================================

    Each network's class docstring gives the paper, the formula and both directions of
    the conversion. Points have shape ``(n, d)``; times are floats or arrays of shape
    ``(n,)``, validated (finite, in the kind's range); the result is float64 ``(n, d)``.

    Arguments:
        path: a :class:`~cmverify.exact.MixturePath` (``ctm`` and ``trigflow`` need one;
            the other kinds accept any :class:`~cmverify.exact.VelocityField`).
        kind: one of :data:`KINDS`.
        convention: the kind's keywords (:data:`CONVENTIONS`): ``time_inputs`` for
            ``meanflow`` (``"r,t"`` or ``"t,t-r"``), ``dyadic`` and ``d_min`` for
            ``shortcut`` (recorded only: exact networks accept any real ``d ≥ 0``),
            ``sigma_data`` for ``trigflow`` (default 0.5); and ``rtol`` (default 1e-10) for
            the :class:`~cmverify.reference.ReferenceFlow`.

    ``ValueError`` for an unknown kind or keyword (listing the valid ones) and, for
    ``trigflow``, a path whose interpolant is not ``trig``; for ``ctm``, one whose
    ``σ/α`` is not increasing.
    """
    kind = check_kind(kind)
    conv = resolve_convention(kind, convention, EXACT_ONLY)
    rtol = conv["rtol"]
    if kind == "trigflow":
        scaled = trigflow_path(path, conv["sigma_data"])
        return TrigFlowNetwork(path, conv, ReferenceFlow(scaled, rtol=rtol))
    if kind == "ctm":
        return CTMNetwork(path, conv, ReferenceFlow(path, rtol=rtol))
    if kind == "meanflow":
        cls = MeanFlowNetwork if conv["time_inputs"] == "r,t" else MeanFlowTHNetwork
        return cls(path, conv, ReferenceFlow(path, rtol=rtol))
    return _SIMPLE[kind](path, conv, ReferenceFlow(path, rtol=rtol))
