"""The hook a user's ``conftest.py`` implements to add claims to ``pytest
--cmverify-claims`` (registered by :mod:`cmverify.testing._plugin`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ..claims import Claim


@pytest.hookspec
def pytest_cmverify_claims(config: pytest.Config) -> Sequence[Claim]:
    """Return the :class:`cmverify.claims.Claim` objects to collect next to the catalogue
    under ``pytest --cmverify-claims`` (one test item per claim and case). Every
    ``conftest.py`` and plugin implementing the hook contributes; ids must be unique."""
    raise NotImplementedError
