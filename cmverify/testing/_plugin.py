"""pytest plugin (entry point ``pytest11``): fixtures for checking consistency models
against exact flow maps in a user's own test suite.

Fixtures:

- ``cmverify_path(mixture, interpolant="linear")``: a factory of named
  :class:`~cmverify.exact.MixturePath` objects;
- ``cmverify_reference(mixture, interpolant="linear")``: a factory of
  :class:`~cmverify.reference.ReferenceFlow` objects, cached for the session;
- ``assert_matches_reference``: :func:`cmverify.testing.assert_matches_reference`.

pytest loads this module in *every* run of an environment where cmverify is installed,
so it imports nothing heavy: NumPy, SciPy, SymPy and the rest of cmverify are imported
inside the fixtures, when a test asks for one (the top-level ``cmverify`` package is
lazy too).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ..exact import MixturePath
    from ..reference import ReferenceFlow


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
