"""Time as a collaborator, so services can be tested at any date."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock that moves only when told to."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at

    def advance(self, delta: timedelta) -> None:
        self.at += delta


def aware(value: datetime) -> datetime:
    """SQLite returns naive datetimes for timezone columns; everything stored is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
