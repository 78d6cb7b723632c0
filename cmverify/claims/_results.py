"""Result objects of measured checks: what was measured, what was expected, the verdict."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

__all__ = ["Check", "ClaimResult", "checks_table"]


@dataclass(frozen=True)
class Check:
    """One measurement against a tolerance derived from the numerics.

    ``measured ≤ tolerance`` passes; ``measured`` is a size (≥ 0, or NaN for a measurement
    that failed, which fails), ``tolerance`` a finite number ≥ 0 (``ValueError`` else). ``case`` names the mixture and interpolant (or
    whatever the measurement ran on); ``budget`` says where the tolerance comes from.
    For a measured order or coefficient ratio, ``measured`` is the deviation from the
    prediction, ``value`` the measured quantity itself (e.g. the slope 2.003),
    ``expected`` the prediction (2) and ``detail`` e.g. the fitted range.
    """

    name: str
    case: str
    measured: float
    tolerance: float
    budget: str
    value: float | None = None
    expected: float | None = None
    detail: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "measured", float(self.measured))
        object.__setattr__(self, "tolerance", float(self.tolerance))
        if not (math.isfinite(self.tolerance) and self.tolerance >= 0):
            raise ValueError(
                f"check {self.name!r}: tolerance must be a finite number ≥ 0, got {self.tolerance!r}"
            )
        if self.measured < 0:  # NaN stays: a measurement that failed fails the check
            raise ValueError(
                f"check {self.name!r}: measured is a size (a deviation, a residual, a "
                f"statistic) and must be ≥ 0, got {self.measured!r}"
            )
        for key in ("value", "expected"):
            if getattr(self, key) is not None:
                object.__setattr__(self, key, float(getattr(self, key)))

    @classmethod
    def against(
        cls,
        name: str,
        case: str,
        value: float,
        expected: float,
        tolerance: float,
        budget: str,
        detail: str = "",
    ) -> Check:
        """A check that ``|value − expected| ≤ tolerance``."""
        return cls(name, case, abs(value - expected), tolerance, budget, value, expected, detail)

    @property
    def passed(self) -> bool:
        return bool(math.isfinite(self.measured) and self.measured <= self.tolerance)

    @property
    def ratio(self) -> float:
        """``measured / tolerance`` (``≤ 1`` passes); ``inf`` for a non-finite measurement
        or one above a zero tolerance, 0 for an exact zero against a zero tolerance."""
        return _ratio(self)

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "passed": self.passed}


def _ratio(check: Check) -> float:
    """``measured / tolerance``; ``inf`` for a non-finite measurement or one above a zero
    tolerance (never passes), 0 for an exact zero against a zero tolerance."""
    if not math.isfinite(check.measured):
        return math.inf
    if check.tolerance == 0.0:
        return 0.0 if check.measured <= 0.0 else math.inf
    return check.measured / check.tolerance


@dataclass(frozen=True)
class ClaimResult:
    """The verdict on one claim of the catalogue (DESIGN.md), from its checks.

    ``measured`` is the worst ratio ``measured / tolerance`` over the checks (``≤ 1``
    passes); ``expected`` states the criterion in words; ``statement`` is the claim's
    mathematics (:attr:`cmverify.claims.Claim.statement`).
    """

    id: str
    title: str
    checks: tuple[Check, ...] = field(default_factory=tuple)
    statement: str = ""

    @property
    def measured(self) -> float:
        return max((_ratio(c) for c in self.checks), default=math.nan)

    @property
    def expected(self) -> str:
        return "every check within its error budget (worst measured/tolerance ≤ 1)"

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    def worst(self) -> Check | None:
        """The check with the largest ``measured / tolerance``."""
        return max(self.checks, key=_ratio, default=None)

    def to_dict(self) -> dict[str, object]:
        """The JSON object of DESIGN.md's contract plus the individual checks."""
        return {
            "id": self.id,
            "title": self.title,
            "statement": self.statement,
            "measured": self.measured,
            "expected": self.expected,
            "passed": self.passed,
            "checks": [c.to_dict() for c in self.checks],
        }


def checks_table(checks: Sequence[Check]) -> str:
    """``checks`` as a plain-text table, one line each: verdict, name, case, measured
    (for a measured order or ratio also the value against the prediction), tolerance,
    detail (e.g. the fitted range) and budget; columns aligned, nothing cut."""
    rows = [("", "check", "case", "measured", "tolerance", "detail", "budget")]
    for c in checks:
        measured = f"{c.measured:.3g}"
        if c.value is not None and c.expected is not None:
            measured += f" (value {c.value:.6g}, expected {c.expected:.6g})"
        verdict = "pass" if c.passed else "FAIL"
        rows.append((verdict, c.name, c.case, measured, f"{c.tolerance:.3g}", c.detail, c.budget))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join([*(f"{cell:<{w}}" for cell, w in zip(r, widths, strict=False)), r[-1]]).rstrip()
        for r in rows
    )
