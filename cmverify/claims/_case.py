"""What a claim is measured on (:class:`Case`) and how hard (:class:`BatteryConfig`, the
settings every measuring function receives).

The quick/full policy lives here and only here: :meth:`BatteryConfig.quick_config` sets
the smaller sizes, and a case marked ``quick=False`` runs in the full battery only.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..exact import MixturePath, mixtures
from ..symbolic import interpolants

__all__ = ["MIXTURES", "STANDARD_CASES", "BatteryConfig", "Case", "battery_cases", "mixture_cases"]


@dataclass(frozen=True)
class BatteryConfig:
    """How hard the battery works (the settings passed to every measuring function).

    ``quick`` selects the cases marked quick (:attr:`Case.quick`); the sizes below are
    what :meth:`quick_config` shrinks. ``seed`` is the base of every case's seed (see
    :func:`cmverify.claims.case_seed`).
    """

    n_points: int = 256
    times: tuple[float, ...] = tuple(np.round(np.linspace(0.0, 1.0, 11), 12))
    n_samples: int = 20_000
    local_points: int = 16
    global_ns: tuple[int, ...] = (16, 32, 64, 128, 256)
    gauss_ns: tuple[int, ...] = (64, 128, 256, 512)
    multistep_samples: int = 4000
    #: CT-LOCAL with ``F = f*`` in ``d ≥ 2`` (5–15 s a case: reference solves at every
    #: quadrature node); ``d = 1`` always runs it.
    target_in_2d: bool = True
    #: Gauss–Hermite nodes per axis for SONG-T2's two losses (``None``: the quadrature
    #: layer's default, 12 in d = 2). The order of ``(L_CD − L_CT)/Δ`` does not depend on
    #: it: the inner rule integrates the ``O(Δ)`` terms exactly at any order and both
    #: losses use the same rule at every ``Δ``; only the constant moves (measured on
    #: eight_gaussians/linear: slope 1.0050 at 12 nodes, 1.0054 at 6, 28 times faster).
    loss_quadrature_order: int | None = None
    seed: int = 20231
    quick: bool = False

    @classmethod
    def quick_config(cls, **changes: object) -> BatteryConfig:
        """The quick battery (``cmverify verify --quick``): fewer points, times and step
        counts, the quick cases only."""
        settings = {
            "n_points": 64,
            "times": (0.0, 0.05, 0.5, 0.95, 1.0),
            "n_samples": 5_000,
            "local_points": 8,
            "global_ns": (16, 32, 64, 128),
            "gauss_ns": (64, 128, 256),
            # the KS critical value is derived from n (kstwo at the family-wise 1e-3):
            # 0.075 at n = 1000 against 0.053 at 2000 (eight_gaussians, 40 tests); each
            # of MULTISTEP's five reference solves costs mostly per call, yet n = 2000
            # took 1.5 times as long (9.7 s against 6.3 s for the three quick cases)
            "multistep_samples": 1000,
            "target_in_2d": False,
            "loss_quadrature_order": 6,
            "quick": True,
        }
        return cls(**{**settings, **changes})  # type: ignore[arg-type]


@dataclass(frozen=True)
class Case:
    """One setting a claim is measured on: a ``name`` (shown in results and pytest node
    ids, e.g. ``"eight_gaussians/linear"``) and, built on first use by ``build``, the
    :class:`~cmverify.exact.MixturePath` (:attr:`path`). ``quick=False`` keeps the case
    out of the quick battery.

    ``Case.named("eight_gaussians", "linear")`` uses the library's named mixtures and
    interpolants; ``Case("mine", lambda: MixturePath(my_mixture, my_interpolant))`` any
    path; ``Case("symbolic")`` a case without a path.
    """

    name: str
    build: Callable[[], MixturePath] | None = field(default=None, repr=False, compare=False)
    quick: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip() or "\n" in self.name:
            raise ValueError(f"case name must be a non-empty single line, got {self.name!r}")
        if self.build is not None and not callable(self.build):
            raise TypeError(f"case build must be callable returning a path, got {self.build!r}")
        if not isinstance(self.quick, bool):
            raise TypeError(f"case quick must be True or False, got {self.quick!r}")

    @classmethod
    def named(cls, mixture: str, interpolant: str, *, quick: bool = True) -> Case:
        """The case ``"{mixture}/{interpolant}"`` of :mod:`cmverify.mixtures` and
        :mod:`cmverify.interpolants` (names checked and made canonical now, the path built
        on first use: building an interpolant runs SymPy)."""
        mixture = mixtures.by_name(mixture).name
        key = interpolant.strip().lower().replace("-", "_") if isinstance(interpolant, str) else ""
        if key not in interpolants.names():
            raise ValueError(
                f"unknown interpolant {interpolant!r}; known: {', '.join(interpolants.names())}"
            )
        return cls(f"{mixture}/{key}", functools.partial(_named_path, mixture, key), quick)

    @functools.cached_property
    def path(self) -> MixturePath:
        """The case's path, built once."""
        if self.build is None:
            raise AttributeError(f"case {self.name!r} has no path (no build function)")
        path = self.build()
        if not isinstance(path, MixturePath):
            raise TypeError(
                f"case {self.name!r}: build returned {type(path).__name__}, not a MixturePath"
            )
        return path


def _named_path(mixture: str, interpolant: str) -> MixturePath:
    return MixturePath(mixtures.by_name(mixture), interpolants.by_name(interpolant))


#: The battery's mixtures: each under the linear and trig interpolants, one of which is
#: quick (alternating, so both interpolants appear in the quick battery).
MIXTURES = ("seed_bimodal", "eight_gaussians", "gaussian")
_INTERPOLANTS = ("linear", "trig")


def mixture_cases(
    names: Sequence[str], quick: Callable[[int, str], bool] = lambda i, interp: True
) -> tuple[Case, ...]:
    """``Case.named(m, i)`` for each mixture name ``m`` and interpolant ``i`` of linear and
    trig; ``quick(index of m, i)`` marks the quick ones."""
    return tuple(
        Case.named(m, interp, quick=quick(k, interp))
        for k, m in enumerate(names)
        for interp in _INTERPOLANTS
    )


def _alternating(k: int, interp: str) -> bool:
    return interp == _INTERPOLANTS[(k + 1) % 2]


#: The standard cases: seed_bimodal, eight_gaussians, gaussian under linear and trig;
#: quick: seed_bimodal/trig, eight_gaussians/linear, gaussian/trig.
STANDARD_CASES = mixture_cases(MIXTURES, _alternating)


def battery_cases(config: BatteryConfig | None = None) -> list[tuple[str, MixturePath]]:
    """``(name, path)`` of the standard cases the ``config`` selects (all of them without
    one): seed_bimodal, eight_gaussians and gaussian under linear and trig; in quick mode
    seed_bimodal/trig, eight_gaussians/linear, gaussian/trig."""
    quick = config is not None and config.quick
    return [(c.name, c.path) for c in STANDARD_CASES if c.quick or not quick]
