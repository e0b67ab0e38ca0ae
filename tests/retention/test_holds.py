"""Legal holds stop erasure for what they cover and say so, unless confidential (P6.3)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from factories import Person, cdr, register, run_cli
from privault.config import Settings
from privault.retention.holds import InvalidHold
from privault.rights.export import Exporter
from privault.rights.models import RetainedRecord, RightsRequest
from privault.rights.service import Channel
from privault.runtime import Runtime, open_runtime, prepare
from privault.service.models import Account, CallRecord
from privault.vault import Field
from privault.web.app import create_app


def erase(runtime: Runtime, person: Person) -> str:
    with runtime.transaction() as session:
        request = runtime.rights(session).file(
            person.subject_id, "erasure", Channel.STAFF, actor="t", verified=True
        )
        return request.id


def sweep(runtime: Runtime, times: int = 3) -> None:
    for _ in range(times):
        runtime.rights_engine().run_once()
        runtime.mailer().deliver_pending()


def request_of(runtime: Runtime, request_id: str) -> RightsRequest:
    with runtime.factory() as session:
        found = session.get(RightsRequest, request_id)
        assert found is not None
        return found


def test_p6_3_a_hold_on_a_person_makes_their_erasure_wait_until_it_is_released(
    runtime: Runtime, alice: Person
) -> None:
    with runtime.transaction() as session:
        hold = runtime.holds(session).place(
            subject_ids=[alice.subject_id],
            category=None,
            kind="proceedings",
            reason="Case 2026/114 before the Paris commercial court",
            placed_by="operator",
        )
    with runtime.transaction() as session:
        document = (
            Exporter(session, runtime.vault, runtime.policy, runtime.clock)
            .build(alice.subject_id)
            .document
        )
    assert [h["reason"] for h in document["holds"]] == [
        "Case 2026/114 before the Paris commercial court"
    ]
    request_id = erase(runtime, alice)
    sweep(runtime)
    waiting = request_of(runtime, request_id)
    assert (waiting.state, waiting.step) == ("in_progress", "held")
    with runtime.transaction() as session:
        assert (
            runtime.accounts(session).email_of(alice.subject_id, purpose="administration")
            == alice.email
        )
        notes = [h.note for h in runtime.rights(session).history(request_id)]
    assert notes.count("waiting: 1 legal hold(s)") == 1  # said once, not at every sweep

    with runtime.transaction() as session:
        runtime.holds(session).release(hold.id, by="operator")
    sweep(runtime)
    done = request_of(runtime, request_id)
    assert (done.state, done.step) == ("completed", "done")
    with runtime.factory() as session:
        assert session.get(Account, alice.subject_id) is None


def test_p6_3_a_hold_on_a_category_keeps_those_rows_and_erases_the_rest(
    runtime: Runtime, alice: Person, bob: Person, pbx: dict[str, str]
) -> None:
    with TestClient(create_app(runtime)) as client:
        sent = client.post(
            "/api/v1/pbx/cdrs",
            json={"cdrs": [cdr(alice.room_id, "h1"), cdr(bob.room_id, "h2")]},
            headers=pbx,
        )
        assert sent.json()["accepted"] == 2
    with runtime.transaction() as session:
        hold = runtime.holds(session).place(
            subject_ids=[],
            category="call_records",
            kind="law",
            reason="Request of the public prosecutor, ref. 26/00417",
            placed_by="operator",
            ends_at=runtime.clock.now() + timedelta(days=400),
            confidential=True,
        )
    with runtime.transaction() as session:
        document = (
            Exporter(session, runtime.vault, runtime.policy, runtime.clock)
            .build(alice.subject_id)
            .document
        )
    assert document["holds"] == []  # confidential: not shown to the person
    request_id = erase(runtime, alice)
    sweep(runtime)
    assert request_of(runtime, request_id).state == "completed"
    with runtime.factory() as session:
        kept = session.scalars(select(RetainedRecord)).all()
        assert [(r.source_table, r.source_row, r.hold_id) for r in kept] == [
            ("call_records", "h1", hold.id)
        ]
        assert kept[0].retain_until is not None
        opened = runtime.vault.open_retained(
            session,
            Field("retained_records", "values_ct", "call_records/h1"),
            kept[0].values_ct,
            purpose="legal",
        )
        assert isinstance(opened, dict) and opened["caller"] == "+447700900123"
        assert session.scalar(select(func.count()).select_from(CallRecord)) == 1  # bob's
    with runtime.transaction() as session:
        runtime.holds(session).release(hold.id, by="operator")
    with runtime.factory() as session:
        left = session.scalars(select(RetainedRecord)).all()
        assert [r.hold_id for r in left] == [None]  # its own end date stands


def test_p6_3_a_hold_needs_a_reason_a_scope_and_a_future_end(
    runtime: Runtime, alice: Person
) -> None:
    with runtime.transaction() as session:
        holds = runtime.holds(session)
        base = {"subject_ids": [alice.subject_id], "category": None, "placed_by": "operator"}
        with pytest.raises(InvalidHold):
            holds.place(**base, kind="whim", reason="x")
        with pytest.raises(InvalidHold):
            holds.place(**base, kind="law", reason=" ")
        with pytest.raises(InvalidHold):
            holds.place(subject_ids=[], category=None, kind="law", reason="x", placed_by="o")
        with pytest.raises(InvalidHold):
            holds.place(subject_ids=[], category="nothing", kind="law", reason="x", placed_by="o")
        with pytest.raises(InvalidHold):
            holds.place(
                **base, kind="law", reason="x", ends_at=runtime.clock.now() - timedelta(days=1)
            )


def test_p6_3_hold_commands(fresh_settings: Settings, tmp_path: Path) -> None:
    prepare(fresh_settings).dispose()
    runtime = open_runtime(fresh_settings)
    alice = register(runtime, "alice")
    runtime.close()
    placed = run_cli(
        fresh_settings,
        tmp_path,
        "hold",
        "place",
        "--email",
        alice.email,
        "--kind",
        "legal_rights",
        "--reason",
        "Defence of a claim",
        "--until",
        "2099-01-01",
    )
    assert placed.returncode == 0, placed.stderr
    hold_id = placed.stdout.split()[1]
    listed = run_cli(fresh_settings, tmp_path, "hold", "list").stdout
    assert hold_id in listed and "Defence of a claim" in listed and alice.email not in listed
    unknown = run_cli(
        fresh_settings,
        tmp_path,
        "hold",
        "place",
        "--email",
        "nobody@example.com",
        "--kind",
        "law",
        "--reason",
        "x",
    )
    assert unknown.returncode == 1 and unknown.stderr.count("\n") == 1
    assert run_cli(fresh_settings, tmp_path, "hold", "release", hold_id).returncode == 0
    assert run_cli(fresh_settings, tmp_path, "hold", "list").stdout.strip() == ""
