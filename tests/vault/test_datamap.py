"""The data map: every table holding a subject's data declares its category, its subject
column and its sealed columns, so export, erasure and retention can walk it."""

from __future__ import annotations

import pytest
from sqlalchemy import Integer, LargeBinary, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import privault.models  # noqa: F401  (registers every table on Base.metadata)
from privault.db import Base
from privault.runtime import Runtime
from privault.vault import datamap, personal_data

#: Tables with a subject column that are deliberately not personal data of their subject.
NOT_IN_THE_MAP = {
    # Key material: deleting the row is the shredding itself; never exported.
    "subject_keys": "the subject's wrapped data key",
    # The audit trail keeps a pseudonymous reference and outlives erasure (STYLE.md).
    "access_log": "pseudonymous reference in the append-only access log",
    # The proof that a request was answered outlives the data it concerned.
    "rights_requests": "pseudonymous reference in the record of a data-subject request",
    # A hold names the people it keeps; it must outlive nothing, but must not vanish first.
    "legal_hold_subjects": "reference to a held person in a legal hold",
}


def subject_tables() -> set[str]:
    return {
        table.name
        for table in Base.metadata.tables.values()
        if "subject_id" in table.columns
        or any(fk.column.table.name == "subjects" for fk in table.foreign_keys)
    }


def test_p7_1_every_table_with_a_subject_column_is_in_the_data_map() -> None:
    mapped = {entry.table for entry in datamap.tables()}
    missing = subject_tables() - mapped - NOT_IN_THE_MAP.keys()
    assert not missing, f"tables holding subject data but not in the data map: {missing}"


def test_the_exemptions_from_the_data_map_are_real_and_few() -> None:
    mapped = {entry.table for entry in datamap.tables()}
    for table in NOT_IN_THE_MAP:
        assert table in subject_tables()
        assert table not in mapped


def test_every_data_map_entry_names_a_real_table_and_its_subject_column() -> None:
    assert datamap.tables(), "the data map is empty"
    for entry in datamap.tables():
        table = Base.metadata.tables[entry.table]
        column = table.columns[entry.subject_column]
        assert any(fk.column.table.name == "subjects" for fk in column.foreign_keys), entry


def test_every_data_map_category_exists_in_the_policy(runtime: Runtime) -> None:
    for entry in datamap.tables():
        assert entry.category in runtime.policy.categories, entry


def test_p7_1_every_declared_encrypted_column_is_binary() -> None:
    for entry in datamap.tables():
        table = Base.metadata.tables[entry.table]
        for name in (*entry.encrypted, *entry.indexed):
            assert isinstance(table.columns[name].type, LargeBinary), f"{entry.table}.{name}"


#: Sealed columns outside the data map, and under which key.
SEALED_OUTSIDE_THE_MAP = {
    # What a person wrote with a request: under their key, so unreadable once erased.
    ("rights_requests", "details_ct"),
    # What the law makes us keep after an erasure: under the keyring's retention key.
    ("retained_records", "values_ct"),
    # Staff members' TOTP secrets: under the keyring's staff key (staff are not subjects).
    ("staff", "totp_ct"),
    # Who asked for a disclosure (may name someone): under the retention key, since the
    # register outlives the people it covered.
    ("disclosures", "requester_ct"),
}


def test_p7_1_every_sealed_looking_column_is_declared_encrypted() -> None:
    declared = {(e.table, c) for e in datamap.tables() for c in e.encrypted}
    declared |= SEALED_OUTSIDE_THE_MAP
    sealed = {
        (table.name, column.name)
        for table in Base.metadata.tables.values()
        for column in table.columns
        if column.name.endswith("_ct")
    }
    assert sealed == declared


def test_p2_3_the_email_is_sealed_and_indexed() -> None:
    accounts = datamap.REGISTRY["accounts"]
    assert accounts.category == "registration"
    assert "email_ct" in accounts.encrypted
    assert accounts.indexed == ("email_index",)


def test_declaring_a_column_the_table_lacks_is_refused() -> None:
    class Other(DeclarativeBase):
        pass

    before = dict(datamap.REGISTRY)
    with pytest.raises(LookupError, match="datamap_probe has no column 'secret_ct'"):

        @personal_data("other", encrypted=("secret_ct",))
        class Probe(Other):
            __tablename__ = "datamap_probe"
            id: Mapped[int] = mapped_column(Integer, primary_key=True)
            subject_id: Mapped[str] = mapped_column(String(32))

    assert before == datamap.REGISTRY
