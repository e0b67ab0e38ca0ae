"""Call detail records from the PBX (P2.7).

Each CDR belongs to the owner of the room it names (found by the Room ID's blind index).
The caller's number is normalised to E.164, sealed under the owner's data key
(``Field("call_records", "caller_ct", call_id)``) and found by its blind index ("phone",
the same index as number lists and PIN lockouts use); its country is kept in clear.

``CdrService.ingest`` is the one plain function behind every intake (HTTP JSON, HTTP CSV,
``privault cdr import``). It answers per row, in the batch's order:

- ``accepted``: stored now;
- ``duplicate``: a CDR with this call id is stored already, or came earlier in the batch
  (the first one wins, also across concurrent batches): re-sending a batch adds nothing;
- ``rejected`` with a stable ``reason`` code and a ``detail`` sentence (which never quotes
  the values sent): the rest of the batch goes on without it.

Choices:

- A caller that is missing or withheld (``anonymous``, ``restricted``, ...) is stored as
  anonymous. A caller that reads as no phone number is stored as anonymous too, and the row
  is ``accepted`` with the note ``caller_unreadable``: the call and its billing still
  happened, and the unreadable text is not kept (data minimisation).
- A number only has to be possible in its country (the length fits), not valid: networks
  send numbers from ranges newer than libphonenumber's metadata. A national number is read
  in the country of the dial-in number; digits without a prefix that read as no national
  number are tried as international (carriers often drop the "+").
- The dial-in number is the service's own, not personal data: kept in clear in E.164, or
  left empty when it reads as no number (an Asterisk ``dst`` may be an extension, ``s``).
- Timestamps are ISO 8601 (``2024-05-01 09:30:00`` or ``2024-05-01T09:30:00+02:00``);
  those without an offset are read in the batch's time zone (UTC unless told), stored in UTC.
- Dispositions are Asterisk's: ANSWERED, NO ANSWER, BUSY, FAILED, CONGESTION (any case,
  ``_`` for the space). Missing ``duration`` is end - start; missing ``billsec`` is
  end - answer, or 0 for an unanswered call.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from enum import StrEnum
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.orm import Session

from privault.access.audit import AuditLog, Event
from privault.clock import Clock
from privault.db import binder, insert_new_rows, rows_where_in
from privault.retention.partitions import Partitions
from privault.service.errors import CdrBatchTooLarge, InvalidTimezone
from privault.service.models import CallRecord, Room
from privault.service.phones import read_number
from privault.vault import Field, Vault

#: Most CDRs one call of ``ingest`` takes; the HTTP body limit usually bites first.
MAX_BATCH = 10_000
MAX_ROOM_ID = 32
MAX_SECONDS = 2**31 - 1
#: A start further ahead of the service's clock than this is a PBX with a wrong clock.
FUTURE_SLACK = timedelta(days=1)
#: What a PBX sends for a withheld caller ID.
WITHHELD = frozenset(
    {"", "anonymous", "unknown", "private", "restricted", "unavailable", "withheld"}
)
CALL_ID = re.compile(r"[\x21-\x7e]{1,64}")
_CALL_ID = CALL_ID.fullmatch

COLUMNS = (
    "call_id",
    "subject_id",
    "caller_ct",
    "caller_index",
    "caller_country",
    "dial_in",
    "started_at",
    "answered_at",
    "ended_at",
    "duration",
    "billsec",
    "disposition",
    "ingested_at",
)


class Disposition(StrEnum):
    ANSWERED = "ANSWERED"
    NO_ANSWER = "NO ANSWER"
    BUSY = "BUSY"
    FAILED = "FAILED"
    CONGESTION = "CONGESTION"


_DISPOSITIONS = {d.value: d for d in Disposition}


class Status(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


class Reason(StrEnum):
    """Why a row was rejected (or, for ``caller_unreadable``, what an accepted row lost)."""

    INVALID_ROW = "invalid_row"
    UNEXPECTED_COLUMNS = "unexpected_columns"
    BAD_CALL_ID = "bad_call_id"
    MISSING_ROOM = "missing_room"
    UNKNOWN_ROOM = "unknown_room"
    BAD_TIMESTAMP = "bad_timestamp"
    BAD_DURATION = "bad_duration"
    END_BEFORE_START = "end_before_start"
    ANSWER_OUTSIDE_CALL = "answer_outside_call"
    START_IN_FUTURE = "start_in_future"
    UNKNOWN_DISPOSITION = "unknown_disposition"
    CALLER_UNREADABLE = "caller_unreadable"


class CdrIn(NamedTuple):
    """One CDR as the PBX sent it, not checked yet. ``row`` says where it was in the input
    (a position in a JSON list, a line of a CSV file), for the answer."""

    row: int
    call_id: str
    room_id: str
    caller: str | None
    dial_in: str | None
    start: str
    answer: str | None
    end: str | None
    duration: int | str | None
    billsec: int | str | None
    disposition: str


class RowResult(NamedTuple):
    row: int
    call_id: str | None
    status: Status
    reason: Reason | None = None
    detail: str | None = None


@dataclass(frozen=True)
class IngestReport:
    results: list[RowResult]
    counts: Counter[Status] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "counts", Counter(r.status for r in self.results))

    @property
    def accepted(self) -> int:
        return self.counts[Status.ACCEPTED]

    @property
    def duplicate(self) -> int:
        return self.counts[Status.DUPLICATE]

    @property
    def rejected(self) -> int:
        return self.counts[Status.REJECTED]


def rejected(row: int, call_id: str | None, reason: Reason, detail: str) -> RowResult:
    """A row refused before ``ingest`` (by an intake adapter), for ``ingest`` to pass on."""
    return RowResult(row, call_id, Status.REJECTED, reason, detail)


def time_zone(name: str | None) -> tzinfo:
    """The IANA zone ``name`` (UTC for ``None``); raises ``InvalidTimezone``."""
    if name is None or name.upper() in {"UTC", "GMT", "Z"}:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidTimezone(f"{name[:64]!r} is not a time zone name like Europe/Paris") from None


class _Refused(Exception):
    def __init__(self, reason: Reason, detail: str) -> None:
        self.reason = reason
        self.detail = detail


class _Checked(NamedTuple):
    position: int
    row: int
    call_id: str
    room_id: str
    caller: tuple[str, str | None] | None
    caller_unreadable: bool
    dial_in: str | None
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    duration: int
    billsec: int
    disposition: Disposition


def _when(value: str | None, what: str, zone: tzinfo) -> datetime | None:
    """``value`` in UTC; naive ones are in ``zone``. ``None`` for nothing."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            if zone is UTC and len(value) > 10:  # faster than replace(), which is slow
                return datetime.fromisoformat(value + "+00:00")
            return parsed.replace(tzinfo=zone).astimezone(UTC)
        return parsed.astimezone(UTC)
    except (TypeError, ValueError, OverflowError):
        raise _Refused(
            Reason.BAD_TIMESTAMP,
            f"{what} is not a timestamp like 2024-05-01 09:30:00 or 2024-05-01T09:30:00+02:00",
        ) from None


def _seconds(value: int | str | None, what: str) -> int | None:
    if type(value) is int and 0 <= value <= MAX_SECONDS:
        return value
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.isascii() and value.strip().isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_SECONDS:
        return value
    raise _Refused(Reason.BAD_DURATION, f"{what} must be a whole number of seconds, 0 or more")


def _disposition(value: str) -> Disposition:
    found = _DISPOSITIONS.get(value)
    if found is None and isinstance(value, str):
        found = _DISPOSITIONS.get(value.strip().upper().replace("_", " "))
    if found is None:
        raise _Refused(
            Reason.UNKNOWN_DISPOSITION, "disposition must be one of " + ", ".join(_DISPOSITIONS)
        )
    return found


def _span(first: datetime | None, last: datetime | None) -> int | None:
    if first is None or last is None:
        return None
    return round((last - first).total_seconds())


class CdrService:
    """Ingest of the PBX's call detail records into ``call_records`` (see the module)."""

    def __init__(
        self,
        session: Session,
        vault: Vault,
        audit: AuditLog,
        clock: Clock,
        partitions: Partitions,
        *,
        source: str = "api",
    ) -> None:
        self.session = session
        self.vault = vault
        self.audit = audit
        self.clock = clock
        self.partitions = partitions
        self.source = source

    def ingest(
        self,
        batch: Sequence[CdrIn | RowResult],
        *,
        actor: str,
        zone: tzinfo = UTC,
    ) -> IngestReport:
        """Check and store a batch of CDRs; one result per item, in the batch's order.

        Items that are ``RowResult`` already (refused by an intake adapter) are passed on.
        Timestamps without an offset are read in ``zone``. Idempotent on the call id, also
        against concurrent batches. A bad row never costs the others. One access-log entry
        (counts only) when anything was stored. Raises ``CdrBatchTooLarge`` over ``MAX_BATCH``
        items; raises nothing for what a row holds.
        """
        if len(batch) > MAX_BATCH:
            raise CdrBatchTooLarge(
                f"a batch holds at most {MAX_BATCH} CDRs; this one has {len(batch)}"
            )
        now = self.clock.now()
        results: list[RowResult | None] = [None] * len(batch)
        checked: list[_Checked] = []
        seen: set[str] = set()
        for position, item in enumerate(batch):
            if isinstance(item, RowResult):
                results[position] = item
                continue
            try:
                good = self._check(position, item, zone, now)
            except _Refused as refused:
                well_formed = isinstance(item.call_id, str) and CALL_ID.fullmatch(item.call_id)
                results[position] = rejected(
                    item.row,
                    item.call_id if well_formed else None,
                    refused.reason,
                    refused.detail,
                )
                continue
            if good.call_id in seen:
                results[position] = RowResult(good.row, good.call_id, Status.DUPLICATE)
                continue
            seen.add(good.call_id)
            checked.append(good)

        owners = self._owners({c.room_id for c in checked})
        placed = []
        for good in checked:
            if good.room_id in owners:
                placed.append(good)
            else:
                results[good.position] = rejected(
                    good.row, good.call_id, Reason.UNKNOWN_ROOM, "no room has this Room ID"
                )

        inserted = self._store(placed, owners, now)
        for good in placed:
            if good.call_id not in inserted:
                results[good.position] = RowResult(good.row, good.call_id, Status.DUPLICATE)
            elif good.caller_unreadable:
                results[good.position] = RowResult(
                    good.row,
                    good.call_id,
                    Status.ACCEPTED,
                    Reason.CALLER_UNREADABLE,
                    "the caller number reads as no phone number; the call is kept as anonymous",
                )
            else:
                results[good.position] = RowResult(good.row, good.call_id, Status.ACCEPTED)
        report = IngestReport([r for r in results if r is not None])
        if report.accepted:
            self.audit.record(
                self.session,
                self.source,
                Event.CDRS_INGESTED,
                actor=actor,
                categories=["call_records"],
                detail={
                    "accepted": report.accepted,
                    "duplicate": report.duplicate,
                    "rejected": report.rejected,
                },
            )
        return report

    def _check(self, position: int, item: CdrIn, zone: tzinfo, now: datetime) -> _Checked:
        """The row made ready for storing, or ``_Refused`` saying what is wrong with it."""
        call_id = item.call_id
        if not isinstance(call_id, str) or not _CALL_ID(call_id):
            raise _Refused(
                Reason.BAD_CALL_ID,
                "the call id must be 1 to 64 printable ASCII characters without spaces",
            )
        room_id = item.room_id.strip() if isinstance(item.room_id, str) else ""
        if not room_id or len(room_id) > MAX_ROOM_ID:
            raise _Refused(
                Reason.MISSING_ROOM,
                "the record names no Room ID (Master.csv: set CDR(userfield) to the Room ID)",
            )
        started = _when(item.start, "start", zone)
        if started is None:
            raise _Refused(Reason.BAD_TIMESTAMP, "start is required")
        answered = _when(item.answer, "answer", zone)
        ended = _when(item.end, "end", zone)
        if started > now + FUTURE_SLACK:
            raise _Refused(Reason.START_IN_FUTURE, "start is ahead of the service's clock")
        if ended is not None and ended < started:
            raise _Refused(Reason.END_BEFORE_START, "end is before start")
        if answered is not None and (answered < started or (ended and answered > ended)):
            raise _Refused(Reason.ANSWER_OUTSIDE_CALL, "answer is not between start and end")
        duration = _seconds(item.duration, "duration")
        if duration is None:
            duration = _span(started, ended)
            if duration is None:
                raise _Refused(Reason.BAD_DURATION, "duration is required when end is not given")
        billsec = _seconds(item.billsec, "billsec")
        if billsec is None:
            billsec = _span(answered, ended) or 0
        disposition = _disposition(item.disposition)
        dial_in = read_number(item.dial_in) if item.dial_in else None
        caller = None
        unreadable = False
        if item.caller and item.caller.lower() not in WITHHELD:
            caller = read_number(item.caller, dial_in[1] if dial_in else None)
            unreadable = caller is None and item.caller.strip().lower() not in WITHHELD
        return _Checked(
            position,
            item.row,
            call_id,
            room_id,
            caller,
            unreadable,
            dial_in[0] if dial_in else None,
            started,
            answered,
            ended,
            duration,
            billsec,
            disposition,
        )

    def _owners(self, room_ids: set[str]) -> dict[str, str]:
        """Room ID -> its owner's subject id, for the Room IDs some room has."""
        by_index = {self.vault.blind_index("room_id", r): r for r in room_ids}
        found = rows_where_in(
            self.session, Room, ("room_id_index", "subject_id"), "room_id_index", list(by_index)
        )
        return {by_index[index]: subject_id for index, subject_id in found}

    def _store(self, rows: list[_Checked], owners: dict[str, str], now: datetime) -> set[str]:
        """Seal, index and insert; returns the call ids stored now (the rest were taken)."""
        callers = [(r, r.caller[0]) for r in rows if r.caller is not None]
        sealed = iter(
            self.vault.encrypt_many(
                self.session,
                [
                    (owners[r.room_id], Field("call_records", "caller_ct", r.call_id), e164)
                    for r, e164 in callers
                ],
            )
        )
        indexes = {e164: self.vault.blind_index("phone", e164) for e164 in {e for _, e in callers}}
        stamp = binder(self.session, CallRecord, "started_at")
        ingested = stamp(now)
        values = []
        for r in rows:
            caller = r.caller
            values.append(
                (
                    r.call_id,
                    owners[r.room_id],
                    next(sealed) if caller else None,
                    indexes[caller[0]] if caller else None,
                    caller[1] if caller else None,
                    r.dial_in,
                    stamp(r.started_at),
                    stamp(r.answered_at) if r.answered_at else None,
                    stamp(r.ended_at) if r.ended_at else None,
                    r.duration,
                    r.billsec,
                    r.disposition.value,
                    ingested,
                )
            )
        self.partitions.ensure(self.session, "call_records", (r.started_at for r in rows))
        return insert_new_rows(self.session, CallRecord, COLUMNS, values, key="call_id")
