"""``pytest --cmverify-claims``: the claim catalogue, and a user's own claims, as pytest
items — one per (claim, case), node id ``cmverify-claims::ID[case]`` (imported by
:mod:`cmverify.testing._plugin` only when the option, or a claim node id, is given).

The node id is given to pytest as that string, so it is parsed exactly as pytest parses
the ids it reads back from its cache (``--lf``, ``--ff``, ``--nf``; pytest ≥ 9 compares
them as ``(path, names, [params])``): the item ``ID[case]`` is the name ``ID`` with the
parameters ``case``, like a parametrized test, and an id read back equals the item's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ..claims import CATALOGUE, BatteryConfig, Case, Check, Claim, checks_table, run_case
from ._plugin import COLLECTOR

__all__ = ["ClaimFailed", "ClaimItem", "ClaimsCollector", "claim_items"]

#: The marker on every claim item (``-m cmverify_claim`` selects them all).
MARKER = "cmverify_claim"


def _node_id(claim: Claim, case: Case) -> str:
    """``cmverify-claims::ID[case]`` (claim ids hold no ``[`` or ``:``, so pytest parses
    it back as the name ``ID`` with the parameters ``case``, whatever the case name)."""
    return f"{COLLECTOR}::{claim.id}[{case.name}]"


def _selected(node_id: str, claim: Claim, wanted: tuple[str, ...] | None) -> bool:
    """Whether a command-line argument of ``wanted`` names the item (``None``: no
    argument named claim items, all are collected)."""
    if wanted is None:
        return True
    return any(w in (COLLECTOR, f"{COLLECTOR}::{claim.id}", node_id) for w in wanted)


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

    def __init__(
        self,
        *,
        claims: tuple[Claim, ...],
        settings: BatteryConfig,
        wanted: tuple[str, ...] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.claims, self.settings, self.wanted = claims, settings, wanted

    def collect(self) -> Iterator[ClaimItem]:
        for claim in self.claims:
            for case in claim.selected_cases(self.settings):
                node_id = _node_id(claim, case)
                if _selected(node_id, claim, self.wanted):
                    yield ClaimItem.from_parent(
                        self,
                        name=f"{claim.id}[{case.name}]",
                        nodeid=node_id,
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


def _check_wanted(claims: list[Claim], settings: BatteryConfig, wanted: tuple[str, ...]) -> None:
    """``UsageError`` for a command-line claim node id that names no item."""
    names = {COLLECTOR}
    for claim in claims:
        names.add(f"{COLLECTOR}::{claim.id}")
        names.update(_node_id(claim, case) for case in claim.selected_cases(settings))
    unknown = [w for w in wanted if w not in names]
    if unknown:
        hint = " (--cmverify-claims runs the quick cases; --cmverify-claims-full every case)"
        raise pytest.UsageError(
            f"no claim item {unknown[0]!r}; pytest --cmverify-claims --collect-only -q "
            f"lists them{hint if settings.quick else ''}"
        )


def claim_items(
    session: pytest.Session, mode: str, wanted: tuple[str, ...] | None = None
) -> list[ClaimItem]:
    """The items of the catalogue's claims and the users' (``mode`` ``"quick"``: the quick
    cases with :meth:`BatteryConfig.quick_config`; ``"full"``: every case, the full
    battery's settings); with ``wanted`` (claim node ids given on the command line:
    ``cmverify-claims``, ``cmverify-claims::ID`` or ``cmverify-claims::ID[case]``) only
    the items they name (``UsageError`` for one that names none)."""
    claims = [*CATALOGUE.values(), *_user_claims(session.config)]
    ids = [c.id for c in claims]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise pytest.UsageError(
            f"--cmverify-claims: claim id(s) {', '.join(repeated)} given more than once "
            "(the catalogue's ids are reserved)"
        )
    settings = BatteryConfig.quick_config() if mode == "quick" else BatteryConfig()
    if wanted is not None:
        _check_wanted(claims, settings, wanted)
    collector = ClaimsCollector.from_parent(
        session,
        name=COLLECTOR,
        nodeid=COLLECTOR,
        claims=tuple(claims),
        settings=settings,
        wanted=wanted,
    )
    # genitems reports the collection (counts, errors) as for any collector
    return [item for item in session.genitems(collector) if isinstance(item, ClaimItem)]
