"""Shapes of the CDR intake: the JSON batch the PBX posts, and the per-row answer."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from privault.service.cdrs import (
    CALL_ID,
    MAX_BATCH,
    CdrIn,
    IngestReport,
    Reason,
    RowResult,
    Status,
    rejected,
)
from privault.service.errors import CdrBatchInvalid, CdrBatchTooLarge
from privault.service.schemas import Strict


class CdrJsonIn(Strict):
    """One CDR. Values are checked per row: a bad one rejects its row, not the batch."""

    call_id: str = Field(
        description="The PBX's unique id of the call (Asterisk's uniqueid), 1 to 64 printable "
        "ASCII characters. Ingest is idempotent on it.",
        examples=["1714557600.1042"],
    )
    room_id: str = Field(description="The Room ID the caller entered.", examples=["4817305926"])
    caller: str | None = Field(
        default=None,
        description="The caller's number, E.164 preferred; null, empty or 'anonymous' when "
        "withheld. Stored encrypted; one that reads as no number is kept as anonymous.",
        examples=["+447700900123"],
    )
    dial_in: str | None = Field(
        default=None,
        description="The dial-in number called, E.164 preferred. National callers are read in "
        "its country.",
        examples=["+33170369000"],
    )
    start: str = Field(
        description="ISO 8601; without an offset, in the batch's time zone (UTC by default).",
        examples=["2024-05-01T09:30:00Z"],
    )
    answer: str | None = Field(default=None, description="Null or empty when not answered.")
    end: str | None = Field(default=None, description="When the call ended.")
    duration: int | str | None = Field(
        default=None, description="Seconds from start to end; end - start when null."
    )
    billsec: int | str | None = Field(
        default=None, description="Seconds from answer to end; end - answer (or 0) when null."
    )
    disposition: str = Field(
        description="ANSWERED, NO ANSWER, BUSY, FAILED or CONGESTION.", examples=["ANSWERED"]
    )


class CdrBatchIn(Strict):
    cdrs: list[CdrJsonIn] = Field(
        max_length=MAX_BATCH,
        description=f"At most {MAX_BATCH} CDRs, within the body size limit (1 MiB by default, "
        "about 4,000 CDRs); batches of 1,000 are a good size.",
    )


class CdrResultOut(BaseModel):
    row: int = Field(description="Position in `cdrs` from 1, or the line of the CSV body.")
    call_id: str | None = Field(description="Null when the row had no readable call id.")
    status: Status
    reason: Reason | None = Field(
        description="Why a row was rejected; on an accepted row, `caller_unreadable` when the "
        "caller was kept as anonymous."
    )
    detail: str | None = Field(description="The reason in a sentence; never the values sent.")


class CdrBatchOut(BaseModel):
    accepted: int
    duplicate: int
    rejected: int
    results: list[CdrResultOut] = Field(description="One per CDR sent, in order.")

    @classmethod
    def of(cls, report: IngestReport) -> CdrBatchOut:
        return cls(
            accepted=report.accepted,
            duplicate=report.duplicate,
            rejected=report.rejected,
            results=[CdrResultOut(**r._asdict()) for r in report.results],
        )


def answer_json(report: IngestReport) -> bytes:
    """``report`` as a ``CdrBatchOut`` document, written straight from its rows: building and
    then validating a model per row would cost more than storing it."""
    return json.dumps(
        {
            "accepted": report.accepted,
            "duplicate": report.duplicate,
            "rejected": report.rejected,
            "results": [
                {
                    "row": r.row,
                    "call_id": r.call_id,
                    "status": r.status,
                    "reason": r.reason,
                    "detail": r.detail,
                }
                for r in report.results
            ],
        },
        separators=(",", ":"),
    ).encode()


def _problem(exc: ValidationError) -> str:
    """The first problem of a row, by field; never the value."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "row"
    if first["type"] == "extra_forbidden":
        return f"{where}: is not a known field"
    if first["type"] == "missing":
        return f"{where}: is required"
    return f"{where}: {first['msg']}"


_FIELDS = frozenset(CdrJsonIn.model_fields)
_REQUIRED = frozenset(name for name, info in CdrJsonIn.model_fields.items() if info.is_required())


def _plain(row: int, item: Any) -> CdrIn | None:
    """The row when it holds only the plain types ``CdrJsonIn`` takes as they are (what the
    model would return unchanged), else ``None`` for the model to judge. Most rows are plain:
    this spares them a model each."""
    if type(item) is not dict or not _REQUIRED <= item.keys() <= _FIELDS:
        return None
    get = item.get
    call_id, room_id, start, disposition = (
        item["call_id"],
        item["room_id"],
        item["start"],
        item["disposition"],
    )
    caller, dial_in, answer, end = get("caller"), get("dial_in"), get("answer"), get("end")
    duration, billsec = get("duration"), get("billsec")
    for text in (call_id, room_id, start, disposition):
        if type(text) is not str:
            return None
    for optional in (caller, dial_in, answer, end):
        if optional is not None and type(optional) is not str:
            return None
    for seconds in (duration, billsec):
        if seconds is not None and type(seconds) is not int and type(seconds) is not str:
            return None
    return CdrIn(
        row, call_id, room_id, caller, dial_in, start, answer, end, duration, billsec, disposition
    )


def rows_from_json(body: Any, limit: int | None = MAX_BATCH) -> list[CdrIn | RowResult]:
    """The CDRs of a ``{"cdrs": [...]}`` body, rows of the wrong shape rejected one by one.

    Raises ``CdrBatchInvalid`` when the body is not such an object, ``CdrBatchTooLarge``
    over ``limit`` CDRs (a file to import in batches has none).
    """
    if not isinstance(body, dict) or set(body) != {"cdrs"} or not isinstance(body["cdrs"], list):
        raise CdrBatchInvalid('send the CDRs as {"cdrs": [...]}')
    items = body["cdrs"]
    if limit is not None and len(items) > limit:
        raise CdrBatchTooLarge(f"a batch holds at most {limit} CDRs; this one has {len(items)}")
    out: list[CdrIn | RowResult] = []
    for row, item in enumerate(items, start=1):
        plain = _plain(row, item)
        if plain is not None:
            out.append(plain)
            continue
        try:
            cdr = CdrJsonIn.model_validate(item)
        except ValidationError as exc:
            call_id = item.get("call_id") if isinstance(item, dict) else None
            readable = isinstance(call_id, str) and CALL_ID.fullmatch(call_id)
            out.append(
                rejected(row, call_id if readable else None, Reason.INVALID_ROW, _problem(exc))
            )
            continue
        out.append(
            CdrIn(
                row,
                cdr.call_id,
                cdr.room_id,
                cdr.caller,
                cdr.dial_in,
                cdr.start,
                cdr.answer,
                cdr.end,
                cdr.duration,
                cdr.billsec,
                cdr.disposition,
            )
        )
    return out
