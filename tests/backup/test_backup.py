"""Backups and restores (P7.1): every table comes back, online backups are one moment, a
damaged file changes nothing, and a person erased after a backup stays erased (P0.4)."""

from __future__ import annotations

import io
import shutil
import stat
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from conftest import Database
from factories import fill_person, register, run_cli
from privault.backup import archive
from privault.backup.archive import Writer
from privault.backup.errors import (
    BackupMismatch,
    BackupUnreadable,
    BackupWrongKeyring,
    RestoreRefused,
)
from privault.backup.service import Kind, Restored, restore_backup, write_backup
from privault.config import Settings
from privault.db import Base
from privault.rights.models import RightsRequest
from privault.runtime import Runtime, open_runtime, prepare
from privault.service.pbx import PbxTokenService
from privault.vault import Keyring, SubjectKeyMissing
from privault.vault.datamap import tables
from privault.vault.models import Subject

#: Rows the restore itself adds: its own entry in the access log, and the log's head.
LOG = {"access_log", "access_log_head"}


def runtime_of(client: TestClient) -> Runtime:
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    return runtime


def engine_of(runtime: Runtime) -> Engine:
    engine = runtime.factory.kw["bind"]
    assert isinstance(engine, Engine)
    return engine


def dump(runtime: Runtime) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in an order that does not depend on the backend's."""
    with runtime.factory() as session:
        return {
            table.name: sorted((tuple(row) for row in session.execute(select(table))), key=repr)
            for table in Base.metadata.sorted_tables
        }


def backup(runtime: Runtime, path: Path, kind: Kind = Kind.DATA) -> Path:
    write_backup(engine_of(runtime), runtime.keyring, path, runtime.clock, kind)
    return path


def restore(runtime: Runtime, path: Path, **options: Any) -> Restored:
    return restore_backup(
        runtime.factory,
        runtime.keyring,
        path,
        runtime.audit,
        runtime.rights_engine().eraser.erase_keyless,
        **options,
    )


def pbx_of(runtime: Runtime) -> dict[str, str]:
    with runtime.transaction() as session:
        return {"Authorization": f"Bearer {PbxTokenService(session, runtime.clock).create('p')}"}


def email_of(runtime: Runtime, subject_id: str) -> str:
    with runtime.factory() as session:
        return runtime.accounts(session).email_of(subject_id, purpose="administration")


def erase(client: TestClient, auth: dict[str, str]) -> None:
    """Close the account and let the worker carry the erasure through (P0.4)."""
    assert client.delete("/api/v1/me", headers=auth).status_code == 202
    runtime = runtime_of(client)
    for _ in range(4):
        runtime.rights_engine().run_once()
        runtime.mailer().deliver_pending()


def rows_of(runtime: Runtime, subject_id: str) -> int:
    with runtime.factory() as session:
        return sum(
            session.scalar(
                select(func.count())
                .select_from(Base.metadata.tables[entry.table])
                .where(Base.metadata.tables[entry.table].c[entry.subject_column] == subject_id)
            )
            or 0
            for entry in tables()
        )


@pytest.fixture
def elsewhere(backend: str, tmp_path: Path) -> Iterator[Settings]:
    """A second data folder and database, for when the first is lost."""
    folder = tmp_path / "elsewhere"
    database = Database(backend, folder)
    yield database.settings(folder)
    database.drop()


def moved(source: Settings, target: Settings) -> Runtime:
    """The runtime of ``target`` initialised with the keyring of ``source``: the keyring's
    own backup, put back by the operator before a restore."""
    target.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    shutil.copy2(source.keyring_path, target.keyring_path)
    prepare(target).dispose()
    return open_runtime(target)


def test_p7_1_a_restore_brings_back_every_row_of_every_table_and_every_value(
    served: TestClient, tmp_path: Path
) -> None:
    runtime = runtime_of(served)
    pbx = pbx_of(runtime)
    people = [fill_person(served, pbx) for _ in range(2)]
    before = dump(runtime)
    path = backup(runtime, tmp_path / "backups" / "one.pvbk")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    stored = path.read_bytes()
    kept = [value for person in people for value in person.kept + person.secret]
    assert [v for v in kept if v.encode() in stored] == []
    register(runtime, "carol")  # a change the restore must undo

    restored = restore(runtime, path, replace=True)
    after = dump(runtime)
    assert {t: r for t, r in after.items() if t not in LOG} == {
        t: r for t, r in before.items() if t not in LOG
    }
    assert set(before["access_log"]) < set(after["access_log"])
    assert len(after["access_log"]) == len(before["access_log"]) + 1
    assert restored.keyless == [] and restored.keys_from == "live"
    assert restored.rows == {t: len(r) for t, r in before.items() if t != "subject_keys"}
    runtime.vault.forget_cached_keys()
    with runtime.factory() as session:
        assert runtime.audit.verify(session).ok
    for person in people:  # every value opens again, in the person's own export
        export = served.get("/api/v1/me/export", headers=person.auth)
        assert export.status_code == 200, export.text
        document = zipfile.ZipFile(io.BytesIO(export.content)).read("data.json").decode()
        assert [v for v in person.kept if v not in document] == []


def test_p0_4_a_person_erased_after_the_backup_stays_erased_in_the_restored_database(
    served: TestClient, tmp_path: Path
) -> None:
    runtime = runtime_of(served)
    pbx = pbx_of(runtime)
    gone, stays = (fill_person(served, pbx) for _ in range(2))
    asked = served.post("/api/v1/me/requests", json={"kind": "restriction"}, headers=gone.auth)
    assert asked.status_code == 201, asked.text
    path = backup(runtime, tmp_path / "before-erasure.pvbk")
    erase(served, gone.auth)
    assert rows_of(runtime, gone.subject_id) == 0

    # Restored as it is, the backup holds the person's rows, but not their key.
    left = restore_backup(
        runtime.factory,
        runtime.keyring,
        path,
        runtime.audit,
        lambda _session, _subject: None,
        replace=True,
    )
    assert left.keyless == [gone.subject_id]
    runtime.vault.forget_cached_keys()
    assert rows_of(runtime, gone.subject_id) > 0
    with pytest.raises(SubjectKeyMissing):
        email_of(runtime, gone.subject_id)

    # What `privault restore` does: the erasure is finished, and only the others remain.
    restored = restore(runtime, path, replace=True)
    assert restored.keyless == [gone.subject_id]
    assert rows_of(runtime, gone.subject_id) == 0
    with runtime.factory() as session:
        assert session.get(Subject, gone.subject_id) is None
        assert runtime.audit.verify(session).ok
        request = session.get(RightsRequest, asked.json()["id"])
        assert request is not None and request.subject_id is None
        assert request.state == "withdrawn" and request.details_ct is None
    assert email_of(runtime, stays.subject_id) == stays.kept[0]


def test_p7_1_a_lost_database_comes_back_from_the_data_and_key_backups(
    served: TestClient, fresh_settings: Settings, elsewhere: Settings, tmp_path: Path
) -> None:
    runtime = runtime_of(served)
    person = fill_person(served, pbx_of(runtime))
    data = backup(runtime, tmp_path / "data.pvbk")
    keys = backup(runtime, tmp_path / "keys.pvkeys", Kind.KEYS)
    assert person.kept[0].encode() not in keys.read_bytes()

    other = moved(fresh_settings, elsewhere)
    try:
        with pytest.raises(BackupMismatch):  # the two files swapped
            restore(other, keys)
        without = restore(other, data)  # no keys: everyone is unreadable, so erased
        assert person.subject_id in without.keyless
        restored = restore(other, data, keys=keys)
        assert restored.keyless == [] and restored.keys_from == "file"
        assert email_of(other, person.subject_id) == person.kept[0]
        with pytest.raises(RestoreRefused, match="only into a database that was lost"):
            restore(other, data, keys=keys, replace=True)
    finally:
        other.close()


def test_p7_1_a_backup_taken_while_people_register_holds_one_moment(
    fresh_settings: Settings, elsewhere: Settings, tmp_path: Path
) -> None:
    prepare(fresh_settings).dispose()
    live = open_runtime(fresh_settings)
    registered: list[str] = []
    stop = threading.Event()
    failures: list[BaseException] = []

    def keep_registering() -> None:
        try:
            while not stop.is_set():
                registered.append(register(live, "walker").subject_id)
        except BaseException as exc:  # reported by the test's thread
            failures.append(exc)

    for _ in range(3):
        register(live, "early")
    writer = threading.Thread(target=keep_registering)
    writer.start()
    waited: list[int] = []

    def meanwhile(table: str, _rows: int) -> None:
        # Once the subjects are read, people go on registering and committing: the backup
        # holds no lock they wait for, and must not see them in the tables it reads next.
        if waited or table != "subjects":
            return
        waited.append(len(registered))
        deadline = time.monotonic() + 60
        while len(registered) < waited[0] + 3 and not failures:
            assert time.monotonic() < deadline, "registrations stalled during the backup"
            time.sleep(0.01)

    try:
        path = tmp_path / "online.pvbk"
        write_backup(engine_of(live), live.keyring, path, live.clock, progress=meanwhile)
    finally:
        stop.set()
        writer.join(timeout=60)
    assert failures == []
    assert waited, "the backup read rows"

    keys = backup(live, tmp_path / "later.pvkeys", Kind.KEYS)
    other = moved(fresh_settings, elsewhere)
    try:
        assert restore(other, path, keys=keys).keyless == []
        with other.factory() as session:
            people = set(session.scalars(select(Subject.id)))
            assert other.audit.verify(session).ok
        with live.factory() as session:
            everyone = set(session.scalars(select(Subject.id)))
        assert people < everyone
        # One moment: the people it holds registered before all those it does not.
        walkers = [s for s in registered if s in people]
        assert walkers == registered[: len(walkers)]
        assert everyone - set(registered) <= people
        assert len(walkers) <= waited[0] + 1  # one may have committed, not yet counted
    finally:
        other.close()
        live.close()


def chunks(content: bytes) -> tuple[bytes, list[bytes]]:
    """A backup file's header part and its chunks, each with its flag and length."""
    at = 12 + int.from_bytes(content[8:12], "big")  # magic, the header's length, the header
    head, found = content[:at], []
    while at < len(content):
        end = at + 5 + int.from_bytes(content[at + 1 : at + 5], "big")
        found.append(content[at:end])
        at = end
    return head, found


def test_p7_1_a_damaged_or_foreign_backup_is_refused_and_changes_nothing(
    served: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = runtime_of(served)
    fill_person(served, pbx_of(runtime))
    monkeypatch.setattr(archive, "CHUNK", 512)  # a small database, yet several chunks
    path = backup(runtime, tmp_path / "good.pvbk")
    good = path.read_bytes()
    register(runtime, "dave")
    before = dump(runtime)

    head, parts = chunks(good)
    assert len(parts) > 3
    flipped = bytearray(good)
    flipped[-40] ^= 0x01
    damaged = {
        "flipped": bytes(flipped),
        "truncated": good[: len(good) // 2],
        "last chunk dropped": head + b"".join(parts[:-1]),
        "chunks swapped": head + parts[1] + parts[0] + b"".join(parts[2:]),
        "chunk repeated": head + parts[0] + b"".join(parts[:-1]),
        "body missing": head,
        "header altered": good.replace(b'"created_at": "20', b'"created_at": "19', 1),
        "data after the end": good + parts[0],
        "not a backup": b"hello",
    }
    for name, content in damaged.items():
        bad = tmp_path / f"{name}.pvbk"
        bad.write_bytes(content)
        with pytest.raises(BackupUnreadable):
            restore(runtime, bad, replace=True)
        assert dump(runtime) == before, name

    other = Keyring.create(tmp_path / "other-keyring.json")
    with pytest.raises(BackupWrongKeyring):
        restore_backup(runtime.factory, other, path, runtime.audit, lambda *_: None, replace=True)
    old = tmp_path / "old.pvbk"
    with old.open("wb") as stream:
        Writer(stream, runtime.keyring, {"kind": "data", "revision": "0016", "rows": {}}).close()
    with pytest.raises(BackupMismatch, match="revision 0016"):
        restore(runtime, old, replace=True)
    assert dump(runtime) == before


def test_p7_1_the_commands_back_up_refuse_to_overwrite_people_and_restore(
    fresh_settings: Settings, tmp_path: Path
) -> None:
    prepare(fresh_settings).dispose()
    live = open_runtime(fresh_settings)
    person = register(live, "erin")
    live.close()
    done = run_cli(fresh_settings, tmp_path, "backup")
    assert done.returncode == 0, done.stderr
    (path,) = (fresh_settings.data_dir / "backups").glob("*.pvbk")
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    refused = run_cli(fresh_settings, tmp_path, "restore", str(path))
    assert refused.returncode == 1
    assert refused.stderr.splitlines() == [
        "privault: the database holds 1 person(s); pass --replace to replace everything in it "
        "with the backup"
    ]
    cut = tmp_path / "cut.pvbk"
    cut.write_bytes(path.read_bytes()[:-10])
    broken = run_cli(fresh_settings, tmp_path, "restore", str(cut), "--replace")
    assert broken.returncode == 1 and len(broken.stderr.splitlines()) == 1, broken.stderr
    assert broken.stderr.startswith("privault: cut.pvbk ")

    keys = tmp_path / "apart" / "keys.pvkeys"
    kept = run_cli(fresh_settings, tmp_path, "keys", "backup", "--output", str(keys))
    assert kept.returncode == 0, kept.stderr
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    over = run_cli(fresh_settings, tmp_path, "restore", str(path), "--keys", str(keys), "--replace")
    assert over.returncode == 1 and len(over.stderr.splitlines()) == 1, over.stderr

    restored = run_cli(fresh_settings, tmp_path, "restore", str(path), "--replace")
    assert restored.returncode == 0, restored.stderr
    assert "0 person(s) of the backup had no key" in restored.stdout
    live = open_runtime(fresh_settings)
    try:
        assert email_of(live, person.subject_id) == person.email
    finally:
        live.close()
