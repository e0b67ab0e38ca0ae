"""Numbers: the service's dial-in numbers, and each owner's lists of numbers to invite (P2.6).

Dial-in numbers are the operator's, not anyone's personal data: kept in clear.
Number lists are their owner's personal data: list names, numbers and labels are
sealed under the owner's key, and numbers are found by their blind index
("phone", over E.164), never by value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from privault.access.audit import AuditLog, Event
from privault.clock import Clock, aware
from privault.db import new_id
from privault.errors import InvalidInput
from privault.service.errors import (
    DialInExists,
    DialInNotFound,
    NumberAlreadyListed,
    NumberListEntryNotFound,
    NumberListLimit,
    NumberListNotFound,
)
from privault.service.models import DialInNumber, NumberList, NumberListEntry
from privault.service.phones import Phone, parse_phone
from privault.vault import Field, Vault

#: A room owner's number lists are part of the service itself.
PURPOSE = "service"
MAX_LISTS = 100
MAX_ENTRIES = 1000
MAX_NAME = 100
MAX_LABEL = 100
MAX_CITY = 100


# -- dial-in numbers -----------------------------------------------------------------------


@dataclass(frozen=True)
class DialIn:
    country: str
    number: str
    city: str | None

    @property
    def display(self) -> str:
        return Phone(self.number, self.country).display


def dial_in_numbers(session: Session) -> list[DialIn]:
    """Every dial-in number of the service, by country, then city, then number."""
    rows = session.scalars(
        select(DialInNumber).order_by(
            DialInNumber.country,
            DialInNumber.city.is_(None),  # numbers without a city last, on every backend
            DialInNumber.city,
            DialInNumber.number,
        )
    )
    return [DialIn(r.country, r.number, r.city) for r in rows]


class DialInService:
    """The operator's table of dial-in numbers, shown to every room owner."""

    def __init__(self, session: Session, audit: AuditLog, clock: Clock) -> None:
        self.session = session
        self.audit = audit
        self.clock = clock

    def add(self, number: str, city: str | None = None) -> DialIn:
        """Add a dial-in number given in international format; its country is the number's.

        Raises ``InvalidPhoneNumber`` with the reason (also for a number of no country,
        like +800), ``InvalidInput`` for an over-long city, ``DialInExists``.
        """
        phone = parse_phone(number, what=repr(number.strip()))
        if phone.region is None:
            raise InvalidInput(f"{phone.e164} belongs to no country; a dial-in number must")
        city = (city.strip() or None) if city is not None else None
        if city is not None and len(city) > MAX_CITY:
            raise InvalidInput(f"a city name is at most {MAX_CITY} characters")
        if self.session.scalar(select(DialInNumber.id).where(DialInNumber.number == phone.e164)):
            raise DialInExists(f"{phone.e164} is a dial-in number already")
        self.session.add(
            DialInNumber(
                country=phone.region, number=phone.e164, city=city, created_at=self.clock.now()
            )
        )
        self.session.flush()
        self.audit.record(
            self.session,
            "cli",
            Event.DIAL_IN_ADDED,
            actor="operator",
            detail={"number": phone.e164, "country": phone.region},
        )
        return DialIn(phone.region, phone.e164, city)

    def remove(self, number: str) -> DialIn:
        """Remove a dial-in number (any format that parses to it); raises ``DialInNotFound``."""
        e164 = parse_phone(number, what=repr(number.strip())).e164
        row = self.session.scalar(select(DialInNumber).where(DialInNumber.number == e164))
        if row is None:
            raise DialInNotFound(f"{e164} is not a dial-in number")
        self.session.delete(row)
        self.audit.record(
            self.session,
            "cli",
            Event.DIAL_IN_REMOVED,
            actor="operator",
            detail={"number": e164, "country": row.country},
        )
        return DialIn(row.country, row.number, row.city)

    def list(self) -> list[DialIn]:
        return dial_in_numbers(self.session)


# -- number lists --------------------------------------------------------------------------


@dataclass(frozen=True)
class NewNumber:
    """A number as the owner typed it; ``region`` reads a national format."""

    number: str
    label: str | None = None
    region: str | None = None


@dataclass(frozen=True)
class ListedNumber:
    id: str
    number: str
    country: str | None
    label: str | None
    created_at: datetime


@dataclass(frozen=True)
class NumberListSummary:
    id: str
    name: str
    size: int
    created_at: datetime


@dataclass(frozen=True)
class NumberListView:
    id: str
    name: str
    created_at: datetime
    numbers: list[ListedNumber]


def _name(name: str) -> str:
    clean = name.strip()
    if not clean or len(clean) > MAX_NAME:
        raise InvalidInput(f"a list name is 1 to {MAX_NAME} characters")
    return clean


def _label(label: str | None, what: str) -> str | None:
    if label is None or not label.strip():
        return None
    if len(label.strip()) > MAX_LABEL:
        raise InvalidInput(f"the label of {what} is longer than {MAX_LABEL} characters")
    return label.strip()


class NumberListService:
    """The owner's named lists of numbers with labels. Every method takes the owner's
    subject id: another person's list answers ``NumberListNotFound`` exactly like an
    id that does not exist."""

    def __init__(self, session: Session, vault: Vault, audit: AuditLog, clock: Clock) -> None:
        self.session = session
        self.vault = vault
        self.audit = audit
        self.clock = clock

    # -- sealing -------------------------------------------------------------------------

    def _seal(self, subject_id: str, field: Field, value: str) -> bytes:
        return self.vault.encrypt(self.session, subject_id, field, value)

    def _open(self, subject_id: str, field: Field, blob: bytes) -> str:
        return self.vault.decrypt(self.session, subject_id, field, blob, purpose=PURPOSE)

    def _owned(self, subject_id: str, list_id: str) -> NumberList:
        row = self.session.get(NumberList, list_id)
        if row is None or row.subject_id != subject_id:
            raise NumberListNotFound("no such number list")
        return row

    def _record(self, subject_id: str, event: Event, list_id: str) -> None:
        self.audit.record(
            self.session,
            "api",
            event,
            actor=f"subject:{subject_id}",
            subject_id=subject_id,
            categories=["service_input"],
            detail={"list": list_id},
        )

    def _view(self, row: NumberList) -> NumberListView:
        subject_id = row.subject_id
        entries = self.session.scalars(
            select(NumberListEntry)
            .where(NumberListEntry.list_id == row.id)
            .order_by(NumberListEntry.created_at, NumberListEntry.id)
        )
        numbers = []
        for entry in entries:
            e164 = self._open(
                subject_id, Field("number_list_entries", "number_ct", entry.id), entry.number_ct
            )
            label = (
                self._open(
                    subject_id, Field("number_list_entries", "label_ct", entry.id), entry.label_ct
                )
                if entry.label_ct is not None
                else None
            )
            numbers.append(
                ListedNumber(
                    entry.id, e164, parse_phone(e164).region, label, aware(entry.created_at)
                )
            )
        return NumberListView(
            row.id,
            self._open(subject_id, Field("number_lists", "name_ct", row.id), row.name_ct),
            aware(row.created_at),
            numbers,
        )

    def _check(
        self, items: Sequence[NewNumber], *, positions: bool
    ) -> list[tuple[Phone, str | None, bytes]]:
        """Every number parsed, labelled and blind-indexed, or the first problem. Errors name
        a number by its position (``numbers[2]``), never by its value: it is personal data."""
        checked = []
        for i, item in enumerate(items):
            what = f"numbers[{i}]" if positions else "the number"
            phone = parse_phone(item.number, item.region, what=what)
            label = _label(item.label, what)
            checked.append((phone, label, self.vault.blind_index("phone", phone.e164)))
        if len({index for _, _, index in checked}) < len(checked):
            raise NumberAlreadyListed("a number is given twice")
        if len(checked) > MAX_ENTRIES:
            raise NumberListLimit(f"a number list holds at most {MAX_ENTRIES} numbers")
        return checked

    def _insert(
        self, subject_id: str, list_id: str, checked: list[tuple[Phone, str | None, bytes]]
    ) -> list[ListedNumber]:
        count = self.session.scalar(
            select(func.count())
            .select_from(NumberListEntry)
            .where(NumberListEntry.list_id == list_id)
        )
        if (count or 0) + len(checked) > MAX_ENTRIES:
            raise NumberListLimit(f"a number list holds at most {MAX_ENTRIES} numbers")
        if checked and self.session.scalar(
            select(NumberListEntry.id).where(
                NumberListEntry.list_id == list_id,
                NumberListEntry.number_index.in_([index for _, _, index in checked]),
            )
        ):
            raise NumberAlreadyListed("this number is in the list already")
        now = self.clock.now()
        added = []
        for position, (phone, label, index) in enumerate(checked):
            entry_id = new_id()
            # A microsecond apart, so a list reads back in the order its numbers were given.
            at = now + timedelta(microseconds=position)
            self.session.add(
                NumberListEntry(
                    id=entry_id,
                    list_id=list_id,
                    subject_id=subject_id,
                    number_index=index,
                    number_ct=self._seal(
                        subject_id, Field("number_list_entries", "number_ct", entry_id), phone.e164
                    ),
                    label_ct=(
                        self._seal(
                            subject_id, Field("number_list_entries", "label_ct", entry_id), label
                        )
                        if label is not None
                        else None
                    ),
                    created_at=at,
                )
            )
            added.append(ListedNumber(entry_id, phone.e164, phone.region, label, at))
        self.session.flush()
        return added

    # -- the owner's calls ---------------------------------------------------------------

    def lists(self, subject_id: str) -> list[NumberListSummary]:
        """The owner's lists with their sizes, oldest first."""
        sizes = (
            select(NumberListEntry.list_id, func.count().label("size"))
            .where(NumberListEntry.subject_id == subject_id)
            .group_by(NumberListEntry.list_id)
            .subquery()
        )
        rows = self.session.execute(
            select(NumberList, func.coalesce(sizes.c.size, 0))
            .outerjoin(sizes, sizes.c.list_id == NumberList.id)
            .where(NumberList.subject_id == subject_id)
            .order_by(NumberList.created_at, NumberList.id)
        )
        return [
            NumberListSummary(
                row.id,
                self._open(subject_id, Field("number_lists", "name_ct", row.id), row.name_ct),
                int(size),
                aware(row.created_at),
            )
            for row, size in rows
        ]

    def create(
        self, subject_id: str, name: str, numbers: Sequence[NewNumber] = ()
    ) -> NumberListView:
        """A new list, with its first numbers if given (all or none).

        Raises ``InvalidInput`` for a bad name or label, ``InvalidPhoneNumber`` or
        ``InvalidRegion`` naming the number's position and the reason,
        ``NumberAlreadyListed`` for a number given twice, ``NumberListLimit``.
        """
        clean = _name(name)
        checked = self._check(numbers, positions=True)
        lists = self.session.scalar(
            select(func.count()).select_from(NumberList).where(NumberList.subject_id == subject_id)
        )
        if (lists or 0) >= MAX_LISTS:
            raise NumberListLimit(f"an account has at most {MAX_LISTS} number lists")
        list_id = new_id()
        row = NumberList(
            id=list_id,
            subject_id=subject_id,
            name_ct=self._seal(subject_id, Field("number_lists", "name_ct", list_id), clean),
            created_at=self.clock.now(),
        )
        self.session.add(row)
        self.session.flush()
        self._insert(subject_id, list_id, checked)
        self._record(subject_id, Event.NUMBER_LIST_CREATED, list_id)
        return self._view(row)

    def get(self, subject_id: str, list_id: str) -> NumberListView:
        """One of the owner's lists with its numbers; raises ``NumberListNotFound``."""
        return self._view(self._owned(subject_id, list_id))

    def rename(self, subject_id: str, list_id: str, name: str) -> NumberListView:
        """Raises ``NumberListNotFound`` or ``InvalidInput`` for a bad name."""
        row = self._owned(subject_id, list_id)
        row.name_ct = self._seal(subject_id, Field("number_lists", "name_ct", list_id), _name(name))
        self.session.flush()
        self._record(subject_id, Event.NUMBER_LIST_RENAMED, list_id)
        return self._view(row)

    def delete(self, subject_id: str, list_id: str) -> None:
        """Delete a list with its numbers; raises ``NumberListNotFound``."""
        row = self._owned(subject_id, list_id)
        self.session.execute(delete(NumberListEntry).where(NumberListEntry.list_id == list_id))
        self.session.delete(row)
        self.session.flush()
        self._record(subject_id, Event.NUMBER_LIST_DELETED, list_id)

    def add_number(self, subject_id: str, list_id: str, number: NewNumber) -> ListedNumber:
        """Add one number to a list, normalised to E.164.

        Raises ``NumberListNotFound``, ``InvalidPhoneNumber`` or ``InvalidRegion`` with
        the reason, ``InvalidInput`` for an over-long label, ``NumberAlreadyListed``,
        ``NumberListLimit``.
        """
        self._owned(subject_id, list_id)
        (added,) = self._insert(subject_id, list_id, self._check([number], positions=False))
        self._record(subject_id, Event.NUMBER_LIST_CHANGED, list_id)
        return added

    def remove_number(self, subject_id: str, list_id: str, entry_id: str) -> None:
        """Raises ``NumberListNotFound``, or ``NumberListEntryNotFound`` for an entry
        that is not in this list."""
        self._owned(subject_id, list_id)
        entry = self.session.get(NumberListEntry, entry_id)
        if entry is None or entry.list_id != list_id:
            raise NumberListEntryNotFound("no such number in this list")
        self.session.delete(entry)
        self.session.flush()
        self._record(subject_id, Event.NUMBER_LIST_CHANGED, list_id)
