"""pytest plugin (entry point ``pytest11``): fixtures for checking consistency models
against exact flow maps in a user's own test suite, and the theory's claims as tests.

Fixtures:

- ``cmverify_path(mixture, interpolant="linear")``: a factory of named
  :class:`~cmverify.exact.MixturePath` objects;
- ``cmverify_reference(mixture, interpolant="linear")``: a factory of
  :class:`~cmverify.reference.ReferenceFlow` objects, cached for the session;
- ``assert_matches_reference``: :func:`cmverify.testing.assert_matches_reference`;
- ``assert_velocity_matches``, ``assert_flow_map_matches``: the assertions of the same
  names for velocity-type and flow-map networks.

Claims (``pytest --cmverify-claims``): every claim of :data:`cmverify.claims.CATALOGUE`
becomes test items, one per (claim, case), with node ids like
``cmverify-claims::EULER-LOCAL[eight_gaussians/linear]``; select with ``-k`` (``-k
EULER-LOCAL``, ``-k "eight_gaussians/linear"``), ``-m cmverify_claim`` (all of them), or
by node id on the command line, as printed by ``--collect-only -q`` (quoted for the
shell: ``pytest "cmverify-claims::EULER-LOCAL[eight_gaussians/linear]"``;
``cmverify-claims::EULER-LOCAL`` names all its cases, ``cmverify-claims`` every claim; a
claim node id implies ``--cmverify-claims``). pytest resolves command-line arguments as
files, so this plugin takes the claim node ids out of ``config.args`` in
``pytest_configure`` and selects the items itself; ``--lf``, ``--ff``, ``--nf`` and
``--deselect`` know the claim items by the same ids. An item passes iff every check of
its case is within its error budget, and fails with the table of the checks (name, case,
measured, tolerance, detail, budget). ``--cmverify-claims`` runs the quick battery's
cases and settings (``cmverify verify --quick``, seconds a case);
``--cmverify-claims-full`` every case with the full settings (``cmverify verify``). Each case's random numbers are seeded from (seed, claim id, case name), so an
item draws what ``cmverify verify`` draws for it.

A user's own claims run the same way: a ``conftest.py`` implements the hook
``pytest_cmverify_claims(config)`` and returns a list of
:class:`cmverify.claims.Claim` objects (their ids must differ from the catalogue's)::

    def pytest_cmverify_claims():
        from cmverify.claims import Case, Claim  # here, not at the top: see below

        return [Claim("MY-ORDER", "title", "statement", (Case("exp"),), measure)]

A conftest is imported by every pytest run of its repository, with or without the
option, and ``cmverify.claims`` imports SymPy, SciPy and the catalogue (about 1.5–2.5 s):
import cmverify inside the hook and the measuring functions, which run only under
``--cmverify-claims``.

The claim items are added to the collected items (before ``-k``, ``-m`` and
``--deselect`` select among them) by :mod:`cmverify.testing._claims`.

pytest loads this module in *every* run of an environment where cmverify is installed,
so it imports nothing heavy: NumPy, SciPy, SymPy and the rest of cmverify are imported
inside the fixtures, when a test asks for one, and the claims layer only under
``--cmverify-claims`` (the top-level ``cmverify`` package is lazy too).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ..exact import MixturePath
    from ..reference import ReferenceFlow


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from . import _hooks

    pluginmanager.add_hookspecs(_hooks)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cmverify")
    group.addoption(
        "--cmverify-claims",
        action="store_true",
        help="also collect cmverify's claim catalogue and the claims of "
        "pytest_cmverify_claims hooks, one item per (claim, case); quick cases and settings",
    )
    group.addoption(
        "--cmverify-claims-full",
        action="store_true",
        help="like --cmverify-claims, with every case and the full battery's settings",
    )


#: The claims' collector: the first part of every claim item's node id.
COLLECTOR = "cmverify-claims"
#: The claim node ids given on the command line (taken out of ``config.args``).
_WANTED = pytest.StashKey[tuple[str, ...]]()


def _is_claim_node_id(arg: object) -> bool:
    """``cmverify-claims``, ``cmverify-claims::ID`` or ``cmverify-claims::ID[case]``."""
    return isinstance(arg, str) and (arg == COLLECTOR or arg.startswith(f"{COLLECTOR}::"))


@pytest.hookimpl(tryfirst=True)  # before other plugins read config.args
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "cmverify_claim: a claim of cmverify measured on one case (--cmverify-claims)"
    )
    wanted = tuple(a for a in config.args if _is_claim_node_id(a))
    if wanted:  # not files: pytest would stop at "file or directory not found"
        config.args[:] = [a for a in config.args if not _is_claim_node_id(a)]
        config.stash[_WANTED] = wanted


@pytest.hookimpl(tryfirst=True)  # before -k, -m and --deselect select among the items
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    full = config.getoption("cmverify_claims_full")
    wanted = config.stash.get(_WANTED, None)
    if not (full or config.getoption("cmverify_claims") or wanted):
        return
    from ._claims import claim_items

    items.extend(claim_items(session, "full" if full else "quick", wanted))


@pytest.fixture(scope="session")
def cmverify_path() -> Callable[..., MixturePath]:
    """``cmverify_path("eight_gaussians", "linear")`` → a cached ``MixturePath``."""
    from ._assertions import named_path

    return functools.cache(named_path)


@pytest.fixture(scope="session")
def cmverify_reference(cmverify_path: Callable[..., MixturePath]) -> Callable[..., ReferenceFlow]:
    """``cmverify_reference("eight_gaussians", "linear")`` → a cached ``ReferenceFlow``."""
    from ..reference import ReferenceFlow

    @functools.cache
    def build(mixture: str, interpolant: str = "linear") -> ReferenceFlow:
        return ReferenceFlow(cmverify_path(mixture, interpolant))

    return build


@pytest.fixture
def assert_matches_reference() -> Callable[..., object]:
    """The assertion :func:`cmverify.testing.assert_matches_reference`."""
    from ._assertions import assert_matches_reference as check

    return check


@pytest.fixture
def assert_velocity_matches() -> Callable[..., object]:
    """The assertion :func:`cmverify.testing.assert_velocity_matches`."""
    from ._velocity_assertions import assert_velocity_matches as check

    return check


@pytest.fixture
def assert_flow_map_matches() -> Callable[..., object]:
    """The assertion :func:`cmverify.testing.assert_flow_map_matches`."""
    from ._flow_map_assertions import assert_flow_map_matches as check

    return check
