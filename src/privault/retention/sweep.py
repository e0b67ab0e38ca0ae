"""The retention sweep (P6.2): what has outlived its category's retention is erased.

Each table of the data map whose category the policy keeps for a period names the time
its retention counts from (``kept_from``). A row whose category counts from collection
or the end of a contract is erased when that time is more than the period ago; a
category that counts from the person's last activity is erased for a person all at once,
when the latest of their rows in it is that old. What a legal hold covers stays (P6.3):
a hold on a category for everyone stops the sweep for that category; a hold on people
(for a category or for all their data) keeps theirs; once released, the next sweep
catches up. Records the law kept after an erasure leave at their own end date.

It works in batches, each its own transaction, so a stopped sweep loses nothing and the
next one goes on. On PostgreSQL, call records and page views are partitioned by month,
and a month that has expired as a whole, holding nothing held, is dropped at once.

Each run is recorded (``SweepRun``) with, per table, the category and how many rows went:
counts, never content.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Delete,
    Select,
    Table,
    delete,
    func,
    literal_column,
    or_,
    select,
    text,
    true,
    tuple_,
    union_all,
)
from sqlalchemy import column as column_clause
from sqlalchemy import table as table_clause
from sqlalchemy.orm import Session, sessionmaker

from privault.clock import Clock, aware
from privault.db import Base, is_postgres, new_id
from privault.policy.model import Policy, RetentionAnchor
from privault.policy.types import Duration
from privault.retention.models import LegalHold, LegalHoldSubject, SweepErased, SweepRun
from privault.retention.partitions import PARTITIONED, Partitions, lock_key, month_of, partitions
from privault.rights.models import RetainedRecord
from privault.vault.datamap import PersonalTable, tables

log = logging.getLogger("privault.retention")

#: Rows per transaction.
BATCH = 10_000
#: How often the worker runs the sweep.
EVERY = timedelta(days=1)
RETAINED = "retained_records"


@dataclass(frozen=True)
class Task:
    """One table to sweep: its category, and the moment before which its rows expire."""

    table: PersonalTable
    category: str
    cutoff: datetime
    per_person: bool


@dataclass(frozen=True)
class Swept:
    table: str
    category: str
    rows: int
    partitions: int = 0


@dataclass(frozen=True)
class SweepReport:
    run_id: str
    swept: list[Swept]
    #: Categories a hold on everyone's data kept from the sweep.
    held: list[str]

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.swept)


#: Called as rows go: (table, rows erased just now).
Progress = Callable[[str, int], None]


class RetentionSweep:
    def __init__(
        self,
        factory: sessionmaker[Session],
        policy: Policy,
        clock: Clock,
        partitioned: Partitions,
        batch: int = BATCH,
    ) -> None:
        self.factory = factory
        self.policy = policy
        self.clock = clock
        self.partitioned = partitioned
        self.batch = batch

    def tasks(self) -> list[Task]:
        """The tables to sweep now, with their cutoffs, in the data map's order."""
        now = self.clock.now()
        found = []
        for entry in tables():
            retention = self.policy.category(entry.category).retention
            if not isinstance(retention.period, Duration):
                continue  # kept while the account exists: erasure at closure ends it
            if entry.kept_from is None:
                raise LookupError(
                    f"data map: {entry.table} ({entry.category}, kept {retention.period}) "
                    "names no kept_from column for its retention to count from"
                )
            per_person = retention.from_ is RetentionAnchor.LAST_ACTIVITY
            found.append(
                Task(entry, entry.category, retention.period.subtract_from(now), per_person)
            )
        return found

    def due(self) -> bool:
        """Whether a day has passed since the last finished run (or there was none)."""
        with self.factory() as session:
            last = session.scalar(select(func.max(SweepRun.finished_at)))
        return last is None or aware(last) <= self.clock.now() - EVERY

    def expired(self) -> dict[str, int]:
        """Rows each table would lose now, for a progress bar (an estimate when holds or
        new rows change things meanwhile)."""
        counts: dict[str, int] = {}
        with self.factory() as session:
            held = self._held_categories(session)
            for task in self.tasks():
                if task.category in held:
                    continue
                table = _table(task.table)
                query = (
                    select(func.count())
                    .select_from(table)
                    .where(self._expired(session, task, table))
                )
                counts[task.table.table] = int(session.scalar(query) or 0)
            counts[RETAINED] = int(
                session.scalar(
                    select(func.count())
                    .select_from(RetainedRecord)
                    .where(RetainedRecord.retain_until <= self.clock.now())
                )
                or 0
            )
        return counts

    def run(self, *, by: str = "worker", progress: Progress | None = None) -> SweepReport:
        """Erase everything expired, batch by batch; returns what went, by table."""
        tell = progress or (lambda _table, _rows: None)
        run_id = new_id()
        with self.factory.begin() as session:
            session.add(SweepRun(id=run_id, by=by, started_at=self.clock.now()))
        with self.factory() as session:
            held = sorted(self._held_categories(session))
        swept = []
        for task in self.tasks():
            if task.category in held:
                continue
            dropped = self._drop_partitions(task, tell)
            rows = dropped[0] + self._delete(task, tell)
            swept.append(Swept(task.table.table, task.category, rows, dropped[1]))
        swept.append(Swept(RETAINED, "retained", self._retained(tell)))
        with self.factory.begin() as session:
            for entry in swept:
                if entry.rows or entry.partitions:
                    session.add(
                        SweepErased(
                            run_id=run_id,
                            table_name=entry.table,
                            category=entry.category,
                            rows=entry.rows,
                            partitions=entry.partitions,
                        )
                    )
            run = session.get(SweepRun, run_id)
            assert run is not None
            run.finished_at = self.clock.now()
        total = sum(s.rows for s in swept)
        if total:
            log.info(
                "retention sweep erased %d row(s): %s",
                total,
                ", ".join(f"{s.category} {s.rows}" for s in swept if s.rows),
            )
        return SweepReport(run_id, swept, held)

    # -- what is expired, what is held ------------------------------------------------

    def _held_categories(self, session: Session) -> set[str]:
        """Categories under a hold on everyone's data (a category hold naming nobody)."""
        now = self.clock.now()
        named = select(LegalHoldSubject.hold_id).where(LegalHoldSubject.hold_id == LegalHold.id)
        rows = session.execute(
            select(LegalHold.category, LegalHold.ends_at).where(
                LegalHold.released_at.is_(None),
                LegalHold.category.is_not(None),
                ~named.exists(),
            )
        )
        return {c for c, ends in rows if c and (ends is None or aware(ends) > now)}

    def _held_subjects(self, category: str) -> Select[str]:
        """The people an active hold keeps this category of: holds naming them, for this
        category or for all their data."""
        return (
            select(LegalHoldSubject.subject_id)
            .join(LegalHold, LegalHold.id == LegalHoldSubject.hold_id)
            .where(
                LegalHold.released_at.is_(None),
                or_(LegalHold.ends_at.is_(None), LegalHold.ends_at > self.clock.now()),
                or_(LegalHold.category.is_(None), LegalHold.category == category),
            )
        )

    def _not_held(self, session: Session, task: Task, table: Table) -> ColumnElement[bool]:
        """Rows no hold keeps. Asked first whether a hold names anyone at all: mostly none
        does, and then the rows' people need not be looked at (the expired rows are found
        from the index on their time alone)."""
        held = self._held_subjects(task.category)
        if not session.scalar(select(held.exists())):
            return true()
        subject = table.c[task.table.subject_column]
        kept = subject.in_(held)
        return or_(subject.is_(None), ~kept) if subject.nullable else ~kept

    def _expired(self, session: Session, task: Task, table: Table) -> ColumnElement[bool]:
        spared = self._not_held(session, task, table)
        if not task.per_person:
            anchor = table.c[cast(str, task.table.kept_from)]
            return (anchor < task.cutoff) & spared
        subject = table.c[task.table.subject_column]
        return subject.in_(self._inactive(task)) & spared

    def _inactive(self, task: Task) -> Select[Any]:
        """People whose latest row in the category (in any of its tables) is older than
        the cutoff."""
        parts = []
        for entry in tables():
            if entry.category == task.category and entry.kept_from:
                table = _table(entry)
                parts.append(
                    select(
                        table.c[entry.subject_column].label("subject_id"),
                        table.c[entry.kept_from].label("at"),
                    )
                )
        every = union_all(*parts).subquery()
        return (
            select(every.c.subject_id)
            .where(every.c.subject_id.is_not(None))
            .group_by(every.c.subject_id)
            .having(func.max(every.c.at) < task.cutoff)
        )

    # -- erasing ------------------------------------------------------------------------

    def _delete(self, task: Task, tell: Progress) -> int:
        """Delete the task's expired rows, a batch per transaction."""
        table = _table(task.table)

        def statement(session: Session) -> Delete:
            if is_postgres(session):
                # On a partitioned table the key has the month's column too, and the same
                # bound on it outside lets PostgreSQL look only at the months before it.
                names = list(task.table.key)
                outer: ColumnElement[bool] = true()
                if task.table.table in PARTITIONED and not task.per_person:
                    names.append(PARTITIONED[task.table.table])
                    outer = table.c[PARTITIONED[task.table.table]] < task.cutoff
                columns = [table.c[name] for name in names]
                chosen = (
                    select(*columns).where(self._expired(session, task, table)).limit(self.batch)
                )
                return delete(table).where(outer, tuple_(*columns).in_(chosen))
            rowid: ColumnElement[int] = literal_column("rowid")
            chosen = select(rowid).select_from(table).where(self._expired(session, task, table))
            return delete(table).where(rowid.in_(chosen.limit(self.batch)))

        return self._in_batches(task.table.table, statement, tell)

    def _in_batches(self, name: str, statement: Callable[[Session], Delete], tell: Progress) -> int:
        """Run ``statement`` (a DELETE of at most ``batch`` rows) in a transaction of its
        own until it deletes fewer; returns the rows deleted."""
        total = 0
        while True:
            with self.factory.begin() as session:
                done = cast(CursorResult[Any], session.execute(statement(session))).rowcount
            total += done
            if done:
                tell(name, done)
            if done < self.batch:
                return total

    def _drop_partitions(self, task: Task, tell: Progress) -> tuple[int, int]:
        """PostgreSQL: drop each month of a partitioned table that expired as a whole and
        holds no held person's row; returns (rows, partitions) dropped."""
        column = PARTITIONED.get(task.table.table)
        if column is None or task.per_person:
            return 0, 0
        rows = dropped = 0
        with self.factory.begin() as session:
            if not is_postgres(session):
                return 0, 0
            months = [p for p in partitions(session, task.table.table) if p.end <= task.cutoff]
        for month in months:
            with self.factory.begin() as session:
                # Another sweep may be dropping the same month: the second waits for the
                # first, then finds the month gone.
                session.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(month.name)}
                )
                if session.scalar(text("SELECT to_regclass(:name)"), {"name": month.name}) is None:
                    continue
                subject = task.table.subject_column
                part = table_clause(month.name, column_clause(subject))
                held = session.scalar(
                    select(
                        select(part.c[subject])
                        .where(part.c[subject].in_(self._held_subjects(task.category)))
                        .exists()
                    )
                )
                if held:
                    continue  # the row-by-row delete takes the rest of this month
                count = int(session.scalar(text(f"SELECT count(*) FROM {month.name}")) or 0)  # noqa: S608
                session.execute(text(f"DROP TABLE {month.name}"))
            self.partitioned.forget(task.table.table, month_of(month.start))
            rows += count
            dropped += 1
            if count:
                tell(task.table.table, count)
        return rows, dropped

    def _retained(self, tell: Progress) -> int:
        """What the law kept after an erasure, at the end of that obligation (a hold it was
        also kept for has ended by then: ``retain_until`` is the later of the two)."""
        chosen = select(RetainedRecord.id).where(RetainedRecord.retain_until <= self.clock.now())
        statement = delete(RetainedRecord).where(RetainedRecord.id.in_(chosen.limit(self.batch)))
        return self._in_batches(RETAINED, lambda _session: statement, tell)


def _table(entry: PersonalTable) -> Table:
    return Base.metadata.tables[entry.table]
