"""Erasure (Art. 17, P0.4): a person's data destroyed across the data map, step by step.

Each step is its own transaction and records itself on the request (``step``), so a
process killed at any point resumes where it stopped and repeats no side effect:

1. ``retained``: rows of categories the law makes us keep (the policy's retention
   ``obligation``) are copied, opened, into ``retained_records`` sealed under the
   keyring's retention key, restricted, with the end of that obligation.
2. ``notified``: the last mail to the person says the erasure is happening (and what the
   law keeps); the next step waits until it has left, or until a day before the deadline.
3. ``shredded``: the person's data key is destroyed. Whatever is still sealed under it
   (rows, backups, copies) can never be opened again. This is the step that must be fast.
4. ``done``: every row of the person in every data-map table is deleted, then the subject
   itself; copies of their mail kept by the transport are dropped; the request keeps only
   what proves it (kind, dates, a keyed hash of the subject id). On SQLite deleted pages
   are zeroed (``secure_delete``) and the WAL is checkpointed, so nothing lingers on disk.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, delete, select
from sqlalchemy.orm import Session, sessionmaker

from privault.clock import Clock, aware
from privault.db import Base
from privault.notify.outbox import Outbox
from privault.notify.transport import Transport
from privault.policy.model import Policy, RetentionAnchor
from privault.policy.types import Duration
from privault.retention.holds import Hold, holds_covering
from privault.rights.export import Exporter
from privault.rights.models import RetainedRecord, RightsRequest
from privault.rights.service import RightsService, State
from privault.vault import Field, Vault
from privault.vault.datamap import tables
from privault.vault.models import Subject, SubjectKey

#: The notice may hold the erasure back this long before the deadline, no longer.
NOTICE_MARGIN = timedelta(days=1)


class Step:
    HELD = "held"
    RETAINED = "retained"
    NOTIFIED = "notified"
    SHREDDED = "shredded"
    DONE = "done"


@dataclass(frozen=True)
class Erased:
    rows: int
    tables: int


class Eraser:
    """Carries one erasure request forward, as far as it can go now."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        vault: Vault,
        policy: Policy,
        clock: Clock,
        outbox: Outbox,
        transport: Transport,
        rights: Callable[[Session], RightsService],
    ) -> None:
        self.factory = factory
        self.vault = vault
        self.policy = policy
        self.clock = clock
        self.outbox = outbox
        self.transport = transport
        self.rights = rights

    def advance(self, request_id: str) -> str | None:
        """Take every step that can be taken now; returns the step reached (``None`` when
        the request is not an open erasure). Raises what a step raises, leaving the
        request at the last step completed."""
        while True:
            with self.factory() as session, session.begin():
                request = session.get(RightsRequest, request_id, with_for_update=True)
                if request is None or request.kind != "erasure":
                    return None
                if request.state not in (State.VERIFIED, State.IN_PROGRESS):
                    return request.step
                before = request.step
                self._step(session, request)
                after = request.step
            if after == Step.DONE:
                self.settle()
            if after in (before, Step.DONE):
                return after

    def _step(self, session: Session, request: RightsRequest) -> None:
        subject_id = request.subject_id
        assert subject_id is not None, "an open erasure names its subject"
        if request.step in (None, Step.HELD):
            holds = holds_covering(session, self.clock, subject_id)
            if request.state == State.VERIFIED:
                self.rights(session).start(
                    request.id, actor="system:erasure", note="erasure started"
                )
            whole = [h for h in holds if h.covers_all_of_a_person()]
            if whole:
                if request.step != Step.HELD:
                    self._held(session, request, subject_id, whole)
                return
            request.step = Step.RETAINED
            count = self._retain(session, request, subject_id, holds)
            request.outcome = f"{count} record(s) retained"
        elif request.step == Step.RETAINED:
            kept = self._obligations(session, request)
            kept += [
                h.describe()
                for h in holds_covering(session, self.clock, subject_id)
                if h.category and not h.confidential
            ]
            address = self.rights(session).address_of(subject_id)
            if address is not None:
                self.outbox.enqueue(
                    session,
                    subject_id,
                    address,
                    "erasure_done",
                    {"request_id": request.id, "kept": " ".join(kept)},
                )
            request.step = Step.NOTIFIED
        elif request.step == Step.NOTIFIED:
            deadline = aware(request.extended_to or request.due_at or self.clock.now())
            waiting = self.outbox.pending_for(session, subject_id)
            if waiting and self.clock.now() < deadline - NOTICE_MARGIN:
                return
            self.vault.shred(session, subject_id)
            request.step = Step.SHREDDED
        elif request.step == Step.SHREDDED:
            erased = self.delete_rows(session, subject_id)
            self._forget_requests(session, request, subject_id)
            request.step = Step.DONE
            self.rights(session).complete(
                request.id,
                actor="system:erasure",
                outcome=(
                    f"erased {erased.rows} row(s) in {erased.tables} table(s); "
                    f"{request.outcome or '0 record(s) retained'} under legal obligation or hold"
                ),
            )

    def _held(
        self, session: Session, request: RightsRequest, subject_id: str, holds: list[Hold]
    ) -> None:
        """The whole person is under a legal hold: the erasure waits, and the person is
        told why unless every hold is confidential."""
        request.step = Step.HELD
        self.rights(session).note(
            request.id, actor="system:erasure", note=f"waiting: {len(holds)} legal hold(s)"
        )
        told = [h.describe() for h in holds if not h.confidential]
        address = self.rights(session).address_of(subject_id)
        if told and address is not None:
            self.outbox.enqueue(
                session,
                subject_id,
                address,
                "erasure_held",
                {"request_id": request.id, "holds": told},
            )

    def _retain(
        self, session: Session, request: RightsRequest, subject_id: str, holds: list[Hold]
    ) -> int:
        """Copy the rows the law makes us keep, and those under a hold on their category;
        returns how many are kept."""
        now = self.clock.now()
        exporter = Exporter(session, self.vault, self.policy, self.clock)
        kept = 0
        for entry in tables():
            retention = self.policy.category(entry.category).retention
            obliged = retention.obligation is not None and isinstance(retention.period, Duration)
            hold = next((h for h in holds if h.category == entry.category), None)
            if not obliged and hold is None:
                continue
            for record in exporter.rows(entry, subject_id):
                row_id = record["row"]
                taken = session.scalar(
                    select(RetainedRecord.id).where(
                        RetainedRecord.source_table == entry.table,
                        RetainedRecord.source_row == row_id,
                    )
                )
                if taken is None:
                    until = None
                    if obliged:
                        assert isinstance(retention.period, Duration)
                        anchor = now
                        collected = record["values"].get("created_at")
                        if retention.from_ is RetentionAnchor.COLLECTION and collected:
                            anchor = aware(datetime.fromisoformat(collected))
                        until = retention.period.add_to(anchor)
                    if hold is not None:
                        # Kept until the hold ends, and the obligation too, whichever is later.
                        later = hold.ends_at
                        until = None if later is None else max(until or later, later)
                    why = (
                        retention.obligation
                        if obliged or hold is None
                        else f"legal hold ({hold.kind})"
                    )
                    session.add(
                        RetainedRecord(
                            source_table=entry.table,
                            source_row=row_id,
                            category=entry.category,
                            subject_ref=request.subject_ref,
                            values_ct=self.vault.seal_retained(
                                Field("retained_records", "values_ct", f"{entry.table}/{row_id}"),
                                record["values"],
                            ),
                            obligation=why or "",
                            hold_id=hold.id if hold else None,
                            retained_at=now,
                            retain_until=until,
                        )
                    )
                kept += 1
        return kept

    def _obligations(self, session: Session, request: RightsRequest) -> list[str]:
        """The legal obligations under which some of the person's records are kept."""
        return sorted(
            set(
                session.scalars(
                    select(RetainedRecord.obligation).where(
                        RetainedRecord.subject_ref == request.subject_ref
                    )
                )
            )
        )

    def delete_rows(self, session: Session, subject_id: str) -> Erased:
        """Delete the person's rows in every data-map table, then the subject; drop the
        transport's copies of their mail. Safe to repeat."""
        self.transport.forget(self.outbox.ids_of(session, subject_id))
        rows = touched = 0
        for entry in tables():
            table = Base.metadata.tables[entry.table]
            result = session.execute(
                delete(table).where(table.c[entry.subject_column] == subject_id)
            )
            done = cast(CursorResult[Any], result).rowcount
            rows += done
            touched += bool(done)
        session.execute(delete(SubjectKey).where(SubjectKey.subject_id == subject_id))
        session.execute(delete(Subject).where(Subject.id == subject_id))
        return Erased(rows, touched)

    def _forget_requests(self, session: Session, erasure: RightsRequest, subject_id: str) -> None:
        """Every request of the person keeps only its proof (kind, dates, the keyed hash);
        other open ones end, since there is nobody left to answer."""
        rights = self.rights(session)
        others = session.scalars(
            select(RightsRequest).where(RightsRequest.subject_id == subject_id)
        ).all()
        for other in others:
            if other.id != erasure.id and State(other.state).open:
                rights.close(
                    other.id,
                    State.WITHDRAWN,
                    actor="system:erasure",
                    outcome=f"ended by erasure request {erasure.id}: the person's data is erased",
                )
            other.subject_id = None
            other.details_ct = None

    def erase_keyless(self, session: Session, subject_id: str) -> Erased:
        """Finish erasing a person whose data key is already gone, as in a backup restored
        from before their erasure: rows nobody can open any more. Their rows go, and their
        requests keep only their proof; open ones end (an erasure as done)."""
        erased = self.delete_rows(session, subject_id)
        rights = self.rights(session)
        for request in session.scalars(
            select(RightsRequest).where(RightsRequest.subject_id == subject_id)
        ).all():
            if State(request.state).open:
                done = request.kind == "erasure"
                if done:
                    request.step = Step.DONE
                rights.close(
                    request.id,
                    State.COMPLETED if done else State.WITHDRAWN,
                    actor="system:restore",
                    outcome="the person's data key was destroyed before this backup was restored; "
                    "their data is erased",
                )
            request.subject_id = None
            request.details_ct = None
        return erased

    def settle(self) -> None:
        """SQLite: copy the WAL (old page versions included) into the database file, whose
        freed pages ``secure_delete`` has zeroed, and empty it."""
        with self.factory() as session:
            bind = session.get_bind()
        if isinstance(bind, Engine) and bind.dialect.name == "sqlite":
            raw = bind.raw_connection()
            try:
                raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                raw.close()
