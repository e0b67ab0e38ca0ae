"""Access export and erasure across the whole data map (P9.1, P0.4, P7.1)."""

from __future__ import annotations

import io
import json
import logging
import re
import secrets
import zipfile
from email import message_from_bytes
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from factories import api_error, fill_person, register
from privault.config import Settings
from privault.db import Base, make_engine
from privault.rights.models import RetainedRecord, RightsRequest
from privault.runtime import Runtime, open_runtime
from privault.service.pbx import PbxTokenService
from privault.vault import Field, SubjectKeyMissing
from privault.vault.datamap import tables
from privault.worker import Worker


def runtime_of(client: TestClient) -> Runtime:
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    return runtime


def person_everywhere(
    client: TestClient, pbx: dict[str, str]
) -> tuple[dict[str, str], list[str], str]:
    """A person with data in every table of the data map (an export download too); their
    auth header, the values kept about them and their subject id."""
    person = fill_person(client, pbx)
    asked = client.post("/api/v1/me/requests", json={"kind": "access"}, headers=person.auth)
    assert asked.status_code == 201, asked.text
    runtime = runtime_of(client)
    runtime.rights_engine().run_once()  # an export download waits for them
    with runtime.transaction() as session:  # a disclosure register entry names them
        officer = f"dpo.{secrets.token_hex(4)}"
        runtime.staff(session).add(officer, "privacy_officer")
        runtime.disclosures(session).disclose(
            "courts_and_authorities",
            [person.subject_id],
            ["call_records"],
            "legal",
            "court_order",
            "Tribunal judiciaire de Paris, case 24/123",
            runtime.staff(session).on_server(officer),
        )
    return person.auth, person.kept, person.subject_id


def rows_per_table(runtime: Runtime, subject_id: str) -> dict[str, int]:
    with runtime.factory() as session:
        return {
            entry.table: session.scalar(
                select(func.count())
                .select_from(Base.metadata.tables[entry.table])
                .where(Base.metadata.tables[entry.table].c[entry.subject_column] == subject_id)
            )
            or 0
            for entry in tables()
        }


def pbx_of(runtime: Runtime) -> dict[str, str]:
    with runtime.transaction() as session:
        return {"Authorization": f"Bearer {PbxTokenService(session, runtime.clock).create('p')}"}


def test_p9_1_the_export_holds_every_value_of_every_table_and_erasure_removes_them_all(
    served: TestClient, fresh_settings: Settings, backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client, runtime = served, runtime_of(served)
    pbx = pbx_of(runtime)
    auth, values, subject_id = person_everywhere(client, pbx)
    _, other_values, other_id = person_everywhere(client, pbx)
    assert [t for t, n in rows_per_table(runtime, subject_id).items() if n == 0] == [], (
        "the test person must have data in every table of the data map"
    )

    export = client.get("/api/v1/me/export", headers=auth)
    assert export.status_code == 200, export.text
    archive = zipfile.ZipFile(io.BytesIO(export.content))
    assert archive.testzip() is None, "every member's CRC must check"
    assert archive.namelist()[:2] == ["data.json", "index.html"]
    names = set(archive.namelist())
    document = json.loads(archive.read("data.json"))
    assert {"data.json", "index.html"} <= names
    assert {f"{c['id']}.csv" for c in document["categories"]} == names - {"data.json", "index.html"}
    as_json = archive.read("data.json").decode()
    csvs = "".join(archive.read(n).decode() for n in names if n.endswith(".csv"))
    html = archive.read("index.html").decode()
    for value in values:
        assert value in as_json, value
        assert value in csvs, value
        assert value in html, value
    assert not any(v in as_json for v in other_values)
    assert "80417263" not in as_json and "$argon2" not in as_json  # no PIN, no password hash
    assert not re.search(r"\"password(_hash)?\"", as_json)
    mapped = {e.table for e in tables() if e.in_export}
    assert {r["table"] for c in document["categories"] for r in c["records"]} == mapped
    transactions = next(c for c in document["categories"] if c["id"] == "transactions")
    assert transactions["purposes"] and transactions["recipients"] and transactions["countries"]
    assert transactions["retention"]["obligation"]
    assert document["complaint"] and document["automated_decisions"] and document["rights"]

    closed = client.delete("/api/v1/me", headers=auth)
    assert closed.status_code == 202, closed.text
    engine = runtime.rights_engine()
    mailer = runtime.mailer()
    for _ in range(4):
        engine.run_once()
        mailer.deliver_pending()
    with runtime.factory() as session:
        request = session.get(RightsRequest, closed.json()["erasure_request_id"])
        assert request is not None and request.state == "completed", request and request.last_error
        assert request.subject_id is None and request.details_ct is None
        kept = session.scalars(select(RetainedRecord)).all()
        theirs = session.scalars(
            select(RightsRequest).where(RightsRequest.subject_ref == request.subject_ref)
        ).all()
        assert {r.kind for r in theirs} == {"access", "erasure"}  # the proof stays
        assert all(r.subject_id is None and r.details_ct is None for r in theirs)
    assert [r.source_table for r in kept] == ["purchases"]
    assert rows_per_table(runtime, subject_id) == {e.table: 0 for e in tables()}
    with runtime.factory() as session:
        opened = runtime.vault.open_retained(
            session,
            Field("retained_records", "values_ct", f"purchases/{kept[0].source_row}"),
            kept[0].values_ct,
            purpose="legal",
        )
    assert isinstance(opened, dict) and opened["billing_name"] in values

    runtime.close()
    stored = stored_bytes(fresh_settings, backend)
    assert [v for v in values if v.encode() in stored] == []
    assert [v for v in values if v in caplog.text] == []
    other = open_runtime(fresh_settings)
    with other.transaction() as session:
        assert (
            other.accounts(session).email_of(other_id, purpose="administration") == other_values[0]
        )
    other.close()


def stored_bytes(settings: Settings, backend: str) -> bytes:
    """Every byte under the data folder, and every value in the database."""
    found = [p.read_bytes() for p in settings.data_dir.rglob("*") if p.is_file()]
    if backend == "postgresql":
        engine = make_engine(settings.db_url)
        with engine.connect() as conn:
            columns = conn.execute(
                text(
                    "SELECT table_name, column_name FROM information_schema.columns "
                    "WHERE table_schema = current_schema() "
                    "AND data_type IN ('text', 'character varying', 'bytea')"
                )
            ).all()
            for table, column in columns:
                for (value,) in conn.execute(text(f'SELECT "{column}" FROM "{table}"')):  # noqa: S608
                    if value is not None:
                        found.append(
                            bytes(value)
                            if isinstance(value, bytes | memoryview)
                            else str(value).encode()
                        )
        engine.dispose()
    return b"\n".join(found)


def test_p0_4_an_erasure_stopped_after_the_key_is_destroyed_is_finished_by_the_next_sweep(
    served: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, runtime = served, runtime_of(served)
    auth, _, subject_id = person_everywhere(client, pbx_of(runtime))
    closed = client.delete("/api/v1/me", headers=auth).json()
    engine = runtime.rights_engine()

    def crash(*_: Any) -> Any:
        raise RuntimeError("power cut")

    monkeypatch.setattr(type(engine.eraser), "delete_rows", crash)
    for _ in range(3):
        engine.run_once()
        runtime.mailer().deliver_pending()
    with runtime.factory() as session:
        request = session.get(RightsRequest, closed["erasure_request_id"])
        assert request is not None and request.step == "shredded" and request.state == "in_progress"
        assert request.last_error == "RuntimeError"
    assert rows_per_table(runtime, subject_id)["accounts"] == 1
    with runtime.factory() as session, pytest.raises(SubjectKeyMissing):
        runtime.accounts(session).email_of(subject_id, purpose="administration")

    monkeypatch.undo()
    runtime.rights_engine().run_once()
    with runtime.factory() as session:
        request = session.get(RightsRequest, closed["erasure_request_id"])
        assert request is not None and request.state == "completed" and request.step == "done"
    assert sum(rows_per_table(runtime, subject_id).values()) == 0


def test_p0_4_a_worker_starting_checkpoints_what_a_killed_process_left_in_the_wal(
    served: TestClient, backend: str
) -> None:
    """An erasure's last step checkpoints SQLite's WAL, where the erased rows' old pages
    linger; a process killed just before that leaves them, so a worker settles it first."""
    if backend != "sqlite":
        pytest.skip("PostgreSQL keeps no write-ahead log beside the database file")
    runtime = runtime_of(served)
    register(runtime, "walter")  # committed: the pages are in the WAL, not yet the file
    wal = Path(runtime.settings.db_url.split(":///", 1)[1] + "-wal")
    assert wal.stat().st_size > 0
    worker = Worker(runtime)
    worker.stop()  # before it runs: one start, then no sweep
    worker.run()
    assert wal.stat().st_size == 0


def test_p9_1_a_download_link_works_once_for_its_person_only(served: TestClient) -> None:
    client, runtime = served, runtime_of(served)
    pbx = pbx_of(runtime)
    auth, values, _ = person_everywhere(client, pbx)
    other_auth, _, _ = person_everywhere(client, pbx)
    runtime.mailer().deliver_pending()
    mails = [
        message_from_bytes(p.read_bytes(), policy=default) for p in runtime.transport().messages()
    ]
    links = {
        str(m["To"]): line.strip()
        for m in mails
        for line in m.get_body(("plain",)).get_content().splitlines()  # type: ignore[union-attr]
        if "/api/v1/me/exports/" in line
    }
    assert len(links) == 2
    mine = links[values[0]]
    path = mine[mine.index("/api/v1/") :]
    client.cookies.clear()  # the logins above left a session cookie
    api_error(client.get(path, headers=other_auth), 404, "download_not_found")
    api_error(client.get(path), 401)
    first = client.get(path, headers=auth)
    assert first.status_code == 200 and first.headers["content-type"] == "application/zip"
    assert values[0] in zipfile.ZipFile(io.BytesIO(first.content)).read("data.json").decode()
    api_error(client.get(path, headers=auth), 410, "download_gone")
    api_error(client.get("/api/v1/me/exports/made-up", headers=auth), 404, "download_not_found")


def test_the_api_spec_declares_the_410_of_a_used_download_link(client: TestClient) -> None:
    """Found by the fuzzer (issue 11): the download answered an undeclared 410."""
    spec = client.get("/openapi.json").json()
    declared = spec["paths"]["/api/v1/me/exports/{token}"]["get"]["responses"]
    assert declared["410"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorOut"
    }
