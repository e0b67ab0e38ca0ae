"""The profile service on its own clock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from factories import Person
from privault.clock import FrozenClock
from privault.errors import InvalidInput
from privault.runtime import Runtime
from privault.service.profile import Change, ProfileService


def test_p2_4_a_birthday_is_in_the_future_by_the_services_clock(
    runtime: Runtime, alice: Person
) -> None:
    clock = FrozenClock(datetime(2001, 6, 1, tzinfo=UTC))
    with runtime.transaction() as session:
        profiles = ProfileService(
            session,
            runtime.vault,
            runtime.audit,
            clock,
            runtime.policy.categories["profile"].fields,
        )
        with pytest.raises(InvalidInput, match="future"):
            profiles.update(
                alice.subject_id, {"birthday": Change(value="2001-06-02", has_value=True)}
            )
        done = profiles.update(
            alice.subject_id, {"birthday": Change(value="2001-06-01", has_value=True)}
        )
    assert done["birthday"].value == "2001-06-01"
