"""The disclosure tests' cast: ann, the privacy officer who approves disclosures."""

from __future__ import annotations

import pytest

from privault.runtime import Runtime
from privault.staff.service import Staff


@pytest.fixture
def ann(at: Runtime) -> Staff:
    """Ann is the privacy officer, named as the operator names her on the server."""
    with at.transaction() as session:
        at.staff(session).add("ann", "privacy_officer")
        return at.staff(session).on_server("ann")
