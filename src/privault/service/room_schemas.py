"""Request and response shapes of the room, PIN-check and number-list API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from privault.service.numbers import MAX_ENTRIES, MAX_LABEL, MAX_NAME
from privault.service.phones import MAX_RAW
from privault.service.schemas import Strict


class DialInOut(BaseModel):
    country: str = Field(description="ISO 3166 alpha-2 country of the number.")
    number: str = Field(description="E.164, e.g. +358912345678.")
    display: str = Field(description="International format for people, e.g. +358 9 12345678.")
    city: str | None


class RoomOut(BaseModel):
    room_id: str
    pin_set: bool
    pin_changed_at: datetime | None
    dial_in: list[DialInOut] = Field(description="The service's numbers, by country, then city.")


class RoomIdOut(BaseModel):
    room_id: str


class PinIn(Strict):
    pin: str = Field(min_length=1, max_length=32, description="4 to 8 digits.")


class PinCheckIn(Strict):
    room_id: str = Field(min_length=1, max_length=32, description="The Room ID as typed.")
    pin: str = Field(min_length=1, max_length=32, description="The PIN as typed.")
    caller: str | None = Field(
        default=None, max_length=MAX_RAW, description="The caller's number, E.164 preferred."
    )


class PinCheckOut(BaseModel):
    allowed: bool
    reason: str | None = Field(
        default=None,
        description="Only when the right PIN was refused for a reason the room's owner can fix: "
        "policy_acceptance_required (they must accept the privacy policy's new version).",
    )


class NumberIn(Strict):
    number: str = Field(min_length=1, max_length=MAX_RAW, description="International or national.")
    label: str | None = Field(default=None, max_length=MAX_LABEL)
    region: str | None = Field(
        default=None,
        min_length=2,
        max_length=2,
        description="ISO 3166 alpha-2 region a national number is dialled in, e.g. FI.",
    )


class NumberOut(BaseModel):
    id: str
    number: str = Field(description="E.164.")
    country: str | None = Field(description="The number's country; none for +800 and the like.")
    label: str | None
    created_at: datetime


class NumberListIn(Strict):
    name: str = Field(min_length=1, max_length=MAX_NAME)
    numbers: list[NumberIn] = Field(default_factory=list, max_length=MAX_ENTRIES)


class NumberListPatch(Strict):
    name: str = Field(min_length=1, max_length=MAX_NAME)


class NumberListOut(BaseModel):
    id: str
    name: str
    created_at: datetime
    numbers: list[NumberOut]


class NumberListSummaryOut(BaseModel):
    id: str
    name: str
    size: int = Field(description="How many numbers the list holds.")
    created_at: datetime


class NumberListsOut(BaseModel):
    lists: list[NumberListSummaryOut]
