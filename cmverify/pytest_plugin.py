"""pytest plugin (entry point ``pytest11``): fixtures for checking consistency models
against exact flow maps in a user's own test suite.

Fixtures:

- ``cmverify_path(mixture, interpolant="linear")``: a factory of named
  :class:`~cmverify.path.MixturePath` objects;
- ``cmverify_reference(mixture, interpolant="linear")``: a factory of
  :class:`~cmverify.flow.ReferenceFlow` objects, cached for the session;
- ``assert_matches_reference``: :func:`cmverify.testing.assert_matches_reference`.
"""

from __future__ import annotations

import functools

import pytest

from .flow import ReferenceFlow
from .testing import assert_matches_reference as _assert_matches_reference
from .testing import named_path


@pytest.fixture(scope="session")
def cmverify_path():
    """``cmverify_path("eight_gaussians", "linear")`` → a cached ``MixturePath``."""
    return functools.cache(named_path)


@pytest.fixture(scope="session")
def cmverify_reference(cmverify_path):
    """``cmverify_reference("eight_gaussians", "linear")`` → a cached ``ReferenceFlow``."""

    @functools.cache
    def build(mixture: str, interpolant: str = "linear") -> ReferenceFlow:
        return ReferenceFlow(cmverify_path(mixture, interpolant))

    return build


@pytest.fixture
def assert_matches_reference():
    """The assertion :func:`cmverify.testing.assert_matches_reference`."""
    return _assert_matches_reference
