"""People of the consent tests, registered on the test's clock (``at``)."""

from __future__ import annotations

import pytest

from factories import Person, register
from privault.runtime import Runtime


@pytest.fixture
def alice(at: Runtime) -> Person:
    """Alice, logged in on the test's clock."""
    return register(at, "alice")


@pytest.fixture
def mallory(at: Runtime) -> Person:
    """Mallory, logged in on the test's clock, tries to reach what is not hers."""
    return register(at, "mallory")
