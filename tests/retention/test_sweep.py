"""The retention sweep (P6.2) and legal holds against it (P6.3): what has outlived its
category's period is erased, in batches, and counted by category, never by content;
what a hold covers stays until the hold is released."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select, text

from factories import Person, register, run_cli, wait_for_advisory_lock_waiter
from privault.clock import FrozenClock
from privault.config import Settings
from privault.db import make_engine
from privault.retention.models import SweepErased, SweepRun
from privault.retention.partitions import lock_key, partitions
from privault.retention.sweep import SweepReport
from privault.rights.models import RetainedRecord
from privault.runtime import Runtime, open_runtime, prepare
from privault.service.cdrs import CdrIn
from privault.service.messages import Channel as MessageChannel
from privault.service.messages import Draft
from privault.service.models import CallRecord, Message

# The clock of these tests: 20 January 2027. Call records are kept 12 months.
OLD = datetime(2025, 5, 1, 9, 30, tzinfo=UTC)  # expired
RECENT = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)  # within the 12 months


def cdr(room_id: str, call_id: str, start: datetime) -> CdrIn:
    end = start + timedelta(minutes=12)
    return CdrIn(
        row=1,
        call_id=call_id,
        room_id=room_id,
        caller="+447700900123",
        dial_in="+442079460000",
        start=f"{start:%Y-%m-%d %H:%M:%S}",
        answer=f"{start:%Y-%m-%d %H:%M:%S}",
        end=f"{end:%Y-%m-%d %H:%M:%S}",
        duration=720,
        billsec=720,
        disposition="ANSWERED",
    )


def calls(runtime: Runtime, person: Person, *starts: datetime) -> list[str]:
    ids = [f"{person.subject_id[:8]}-{n}" for n in range(len(starts))]
    with runtime.transaction() as session:
        report = runtime.cdrs(session).ingest(
            [cdr(person.room_id, i, s) for i, s in zip(ids, starts, strict=True)],
            actor="pbx:test",
        )
    assert report.accepted == len(starts)
    return ids


def left(runtime: Runtime, person: Person) -> set[str]:
    with runtime.factory() as session:
        return set(
            session.scalars(
                select(CallRecord.call_id).where(CallRecord.subject_id == person.subject_id)
            )
        )


def hold(runtime: Runtime, people: list[Person], category: str | None) -> str:
    with runtime.transaction() as session:
        return (
            runtime.holds(session)
            .place(
                subject_ids=[p.subject_id for p in people],
                category=category,
                kind="proceedings",
                reason="Case 2026/114",
                placed_by="operator",
            )
            .id
        )


def release(runtime: Runtime, hold_id: str) -> None:
    with runtime.transaction() as session:
        runtime.holds(session).release(hold_id, by="operator")


def test_p6_2_call_records_past_their_period_are_erased_and_counted_not_described(
    at: Runtime,
) -> None:
    alice, bob = register(at, "alice"), register(at, "bob")
    old_a, recent_a = calls(at, alice, OLD, RECENT)
    (old_b,) = calls(at, bob, OLD - timedelta(days=40))
    seen: list[tuple[str, int]] = []
    report = at.retention_sweep().run(by="operator", progress=lambda t, n: seen.append((t, n)))
    assert left(at, alice) == {recent_a} and left(at, bob) == set()
    [swept] = [s for s in report.swept if s.table == "call_records"]
    assert (swept.category, swept.rows) == ("call_records", 2)
    assert sum(n for t, n in seen if t == "call_records") == 2
    with at.factory() as session:
        run = session.get(SweepRun, report.run_id)
        assert run is not None and run.finished_at is not None and run.by == "operator"
        erased = session.scalars(select(SweepErased).where(SweepErased.run_id == report.run_id))
        assert {(e.table_name, e.category, e.rows) for e in erased} == {
            ("call_records", "call_records", 2)
        }
    # A second run finds nothing more.
    assert at.retention_sweep().run().rows == 0
    assert old_a and old_b


def test_p6_2_a_row_is_kept_to_the_end_of_its_period_and_no_longer(
    at: Runtime, clock: FrozenClock
) -> None:
    alice = register(at, "alice")
    start = clock.now() - timedelta(days=300)
    (call,) = calls(at, alice, start)
    at.retention_sweep().run()
    assert left(at, alice) == {call}
    clock.at = start + timedelta(days=366)
    at.retention_sweep().run()
    assert left(at, alice) == set()


def test_p6_3_a_hold_on_a_person_keeps_their_rows_through_sweeps_until_released(
    at: Runtime,
) -> None:
    alice, bob = register(at, "alice"), register(at, "bob")
    (old_a,) = calls(at, alice, OLD)
    calls(at, bob, OLD)
    held = hold(at, [alice], "call_records")
    for _ in range(2):
        at.retention_sweep().run()
        assert left(at, alice) == {old_a}
    assert left(at, bob) == set()
    release(at, held)
    at.retention_sweep().run()
    assert left(at, alice) == set()


def test_p6_3_a_hold_on_all_of_a_persons_data_keeps_every_category_of_theirs(
    at: Runtime,
) -> None:
    alice = register(at, "alice")
    (old_a,) = calls(at, alice, OLD)
    hold(at, [alice], None)
    at.retention_sweep().run()
    assert left(at, alice) == {old_a}


def test_p6_3_a_hold_on_a_category_for_everyone_stops_its_sweep(at: Runtime) -> None:
    alice = register(at, "alice")
    (old_a,) = calls(at, alice, OLD)
    held = hold(at, [], "call_records")
    report = at.retention_sweep().run()
    assert report.held == ["call_records"] and left(at, alice) == {old_a}
    release(at, held)
    assert at.retention_sweep().run().held == [] and left(at, alice) == set()


def test_p6_2_messages_go_when_the_persons_last_message_is_three_years_old(
    at: Runtime, clock: FrozenClock
) -> None:
    """Communications count from the person's last activity: an old message stays while a
    newer one of theirs is within the period, and all go together once it is not."""
    alice = register(at, "alice")
    start = clock.now()

    def send(text: str) -> None:
        with at.transaction() as session:
            at.messages(session).send(
                alice.subject_id, Draft("Hello", text), MessageChannel.WEB, None
            )

    send("first")
    clock.at = start + timedelta(days=2 * 365)
    send("second")
    clock.at = start + timedelta(days=4 * 365)  # the first is 4 years old, the second 2
    at.retention_sweep().run()
    assert messages(at, alice) == 2
    clock.at = start + timedelta(days=5 * 365 + 2)  # the latest is now over 3 years old
    at.retention_sweep().run()
    assert messages(at, alice) == 0


def messages(runtime: Runtime, person: Person) -> int:
    with runtime.factory() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(Message)
                .where(Message.subject_id == person.subject_id)
            )
            or 0
        )


def test_p6_2_what_the_law_kept_after_an_erasure_leaves_at_its_own_end(
    at: Runtime, clock: FrozenClock
) -> None:
    with at.transaction() as session:
        session.add_all(
            [
                RetainedRecord(
                    source_table="purchases",
                    source_row=f"row-{n}",
                    category="transactions",
                    subject_ref="ref",
                    values_ct=b"sealed",
                    obligation="ten years",
                    retained_at=clock.now(),
                    retain_until=clock.now() + timedelta(days=days),
                )
                for n, days in enumerate((10, 400))
            ]
        )
    clock.at += timedelta(days=11)
    report = at.retention_sweep().run()
    assert [s.rows for s in report.swept if s.table == "retained_records"] == [1]
    with at.factory() as session:
        assert session.scalars(select(RetainedRecord.source_row)).all() == ["row-1"]


def test_p6_2_the_worker_sweeps_once_a_day(at: Runtime, clock: FrozenClock) -> None:
    sweep = at.retention_sweep()
    assert sweep.due()
    sweep.run()
    assert not sweep.due()
    clock.at += timedelta(hours=23)
    assert not sweep.due()
    clock.at += timedelta(hours=1)
    assert sweep.due()


def test_p6_2_every_kept_for_a_period_table_names_where_its_period_counts_from(
    at: Runtime,
) -> None:
    tasks = at.retention_sweep().tasks()
    assert {t.table.table for t in tasks} >= {
        "call_records",
        "analytics_page_views",
        "analytics_visits",
        "cookie_consents",
        "messages",
        "purchases",
        "subscribers",
    }
    assert all(t.table.kept_from for t in tasks)


def test_p6_2_on_postgresql_an_expired_month_is_dropped_whole_unless_it_holds_a_held_row(
    at: Runtime, backend: str
) -> None:
    if backend != "postgresql":
        return  # SQLite has no partitions; the tests above cover its row-by-row delete
    alice, bob = register(at, "alice"), register(at, "bob")
    may = datetime(2025, 5, 3, tzinfo=UTC)
    june = datetime(2025, 6, 3, tzinfo=UTC)
    calls(at, alice, may, june)
    (bob_may,) = calls(at, bob, may + timedelta(days=1))
    hold(at, [bob], "call_records")
    with at.factory() as session:
        months = {p.name for p in partitions(session, "call_records")}
    assert {"call_records_p2025_05", "call_records_p2025_06"} <= months
    report = at.retention_sweep().run()
    [swept] = [s for s in report.swept if s.table == "call_records"]
    # June goes whole; May holds Bob's held call, so only Alice's row of it is deleted.
    assert (swept.rows, swept.partitions) == (2, 1)
    with at.factory() as session:
        months = {p.name for p in partitions(session, "call_records")}
        assert "call_records_p2025_06" not in months and "call_records_p2025_05" in months
        assert session.scalar(text("SELECT count(*) FROM call_records_p2025_05")) == 1
    assert left(at, bob) == {bob_may} and left(at, alice) == set()
    # A new call in a dropped month makes its partition again.
    calls(at, alice, june + timedelta(days=1))


def test_p6_2_on_postgresql_two_sweeps_at_once_drop_a_month_once(
    fresh_settings: Settings, backend: str
) -> None:
    """A sweep that meets a month another sweep is dropping waits for it, then finds the
    month gone and goes on, rather than failing on a table that no longer exists."""
    if backend != "postgresql":
        return  # SQLite has no partitions
    prepare(fresh_settings).dispose()
    runtime = open_runtime(
        fresh_settings, clock=FrozenClock(datetime(2027, 1, 20, 9, 0, tzinfo=UTC))
    )
    other = make_engine(fresh_settings.db_url)
    month = "call_records_p2025_05"
    try:
        calls(runtime, register(runtime, "alice"), OLD)
        outcome: list[object] = []

        def sweep() -> None:
            try:
                outcome.append(runtime.retention_sweep().run())
            except Exception as exc:
                outcome.append(exc)

        with other.connect() as conn:
            first = conn.begin()  # the other sweep, in the middle of dropping May
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(month)})
            sweeper = threading.Thread(target=sweep)
            sweeper.start()
            wait_for_advisory_lock_waiter(conn, "the sweep")
            conn.execute(text(f"DROP TABLE {month}"))
            first.commit()
        sweeper.join(timeout=60)
        [report] = outcome
        assert isinstance(report, SweepReport), report
        [swept] = [s for s in report.swept if s.table == "call_records"]
        assert (swept.rows, swept.partitions) == (0, 0)
    finally:
        other.dispose()
        runtime.close()


def test_p6_2_privault_sweep_prints_the_counts(fresh_settings: Settings, tmp_path: Path) -> None:
    prepare(fresh_settings).dispose()
    clock = FrozenClock(datetime(2027, 1, 20, 9, 0, tzinfo=UTC))
    runtime = open_runtime(fresh_settings, clock=clock)
    try:
        alice = register(runtime, "alice")
        calls(runtime, alice, OLD, OLD + timedelta(days=1))
    finally:
        runtime.close()
    done = run_cli(fresh_settings, tmp_path, "sweep")
    assert done.returncode == 0, done.stderr
    assert "call_records" in done.stdout and "2 row(s) erased" in done.stdout
    assert alice.email not in done.stdout + done.stderr
