"""The :class:`Interpolant` ``x_t = α_t x0 + σ_t x1``: SymPy expressions plus the numeric
functions generated from them (symbolic layer)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import sympy as sp

from .._validation import as_times
from ._expressions import (
    InterpolantExpressions,
    derive_interpolant,
    numeric_function,
    positive_inside,
    stacked_numeric_function,
    torch_function,
)

__all__ = ["Coefficients", "Interpolant"]

#: Number of interior grid points on which a custom interpolant is checked numerically.
_GRID_POINTS = 1001
#: Grid points of the numeric positivity check of ``α`` and ``σ`` on ``(0, 1)`` (used
#: where SymPy cannot decide it).
_POSITIVITY_GRID_POINTS = 100_001
#: Interior times at which ``α`` and ``σ`` are evaluated (to :data:`_FINGERPRINT_DIGITS`
#: digits, rounded to :data:`_FINGERPRINT_ROUNDING`) for the hash (see
#: :meth:`Interpolant.__hash__`).
_FINGERPRINT_TIMES = (sp.Rational(1, 7), sp.Rational(2, 5), sp.Rational(5, 6))
_FINGERPRINT_DIGITS = 30
_FINGERPRINT_ROUNDING = "{:.12e}"


class Interpolant:
    """Interpolation coefficients ``α_t``, ``σ_t`` on ``t ∈ [0, 1]`` (data at 0, noise at 1).

    Build one with :meth:`linear`, :meth:`trig` or :meth:`from_sympy`. The SymPy
    expressions (``.expressions``) are the single source: every numeric method below
    is generated from them by :func:`cmverify.symbolic.numeric_function`.

    Numeric methods take ``t`` as a float or an array with values in ``[0, 1]`` and
    return float64 arrays of the same shape:

    - ``alpha``, ``sigma``: ``α_t``, ``σ_t``;
    - ``dalpha``, ``dsigma``: ``α̇_t``, ``σ̇_t`` (may be infinite at an endpoint, e.g.
      ``σ = sqrt(1 − (1 − t)²)`` at ``t = 0``);
    - ``ddalpha``, ``ddsigma``: ``α̈_t``, ``σ̈_t``;
    - ``alpha_dalpha``, ``sigma_dsigma``: ``α α̇`` and ``σ σ̇``, simplified symbolically
      and finite on all of ``[0, 1]`` (checked when the interpolant is built);
    - ``d_alpha_dalpha``, ``d_sigma_dsigma``: their time derivatives ``½ d²(α²)/dt²``,
      ``½ d²(σ²)/dt²``.

    :meth:`at` validates ``t`` once and gives all of them (a :class:`Coefficients`);
    :meth:`at_trusted` is the same for times validated by the caller.
    Named interpolants: :mod:`cmverify.interpolants`. Equality is symbolic and the hash
    agrees with it (see :meth:`__hash__`).

    ``α``, ``σ``, ``α̇``, ``α α̇`` and ``σ σ̇`` must be finite on the closed interval
    (then every velocity is finite there), ``σ̇``, ``α̈``, ``σ̈`` on the open one, and
    ``α² + σ² > 0``; :meth:`from_sympy` checks this on a grid of 1001 points.

    ``α > 0`` and ``σ > 0`` inside ``(0, 1)`` (every derivation assumes it: ``x_t``
    then carries both data and noise): proven symbolically
    (:func:`cmverify.symbolic.positive_inside`, ``solveset`` of ``α ≤ 0`` on
    ``(0, 1)``) where SymPy can decide it, else checked numerically on a grid of
    100,001 points (which cannot see a dip narrower than ``1e-5``). A violation
    raises ``ValueError`` naming the coefficient and a time where it fails.
    """

    def __init__(self, expressions: InterpolantExpressions, name: str) -> None:
        if not isinstance(expressions, InterpolantExpressions):
            raise TypeError(
                "expressions must be an InterpolantExpressions; use Interpolant.from_sympy, "
                ".linear() or .trig()"
            )
        self._expressions = expressions
        self._name = str(name)
        self._numeric = {
            key: numeric_function(expr, expressions.t) for key, expr in expressions.items()
        }
        self._stacked: dict[tuple[str, ...], Callable[[np.ndarray], np.ndarray]] = {}
        self._check_numerically()

    # -- constructors -----------------------------------------------------------------
    @classmethod
    def from_sympy(
        cls, alpha: object, sigma: object, t: sp.Symbol, name: str | None = None
    ) -> Interpolant:
        """An interpolant from SymPy expressions ``alpha(t)`` and ``sigma(t)``.

        The boundary conditions ``α_0 = σ_1 = 1`` and ``α_1 = σ_0 = 0`` are proven
        symbolically; a violated (or undecidable) condition raises ``ValueError``
        naming it. The coefficients must also be finite on ``[0, 1]``, with
        ``α_t² + σ_t² > 0`` and finite ``α α̇``, ``σ σ̇`` (checked on a grid of
        1001 points) and ``α̇`` must be finite on ``[0, 1]`` (the velocity contains
        ``α̇ E[x0 | x_t]``); ``σ̇`` may be infinite at an endpoint.
        """
        expressions = derive_interpolant(alpha, sigma, t)
        label = (
            name if name is not None else f"alpha={expressions.alpha}, sigma={expressions.sigma}"
        )
        return cls(expressions, label)

    @classmethod
    @functools.cache
    def linear(cls) -> Interpolant:
        """``α_t = 1 − t``, ``σ_t = t`` (the seed's interpolant; velocity ``E[x1 − x0 | x_t]``)."""
        t = sp.Symbol("t", real=True)
        return cls.from_sympy(1 - t, t, t, name="linear")

    @classmethod
    @functools.cache
    def trig(cls) -> Interpolant:
        """``α_t = cos(πt/2)``, ``σ_t = sin(πt/2)`` (variance preserving: ``α² + σ² = 1``)."""
        t = sp.Symbol("t", real=True)
        return cls.from_sympy(sp.cos(sp.pi * t / 2), sp.sin(sp.pi * t / 2), t, name="trig")

    # -- symbolic side ----------------------------------------------------------------
    @property
    def expressions(self) -> InterpolantExpressions:
        """The SymPy expressions every numeric method is generated from."""
        return self._expressions

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        e = self._expressions
        return f"Interpolant({self._name!r}: alpha={e.alpha}, sigma={e.sigma})"

    def __eq__(self, other: object) -> bool:
        """Symbolic equality: ``α`` and ``σ`` agree after renaming ``other``'s time symbol
        (``simplify(α − α') == 0`` and the same for ``σ``).

        Interpolants whose fingerprints (see :meth:`__hash__`) differ are unequal without
        running ``simplify``; so ``a == b`` implies ``hash(a) == hash(b)`` by construction.
        """
        if not isinstance(other, Interpolant):
            return NotImplemented
        if self is other:
            return True
        if self._fingerprint != other._fingerprint:
            return False
        a, b = self._expressions, other._expressions
        sub = {b.t: a.t}
        return (
            sp.simplify(a.alpha - b.alpha.subs(sub)) == 0
            and sp.simplify(a.sigma - b.sigma.subs(sub)) == 0
        )

    def __hash__(self) -> int:
        """Hash of the fingerprint: ``α`` and ``σ`` at the fixed times ``t = 1/7, 2/5, 5/6``,
        evaluated by SymPy to 30 digits and rounded to 13 significant ones.

        It depends on the functions only, not on how they are written nor on the name or
        assumptions of the time symbol: ``from_sympy(1 - s, s, s)`` hashes like
        :meth:`linear`. (Two ways of writing one function give values that agree to about
        28 digits; they could round apart only if a value lay within ``1e-28`` of a
        rounding boundary.) :meth:`__eq__` compares fingerprints first, so equal
        interpolants always hash alike.
        """
        return hash(self._fingerprint)

    @functools.cached_property
    def _fingerprint(self) -> tuple[str, ...]:
        e = self._expressions
        return tuple(  # real part: evalf may leave a spurious tiny imaginary part
            _FINGERPRINT_ROUNDING.format(
                complex(sp.N(expr.subs(e.t, at), _FINGERPRINT_DIGITS)).real
            )
            for expr in (e.alpha, e.sigma)
            for at in _FINGERPRINT_TIMES
        )

    # -- numeric side -----------------------------------------------------------------
    def _eval(self, key: str, t: np.ndarray) -> np.ndarray:
        """Evaluate coefficient ``key`` at already validated times (no checks)."""
        return self._numeric[key](t)

    def _numeric_stack(
        self, keys: tuple[str, ...], *, torch: bool = False
    ) -> Callable[[np.ndarray], np.ndarray]:
        """One generated function of validated times ``t`` that returns the coefficients
        named by ``keys`` (names of :class:`Coefficients`), stacked: shape
        ``(len(keys), *t.shape)`` (with ``torch=True``: a tuple of tensors shaped like a
        tensor ``t``, :func:`torch_function`). Generated once per tuple of names and kept;
        for trusted hot loops (the exact path on every Runge–Kutta stage), where five
        separate coefficient evaluations cost more than the mixture formulas on a small
        batch."""
        found = self._stacked.get((torch, *keys))
        if found is None:
            unknown = [k for k in keys if k not in self._numeric]
            if unknown:
                raise KeyError(f"unknown coefficients {unknown}; known: {sorted(self._numeric)}")
            e = self._expressions
            build = torch_function if torch else stacked_numeric_function
            found = build([getattr(e, k) for k in keys], e.t)
            self._stacked[(torch, *keys)] = found
        return found

    def torch_coefficients(self, keys: tuple[str, ...]) -> Callable[..., tuple]:
        """The coefficients named by ``keys`` as one torch function of a tensor ``t``: the
        same SymPy expressions as the numpy ones, lambdified to torch (for
        :meth:`MixturePath.to_torch`)."""
        return self._numeric_stack(keys, torch=True)

    def _public(self, key: str, t: object) -> np.ndarray:
        return self._eval(key, as_times(t))

    def at(self, t: object) -> Coefficients:
        """All coefficients at the times ``t`` (a float or an array with values in
        ``[0, 1]``), validated once: a :class:`Coefficients` whose attributes ``alpha``,
        ``sigma``, ``dalpha``, … are float64 arrays shaped like ``t``, each computed on
        first access. ``ValueError``/``TypeError`` naming ``t`` for times outside
        ``[0, 1]``, NaN or inf, or non-numeric input."""
        return Coefficients(t, self)

    def at_trusted(self, t: np.ndarray) -> Coefficients:
        """:meth:`at` for times the caller has already validated — a float64 array of shape
        ``()`` or ``(n,)`` with values in ``[0, 1]``, e.g. from ``as_times`` — without
        checking or copying them (the caller must not modify ``t`` afterwards). For the
        trusted internals of the floors above (the exact path's evaluation on every
        Runge–Kutta stage): outside ``[0, 1]`` or with NaN it returns what the generated
        numerics give, without an error."""
        return Coefficients._from_validated(t, self)

    def alpha(self, t: object) -> np.ndarray:
        """``α_t``."""
        return self._public("alpha", t)

    def sigma(self, t: object) -> np.ndarray:
        """``σ_t``."""
        return self._public("sigma", t)

    def dalpha(self, t: object) -> np.ndarray:
        """``α̇_t = dα/dt``."""
        return self._public("dalpha", t)

    def dsigma(self, t: object) -> np.ndarray:
        """``σ̇_t = dσ/dt``."""
        return self._public("dsigma", t)

    def ddalpha(self, t: object) -> np.ndarray:
        """``α̈_t``."""
        return self._public("ddalpha", t)

    def ddsigma(self, t: object) -> np.ndarray:
        """``σ̈_t``."""
        return self._public("ddsigma", t)

    def alpha_dalpha(self, t: object) -> np.ndarray:
        """``α_t α̇_t`` (simplified symbolically, finite on ``[0, 1]``)."""
        return self._public("alpha_dalpha", t)

    def sigma_dsigma(self, t: object) -> np.ndarray:
        """``σ_t σ̇_t`` (simplified symbolically, finite on ``[0, 1]``)."""
        return self._public("sigma_dsigma", t)

    def d_alpha_dalpha(self, t: object) -> np.ndarray:
        """``d(α α̇)/dt = α̇² + α α̈ = ½ d²(α²)/dt²`` (simplified symbolically)."""
        return self._public("d_alpha_dalpha", t)

    def d_sigma_dsigma(self, t: object) -> np.ndarray:
        """``d(σ σ̇)/dt = σ̇² + σ σ̈ = ½ d²(σ²)/dt²`` (simplified symbolically)."""
        return self._public("d_sigma_dsigma", t)

    def wronskian(self, t: object) -> np.ndarray:
        """``W_t = α_t σ̇_t − α̇_t σ_t`` (simplified symbolically; 1 for linear, π/2 for
        trig): the flow-matching target given ``x_t`` is ``(σ̇/σ) x_t − (W/σ) x0``."""
        return self._public("wronskian", t)

    def _check_numerically(self) -> None:
        grid = np.linspace(0.0, 1.0, _GRID_POINTS)
        for key in ("alpha", "sigma", "dalpha", "alpha_dalpha", "sigma_dsigma"):
            values = self._eval(key, grid)
            if not np.all(np.isfinite(values)):
                where = float(grid[~np.isfinite(values)][0])
                raise ValueError(
                    f"interpolant coefficient {key} = {getattr(self._expressions, key)} "
                    f"is not finite at t = {where}"
                )
        interior = grid[1:-1]
        for key in ("dsigma", "ddalpha", "ddsigma", "d_alpha_dalpha", "d_sigma_dsigma"):
            values = self._eval(key, interior)
            if not np.all(np.isfinite(values)):
                where = float(interior[~np.isfinite(values)][0])
                raise ValueError(
                    f"interpolant derivative {key} = {getattr(self._expressions, key)} "
                    f"is not finite at t = {where} inside (0, 1)"
                )
        norm2 = self._eval("alpha", grid) ** 2 + self._eval("sigma", grid) ** 2
        if np.any(norm2 <= 0.0):
            where = float(grid[norm2 <= 0.0][0])
            raise ValueError(
                f"interpolant has alpha = sigma = 0 at t = {where}: x_t carries no information"
            )
        self._check_positive_inside()

    def _check_positive_inside(self) -> None:
        """``α > 0`` and ``σ > 0`` on ``(0, 1)``: symbolically where SymPy decides, else on
        a grid of :data:`_POSITIVITY_GRID_POINTS` points."""
        e = self._expressions
        interior = np.linspace(0.0, 1.0, _POSITIVITY_GRID_POINTS)[1:-1]
        for key in ("alpha", "sigma"):
            expr = getattr(e, key)
            proven, point = positive_inside(expr, e.t)
            if proven is True:
                continue
            if proven is False:
                value, where = float(sp.N(expr.subs(e.t, point))), f"t = {point}"
                how = "found symbolically"
            else:
                values = self._eval(key, interior)
                if np.all(values > 0.0):
                    continue
                i = int(np.argmax(~(values > 0.0)))
                value, where = float(values[i]), f"t = {interior[i]:.6g}"
                how = f"on a grid of {_POSITIVITY_GRID_POINTS:,} points"
            raise ValueError(
                f"interpolant {key} = {expr} must be positive inside (0, 1) (the derivations "
                f"assume alpha, sigma > 0 there), but {key} = {value:.6g} at {where} ({how})"
            )


class _Coefficient:
    """A coefficient of :class:`Coefficients`: evaluated on first access, stored in the
    instance (read-only), then found there (a non-data descriptor, like
    ``functools.cached_property`` without its lock)."""

    def __init__(self, doc: str) -> None:
        self.__doc__ = doc

    def __set_name__(self, owner: type, name: str) -> None:
        self._key = name

    def __get__(self, instance: Coefficients | None, owner: type) -> np.ndarray:
        if instance is None:
            return self  # type: ignore[return-value]
        value = instance.interpolant._eval(self._key, instance.t)
        value.flags.writeable = False
        instance.__dict__[self._key] = value
        return value


@dataclass(frozen=True, eq=False)
class Coefficients:
    """The coefficients of :attr:`interpolant` at the validated times :attr:`t`.

    Returned by :meth:`Interpolant.at` (``Coefficients(t, interpolant)`` is the same).
    Every coefficient is a read-only float64 array
    of the shape of ``t`` (``()`` for a scalar time, ``(n,)`` for an array), evaluated
    from the generated numerics on first access and then kept: a caller that needs only
    ``α`` and ``σ`` does not pay for the other eight. The meaning of each is that of the
    :class:`Interpolant` method of the same name.

    Attributes:
        t: the times (given as a float or an array), validated (finite, in ``[0, 1]``)
            and stored as a read-only float64 array.
        interpolant: the interpolant they belong to.
    """

    t: np.ndarray
    interpolant: Interpolant

    def __post_init__(self) -> None:
        if not isinstance(self.interpolant, Interpolant):
            raise TypeError(
                f"interpolant must be an Interpolant, got {type(self.interpolant).__name__}"
            )
        times = as_times(self.t)
        times.flags.writeable = False
        object.__setattr__(self, "t", times)

    @classmethod
    def _from_validated(cls, t: np.ndarray, interpolant: Interpolant) -> Coefficients:
        """The coefficients at times already validated (see :meth:`Interpolant.at_trusted`)."""
        co = object.__new__(cls)
        object.__setattr__(co, "t", t)
        object.__setattr__(co, "interpolant", interpolant)
        return co

    alpha = _Coefficient("``α_t``.")
    sigma = _Coefficient("``σ_t``.")
    dalpha = _Coefficient("``α̇_t``.")
    dsigma = _Coefficient("``σ̇_t`` (may be infinite at an endpoint).")
    ddalpha = _Coefficient("``α̈_t``.")
    ddsigma = _Coefficient("``σ̈_t``.")
    alpha_dalpha = _Coefficient("``α_t α̇_t`` (finite on ``[0, 1]``).")
    sigma_dsigma = _Coefficient("``σ_t σ̇_t`` (finite on ``[0, 1]``).")
    d_alpha_dalpha = _Coefficient("``d(α α̇)/dt = ½ d²(α²)/dt²``.")
    d_sigma_dsigma = _Coefficient("``d(σ σ̇)/dt = ½ d²(σ²)/dt²``.")
    wronskian = _Coefficient("``W = α σ̇ − α̇ σ`` (may be infinite where ``σ̇`` is).")
