"""The runner: measures claims of the catalogue (or any :class:`~cmverify.claims.Claim`)
case by case and returns :class:`~cmverify.claims.ClaimResult` objects.

The runner owns what the measuring functions do not: which cases run (the settings'
quick/full selection), each case's random generator — seeded from (base seed, claim id,
case name), so a case draws the same numbers whether run alone, in the battery or as a
pytest item — stamping the case's name on its checks, timing and progress lines.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace

import numpy as np

from ._case import BatteryConfig, Case
from ._catalogue import CATALOGUE, Claim
from ._results import Check, ClaimResult

__all__ = ["Progress", "case_seed", "run_battery", "run_case", "run_claim"]

#: Receives one line per finished case and per finished claim.
Progress = Callable[[str], None]


def case_seed(seed: int, claim_id: str, case_name: str) -> np.random.SeedSequence:
    """The seed sequence of one (claim, case): ``seed`` and the CRC-32 of the claim id and
    of the case name (stable across runs and platforms, unlike Python's ``hash``)."""
    return np.random.SeedSequence(
        [int(seed), zlib.crc32(claim_id.encode()), zlib.crc32(case_name.encode())]
    )


def _stamp(check: Check, case: Case) -> Check:
    """``check`` with the case's name as its case; a check's own case text (e.g. ``"F =
    cubic"``) is appended after a comma."""
    if not isinstance(check, Check):
        raise TypeError(
            f"a measuring function returned {type(check).__name__}, not a Check (case {case.name!r})"
        )
    own = check.case
    if not own or own == case.name or own.startswith(case.name + ","):
        return replace(check, case=case.name) if not own else check
    return replace(check, case=f"{case.name}, {own}")


def run_case(claim: Claim, case: Case, settings: BatteryConfig | None = None) -> tuple[Check, ...]:
    """Measure ``claim`` on ``case``: its checks, stamped with the case's name. The
    generator is seeded by :func:`case_seed` from ``settings.seed``."""
    settings = settings or BatteryConfig()
    rng = np.random.default_rng(case_seed(settings.seed, claim.id, case.name))
    checks = claim.measure(case, settings, rng)
    if isinstance(checks, Check | str | bytes) or not isinstance(checks, Iterable):
        raise TypeError(
            f"claim {claim.id}: measure must return a sequence of Check objects, got "
            f"{type(checks).__name__}"
        )
    stamped = tuple(_stamp(c, case) for c in checks)
    if not stamped:
        raise ValueError(f"claim {claim.id}: case {case.name!r} returned no checks")
    return stamped


def run_claim(
    claim: Claim, settings: BatteryConfig | None = None, progress: Progress | None = None
) -> ClaimResult:
    """Measure ``claim`` on every case the settings select; ``progress`` gets a line per
    case (with its time) and one with the verdict."""
    settings = settings or BatteryConfig()
    start = time.perf_counter()
    checks: list[Check] = []
    for case in claim.selected_cases(settings):
        case_start = time.perf_counter()
        checks += run_case(claim, case, settings)
        if progress:
            progress(f"{claim.id} {case.name} ({time.perf_counter() - case_start:.2f} s)")
    result = ClaimResult(claim.id, claim.title, tuple(checks), claim.statement)
    if progress:
        verdict = "PASS" if result.passed else "FAIL"
        progress(f"{claim.id}: {verdict} ({time.perf_counter() - start:.1f} s)")
    return result


def run_battery(
    config: BatteryConfig | None = None,
    progress: Progress | None = None,
    *,
    only: Sequence[str] | str | None = None,
    catalogue: Mapping[str, Claim] | None = None,
) -> list[ClaimResult]:
    """Measure the claims of ``catalogue`` (default :data:`~cmverify.claims.CATALOGUE`),
    all or the IDs in ``only`` (in catalogue order), under ``config`` (default: the full
    battery)."""
    catalogue = CATALOGUE if catalogue is None else catalogue
    config = config or BatteryConfig()
    only = (only,) if isinstance(only, str) else only
    unknown = sorted(set(only or ()) - set(catalogue))
    if unknown:
        raise ValueError(f"unknown claim id(s) {unknown}; known: {', '.join(catalogue)}")
    return [
        run_claim(claim, config, progress)
        for claim_id, claim in catalogue.items()
        if not only or claim_id in only
    ]
