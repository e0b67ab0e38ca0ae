"""Rooms: every account's conference room and its Room ID."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from privault.access.audit import AuditLog, Event
from privault.clock import Clock, aware
from privault.service.errors import RoomNotFound
from privault.service.models import Room
from privault.service.numbers import DialIn, dial_in_numbers
from privault.vault import Field, Vault

ROOM_ID_DIGITS = 10


def new_room_id() -> str:
    """Ten random digits, never starting with 0: typed on a keypad, unrelated to any other ID."""
    return str(10 ** (ROOM_ID_DIGITS - 1) + secrets.randbelow(9 * 10 ** (ROOM_ID_DIGITS - 1)))


@dataclass(frozen=True)
class RoomOverview:
    """What the owner sees of their room: never the PIN, only whether one is set."""

    room_id: str
    pin_set: bool
    pin_changed_at: datetime | None
    dial_in: list[DialIn]


class RoomService:
    def __init__(self, session: Session, vault: Vault, audit: AuditLog, clock: Clock) -> None:
        self.session = session
        self.vault = vault
        self.audit = audit
        self.clock = clock

    def _field(self, subject_id: str) -> Field:
        return Field("rooms", "room_id_ct", subject_id)

    def _unused_room_id(self) -> tuple[str, bytes]:
        """A fresh Room ID no room has, with its blind index."""
        while True:
            room_id = new_room_id()
            index = self.vault.blind_index("room_id", room_id)
            if (
                self.session.scalar(select(Room.subject_id).where(Room.room_id_index == index))
                is None
            ):
                return room_id, index

    def create_room(self, subject_id: str) -> str:
        """Give the subject a room with a fresh, unique Room ID; returns the Room ID."""
        room_id, index = self._unused_room_id()
        self.session.add(
            Room(
                subject_id=subject_id,
                room_id_index=index,
                room_id_ct=self.vault.encrypt(
                    self.session, subject_id, self._field(subject_id), room_id
                ),
                created_at=self.clock.now(),
            )
        )
        return room_id

    def room_id_of(self, subject_id: str, *, purpose: str) -> str | None:
        """The Room ID of the subject's room, read for ``purpose``; ``None`` without a room."""
        room = self.session.get(Room, subject_id)
        if room is None:
            return None
        return self.vault.decrypt(
            self.session, subject_id, self._field(subject_id), room.room_id_ct, purpose=purpose
        )

    def owner_of(self, room_id: str) -> str | None:
        index = self.vault.blind_index("room_id", room_id)
        return self.session.scalar(select(Room.subject_id).where(Room.room_id_index == index))

    def overview(self, subject_id: str) -> RoomOverview:
        """The owner's room: Room ID, whether a PIN is set, and the service's dial-in numbers.

        Raises ``RoomNotFound`` when the subject has no room.
        """
        room = self.session.get(Room, subject_id)
        if room is None:
            raise RoomNotFound("this account has no room")
        return RoomOverview(
            room_id=self.vault.decrypt(
                self.session,
                subject_id,
                self._field(subject_id),
                room.room_id_ct,
                purpose="service",
            ),
            pin_set=room.pin_hash is not None,
            pin_changed_at=aware(room.pin_changed_at) if room.pin_changed_at else None,
            dial_in=dial_in_numbers(self.session),
        )

    def rotate_room_id(self, subject_id: str) -> str:
        """Give the room a new random Room ID; the old one stops working at once.

        The PIN stays (its digest is bound to the owner, not to the Room ID), and
        lockouts of the old Room ID no longer matter. Returns the new Room ID;
        raises ``RoomNotFound`` when the subject has no room.
        """
        room = self.session.get(Room, subject_id)
        if room is None:
            raise RoomNotFound("this account has no room")
        room_id, index = self._unused_room_id()
        room.room_id_index = index
        room.room_id_ct = self.vault.encrypt(
            self.session, subject_id, self._field(subject_id), room_id
        )
        self.session.flush()
        self.audit.record(
            self.session,
            "api",
            Event.ROOM_ID_ROTATED,
            actor=f"subject:{subject_id}",
            subject_id=subject_id,
            categories=["registration"],
        )
        return room_id
