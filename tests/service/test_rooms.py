"""Room IDs (P7.5): ten random digits, and never one another room already has."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from factories import Person
from privault.runtime import Runtime
from privault.service import rooms
from privault.service.rooms import RoomService, new_room_id


def test_p7_5_a_room_id_is_ten_digits_never_starting_with_zero() -> None:
    drawn = {new_room_id() for _ in range(200)}
    assert all(re.fullmatch(r"[1-9][0-9]{9}", room_id) for room_id in drawn)
    assert len(drawn) == 200


def test_p7_5_a_new_room_never_takes_a_room_id_in_use(
    runtime: Runtime, alice: Person, bob: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The draw is random; should it hit a Room ID in use, it is drawn again."""
    fresh = next(
        r for r in (new_room_id() for _ in range(10)) if r not in (alice.room_id, bob.room_id)
    )
    draws: Iterator[str] = iter([alice.room_id, bob.room_id, fresh])
    monkeypatch.setattr(rooms, "new_room_id", lambda: next(draws))
    with runtime.transaction() as session:
        subject_id = runtime.vault.create_subject(session)
        room_id = RoomService(session, runtime.vault, runtime.audit, runtime.clock).create_room(
            subject_id
        )
    assert room_id == fresh
    assert next(draws, None) is None
