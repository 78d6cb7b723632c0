"""The CTM kind: the VE change of variables ``ς = σ_t/α_t`` and its inverse, and the
exact CTM network (flowmaps floor).

Kim et al. 2023 (consistency trajectory models) work on the variance-exploding path
``y = x0 + ς ε``, data at ``ς = 0``. Our path is that path rescaled:
``x_t = α_t x0 + σ_t x1 = α_t (x0 + ς x1)`` with ``ς = σ_t/α_t``, so ``y = x_t/α_t``
at ``ς = σ_t/α_t``. The probability-flow ODE commutes with the change of variables
(``dy/dt = (v − (α̇/α) x)/α = (dς/dt) E[x1 | x_t]``, the VE velocity ``(y − D)/ς`` times
``dς/dt``), so CTM's ``G(y, ς, ς')`` — the VE flow map from ``ς`` to ``ς'`` — is the same
function for every interpolant (whose ``σ/α`` is increasing on ``[0, 1)``).
"""

from __future__ import annotations

import functools

import numpy as np

from ..symbolic import Interpolant
from ._kinds import as_network_times, first_row, num
from ._network import ExactNetwork

__all__ = ["CTMNetwork", "check_ratio", "max_ratio", "ratio_time"]

#: Grid on which ``σ/α`` is checked to be strictly increasing.
GRID = 4096
_ONE = np.array(1.0).view(np.int64)


def _ratio(interpolant: Interpolant, t: np.ndarray) -> np.ndarray:
    """``σ_t / α_t`` at times ``t`` in ``[0, 1)`` (validated by the caller)."""
    co = interpolant.at_trusted(t)
    return co.sigma / co.alpha


@functools.lru_cache(maxsize=16)
def check_ratio(interpolant: Interpolant) -> Interpolant:
    """``interpolant`` if ``α > 0`` and ``σ/α`` is strictly increasing on a grid of
    ``[0, 1)`` (:data:`GRID` points, and ``1 − 2^-k`` towards 1); ``ValueError`` otherwise:
    CTM's ``ς = σ/α`` is then not a time variable of the path."""
    t = np.unique(
        np.concatenate([np.linspace(0.0, 1.0, GRID + 1)[:-1], 1.0 - 0.5 ** np.arange(13, 50)])
    )
    alpha = interpolant.at_trusted(t).alpha
    if not np.all(alpha > 0):
        i = first_row(~(alpha > 0))
        raise ValueError(
            f"the ctm kind needs α_t > 0 on [0, 1); interpolant {interpolant.name!r} has "
            f"α = {num(alpha[i])} at t = {num(t[i])}"
        )
    with np.errstate(divide="ignore", over="ignore"):
        ratio = _ratio(interpolant, t)
    bad = ~(np.diff(ratio) > 0)
    if np.any(bad):
        i = first_row(bad)
        raise ValueError(
            f"the ctm kind needs σ_t/α_t (CTM's ς) strictly increasing on [0, 1); "
            f"interpolant {interpolant.name!r} has it not increasing between t = {t[i]:.6g} "
            f"and {t[i + 1]:.6g}"
        )
    return interpolant


@functools.lru_cache(maxsize=16)
def max_ratio(interpolant: Interpolant) -> float:
    """``σ/α`` at the last float64 time below 1: the largest ``ς`` with a time ``t < 1``
    (about 9e15 for ``linear``); :class:`CTMNetwork` refuses a larger one."""
    with np.errstate(divide="ignore", over="ignore"):
        return float(_ratio(interpolant, np.array([np.nextafter(1.0, 0.0)]))[0])


def ratio_time(interpolant: Interpolant, varsigma: np.ndarray) -> np.ndarray:
    """The times ``t ∈ [0, 1)`` with ``σ_t/α_t = ς`` for each ``ς ≥ 0`` (shape ``(n,)``).

    Bisection on the float64 bit patterns of ``[0, 1)`` (ordered like the numbers), 64
    halvings at most: the result is the float whose ratio is nearest ``ς`` among the two
    neighbours bracketing it, i.e. full float64 precision. ``ς`` beyond the ratio at the
    last float below 1 gives that float. ``interpolant`` must pass :func:`check_ratio`.
    """
    varsigma = np.asarray(varsigma, dtype=np.float64)
    lo = np.zeros(varsigma.shape, dtype=np.int64)  # ratio(lo) ≤ ς, ratio(0) = 0
    hi = np.full(varsigma.shape, _ONE, dtype=np.int64)  # ratio(hi) > ς (ratio(1) = ∞)
    with np.errstate(divide="ignore", over="ignore"):
        for _ in range(64):
            active = hi - lo > 1
            if not np.any(active):
                break
            mid = lo + (hi - lo) // 2
            below = _ratio(interpolant, mid.view(np.float64)) <= varsigma
            lo = np.where(active & below, mid, lo)
            hi = np.where(active & ~below, mid, hi)
        t_lo, t_hi = lo.view(np.float64), hi.view(np.float64)
        inside = hi < _ONE
        r_lo = _ratio(interpolant, t_lo)
        r_hi = _ratio(interpolant, np.where(inside, t_hi, 0.0))
    nearer_hi = inside & (np.abs(r_hi - varsigma) < np.abs(varsigma - r_lo))
    return np.where(nearer_hi, t_hi, t_lo)


class CTMNetwork(ExactNetwork):
    """Exact CTM network ``G(y, ς, ς')`` (Kim et al. 2023, consistency trajectory models):
    the VE flow map from noise level ``ς`` to ``ς' ≤ ς`` on ``y = x0 + ς ε`` (data at
    ``ς = 0``); ``ς, ς' ≥ 0`` finite.

    - exact: ``G(y, ς, ς') = X_{t→s}(α_t y) / α_s``, with ``t, s ∈ [0, 1)`` the times at
      which ``σ/α = ς, ς'`` (inverted by bisection to the nearest float64); the same
      function for every interpolant (see the module docstring); ``G(y, ς, ς) = y``,
      ``G(y, ς, 0)`` is the VE consistency function. A float time's ``ς(t)`` differs from
      the asked ``ς`` by up to half the spacing of ``σ/α`` between neighbouring floats,
      about ``ς² · 1e-16`` near ``t = 1``: taken as it is, that moved ``G`` by 5e-10
      (relative) at ``ς = 1e7`` and by 3 at ``ς = 1e17`` (linear, one Gaussian, against
      the closed form ``μ + √((c² + ς'²)/(c² + ς²)) (y − μ)``). So ``y`` is first moved
      along the VE flow from ``ς`` to ``ς(t)``, and the result from ``ς(s)`` to ``ς'``,
      each by one step with the denoiser ``D`` frozen (``y − D`` scaled by the ratio of
      the ``ς``'s; ``y − D = ς dy/dς`` from the path's velocity): measured within 1e-14 of
      that closed form for ``ς`` up to 1e15 on the five named interpolants. ``ς`` beyond
      ``σ/α`` at the last float below 1 (:func:`max_ratio`, 9e15 for ``linear``) is a
      ``ValueError``: no float time carries it;
    - network → ours: ``X_{t→s}(x) = α_s G(x/α_t, σ_t/α_t, σ_s/α_s)`` for ``s ≤ t < 1``
      (``α_t > 0``), i.e. ``X_{s→t}(x) = α_t G(x/α_s, σ_s/α_s, σ_t/α_t)`` for
      ``t ≤ s < 1``.

    CTM's own parameterization ``G = (ς'/ς) y + (1 − ς'/ς) g(y, ς, ς')`` (``g`` the
    network output, ``g(y, ς, ς) = D``) is the user's to unwrap; this is ``G`` itself.
    ``ValueError`` at construction if ``σ/α`` is not strictly increasing on ``[0, 1)``.
    """

    kind = "ctm"

    def __init__(self, path, convention, flow) -> None:
        interpolant = getattr(path, "interpolant", None)
        if not isinstance(interpolant, Interpolant):
            raise TypeError(
                f"the ctm kind needs a MixturePath (with an interpolant), got {type(path).__name__}"
            )
        self._interpolant = check_ratio(interpolant)
        super().__init__(path, convention, flow)

    def __call__(self, y: object, sigma: object, sigma_prime: object) -> np.ndarray:
        y = self._points(y, "y")
        n = y.shape[0]
        big = as_network_times(sigma, n, "sigma (ς)", 0.0, np.inf)
        small = as_network_times(sigma_prime, n, "sigma_prime (ς')", 0.0, np.inf)
        bad = small > big
        if np.any(bad):
            i = first_row(bad)
            raise ValueError(
                f"ctm needs ς' ≤ ς (towards the data), got ς = {num(big[i])}, ς' = {num(small[i])} "
                f"(row {i})"
            )
        top = max_ratio(self._interpolant)
        bad = big > top
        if np.any(bad):
            i = first_row(bad)
            raise ValueError(
                f"ctm needs ς ≤ {top:.4g} on the {self._interpolant.name!r} interpolant (σ/α at "
                f"the last float64 time below 1; a larger ς has no time t), got ς = "
                f"{num(big[i])} (row {i})"
            )
        t = ratio_time(self._interpolant, big)
        s = ratio_time(self._interpolant, small)
        co_t, co_s = self._interpolant.at_trusted(t), self._interpolant.at_trusted(s)
        # the float times' ς(t), ς(s) are not the asked ς, ς': move y from ς to ς(t)
        # first, and the result from ς(s) to ς', along the VE flow (class docstring)
        r_t, r_s = _ratio(self._interpolant, t), _ratio(self._interpolant, s)
        with np.errstate(divide="ignore", invalid="ignore"):
            start = y + self._ve_step(t, y, co_t, r_t, (r_t - big) / big)
        g = self.flow.map(co_t.alpha[:, None] * start, t, s) / co_s.alpha[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            g = g + self._ve_step(s, g, co_s, r_s, (small - r_s) / r_s)
        same = (big == small)[:, None]  # G(y, ς, ς) = y exactly, not α_t y / α_t
        return np.where(same, y, g)

    def _ve_step(
        self, t: np.ndarray, y: np.ndarray, co, varsigma: np.ndarray, ratio: np.ndarray
    ) -> np.ndarray:
        """``ratio · (y − D)``: the move of the VE state ``y`` from ``ς`` to ``ς (1 + ratio)``
        with the denoiser ``D`` frozen — exact where ``D`` is constant along the move, as
        ``y = D + ς ε`` then scales about ``D`` — with ``y − D = ς dy/dς`` at ``(y, ς(t))``
        from the path's velocity: ``dy/dς = α (v(t, α y) − α̇ y) / (σ̇ α − σ α̇)`` (``y =
        x/α``, ``ς = σ/α``). Zero rows where ``ratio`` is 0 or not finite (``ς = 0``)."""
        out = np.zeros_like(y)
        rows = np.flatnonzero((ratio != 0.0) & np.isfinite(ratio))
        if rows.size == 0:
            return out
        alpha, dalpha = co.alpha[rows, None], co.dalpha[rows, None]
        rate = co.dsigma[rows] * co.alpha[rows] - co.sigma[rows] * co.dalpha[rows]
        v = np.asarray(self.path.velocity(t[rows], alpha * y[rows]), dtype=np.float64)
        scale = ratio[rows] * varsigma[rows] / rate
        out[rows] = scale[:, None] * alpha * (v - dalpha * y[rows])
        return out
