"""``pytest --cmverify-claims``: the claim catalogue, and a user's own claims, as pytest
items — one per (claim, case), node id ``cmverify-claims::ID[case]`` (imported by
:mod:`cmverify.testing._plugin` only when the option is given)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ..claims import CATALOGUE, BatteryConfig, Case, Check, Claim, checks_table, run_case

__all__ = ["ClaimFailed", "ClaimItem", "ClaimsCollector", "claim_items"]

#: The collector's name: the first part of every item's node id.
COLLECTOR = "cmverify-claims"
#: The marker on every claim item (``-m cmverify_claim`` selects them all).
MARKER = "cmverify_claim"


class ClaimFailed(AssertionError):
    """A claim failed on a case; the message is the table of its checks."""

    def __init__(self, claim: Claim, case: Case, checks: tuple[Check, ...]) -> None:
        failed = sum(not c.passed for c in checks)
        super().__init__(
            f"{claim.id} [{case.name}]: {failed} of {len(checks)} checks outside their error "
            f"budget\n{claim.title}: {claim.statement}\n\n{checks_table(checks)}"
        )


class ClaimItem(pytest.Item):
    """One claim measured on one case; passes iff every check passes."""

    def __init__(self, *, claim: Claim, case: Case, settings: BatteryConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        self.claim, self.case, self.settings = claim, case, settings
        self.add_marker(MARKER)
        self.extra_keyword_matches.update({claim.id, case.name})

    def runtest(self) -> None:
        checks = run_case(self.claim, self.case, self.settings)
        self.user_properties.append(("worst measured/tolerance", max(c.ratio for c in checks)))
        if not all(c.passed for c in checks):
            raise ClaimFailed(self.claim, self.case, checks)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style=None):  # type: ignore[override]
        if isinstance(excinfo.value, ClaimFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[object, int | None, str]:
        return self.path, None, f"{COLLECTOR}::{self.name}"


class ClaimsCollector(pytest.Collector):
    """The claims of the catalogue and the ``pytest_cmverify_claims`` hooks."""

    def __init__(self, *, claims: tuple[Claim, ...], settings: BatteryConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        self.claims, self.settings = claims, settings

    def collect(self) -> Iterator[ClaimItem]:
        for claim in self.claims:
            for case in claim.selected_cases(self.settings):
                yield ClaimItem.from_parent(
                    self,
                    name=f"{claim.id}[{case.name}]",
                    claim=claim,
                    case=case,
                    settings=self.settings,
                )


def _user_claims(config: pytest.Config) -> list[Claim]:
    claims: list[Claim] = []
    for contributed in config.hook.pytest_cmverify_claims(config=config):
        if isinstance(contributed, Claim) or not hasattr(contributed, "__iter__"):
            raise pytest.UsageError(
                "pytest_cmverify_claims must return a list of cmverify.claims.Claim objects, "
                f"got {type(contributed).__name__}"
            )
        for claim in contributed:
            if not isinstance(claim, Claim):
                raise pytest.UsageError(
                    f"pytest_cmverify_claims returned {type(claim).__name__}, not a "
                    "cmverify.claims.Claim"
                )
            claims.append(claim)
    return claims


def claim_items(session: pytest.Session, mode: str) -> list[ClaimItem]:
    """The items of the catalogue's claims and the users' (``mode`` ``"quick"``: the quick
    cases with :meth:`BatteryConfig.quick_config`; ``"full"``: every case, the full
    battery's settings)."""
    claims = [*CATALOGUE.values(), *_user_claims(session.config)]
    ids = [c.id for c in claims]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise pytest.UsageError(
            f"--cmverify-claims: claim id(s) {', '.join(repeated)} given more than once "
            "(the catalogue's ids are reserved)"
        )
    settings = BatteryConfig.quick_config() if mode == "quick" else BatteryConfig()
    collector = ClaimsCollector.from_parent(
        session, name=COLLECTOR, nodeid=COLLECTOR, claims=tuple(claims), settings=settings
    )
    # genitems reports the collection (counts, errors) as for any collector
    return [item for item in session.genitems(collector) if isinstance(item, ClaimItem)]
