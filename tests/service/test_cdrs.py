"""CDR ingest (P2.7): owned by the room's owner, callers in E.164 sealed and blind-indexed,
idempotent on the call id, answered per row, and Asterisk's Master.csv read as written.

``tests/fixtures/Master.csv`` is a cdr_csv log with ``loguniqueid``, ``loguserfield`` and
``usegmtime`` on (18 fields), the Room ID in ``userfield``; every number in it is from a
range reserved for fiction (+44 7700 900xxx, +44 20 7946 0xxx, +1 202 555 01xx,
+33 6 39 98 xx xx, +33 1 99 00 xx xx).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from factories import Person, give_room_id, register
from privault.access.models import AccessLogEntry
from privault.clock import aware
from privault.config import Settings
from privault.runtime import Runtime, open_runtime, prepare
from privault.service.cdr_csv import read_master_csv
from privault.service.cdrs import (
    MAX_BATCH,
    CdrIn,
    IngestReport,
    Reason,
    RowResult,
    Status,
    time_zone,
)
from privault.service.errors import CdrBatchTooLarge, InvalidTimezone
from privault.service.models import CallRecord
from privault.service.phones import read_number
from privault.vault import Field

MASTER_CSV = Path(__file__).parent.parent / "fixtures" / "Master.csv"
ROOM_A, ROOM_B = "4817305926", "7305924816"
UK_MOBILE = "+447700900123"


def cdr(room_id: str, call_id: str, row: int = 1, **changes: Any) -> CdrIn:
    base = CdrIn(
        row=row,
        call_id=call_id,
        room_id=room_id,
        caller=UK_MOBILE,
        dial_in="+442079460000",
        start="2024-05-01 09:30:00",
        answer="2024-05-01 09:30:04",
        end="2024-05-01 09:42:10",
        duration=730,
        billsec=726,
        disposition="ANSWERED",
    )
    return base._replace(**changes)


def ingest(runtime: Runtime, batch: list[CdrIn | RowResult], **kwargs: Any) -> IngestReport:
    with runtime.transaction() as session:
        return runtime.cdrs(session).ingest(batch, actor="pbx:test", **kwargs)


def stored(runtime: Runtime, call_id: str) -> CallRecord | None:
    with runtime.factory() as session:
        return session.get(CallRecord, call_id)


def count(runtime: Runtime) -> int:
    with runtime.factory() as session:
        return session.scalar(select(func.count()).select_from(CallRecord)) or 0


def caller_of(runtime: Runtime, record: CallRecord) -> str | None:
    if record.caller_ct is None:
        return None
    with runtime.factory() as session:
        return runtime.vault.decrypt(
            session,
            record.subject_id,
            Field("call_records", "caller_ct", record.call_id),
            record.caller_ct,
            purpose="service",
        )


def statuses(report: IngestReport) -> list[tuple[int, Status, Reason | None]]:
    return [(r.row, r.status, r.reason) for r in report.results]


# -- P2.7 ----------------------------------------------------------------------------------


def test_p2_7_a_cdr_belongs_to_the_room_owner_with_the_caller_sealed_and_indexed(
    runtime: Runtime, alice: Person, bob: Person
) -> None:
    report = ingest(runtime, [cdr(alice.room_id, "1714555800.1")])
    assert statuses(report) == [(1, Status.ACCEPTED, None)]
    assert (report.accepted, report.duplicate, report.rejected) == (1, 0, 0)

    record = stored(runtime, "1714555800.1")
    assert record is not None
    assert record.subject_id == alice.subject_id != bob.subject_id
    assert record.caller_ct is not None
    for digits in ("447700900123", "7700900123", "7700 900123"):
        assert digits.encode() not in record.caller_ct
    assert caller_of(runtime, record) == UK_MOBILE
    assert record.caller_index == runtime.vault.blind_index("phone", UK_MOBILE)
    assert record.caller_country == "GB"
    assert record.dial_in == "+442079460000"
    assert aware(record.started_at) == datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
    assert record.answered_at is not None and aware(record.answered_at) == datetime(
        2024, 5, 1, 9, 30, 4, tzinfo=UTC
    )
    assert record.ended_at is not None and aware(record.ended_at) == datetime(
        2024, 5, 1, 9, 42, 10, tzinfo=UTC
    )
    assert (record.duration, record.billsec, record.disposition) == (730, 726, "ANSWERED")


@pytest.mark.parametrize(
    ("caller", "dial_in"),
    [
        ("+447700900123", None),
        ("+44 7700 900123", None),
        ("447700900123", "+33199000100"),
        ("00447700900123", "+33199000100"),
        ("07700900123", "+442079460000"),
        ("07700 900123", "442079460000"),
    ],
)
def test_p2_7_callers_are_normalised_to_e164_so_one_caller_has_one_index(
    runtime: Runtime, alice: Person, caller: str, dial_in: str | None
) -> None:
    assert statuses(ingest(runtime, [cdr(alice.room_id, "c1", caller=caller, dial_in=dial_in)]))[0][
        1
    ] == (Status.ACCEPTED)
    record = stored(runtime, "c1")
    assert record is not None
    assert caller_of(runtime, record) == UK_MOBILE
    assert record.caller_index == runtime.vault.blind_index("phone", UK_MOBILE)
    assert record.caller_country == "GB"


def test_p2_7_a_national_caller_is_read_in_the_dial_in_numbers_country(
    runtime: Runtime, alice: Person
) -> None:
    ingest(runtime, [cdr(alice.room_id, "fr", caller="06 39 98 12 34", dial_in="+33199000100")])
    record = stored(runtime, "fr")
    assert record is not None
    assert caller_of(runtime, record) == "+33639981234"
    assert (record.caller_country, record.dial_in) == ("FR", "+33199000100")


def test_withheld_callers_are_stored_as_anonymous(runtime: Runtime, alice: Person) -> None:
    batch: list[CdrIn | RowResult] = [
        cdr(alice.room_id, f"w{i}", row=i, caller=caller)
        for i, caller in enumerate([None, "", "anonymous", "Restricted", " unknown "], start=1)
    ]
    report = ingest(runtime, batch)
    assert [r.status for r in report.results] == [Status.ACCEPTED] * 5
    assert all(r.reason is None for r in report.results)
    for i in range(1, 6):
        record = stored(runtime, f"w{i}")
        assert record is not None
        assert (record.caller_ct, record.caller_index, record.caller_country) == (None, None, None)


def test_an_unreadable_caller_keeps_the_call_as_anonymous_and_says_so(
    runtime: Runtime, alice: Person
) -> None:
    report = ingest(runtime, [cdr(alice.room_id, "u1", caller="SIP/4242-phone", dial_in="600")])
    (result,) = report.results
    assert (result.status, result.reason) == (Status.ACCEPTED, Reason.CALLER_UNREADABLE)
    assert result.detail is not None and "4242" not in result.detail
    record = stored(runtime, "u1")
    assert record is not None
    assert (record.caller_ct, record.caller_index, record.dial_in) == (None, None, None)


def test_numbers_need_only_be_possible_not_in_libphonenumbers_plan() -> None:
    # Fictional ranges are not "valid" to libphonenumber, but a network does report them.
    assert read_number("+447700900123") == ("+447700900123", "GB")
    assert read_number("+33639981234") == ("+33639981234", "FR")
    assert read_number("+12025550147") == ("+12025550147", "US")
    assert read_number("+80012345678") == ("+80012345678", None)
    assert read_number("2001") is None
    assert read_number("s") is None
    assert read_number("+1 555 0100") is None  # local only: no area code


# -- Idempotency -------------------------------------------------------------------------


def test_resending_a_batch_adds_nothing(runtime: Runtime, alice: Person, bob: Person) -> None:
    batch: list[CdrIn | RowResult] = [
        cdr(alice.room_id, "r1", row=1),
        cdr(bob.room_id, "r2", row=2, caller=None),
        cdr(alice.room_id, "r3", row=3, disposition="busy"),
    ]
    first = ingest(runtime, batch)
    assert (first.accepted, first.duplicate, first.rejected) == (3, 0, 0)
    before = stored(runtime, "r1")
    again = ingest(runtime, batch)
    assert statuses(again) == [
        (1, Status.DUPLICATE, None),
        (2, Status.DUPLICATE, None),
        (3, Status.DUPLICATE, None),
    ]
    assert count(runtime) == 3
    after = stored(runtime, "r1")
    assert before is not None and after is not None
    assert after.caller_ct == before.caller_ct and after.ingested_at == before.ingested_at


def test_a_call_id_twice_in_one_batch_is_stored_once(runtime: Runtime, alice: Person) -> None:
    report = ingest(
        runtime,
        [
            cdr(alice.room_id, "twice", row=1),
            cdr(alice.room_id, "twice", row=2, duration=999),
            cdr(alice.room_id, "once", row=3),
        ],
    )
    assert statuses(report) == [
        (1, Status.ACCEPTED, None),
        (2, Status.DUPLICATE, None),
        (3, Status.ACCEPTED, None),
    ]
    record = stored(runtime, "twice")
    assert record is not None and record.duration == 730
    assert count(runtime) == 2


def test_a_bad_row_does_not_hide_a_later_good_one_with_its_call_id(
    runtime: Runtime, alice: Person
) -> None:
    report = ingest(
        runtime,
        [cdr(alice.room_id, "x", row=1, duration=-1), cdr(alice.room_id, "x", row=2)],
    )
    assert statuses(report) == [
        (1, Status.REJECTED, Reason.BAD_DURATION),
        (2, Status.ACCEPTED, None),
    ]


def test_concurrent_batches_store_each_call_once(fresh_settings: Settings) -> None:
    prepare(fresh_settings).dispose()
    runtimes = [open_runtime(fresh_settings) for _ in range(2)]
    try:
        owner = register(runtimes[0], "owner")
        batch: list[CdrIn | RowResult] = [
            cdr(owner.room_id, f"race-{i}", row=i) for i in range(1, 301)
        ]
        start = threading.Barrier(2)
        reports: list[IngestReport] = []

        def worker(runtime: Runtime) -> None:
            start.wait()
            reports.append(ingest(runtime, batch))

        threads = [threading.Thread(target=worker, args=(rt,)) for rt in runtimes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert len(reports) == 2
        assert sum(r.accepted for r in reports) == 300
        assert sum(r.duplicate for r in reports) == 300
        for i in range(300):
            assert {r.results[i].status for r in reports} == {Status.ACCEPTED, Status.DUPLICATE}
        assert count(runtimes[0]) == 300
    finally:
        for rt in runtimes:
            rt.close()


# -- Per-row answers ---------------------------------------------------------------------


def test_a_bad_row_never_costs_the_good_rows_of_its_batch(runtime: Runtime, alice: Person) -> None:
    room = alice.room_id
    bad: list[tuple[dict[str, Any], Reason]] = [
        ({"start": "yesterday"}, Reason.BAD_TIMESTAMP),
        ({"start": "2024-13-01 09:30:00"}, Reason.BAD_TIMESTAMP),
        ({"start": ""}, Reason.BAD_TIMESTAMP),
        ({"end": "01/05/2024 09:42"}, Reason.BAD_TIMESTAMP),
        ({"duration": -5}, Reason.BAD_DURATION),
        ({"duration": "-5"}, Reason.BAD_DURATION),
        ({"billsec": "12s"}, Reason.BAD_DURATION),
        ({"duration": 2**31}, Reason.BAD_DURATION),
        ({"duration": None, "end": None}, Reason.BAD_DURATION),
        ({"end": "2024-05-01 09:29:59"}, Reason.END_BEFORE_START),
        ({"answer": "2024-05-01 09:29:00"}, Reason.ANSWER_OUTSIDE_CALL),
        ({"answer": "2024-05-01 09:43:00"}, Reason.ANSWER_OUTSIDE_CALL),
        ({"disposition": "HUNG UP"}, Reason.UNKNOWN_DISPOSITION),
        ({"room_id": "5926481730"}, Reason.UNKNOWN_ROOM),
        ({"room_id": "  "}, Reason.MISSING_ROOM),
        ({"call_id": "has space"}, Reason.BAD_CALL_ID),
        ({"call_id": "x" * 65}, Reason.BAD_CALL_ID),
        ({"call_id": "nul\x00"}, Reason.BAD_CALL_ID),
        ({"start": "2999-01-01 00:00:00", "end": None}, Reason.START_IN_FUTURE),
    ]
    batch: list[CdrIn | RowResult] = []
    expected: list[tuple[int, Status, Reason | None]] = []
    row = 0
    for changes, reason in bad:
        row += 1
        batch.append(cdr(room, f"bad-{row}", row=row)._replace(**changes))
        expected.append((row, Status.REJECTED, reason))
        row += 1
        batch.append(cdr(room, f"good-{row}", row=row))
        expected.append((row, Status.ACCEPTED, None))
    report = ingest(runtime, batch)
    assert statuses(report) == expected
    assert report.accepted == len(bad) == report.rejected
    assert count(runtime) == len(bad)
    for result in report.results:
        if result.status is Status.REJECTED:
            assert result.detail and UK_MOBILE not in result.detail
            assert result.call_id is None or result.call_id.startswith("bad-")


def test_rows_refused_by_an_intake_adapter_are_passed_on_in_place(
    runtime: Runtime, alice: Person
) -> None:
    early = RowResult(2, None, Status.REJECTED, Reason.INVALID_ROW, "start: is required")
    report = ingest(
        runtime, [cdr(alice.room_id, "a", row=1), early, cdr(alice.room_id, "b", row=3)]
    )
    assert statuses(report) == [
        (1, Status.ACCEPTED, None),
        (2, Status.REJECTED, Reason.INVALID_ROW),
        (3, Status.ACCEPTED, None),
    ]


def test_missing_duration_and_billsec_come_from_the_timestamps(
    runtime: Runtime, alice: Person
) -> None:
    ingest(
        runtime,
        [
            cdr(alice.room_id, "d1", row=1, duration=None, billsec=None),
            cdr(alice.room_id, "d2", row=2, duration="", billsec="", answer=""),
        ],
    )
    first, second = stored(runtime, "d1"), stored(runtime, "d2")
    assert first is not None and (first.duration, first.billsec) == (730, 726)
    assert second is not None and (second.duration, second.billsec) == (730, 0)
    assert second.answered_at is None


def test_dispositions_are_read_in_any_case_and_stored_as_asterisk_writes_them(
    runtime: Runtime, alice: Person
) -> None:
    ingest(runtime, [cdr(alice.room_id, "n1", disposition="no_answer", answer=None)])
    record = stored(runtime, "n1")
    assert record is not None and record.disposition == "NO ANSWER"


def test_timestamps_without_an_offset_are_read_in_the_batch_time_zone(
    runtime: Runtime, alice: Person
) -> None:
    ingest(
        runtime,
        [
            cdr(alice.room_id, "tz1", row=1),
            cdr(alice.room_id, "tz2", row=2, start="2024-05-01T09:30:00+02:00", answer=None),
        ],
        zone=time_zone("Europe/Paris"),
    )
    for call_id in ("tz1", "tz2"):
        record = stored(runtime, call_id)
        assert record is not None
        assert aware(record.started_at) == datetime(2024, 5, 1, 7, 30, tzinfo=UTC)
    with pytest.raises(InvalidTimezone):
        time_zone("Mars/Olympus_Mons")


def test_a_batch_over_the_limit_is_refused_whole(runtime: Runtime, alice: Person) -> None:
    batch: list[CdrIn | RowResult] = [cdr(alice.room_id, f"m{i}") for i in range(MAX_BATCH + 1)]
    with pytest.raises(CdrBatchTooLarge):
        ingest(runtime, batch)


def test_an_ingest_is_on_the_access_log_with_counts_only(runtime: Runtime, alice: Person) -> None:
    ingest(runtime, [cdr(alice.room_id, "log1", row=1), cdr(alice.room_id, "log1", row=2)])
    with runtime.factory() as session:
        entry = session.scalars(
            select(AccessLogEntry).order_by(AccessLogEntry.seq.desc()).limit(1)
        ).one()
    assert entry.action == "api:cdr:ingested"
    assert entry.actor == "pbx:test"
    assert entry.categories == "call_records"
    assert entry.detail == '{"accepted":1,"duplicate":1,"rejected":0}'
    assert entry.subject_id is None


def test_the_start_may_be_a_little_ahead_of_the_service_clock(
    runtime: Runtime, alice: Person
) -> None:
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    report = ingest(runtime, [cdr(alice.room_id, "soon", start=soon, answer=None, end=None)])
    assert report.accepted == 1


# -- Asterisk's Master.csv ---------------------------------------------------------------


def test_p2_7_the_master_csv_sample_imports_as_asterisk_wrote_it(
    runtime: Runtime, alice: Person, bob: Person
) -> None:
    give_room_id(runtime, alice.subject_id, ROOM_A)
    give_room_id(runtime, bob.subject_id, ROOM_B)
    report = ingest(runtime, read_master_csv(MASTER_CSV.read_text()))
    assert statuses(report) == [
        (1, Status.ACCEPTED, None),
        (2, Status.ACCEPTED, None),
        (3, Status.ACCEPTED, None),
        (4, Status.ACCEPTED, None),
        (5, Status.ACCEPTED, None),
        (6, Status.ACCEPTED, None),
        (7, Status.REJECTED, Reason.MISSING_ROOM),
        (8, Status.ACCEPTED, Reason.CALLER_UNREADABLE),
        (9, Status.REJECTED, Reason.UNKNOWN_ROOM),
        (10, Status.ACCEPTED, None),
        (11, Status.ACCEPTED, None),
    ]
    assert [r.call_id for r in report.results] == [
        f"{stamp}.{n}"
        for n, stamp in enumerate(
            [
                *(1714555800, 1714555872, 1714556020, 1714572005, 1714576200, 1714576800),
                *(1714579200, 1714636800, 1714640400, 1714644000, 1714726800),
            ],
            start=1,
        )
    ]

    def facts(call_id: str) -> tuple[Any, ...]:
        record = stored(runtime, call_id)
        assert record is not None
        return (
            record.subject_id,
            caller_of(runtime, record),
            record.caller_country,
            record.dial_in,
            record.disposition,
            record.duration,
            record.billsec,
            record.answered_at is None,
        )

    a, b = alice.subject_id, bob.subject_id
    assert facts("1714555800.1") == (
        a,
        "+447700900123",
        "GB",
        "+442079460000",
        "ANSWERED",
        730,
        726,
        False,
    )
    assert facts("1714555872.2") == (
        a,
        "+33639981234",
        "FR",
        "+33199000100",
        "ANSWERED",
        658,
        655,
        False,
    )
    assert facts("1714556020.3") == (a, None, None, "+33199000100", "ANSWERED", 380, 376, False)
    assert facts("1714572005.4") == (
        b,
        "+12025550147",
        "US",
        "+12025550100",
        "ANSWERED",
        2700,
        2696,
        False,
    )
    assert facts("1714576200.5") == (
        b,
        "+447700900456",
        "GB",
        "+442079460000",
        "NO ANSWER",
        21,
        0,
        True,
    )
    assert facts("1714576800.6") == (b, "+447700900789", "GB", "+33199000100", "BUSY", 2, 0, True)
    assert facts("1714636800.8") == (a, None, None, None, "ANSWERED", 1801, 1800, False)
    assert facts("1714644000.10") == (b, "+12025550188", "US", "+12025550100", "FAILED", 0, 0, True)
    assert facts("1714726800.11")[:4] == (a, "+33639981234", "FR", "+33199000100")
    second, eleventh = stored(runtime, "1714555872.2"), stored(runtime, "1714726800.11")
    assert second is not None and eleventh is not None
    assert second.caller_index == eleventh.caller_index
    assert stored(runtime, "1714579200.7") is None and stored(runtime, "1714640400.9") is None

    again = ingest(runtime, read_master_csv(MASTER_CSV.read_text()))
    assert (again.accepted, again.duplicate, again.rejected) == (0, 9, 2)


def test_master_csv_records_of_another_width_are_rejected_by_line() -> None:
    lines = MASTER_CSV.read_text().splitlines()
    sixteen = ",".join(lines[0].split(",")[:16])  # loguniqueid off: no call id
    newcolumns = lines[0] + ',"","1714555800.1",1'  # newcdrcolumns on: 21 fields
    text = "\n".join(["", sixteen, newcolumns, '"unterminated,"x']) + "\n"
    rows = read_master_csv(text)
    assert len(rows) == 3
    assert isinstance(rows[0], RowResult)
    assert (rows[0].row, rows[0].reason) == (2, Reason.UNEXPECTED_COLUMNS)
    assert rows[0].detail is not None and "has 16" in rows[0].detail
    assert isinstance(rows[1], CdrIn)
    assert (rows[1].row, rows[1].call_id, rows[1].room_id) == (3, "1714555800.1", ROOM_A)
    assert isinstance(rows[2], RowResult) and rows[2].status is Status.REJECTED


def test_a_header_line_and_a_byte_order_mark_are_skipped() -> None:
    header = ",".join(
        [
            *("accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel"),
            *("lastapp", "lastdata", "start", "answer", "end", "duration", "billsec"),
            *("disposition", "amaflags", "uniqueid", "userfield"),
        ]
    )
    first = MASTER_CSV.read_text().splitlines()[0]
    rows = read_master_csv("\ufeff" + header + "\r\n" + first + "\r\n")
    assert len(rows) == 1
    assert isinstance(rows[0], CdrIn) and rows[0].row == 2
