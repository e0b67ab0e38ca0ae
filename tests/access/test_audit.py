"""P7.1: the access log is hash-chained under a key from the keyring: changing, removing or
re-linking an entry is detected, removing entries from its end too (its head), and the log
holds no personal data."""

from __future__ import annotations

import hashlib
import itertools

import pytest
from sqlalchemy import Connection, text

from factories import Person
from privault.access.audit import GENESIS, AuditLog, Event, Verification, canonical
from privault.access.models import AccessLogEntry
from privault.clock import aware
from privault.config import Settings
from privault.db import make_engine
from privault.runtime import Runtime, open_runtime, prepare
from privault.service.errors import InvalidCredentials
from privault.service.profile import Change


def verify(runtime: Runtime) -> Verification:
    with runtime.transaction() as session:
        return runtime.audit.verify(session)


def all_entries(runtime: Runtime) -> list[AccessLogEntry]:
    with runtime.transaction() as session:
        return list(reversed(AuditLog.entries(session, limit=100_000)))


def middle_seq(runtime: Runtime) -> int:
    entries = all_entries(runtime)
    assert len(entries) >= 3
    return entries[len(entries) // 2].seq


def test_p7_1_registering_people_leaves_chained_entries(
    runtime: Runtime, alice: Person, bob: Person
) -> None:
    entries = all_entries(runtime)
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    assert entries[0].prev_hash == GENESIS
    for before, after in itertools.pairwise(entries):
        assert after.prev_hash == before.hash
    registered = {e.subject_id: e for e in entries if e.action == f"api:{Event.ACCOUNT_REGISTERED}"}
    assert alice.subject_id in registered
    assert bob.subject_id in registered
    assert registered[alice.subject_id].actor == f"subject:{alice.subject_id}"
    assert registered[alice.subject_id].categories == "registration"
    assert registered[alice.subject_id].seq < registered[bob.subject_id].seq


def test_p7_1_verify_is_ok_on_an_untouched_log(
    runtime: Runtime, alice: Person, bob: Person
) -> None:
    result = verify(runtime)
    assert result.ok, result.problem
    assert result.problem is None
    assert result.entries == len(all_entries(runtime))
    assert result.head == all_entries(runtime)[-1].hash


def test_verify_is_ok_across_batches(runtime: Runtime, alice: Person, bob: Person) -> None:
    with runtime.transaction() as session:
        result = runtime.audit.verify(session, batch=2)
    assert result.ok, result.problem
    assert result.entries == len(all_entries(runtime))


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("actor", "'operator'"),
        ("action", "'api:profile:read'"),
        ("subject_id", "NULL"),
        ("categories", "'profile'"),
        ("purpose", "'marketing'"),
        ("detail", """'{"fields":["name"]}'"""),
    ],
)
def test_p7_1_changing_one_column_of_one_entry_is_detected_naming_it(
    runtime: Runtime, connection: Connection, alice: Person, bob: Person, column: str, value: str
) -> None:
    seq = middle_seq(runtime)
    connection.execute(
        text(f"UPDATE access_log SET {column} = {value} WHERE seq = :seq"),  # noqa: S608
        {"seq": seq},
    )
    result = verify(runtime)
    assert not result.ok
    assert result.problem == f"entry {seq} was altered"
    assert result.entries == seq - 1


def test_p7_1_changing_the_time_of_an_entry_is_detected(
    runtime: Runtime, connection: Connection, alice: Person, bob: Person
) -> None:
    entry = all_entries(runtime)[-1]
    earlier = aware(entry.at).replace(year=aware(entry.at).year - 1)
    connection.execute(
        text("UPDATE access_log SET at = :at WHERE seq = :seq"), {"at": earlier, "seq": entry.seq}
    )
    assert verify(runtime).problem == f"entry {entry.seq} was altered"


def test_p7_1_deleting_a_middle_entry_is_detected(
    runtime: Runtime, connection: Connection, alice: Person, bob: Person
) -> None:
    seq = middle_seq(runtime)
    connection.execute(text("DELETE FROM access_log WHERE seq = :seq"), {"seq": seq})
    result = verify(runtime)
    assert not result.ok
    assert result.problem == f"entry {seq} is missing (next is {seq + 1})"


def test_p7_1_deleting_and_renumbering_is_detected(
    runtime: Runtime, connection: Connection, alice: Person, bob: Person
) -> None:
    seq = middle_seq(runtime)
    last = all_entries(runtime)[-1].seq
    connection.execute(text("DELETE FROM access_log WHERE seq = :seq"), {"seq": seq})
    for later in range(seq + 1, last + 1):
        connection.execute(
            text("UPDATE access_log SET seq = :new WHERE seq = :old"),
            {"new": later - 1, "old": later},
        )
    result = verify(runtime)
    assert not result.ok
    assert result.problem == f"entry {seq} does not follow entry {seq - 1}"


def _plain_sha256(prev: bytes, entry: AccessLogEntry, seq: int) -> bytes:
    """What a forger without the keyring would compute: the same body, plain SHA-256."""
    renumbered = AccessLogEntry(
        seq=seq,
        at=entry.at,
        actor=entry.actor,
        action=entry.action,
        subject_id=entry.subject_id,
        categories=entry.categories,
        purpose=entry.purpose,
        detail=entry.detail,
    )
    return hashlib.sha256(prev + canonical(renumbered)).digest()


def test_p7_1_relinking_the_chain_after_a_deletion_without_the_key_is_detected(
    runtime: Runtime, connection: Connection, alice: Person, bob: Person
) -> None:
    entries = all_entries(runtime)
    seq = middle_seq(runtime)
    connection.execute(text("DELETE FROM access_log WHERE seq = :seq"), {"seq": seq})
    prev = entries[seq - 2].hash
    for entry in entries[seq:]:
        new_seq = entry.seq - 1
        new_hash = _plain_sha256(prev, entry, new_seq)
        connection.execute(
            text(
                "UPDATE access_log SET seq = :new, prev_hash = :prev, hash = :hash WHERE seq = :old"
            ),
            {"new": new_seq, "prev": prev, "hash": new_hash, "old": entry.seq},
        )
        prev = new_hash
    result = verify(runtime)
    assert not result.ok
    assert result.problem == f"entry {seq} was altered"
    assert result.entries == seq - 1


def test_p7_1_a_forged_entry_appended_without_the_key_is_detected(
    runtime: Runtime, connection: Connection, alice: Person
) -> None:
    tail = all_entries(runtime)[-1]
    connection.execute(
        text(
            "INSERT INTO access_log (seq, at, actor, action, subject_id, categories, purpose, "
            "detail, prev_hash, hash) VALUES (:seq, :at, 'operator', 'cli:keys:rotated', NULL, "
            "'', NULL, '{}', :prev, :hash)"
        ),
        {
            "seq": tail.seq + 1,
            "at": aware(tail.at),
            "prev": tail.hash,
            "hash": hashlib.sha256(tail.hash).digest(),
        },
    )
    assert verify(runtime).problem == f"entry {tail.seq + 1} was altered"


def test_p7_1_a_log_verified_with_another_key_fails(runtime: Runtime, alice: Person) -> None:
    with runtime.transaction() as session:
        result = AuditLog(bytes(32)).verify(session)
    assert not result.ok
    assert result.problem == "entry 1 was altered"


def test_p7_1_the_log_holds_no_personal_data(
    runtime: Runtime, connection: Connection, alice: Person, bob: Person
) -> None:
    with runtime.transaction() as session:
        runtime.profiles(session).update(
            alice.subject_id,
            {"name": Change(value="Alice Example", has_value=True)},
        )
    with runtime.transaction() as session, pytest.raises(InvalidCredentials):
        runtime.accounts(session).login(alice.email, "not-her-password")
    with runtime.transaction() as session, pytest.raises(InvalidCredentials):
        runtime.accounts(session).login("alice.nobody@example.com", alice.password)
    rows = connection.execute(text("SELECT * FROM access_log")).all()
    assert rows
    dump = " ".join(
        bytes(value).hex() + " " + bytes(value).decode("latin-1")
        if isinstance(value, bytes | memoryview)
        else str(value)
        for row in rows
        for value in row
    ).lower()
    for secret in (alice.email, alice.email.split("@")[0], alice.password, alice.room_id):
        assert secret.lower() not in dump
    assert "alice" not in dump  # nor her name, nor the unknown address tried
    assert bob.email.lower() not in dump
    assert alice.token not in dump


# --- The head: a log cut short at its end -------------------------------------------------


def test_p7_1_removing_the_last_entry_is_detected(
    runtime: Runtime, connection: Connection, alice: Person, bob: Person
) -> None:
    last = all_entries(runtime)[-1].seq
    connection.execute(text("DELETE FROM access_log WHERE seq = :seq"), {"seq": last})
    result = verify(runtime)
    assert not result.ok
    assert (
        result.problem
        == f"entry {last} is missing (the log ends at {last - 1}, its head is entry {last})"
    )
    assert result.entries == last - 1


def test_p7_1_removing_every_entry_after_a_point_is_detected(
    runtime: Runtime, connection: Connection, alice: Person, bob: Person
) -> None:
    seq, last = middle_seq(runtime), all_entries(runtime)[-1].seq
    connection.execute(text("DELETE FROM access_log WHERE seq >= :seq"), {"seq": seq})
    result = verify(runtime)
    assert not result.ok
    assert (
        result.problem
        == f"entry {seq} is missing (the log ends at {seq - 1}, its head is entry {last})"
    )


def test_p7_1_moving_the_head_back_to_the_new_end_without_the_key_is_detected(
    runtime: Runtime, connection: Connection, alice: Person, bob: Person
) -> None:
    """What a forger would write: the head's number and the new last entry's own hash,
    or any digest of it; the tag needs the key."""
    entries = all_entries(runtime)
    last, new_end = entries[-1], entries[-2]
    connection.execute(text("DELETE FROM access_log WHERE seq = :seq"), {"seq": last.seq})
    for tag in (new_end.hash, hashlib.sha256(new_end.hash).digest()):
        connection.execute(
            text("UPDATE access_log_head SET seq = :seq, tag = :tag"),
            {"seq": new_end.seq, "tag": tag},
        )
        assert verify(runtime).problem == "the head of the log was altered"


def test_p7_1_removing_the_head_is_detected_even_with_the_whole_log(
    runtime: Runtime, connection: Connection, alice: Person
) -> None:
    connection.execute(text("DELETE FROM access_log_head"))
    assert verify(runtime).problem == "the head of the log is missing"
    connection.execute(text("DELETE FROM access_log"))
    assert verify(runtime).problem == "the head of the log is missing"


def test_p7_1_the_head_follows_every_entry(runtime: Runtime, alice: Person) -> None:
    first = verify(runtime)
    with runtime.transaction() as session:
        runtime.audit.record(session, "cli", Event.KEYS_ROTATED, actor="operator")
    second = verify(runtime)
    assert first.ok and second.ok, (first.problem, second.problem)
    assert second.entries == first.entries + 1


def _drop_the_head_as_before_0017(settings: Settings) -> None:
    engine = make_engine(settings.db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE access_log_head"))
            conn.execute(text("UPDATE alembic_version SET version_num = '0016'"))
    finally:
        engine.dispose()


def _verify_fresh(settings: Settings) -> Verification:
    runtime = open_runtime(settings)
    try:
        return verify(runtime)
    finally:
        runtime.close()


def _delete_last_entry(settings: Settings) -> None:
    engine = make_engine(settings.db_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text("DELETE FROM access_log WHERE seq = (SELECT max(seq) FROM access_log)")
            )
    finally:
        engine.dispose()


def test_p7_1_a_log_from_before_heads_gets_its_head_once_on_upgrade(
    fresh_settings: Settings,
) -> None:
    """Upgrading a data folder whose log has no head sets the head at its end once; after
    that, a start never moves the head again, so a truncation stays detected."""
    prepare(fresh_settings).dispose()
    entries = _verify_fresh(fresh_settings).entries
    assert entries >= 1
    _drop_the_head_as_before_0017(fresh_settings)

    prepare(fresh_settings).dispose()
    upgraded = _verify_fresh(fresh_settings)
    assert upgraded.ok, upgraded.problem
    assert upgraded.entries == entries

    _delete_last_entry(fresh_settings)
    prepare(fresh_settings).dispose()
    assert _verify_fresh(fresh_settings).problem == (
        f"entry {entries} is missing (the log ends at {entries - 1}, its head is entry {entries})"
    )
