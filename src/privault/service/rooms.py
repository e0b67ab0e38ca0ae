"""Rooms: every account's conference room and its Room ID."""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from privault.clock import Clock
from privault.service.models import Room
from privault.vault import Field, Vault

ROOM_ID_DIGITS = 10


def new_room_id() -> str:
    """Ten random digits, never starting with 0: typed on a keypad, unrelated to any other ID."""
    return str(10 ** (ROOM_ID_DIGITS - 1) + secrets.randbelow(9 * 10 ** (ROOM_ID_DIGITS - 1)))


class RoomService:
    def __init__(self, session: Session, vault: Vault, clock: Clock) -> None:
        self.session = session
        self.vault = vault
        self.clock = clock

    def create_room(self, subject_id: str) -> str:
        """Give the subject a room with a fresh, unique Room ID; returns the Room ID."""
        while True:
            room_id = new_room_id()
            index = self.vault.blind_index("room_id", room_id)
            if (
                self.session.scalar(select(Room.subject_id).where(Room.room_id_index == index))
                is None
            ):
                break
        self.session.add(
            Room(
                subject_id=subject_id,
                room_id_index=index,
                room_id_ct=self.vault.encrypt(
                    self.session, subject_id, Field("rooms", "room_id_ct", subject_id), room_id
                ),
                created_at=self.clock.now(),
            )
        )
        return room_id

    def room_id_of(self, subject_id: str) -> str | None:
        room = self.session.get(Room, subject_id)
        if room is None:
            return None
        return self.vault.decrypt(
            self.session, subject_id, Field("rooms", "room_id_ct", subject_id), room.room_id_ct
        )

    def owner_of(self, room_id: str) -> str | None:
        index = self.vault.blind_index("room_id", room_id)
        return self.session.scalar(select(Room.subject_id).where(Room.room_id_index == index))
