"""Anything else people send (P2.11): what a mail to us encloses is kept as category
``other``, in the data map, sealed under the sender's key, and erased by that category's
retention."""

from __future__ import annotations

import base64
from datetime import timedelta

from sqlalchemy import select, text

from factories import Person, marker, register
from mailkit import with_files
from privault.clock import FrozenClock
from privault.mail.intake import Outcome
from privault.mail.reading import MAX_ATTACHMENTS, parse
from privault.runtime import Runtime
from privault.service.models import OtherItem
from privault.vault.datamap import REGISTRY


def send(runtime: Runtime, raw: bytes) -> Outcome:
    with runtime.transaction() as session:
        return runtime.mail_intake(session).receive(raw).outcome


def test_p2_11_the_other_category_is_in_the_data_map_with_its_retention() -> None:
    entry = REGISTRY["other_items"]
    assert (entry.category, entry.kept_from, entry.encrypted) == (
        "other",
        "created_at",
        ("content_ct",),
    )


def test_p2_11_a_file_a_mail_encloses_is_kept_as_the_senders_other_data(
    runtime: Runtime, alice: Person
) -> None:
    note, picture = marker("note"), marker("pic").encode()
    raw = with_files(
        alice.email,
        "Here is what you asked for.",
        ("note.txt", "text/plain", note.encode()),
        ("photo.png", "image/png", picture),
    )
    assert send(runtime, raw) is Outcome.SUPPORT
    with runtime.factory() as session:
        kept = runtime.other_items(session).items(alice.subject_id)
    assert [(i.source, i.name, i.content_type, i.encoding) for i in kept] == [
        ("mail", "note.txt", "text/plain", "text"),
        ("mail", "photo.png", "image/png", "base64"),
    ]
    assert kept[0].content.strip() == note
    assert base64.b64decode(kept[1].content) == picture


def test_p2_11_a_stranger_who_sends_a_file_becomes_a_data_subject_of_their_own(
    runtime: Runtime,
) -> None:
    raw = with_files("someone@example.org", "For you.", ("a.txt", "text/plain", b"x"))
    assert send(runtime, raw) is Outcome.SUPPORT
    with runtime.factory() as session:
        [owner] = session.scalars(select(OtherItem.subject_id)).all()
        assert [i.name for i in runtime.other_items(session).items(owner)] == ["a.txt"]


def test_p2_11_what_is_sent_is_encrypted_at_rest(runtime: Runtime, alice: Person) -> None:
    secret = marker("secret")
    send(runtime, with_files(alice.email, "Hi", (f"{secret}.txt", "text/plain", secret.encode())))
    with runtime.factory() as session:
        rows = session.execute(text("SELECT * FROM other_items")).all()
    assert len(rows) == 1
    assert secret.encode() not in repr(rows).encode()
    assert all(secret.encode() not in bytes(v) for v in rows[0] if isinstance(v, bytes))


def test_p2_11_card_numbers_in_an_enclosed_text_are_struck_out(
    runtime: Runtime, alice: Person
) -> None:
    send(runtime, with_files(alice.email, "Hi", ("c.txt", "text/plain", b"4111 1111 1111 1111")))
    with runtime.factory() as session:
        [item] = runtime.other_items(session).items(alice.subject_id)
    assert "4111 1111 1111 1111" not in item.content


def test_p2_11_the_sweep_erases_other_data_after_its_retention_and_not_before(
    at: Runtime, clock: FrozenClock
) -> None:
    alice = register(at, "alice")
    period = at.policy.category("other").retention.period
    sent = clock.now()
    send(at, with_files(alice.email, "Hi", ("a.txt", "text/plain", b"kept a year")))
    clock.at = period.add_to(sent) - timedelta(days=1)
    assert at.retention_sweep().run().rows == 0
    assert len(items_of(at, alice)) == 1
    clock.at = period.add_to(sent) + timedelta(days=1)
    report = at.retention_sweep().run()
    assert [(s.table, s.category, s.rows) for s in report.swept if s.rows] == [
        ("other_items", "other", 1)
    ]
    assert items_of(at, alice) == []


def items_of(runtime: Runtime, person: Person) -> list[str]:
    with runtime.factory() as session:
        return [i.id for i in runtime.other_items(session).items(person.subject_id)]


def test_p2_11_a_mail_keeps_at_most_so_many_enclosures() -> None:
    files = [(f"{n}.txt", "text/plain", b"x") for n in range(MAX_ATTACHMENTS + 3)]
    assert len(parse(with_files("a@example.org", "Hi", *files)).attachments) == MAX_ATTACHMENTS
