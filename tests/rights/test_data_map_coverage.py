"""Export and erasure walk the data map: a table added to it is covered with no change to
the rights code (P9.1, P0.4)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import DateTime, ForeignKey, LargeBinary, String, Table, func, select
from sqlalchemy.orm import mapped_column

from factories import Person, marker, register
from privault.db import Base, new_id
from privault.policy.model import Source
from privault.rights.export import Exporter, ExportKind
from privault.rights.service import Channel
from privault.runtime import Runtime
from privault.service.profile import Change
from privault.vault import Field, datamap, personal_data
from privault.vault.datamap import field_name
from privault.vault.models import SUBJECT_ID


@pytest.fixture
def loyalty_cards(runtime: Runtime) -> Iterator[Table]:
    """A personal-data table declared only here: a loyalty card with a sealed nickname."""

    # A class name of its own each time: the declarative registry outlives the test.
    model = type(
        f"LoyaltyCard{new_id()}",
        (Base,),
        {
            "__tablename__": "test_loyalty_cards",
            "id": mapped_column(String(32), primary_key=True),
            "subject_id": mapped_column(
                SUBJECT_ID, ForeignKey("subjects.id", ondelete="CASCADE"), index=True
            ),
            "nickname_ct": mapped_column(LargeBinary),
            "issued_at": mapped_column(DateTime(timezone=True)),
        },
    )
    personal_data(
        "service_input", encrypted=("nickname_ct",), exported=("id", "nickname_ct", "issued_at")
    )(model)
    table = model.__table__
    assert isinstance(table, Table)
    with runtime.transaction() as session:
        table.create(session.connection())
    try:
        yield table
    finally:
        datamap.REGISTRY.pop("test_loyalty_cards")
        Base.metadata.remove(table)


def give_card(runtime: Runtime, person: Person, table: Table) -> str:
    nickname = marker("nick")
    card_id = new_id()
    with runtime.transaction() as session:
        sealed = runtime.vault.encrypt(
            session, person.subject_id, Field(table.name, "nickname_ct", card_id), nickname
        )
        session.execute(
            table.insert().values(
                id=card_id,
                subject_id=person.subject_id,
                nickname_ct=sealed,
                issued_at=runtime.clock.now(),
            )
        )
    return nickname


def test_p9_1_a_table_added_to_the_data_map_is_exported_and_erased(
    runtime: Runtime, loyalty_cards: Table
) -> None:
    alice, bob = register(runtime, "alice"), register(runtime, "bob")
    nickname, kept = (
        give_card(runtime, alice, loyalty_cards),
        give_card(runtime, bob, loyalty_cards),
    )
    with runtime.transaction() as session:
        document = (
            Exporter(session, runtime.vault, runtime.policy, runtime.clock)
            .build(alice.subject_id)
            .document
        )
    [block] = [
        b
        for c in document["categories"]
        for b in c["records"]
        if b["table"] == "test_loyalty_cards"
    ]
    assert block["fields"] == ["id", "nickname", "issued_at"]
    assert [row[1] for row in block["rows"]] == [nickname]
    assert kept not in str(document)

    with runtime.transaction() as session:
        request = runtime.rights(session).file(
            alice.subject_id, "erasure", Channel.STAFF, actor="t", verified=True
        )
    assert runtime.rights_engine().eraser.advance(request.id) == "notified"  # waits for the mail
    runtime.mailer().deliver_pending()
    assert runtime.rights_engine().eraser.advance(request.id) == "done"
    with runtime.transaction() as session:
        left = session.scalar(select(func.count()).select_from(loyalty_cards))
        assert left == 1
        assert session.scalar(select(loyalty_cards.c.subject_id)) == bob.subject_id


def test_p9_1_portability_leaves_out_what_was_inferred(runtime: Runtime) -> None:
    alice = register(runtime, "alice")
    categories = dict(runtime.policy.categories)
    categories["registration"] = categories["registration"].model_copy(
        update={"source": Source.INFERRED}
    )
    policy = runtime.policy.model_copy(update={"categories": categories})
    with runtime.transaction() as session:
        exporter = Exporter(session, runtime.vault, policy, runtime.clock)
        access = exporter.build(alice.subject_id, ExportKind.ACCESS).document
        portable = exporter.build(alice.subject_id, ExportKind.PORTABILITY).document
    assert "registration" in [c["id"] for c in access["categories"]]
    assert "registration" not in [c["id"] for c in portable["categories"]]
    assert portable["kind"] == "portability"


def test_docs_export_schema_lists_every_exported_table_and_field() -> None:
    """docs/export-schema.md documents exactly what the data map exports."""
    docs = (Path(__file__).parents[2] / "docs" / "export-schema.md").read_text()
    documented = {}
    for line in docs.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`") and cells[0] != "`data.json`":
            fields = re.findall(r"`([a-z0-9_]+)`", cells[2].split("(")[0])
            documented[cells[0].strip("`")] = (cells[1], fields)
    mapped = {
        e.table: (e.category, [field_name(c) for c in e.exported])
        for e in datamap.tables()
        if e.in_export
    }
    assert documented == mapped


def test_p9_1_the_readable_page_escapes_what_people_wrote(runtime: Runtime, alice: Person) -> None:
    with runtime.transaction() as session:
        runtime.profiles(session).update(
            alice.subject_id,
            {"employment": Change(value='<b>Ann & Bob\'s "shop"</b>', has_value=True)},
        )
        export = Exporter(session, runtime.vault, runtime.policy, runtime.clock).build(
            alice.subject_id
        )
    assert "&lt;b&gt;Ann &amp; Bob&#x27;s &quot;shop&quot;&lt;/b&gt;" in export.html
    assert "<b>Ann" not in export.html
    assert '"<b>Ann & Bob\'s ""shop""</b>"' in export.csvs["profile"]
