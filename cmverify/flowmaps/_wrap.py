"""A user's network of any kind as the flow map ``X_{s→t}`` in our convention:
:func:`as_flow_map` (flowmaps floor)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from .._validation import as_float_array
from ..symbolic import interpolants
from ._calling import InvalidOutput, NetworkCaller
from ._ctm import check_ratio
from ._kinds import (
    KIND_INFO,
    WRAP_ONLY,
    as_network_times,
    check_dyadic,
    check_kind,
    first_row,
    num,
    resolve_convention,
)
from ._network import ExactNetwork
from ._tangent import eulerian_residual_jvp, supports_jvp

__all__ = ["FlowMap", "as_flow_map"]


def _refuse(kind: str, what: str, s: np.ndarray, t: np.ndarray, bad: np.ndarray) -> None:
    if np.any(bad):
        i = first_row(bad)
        raise ValueError(
            f"the {kind} kind expresses only {what}, got s = {num(s[i])}, t = {num(t[i])} (row {i})"
        )


class FlowMap:
    """A network of one kind seen as ``X_{s→t}`` in cmverify's convention (data at
    ``t = 0``, noise at ``t = 1``). Built by :func:`as_flow_map`.

    Attributes:
        model: the network (a numpy callable or a ``torch.nn.Module``).
        kind: its kind (one of :data:`~cmverify.flowmaps.KINDS`).
        convention: the convention keywords, resolved (read-only).
    """

    def __init__(self, model: Callable[..., Any], kind: str, convention: Mapping[str, Any]):
        self._caller = NetworkCaller(model, kind)
        self._kind = kind
        self._convention = MappingProxyType(dict(convention))

    @property
    def model(self) -> Callable[..., Any]:
        return self._caller.model

    @property
    def kind(self) -> str:
        return self._kind

    @property
    def convention(self) -> Mapping[str, Any]:
        return self._convention

    def __repr__(self) -> str:
        info = KIND_INFO[self._kind]
        keywords = "".join(f", {k}={v!r}" for k, v in self._convention.items())
        name = getattr(self.model, "__name__", type(self.model).__name__)
        return f"<FlowMap of the {self._kind} network {name}{keywords}: {info.to_ours}>"

    def map(self, x: object, s: object, t: object) -> np.ndarray:
        """``X_{s→t}(x)`` in our convention, shape ``(n, d)``, from one call of the network.

        ``x`` has shape ``(n, d)``; ``s`` and ``t`` are floats or arrays of shape ``(n,)``
        in ``[0, 1]``. ``ValueError`` for a pair the kind cannot express (see
        :func:`as_flow_map`), naming the first offending row; ``ValueError`` for a network
        output of the wrong shape, complex, or with NaN or inf, and for a finite output
        whose conversion to ``X`` overflows.
        """
        x = as_float_array(x, "x")
        if x.ndim != 2 or x.shape[1] == 0:
            raise ValueError(f"x must have shape (n, d) with d ≥ 1, got {x.shape}")
        n = x.shape[0]
        s, t = as_network_times(s, n, "s"), as_network_times(t, n, "t")
        self._refusals(s, t)
        with np.errstate(over="ignore", invalid="ignore"):
            out = getattr(self, f"_map_{self._kind}")(x, s, t)
        bad = ~np.all(np.isfinite(out), axis=1)
        if np.any(bad):  # the network's output was finite, the conversion overflowed
            i = first_row(bad)
            raise InvalidOutput(
                f"the {self._kind} network's output converted to X_{{s→t}} overflows float64 "
                f"in {int(bad.sum())} of {n} rows, first row {i} (s = {num(s[i])}, "
                f"t = {num(t[i])})"
            )
        return out

    def check_pairs(self, s: object, t: object) -> None:
        """``ValueError`` (as :meth:`map` raises it) for a pair ``(s, t)`` the kind cannot
        express, without calling the network; ``s`` and ``t`` floats or 1-d arrays of one
        length (the default grid of :func:`cmverify.compare.compare_flow_map` is checked
        this way before any work)."""
        s_arr = np.atleast_1d(np.asarray(s, dtype=np.float64))
        n = s_arr.shape[0]
        s_arr, t_arr = as_network_times(s_arr, n, "s"), as_network_times(t, n, "t")
        self._refusals(s_arr, t_arr)

    @property
    def jvp_available(self) -> bool:
        """Whether :meth:`eulerian_residual_jvp` applies: a ``torch.nn.Module`` of kind
        ``map``, ``meanflow``, ``ayf``, ``boffi`` or ``shortcut`` (not dyadic)."""
        return supports_jvp(self)

    def eulerian_residual_jvp(self, x: object, s: float, t: float) -> np.ndarray:
        """``∂_s X_θ(s→t)(x) + ∇X_θ(s→t)(x) v_θ(s, x)`` per row, shape ``(n, d)``, with the
        network's own velocity ``v_θ = ∂_t X_θ(s→t)|_{t=s}``, by two ``torch.func.jvp``
        (:mod:`cmverify.flowmaps._tangent`); ``ValueError`` where not
        :attr:`jvp_available`, for a pair the kind cannot express, and for a non-finite
        result."""
        x = as_float_array(x, "x")
        if x.ndim != 2 or x.shape[1] == 0:
            raise ValueError(f"x must have shape (n, d) with d ≥ 1, got {x.shape}")
        self.check_pairs([s, s], [t, s])
        return eulerian_residual_jvp(self, x, float(s), float(t))

    def _refusals(self, s: np.ndarray, t: np.ndarray) -> None:
        """The kind's refusals (see :func:`as_flow_map`)."""
        kind = self._kind
        if kind in ("consistency", "trigflow"):
            what = (
                "X_{s→0} (t = 0)"
                if kind == "consistency"
                else "X_{s→0} (t = 0; TrigFlow's f(x, τ = π s/2))"
            )
            _refuse(kind, what, s, t, t != 0)
        elif kind == "meanflow":
            _refuse(kind, "X_{s→t} with t ≤ s (MeanFlow's (r, t) = (t, s))", s, t, t > s)
        elif kind == "shortcut":
            _refuse(kind, "X_{s→t} with t ≤ s (d = s − t ≥ 0)", s, t, t > s)
            if self._convention["dyadic"]:
                check_dyadic(1.0 - s, s - t, self._convention["d_min"])
        elif kind == "ctm":
            _refuse(kind, "X_{s→t} with t ≤ s (ς' ≤ ς)", s, t, t > s)
            _refuse(kind, "X_{s→t} with s < 1 (α_s > 0: CTM's y = x/α_s)", s, t, s >= 1)

    def _call(self, *arguments: tuple[str, np.ndarray]) -> np.ndarray:
        points = next(a for _, a in arguments if a.ndim == 2)
        if points.shape[0] == 0:  # nothing to ask the network
            return np.empty(points.shape)
        return self._caller(arguments)

    # -- one conversion per kind (network → ours) ------------------------------------
    def _map_map(self, x, s, t):
        return self._call(("x", x), ("s", s), ("t", t))

    def _map_consistency(self, x, s, t):
        return self._call(("t", s), ("x", x))

    def _map_meanflow(self, x, s, t):
        if self._convention["time_inputs"] == "r,t":
            u = self._call(("z", x), ("r", t), ("t", s))
        else:
            u = self._call(("z", x), ("t", s), ("h", s - t))
        return x - (s - t)[:, None] * u

    def _map_ayf(self, x, s, t):
        return x + (t - s)[:, None] * self._call(("x", x), ("t", s), ("s", t))

    def _map_boffi(self, x, s, t):
        return self._call(("x", x), ("s", 1.0 - s), ("t", 1.0 - t))

    def _map_shortcut(self, x, s, t):
        tau, d = 1.0 - s, s - t
        if self._convention["dyadic"]:
            tau, d = check_dyadic(tau, d, self._convention["d_min"])
        return x + d[:, None] * self._call(("x", x), ("tau", tau), ("d", d))

    def _map_ctm(self, x, s, t):
        co_s = self._convention["interpolant"].at_trusted(s)
        co_t = self._convention["interpolant"].at_trusted(t)
        g = self._call(
            ("y", x / co_s.alpha[:, None]),
            ("sigma", co_s.sigma / co_s.alpha),
            ("sigma_prime", co_t.sigma / co_t.alpha),
        )
        return co_t.alpha[:, None] * g

    def _map_trigflow(self, x, s, t):
        sigma_data = self._convention["sigma_data"]
        tau = s * (np.pi / 2)
        f = self._call(("x_hat", x / sigma_data), ("tau", tau))
        return np.cos(tau)[:, None] * x - (np.sin(tau) * sigma_data)[:, None] * f


def _agree_with_exact(model: ExactNetwork, kind: str, conv: dict[str, Any]) -> None:
    """An exact network wrapped as another kind, or with another convention, is a
    mistake: say so."""
    if model.kind != kind:
        raise ValueError(f"model is the exact {model.kind} network; it was wrapped as {kind}")
    for key in ("time_inputs", "sigma_data"):
        if key in conv and conv[key] != model.convention[key]:
            raise ValueError(
                f"model is the exact {kind} network with {key}={model.convention[key]!r}; "
                f"as_flow_map got {key}={conv[key]!r}"
            )


def as_flow_map(model: Callable[..., Any], kind: str, **convention: Any) -> FlowMap:
    """A user's network of ``kind`` as an object whose ``.map(x, s, t)`` is ``X_{s→t}(x)``
    in cmverify's convention (data at ``t = 0``, noise at ``t = 1``).

    ===========  ================  ====================================  =============
    kind         network           ``.map(x, s, t)`` =                   pairs
    ===========  ================  ====================================  =============
    map          ``X(x, s, t)``    ``X(x, s, t)``                        any
    consistency  ``f(t, x)``       ``f(s, x)``                           ``t = 0``
    meanflow     ``u(z, r, t)``    ``x − (s − t) u(x, t, s)``            ``t ≤ s``
                                   (``"t,t-r"``: ``u(x, s, s − t)``)
    ayf          ``F(x, t, s)``    ``x + (t − s) F(x, s, t)``            any
    boffi        ``X^B(x, s, t)``  ``X^B(x, 1 − s, 1 − t)``              any
    shortcut     ``s(x, τ, d)``    ``x + (s − t) s(x, 1 − s, s − t)``    ``t ≤ s``
    ctm          ``G(y, ς, ς')``   ``α_t G(x/α_s, σ_s/α_s, σ_t/α_t)``    ``t ≤ s < 1``
    trigflow     ``F(x̂, τ)``       ``cos τ x − sin τ σ_d F(x/σ_d, τ)``,  ``t = 0``
                                   ``τ = π s/2``
    ===========  ================  ====================================  =============

    The papers and the derivations are in the docstrings of the exact networks
    (:func:`exact`). The ``trigflow`` map is TrigFlow's consistency function, the flow map
    of the process ``α_s x0 + σ_d σ_s ε`` of the ``trig`` interpolant with noise std
    ``σ_d``; its ground truth is ``σ_d · ReferenceFlow(trigflow_path(q, σ_d)).map(x/σ_d,
    s, 0)``, the user's own ``trig`` path's ``X_{s→0}`` only when ``σ_d = 1``.

    Arguments:
        model: a callable on numpy arrays (points ``(n, d)`` float64, times ``(n,)``
            float64), or a ``torch.nn.Module`` (fed tensors in its first floating
            parameter's dtype, times of shape ``(n,)``; ``eval()`` and ``no_grad`` during
            the call, training flags restored). Called on copies; see
            ``cmverify/flowmaps/_calling.py`` for every check of its output.
        kind: one of :data:`KINDS`.
        convention: ``time_inputs`` (meanflow: ``"r,t"``, default, or ``"t,t-r"``, the
            network fed ``(t, h = t − r)``); ``dyadic`` (shortcut, default ``False``) and
            ``d_min`` (default 1/128): with ``dyadic=True``, ``d = s − t`` must be ``2^-k``,
            ``k = 0 … log2(1/d_min)`` (to 1e-12) or 0, and ``τ = 1 − s`` a multiple of ``d``
            (to 1e-12), and the network is fed ``τ`` and ``d`` snapped to that grid;
            ``sigma_data`` (trigflow, default 0.5); ``interpolant`` (ctm: the
            interpolant, or its name, whose ``α``, ``σ`` convert our time to CTM's ``ς``;
            default the exact network's own when ``model`` is one, else required).

    ``ValueError`` for an unknown kind or keyword (listing the valid ones), for an exact
    network wrapped as another kind or with another ``time_inputs``/``sigma_data``, and,
    from ``.map``, for a pair the kind cannot express.
    """
    kind = check_kind(kind)
    conv = resolve_convention(kind, convention, WRAP_ONLY.get(kind, {}))
    if isinstance(model, ExactNetwork):
        _agree_with_exact(model, kind, conv)
    if kind == "ctm":
        if conv["interpolant"] is None:
            if not isinstance(model, ExactNetwork):
                raise ValueError(
                    "the ctm kind needs interpolant= (an Interpolant or its name, e.g. "
                    f"'linear'): the α_t, σ_t that convert our time to CTM's ς = σ/α "
                    f"(choices: {', '.join(interpolants.names())})"
                )
            conv["interpolant"] = model.path.interpolant
        check_ratio(conv["interpolant"])
    return FlowMap(model, kind, conv)
