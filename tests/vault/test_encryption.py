"""P7.1: values sealed per subject and bound to their place; tampering is loud, never wrong data;
shredding destroys; blind indexes are keyed; rotation re-wraps keys without touching the data."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.orm import Session

from factories import Person, register
from privault.config import Settings
from privault.db import make_sessionmaker
from privault.runtime import Runtime, open_runtime, prepare
from privault.service.accounts import AccountSummary
from privault.service.profile import Change, Visibility
from privault.vault import Field, Keyring, SubjectKeyMissing, TamperedCiphertext, Vault
from privault.vault.models import SubjectKey

#: Purposes that may read what these tests seal: the account (registration) and the profile.
ACCOUNT = "administration"
PROFILE = "personalisation"


class NoReads:
    """The purpose check of a vault that only seals and indexes."""

    def require(self, session: Session, subject_id: str | None, table: str, purpose: str) -> None:
        raise AssertionError("this vault reads nothing")


def email_field(subject_id: str) -> Field:
    return Field("accounts", "email_ct", subject_id)


def profile_field(subject_id: str, name: str) -> Field:
    return Field("profile_fields", "value_ct", f"{subject_id}/{name}")


def stored(connection: Connection, sql: str, **params: Any) -> bytes:
    value = connection.execute(text(sql), params).scalar_one()
    return bytes(value)


def store(connection: Connection, sql: str, **params: Any) -> None:
    assert connection.execute(text(sql), params).rowcount == 1


def email_ct(connection: Connection, subject_id: str) -> bytes:
    return stored(connection, "SELECT email_ct FROM accounts WHERE subject_id = :s", s=subject_id)


def set_email_ct(connection: Connection, subject_id: str, blob: bytes) -> None:
    store(
        connection, "UPDATE accounts SET email_ct = :v WHERE subject_id = :s", v=blob, s=subject_id
    )


def flipped(blob: bytes, position: int) -> bytes:
    return blob[:position] + bytes([blob[position] ^ 0x01]) + blob[position + 1 :]


def read_summary(runtime: Runtime, person: Person) -> AccountSummary:
    with runtime.transaction() as session:
        return runtime.accounts(session).summary(person.subject_id, purpose="administration")


def read_profile(runtime: Runtime, person: Person) -> dict[str, object]:
    with runtime.transaction() as session:
        entries = runtime.profiles(session).read(person.subject_id)
    return {name: entry.value for name, entry in entries.items()}


def set_profile(runtime: Runtime, person: Person, **values: object) -> None:
    with runtime.transaction() as session:
        runtime.profiles(session).update(
            person.subject_id,
            {name: Change(value=value, has_value=True) for name, value in values.items()},
        )


# --- Sealing ------------------------------------------------------------------------------


def test_p7_1_email_is_stored_sealed_and_reads_back(
    runtime: Runtime, connection: Connection, alice: Person
) -> None:
    blob = email_ct(connection, alice.subject_id)
    assert alice.email.encode() not in blob
    assert blob[:1] == b"\x01"
    assert read_summary(runtime, alice).email == alice.email


def test_p7_1_a_value_sealed_for_one_subject_opens_only_with_that_subjects_key(
    runtime: Runtime, alice: Person, bob: Person
) -> None:
    field = Field("profile_fields", "value_ct", "shared-row")
    with runtime.transaction() as session:
        blob = runtime.vault.encrypt(session, alice.subject_id, field, "Alice's secret")
        assert (
            runtime.vault.decrypt(session, alice.subject_id, field, blob, purpose=PROFILE)
            == "Alice's secret"
        )
        with pytest.raises(TamperedCiphertext):
            runtime.vault.decrypt(session, bob.subject_id, field, blob, purpose=PROFILE)


def test_p7_1_sealing_the_same_value_twice_gives_different_ciphertexts(
    runtime: Runtime, alice: Person
) -> None:
    field = email_field(alice.subject_id)
    with runtime.transaction() as session:
        first = runtime.vault.encrypt(session, alice.subject_id, field, alice.email)
        second = runtime.vault.encrypt(session, alice.subject_id, field, alice.email)
    assert first != second


def test_p7_1_a_fresh_vault_opens_values_through_the_wrapped_key_in_the_database(
    runtime: Runtime, alice: Person
) -> None:
    runtime.vault.forget_cached_keys()
    other = Vault(Keyring.load(runtime.keyring.path), runtime.purposes)
    with runtime.transaction() as session:
        account = runtime.accounts(session)
        blob = other.encrypt(session, alice.subject_id, email_field(alice.subject_id), "x@y.z")
        assert (
            runtime.vault.decrypt(
                session, alice.subject_id, email_field(alice.subject_id), blob, purpose=ACCOUNT
            )
            == "x@y.z"
        )
        assert account.summary(alice.subject_id, purpose="administration").email == alice.email


# --- Tampering ----------------------------------------------------------------------------


def test_p7_1_flipping_any_byte_of_a_stored_email_makes_reading_it_fail_loudly(
    runtime: Runtime, connection: Connection, alice: Person
) -> None:
    original = email_ct(connection, alice.subject_id)
    for position in range(len(original)):
        set_email_ct(connection, alice.subject_id, flipped(original, position))
        with pytest.raises(TamperedCiphertext) as caught:
            read_summary(runtime, alice)
        assert f"accounts.email_ct[{alice.subject_id}]" in caught.value.detail
        assert alice.email not in caught.value.detail
    set_email_ct(connection, alice.subject_id, original)
    assert read_summary(runtime, alice).email == alice.email


def test_p7_1_flipping_any_byte_of_a_stored_profile_value_makes_reading_it_fail_loudly(
    runtime: Runtime, connection: Connection, alice: Person
) -> None:
    set_profile(runtime, alice, employment="Lighthouse keeper")
    select_sql = (
        "SELECT value_ct FROM profile_fields WHERE subject_id = :s AND field = 'employment'"
    )
    update_sql = (
        "UPDATE profile_fields SET value_ct = :v WHERE subject_id = :s AND field = 'employment'"
    )
    original = stored(connection, select_sql, s=alice.subject_id)
    for position in range(len(original)):
        store(connection, update_sql, v=flipped(original, position), s=alice.subject_id)
        with pytest.raises(TamperedCiphertext, match=r"profile_fields\.value_ct"):
            read_profile(runtime, alice)
    store(connection, update_sql, v=original, s=alice.subject_id)
    assert read_profile(runtime, alice)["employment"] == "Lighthouse keeper"


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda blob: blob[:-1], id="truncated tag"),
        pytest.param(lambda blob: blob[:20], id="truncated to a stub"),
        pytest.param(lambda blob: b"", id="emptied"),
        pytest.param(lambda blob: blob + b"\x00", id="extended"),
        pytest.param(lambda blob: b"\x02" + blob[1:], id="unknown version"),
    ],
)
def test_p7_1_a_truncated_or_reshaped_ciphertext_fails_loudly(
    runtime: Runtime, connection: Connection, alice: Person, change: Any
) -> None:
    set_email_ct(connection, alice.subject_id, change(email_ct(connection, alice.subject_id)))
    with pytest.raises(TamperedCiphertext):
        read_summary(runtime, alice)


def test_p7_1_an_email_copied_into_another_persons_row_fails_loudly(
    runtime: Runtime, connection: Connection, alice: Person, bob: Person
) -> None:
    set_email_ct(connection, bob.subject_id, email_ct(connection, alice.subject_id))
    with pytest.raises(TamperedCiphertext, match=bob.subject_id):
        read_summary(runtime, bob)
    assert read_summary(runtime, alice).email == alice.email


def test_p7_1_a_value_moved_to_another_column_of_the_same_row_fails_loudly(
    runtime: Runtime, connection: Connection, alice: Person
) -> None:
    name_ct = stored(
        connection,
        "SELECT display_name_ct FROM accounts WHERE subject_id = :s",
        s=alice.subject_id,
    )
    set_email_ct(connection, alice.subject_id, name_ct)
    with pytest.raises(TamperedCiphertext, match=r"accounts\.email_ct"):
        read_summary(runtime, alice)


def test_p7_1_a_profile_value_moved_to_another_field_of_the_same_subject_fails_loudly(
    runtime: Runtime, connection: Connection, alice: Person
) -> None:
    set_profile(runtime, alice, gender="nonbinary", employment="Lighthouse keeper")
    store(
        connection,
        "UPDATE profile_fields SET value_ct = "
        "(SELECT value_ct FROM profile_fields WHERE subject_id = :s AND field = 'gender') "
        "WHERE subject_id = :s AND field = 'employment'",
        s=alice.subject_id,
    )
    with pytest.raises(TamperedCiphertext, match=f"{alice.subject_id}/employment"):
        read_profile(runtime, alice)


def test_p7_1_a_wrapped_data_key_moved_to_another_subject_fails_loudly(
    runtime: Runtime, connection: Connection, alice: Person, bob: Person
) -> None:
    store(
        connection,
        "UPDATE subject_keys SET wrapped = "
        "(SELECT wrapped FROM subject_keys WHERE subject_id = :a) WHERE subject_id = :b",
        a=alice.subject_id,
        b=bob.subject_id,
    )
    runtime.vault.forget_cached_keys()
    with pytest.raises(TamperedCiphertext, match=rf"subject_keys\[{bob.subject_id}\]"):
        read_summary(runtime, bob)


def test_p7_1_api_answers_500_tampered_ciphertext_for_a_tampered_email(
    client: TestClient, connection: Connection, alice: Person
) -> None:
    assert client.get("/api/v1/me", headers=alice.auth).status_code == 200
    set_email_ct(connection, alice.subject_id, flipped(email_ct(connection, alice.subject_id), 20))
    response = client.get("/api/v1/me", headers=alice.auth)
    assert response.status_code == 500
    body = response.json()
    assert set(body) == {"error", "detail"}
    assert body["error"] == "tampered_ciphertext"
    assert alice.email not in body["detail"]
    assert alice.subject_id not in body["detail"]


def test_p7_1_api_answers_500_tampered_ciphertext_for_a_moved_profile_value(
    client: TestClient, runtime: Runtime, connection: Connection, alice: Person
) -> None:
    set_profile(runtime, alice, name="Alice Example", gender="nonbinary")
    store(
        connection,
        "UPDATE profile_fields SET value_ct = "
        "(SELECT value_ct FROM profile_fields WHERE subject_id = :s AND field = 'gender') "
        "WHERE subject_id = :s AND field = 'name'",
        s=alice.subject_id,
    )
    response = client.get("/api/v1/me/profile", headers=alice.auth)
    assert response.status_code == 500
    assert response.json()["error"] == "tampered_ciphertext"
    assert "nonbinary" not in response.text


# --- Shredding ----------------------------------------------------------------------------


def test_p7_1_shredding_makes_every_value_of_the_subject_unreadable(
    runtime: Runtime, connection: Connection, alice: Person, bob: Person
) -> None:
    set_profile(runtime, alice, name="Alice Example")
    with runtime.transaction() as session:
        runtime.vault.shred(session, alice.subject_id)
    for vault in (runtime.vault, Vault(Keyring.load(runtime.keyring.path), runtime.purposes)):
        with runtime.transaction() as session:
            with pytest.raises(SubjectKeyMissing):
                vault.decrypt(
                    session,
                    alice.subject_id,
                    email_field(alice.subject_id),
                    email_ct(connection, alice.subject_id),
                    purpose=ACCOUNT,
                )
            with pytest.raises(SubjectKeyMissing):
                vault.encrypt_many(session, [(alice.subject_id, email_field("x"), "x")])
    with pytest.raises(SubjectKeyMissing):
        read_summary(runtime, alice)
    with pytest.raises(SubjectKeyMissing):
        read_profile(runtime, alice)
    assert read_summary(runtime, bob).email == bob.email


# --- Blind indexes ------------------------------------------------------------------------


def test_p2_3_the_blind_index_is_deterministic_and_finds_the_account(
    runtime: Runtime, connection: Connection, alice: Person
) -> None:
    digest = runtime.vault.blind_index("email", alice.email)
    assert digest == runtime.vault.blind_index("email", alice.email)
    assert digest == Vault(Keyring.load(runtime.keyring.path), NoReads()).blind_index(
        "email", alice.email
    )
    assert len(digest) == 32
    assert (
        stored(
            connection, "SELECT email_index FROM accounts WHERE subject_id = :s", s=alice.subject_id
        )
        == digest
    )


def test_p7_1_the_blind_index_is_keyed_by_the_keyring(tmp_path: Path) -> None:
    one = Vault(Keyring.create(tmp_path / "one.json"), NoReads())
    two = Vault(Keyring.create(tmp_path / "two.json"), NoReads())
    email = "carol.blind@example.com"
    assert one.blind_index("email", email) != two.blind_index("email", email)
    assert one.blind_index("email", email) != one.blind_index("phone", email)
    assert one.blind_index("email", email) != one.blind_index("email", "carol.blind@example.org")


# --- The batch path -----------------------------------------------------------------------


def test_p7_1_encrypt_many_round_trips_and_binds_each_value_to_its_place(
    runtime: Runtime, alice: Person, bob: Person
) -> None:
    items = [
        (alice.subject_id, profile_field(alice.subject_id, "name"), "Alice Example"),
        (bob.subject_id, profile_field(bob.subject_id, "name"), "Bob Example"),
        (alice.subject_id, profile_field(alice.subject_id, "gender"), ""),
        (bob.subject_id, profile_field(bob.subject_id, "education"), "Ü" * 3000),
    ]
    runtime.vault.forget_cached_keys()
    with runtime.transaction() as session:
        sealed = runtime.vault.encrypt_many(session, items)
        assert len(sealed) == len(items)
        assert len({blob[1:13] for blob in sealed}) == len(items)  # distinct nonces
        runtime.vault.forget_cached_keys()
        for (subject_id, field, value), blob in zip(items, sealed, strict=True):
            assert runtime.vault.decrypt(session, subject_id, field, blob, purpose=PROFILE) == value
        with pytest.raises(TamperedCiphertext):
            runtime.vault.decrypt(
                session, alice.subject_id, items[2][1], sealed[0], purpose=PROFILE
            )
        with pytest.raises(TamperedCiphertext):
            runtime.vault.decrypt(
                session, alice.subject_id, items[0][1], sealed[1], purpose=PROFILE
            )
        assert runtime.vault.encrypt_many(session, []) == []


def test_p7_1_profile_import_values_are_readable_through_the_profile(
    runtime: Runtime, alice: Person, bob: Person
) -> None:
    with runtime.transaction() as session:
        count = runtime.profiles(session).import_values(
            [
                (alice.subject_id, "interests", ["choir", "sailing"], Visibility.MEMBERS),
                (bob.subject_id, "birthday", "1990-04-30", Visibility.PRIVATE),
            ]
        )
    assert count == 2
    assert read_profile(runtime, alice)["interests"] == ["choir", "sailing"]
    assert read_profile(runtime, bob)["birthday"] == "1990-04-30"


# --- Master key rotation ------------------------------------------------------------------

FIELD_COLUMNS = [
    ("accounts", "subject_id", "email_ct"),
    ("accounts", "subject_id", "display_name_ct"),
    ("rooms", "subject_id", "room_id_ct"),
    ("profile_fields", "subject_id || '/' || field", "value_ct"),
    ("outbox", "id", "payload_ct"),
]


@pytest.fixture
def own_engine(fresh_settings: Settings) -> Iterator[Engine]:
    engine = prepare(fresh_settings)
    yield engine
    engine.dispose()


@pytest.fixture
def own_runtime(fresh_settings: Settings, own_engine: Engine) -> Runtime:
    """A runtime with a keyring file of its own: rotation rewrites the file."""
    return open_runtime(fresh_settings, factory=make_sessionmaker(own_engine))


def field_ciphertexts(runtime: Runtime) -> dict[tuple[str, str, str], bytes]:
    out = {}
    with runtime.transaction() as session:
        for table, key, column in FIELD_COLUMNS:
            rows = session.execute(
                text(f"SELECT {key}, {column} FROM {table} WHERE {column} IS NOT NULL")  # noqa: S608
            )
            out.update({(table, column, str(row[0])): bytes(row[1]) for row in rows})
    return out


def wrapped_keys(runtime: Runtime) -> dict[str, tuple[str, bytes]]:
    with runtime.transaction() as session:
        rows = session.execute(
            select(SubjectKey.subject_id, SubjectKey.master_key_id, SubjectKey.wrapped)
        )
        return {row.subject_id: (row.master_key_id, bytes(row.wrapped)) for row in rows}


def keyring_file(runtime: Runtime) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(runtime.keyring.path.read_text())
    return data


def test_p7_1_rotation_rewraps_every_data_key_and_leaves_the_data_untouched(
    own_runtime: Runtime, fresh_settings: Settings
) -> None:
    alice = register(own_runtime, "alice")
    bob = register(own_runtime, "bob")
    set_profile(own_runtime, alice, name="Alice Example", interests=["choir"])
    old_master = own_runtime.keyring.active
    fields_before = field_ciphertexts(own_runtime)
    keys_before = wrapped_keys(own_runtime)
    assert len(fields_before) >= 8
    assert {master for master, _ in keys_before.values()} == {old_master}

    assert own_runtime.vault.rotate_master_key(own_runtime.factory) == 2

    new_master = own_runtime.keyring.active
    assert new_master != old_master
    keys_after = wrapped_keys(own_runtime)
    assert keys_after.keys() == keys_before.keys()
    for subject_id, (master, wrapped) in keys_after.items():
        assert master == new_master
        assert wrapped != keys_before[subject_id][1]
    assert field_ciphertexts(own_runtime) == fields_before
    on_disk = keyring_file(own_runtime)
    assert on_disk["active"] == new_master
    assert set(on_disk["master_keys"]) == {old_master, new_master}

    reopened = open_runtime(fresh_settings, factory=own_runtime.factory)
    assert reopened.keyring.active == new_master
    assert read_summary(reopened, alice).email == alice.email
    assert read_summary(reopened, bob).email == bob.email
    assert read_profile(reopened, alice)["interests"] == ["choir"]
    with reopened.transaction() as session:
        assert reopened.accounts(session).login(alice.email, alice.password)


def test_p7_1_a_second_rotation_drops_the_master_key_from_two_rotations_ago(
    own_runtime: Runtime,
) -> None:
    alice = register(own_runtime, "alice")
    first = own_runtime.keyring.active
    own_runtime.vault.rotate_master_key(own_runtime.factory)
    second = own_runtime.keyring.active
    assert own_runtime.vault.rotate_master_key(own_runtime.factory) == 1
    third = own_runtime.keyring.active
    assert set(keyring_file(own_runtime)["master_keys"]) == {second, third}
    assert first not in own_runtime.keyring.master_keys
    own_runtime.vault.forget_cached_keys()
    assert read_summary(own_runtime, alice).email == alice.email


def test_p7_1_rotation_with_purge_keeps_only_the_new_master_key(
    own_runtime: Runtime, fresh_settings: Settings
) -> None:
    alice = register(own_runtime, "alice")
    assert own_runtime.vault.rotate_master_key(own_runtime.factory, purge=True) == 1
    assert set(keyring_file(own_runtime)["master_keys"]) == {own_runtime.keyring.active}
    reopened = open_runtime(fresh_settings, factory=own_runtime.factory)
    assert read_summary(reopened, alice).email == alice.email


def test_p7_1_rotation_in_small_batches_rewraps_everyone(own_runtime: Runtime) -> None:
    people = [register(own_runtime, f"person{n}") for n in range(5)]
    assert own_runtime.vault.rotate_master_key(own_runtime.factory, batch=2) == 5
    assert {master for master, _ in wrapped_keys(own_runtime).values()} == {
        own_runtime.keyring.active
    }
    own_runtime.vault.forget_cached_keys()
    for person in people:
        assert read_summary(own_runtime, person).email == person.email


def test_p7_1_a_subject_created_after_rotation_is_wrapped_under_the_new_key(
    own_runtime: Runtime, fresh_settings: Settings
) -> None:
    operator = open_runtime(fresh_settings, factory=own_runtime.factory)
    operator.vault.rotate_master_key(operator.factory)
    carol = register(own_runtime, "carol")  # the "server" learns the new key from the file
    assert wrapped_keys(own_runtime)[carol.subject_id][0] == operator.keyring.active
    assert read_summary(operator, carol).email == carol.email


def test_p7_1_rotation_keeps_the_keyring_file_private(own_runtime: Runtime) -> None:
    own_runtime.vault.rotate_master_key(own_runtime.factory)
    assert own_runtime.keyring.path.stat().st_mode & 0o777 == 0o600
