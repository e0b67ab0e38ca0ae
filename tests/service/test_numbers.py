"""Phone numbers in E.164, the service's dial-in numbers, and owners' number lists (P2.6)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from factories import Person
from privault.access.models import AccessLogEntry
from privault.db import Base
from privault.errors import InvalidInput
from privault.runtime import Runtime
from privault.service.errors import (
    DialInExists,
    DialInNotFound,
    InvalidPhoneNumber,
    InvalidRegion,
    NumberAlreadyListed,
    NumberListEntryNotFound,
    NumberListNotFound,
)
from privault.service.models import NumberList, NumberListEntry
from privault.service.numbers import NewNumber
from privault.service.phones import parse_phone
from privault.vault import TamperedCiphertext

FI_MOBILE = "+358401234567"
GB_LONDON = "+442079460958"
US_DC = "+12025550123"


@pytest.mark.parametrize(
    ("raw", "region", "e164", "country"),
    [
        ("+358 40 123 4567", None, FI_MOBILE, "FI"),
        ("00358 40 123 4567", "FI", FI_MOBILE, "FI"),
        ("040-123 4567", "FI", FI_MOBILE, "FI"),
        ("040 123 4567", "fi", FI_MOBILE, "FI"),
        ("+44 (0)20 7946 0958", None, GB_LONDON, "GB"),
        ("020 7946 0958", "GB", GB_LONDON, "GB"),
        ("(202) 555-0123", "US", US_DC, "US"),
        ("+1 202 555 0123", "FI", US_DC, "US"),  # an international number ignores the region
        ("+800 1234 5678", None, "+80012345678", None),  # international freephone: no country
    ],
)
def test_p2_6_numbers_are_normalised_to_e164(
    raw: str, region: str | None, e164: str, country: str | None
) -> None:
    phone = parse_phone(raw, region)
    assert (phone.e164, phone.region) == (e164, country)


@pytest.mark.parametrize(
    ("raw", "region", "reason"),
    [
        ("+1 555", None, "too short"),
        ("+358 40 123 4567 890 123 45", None, "too long"),
        ("hello", None, "does not look like a phone number"),
        ("040 123 4567", None, "no country code"),
        ("+999 123 4567", None, "country code is unknown"),
        ("+358 40 123 4567 ext. 5", None, "extension"),
        ("+1 200 555 0123", None, "no such number"),
        ("   ", None, "empty"),
        ("+358" + "1" * 40, None, "longer than 40 characters"),
    ],
)
def test_p2_6_invalid_numbers_are_refused_with_the_reason(
    raw: str, region: str | None, reason: str
) -> None:
    with pytest.raises(InvalidPhoneNumber) as raised:
        parse_phone(raw, region)
    detail = str(raised.value)
    assert detail.startswith("the number is not a valid phone number: ")
    assert reason in detail
    digits = "".join(c for c in raw if c.isdigit())
    assert not digits or digits[-6:] not in detail, "the detail never quotes the number"


def test_p2_6_an_unknown_region_is_refused() -> None:
    with pytest.raises(InvalidRegion, match="'XX' is not a region"):
        parse_phone("040 123 4567", "XX")


# -- dial-in numbers -------------------------------------------------------------------------


def test_dial_in_numbers_take_their_country_from_the_number(runtime: Runtime) -> None:
    with runtime.transaction() as session:
        dial_ins = runtime.dial_ins(session)
        added = dial_ins.add("+358 9 4245 0000", city=" Helsinki ")
        dial_ins.add("+44 20 7946 0000")
        dial_ins.add("+358 2 1234 5678", city="Turku")
        listed = dial_ins.list()
    assert (added.country, added.number, added.city) == ("FI", "+358942450000", "Helsinki")
    assert [(d.country, d.city) for d in listed] == [
        ("FI", "Helsinki"),
        ("FI", "Turku"),
        ("GB", None),
    ]
    assert listed[0].display == "+358 9 42450000"


def test_dial_in_numbers_refuse_invalid_national_duplicate_and_countryless_ones(
    runtime: Runtime,
) -> None:
    with runtime.transaction() as session:
        dial_ins = runtime.dial_ins(session)
        dial_ins.add("+358 9 4245 0000")
        with pytest.raises(InvalidPhoneNumber, match=r"^'\+1 555' is not a valid .*: too short"):
            dial_ins.add("+1 555")
        with pytest.raises(InvalidPhoneNumber, match="no country code"):
            dial_ins.add("09 4245 0000")
        with pytest.raises(DialInExists, match=r"\+358942450000 is a dial-in number already"):
            dial_ins.add("+358 (0)9 4245 0000")
        with pytest.raises(InvalidInput, match="belongs to no country"):
            dial_ins.add("+800 1234 5678")


def test_dial_in_numbers_are_removed_by_any_spelling(runtime: Runtime) -> None:
    with runtime.transaction() as session:
        dial_ins = runtime.dial_ins(session)
        dial_ins.add("+358 9 4245 0000")
        assert dial_ins.remove("+358 9 424 50000").number == "+358942450000"
        assert dial_ins.list() == []
        with pytest.raises(DialInNotFound):
            dial_ins.remove("+358942450000")
        actions = session.scalars(
            select(AccessLogEntry.action).where(AccessLogEntry.action.like("cli:dial_in:%"))
        ).all()
    assert actions == ["cli:dial_in:added", "cli:dial_in:removed"]


# -- number lists ----------------------------------------------------------------------------


def test_p2_6_a_number_list_holds_labelled_numbers_in_e164(runtime: Runtime, alice: Person) -> None:
    with runtime.transaction() as session:
        lists = runtime.number_lists(session)
        made = lists.create(
            alice.subject_id,
            "  Team  ",
            [NewNumber("040 123 4567", "Ann", "FI"), NewNumber("+44 20 7946 0958")],
        )
        added = lists.add_number(
            alice.subject_id, made.id, NewNumber("(202) 555-0123", region="US")
        )
        view = lists.get(alice.subject_id, made.id)
        summaries = lists.lists(alice.subject_id)
    assert view.name == "Team"
    assert [(n.number, n.country, n.label) for n in view.numbers] == [
        (FI_MOBILE, "FI", "Ann"),
        (GB_LONDON, "GB", None),
        (US_DC, "US", None),
    ]
    assert added.id == view.numbers[2].id
    assert [(s.id, s.name, s.size) for s in summaries] == [(made.id, "Team", 3)]


def test_p2_6_one_refused_number_adds_none_and_names_its_position(
    runtime: Runtime, alice: Person
) -> None:
    with runtime.transaction() as session:
        lists = runtime.number_lists(session)
        with pytest.raises(InvalidPhoneNumber) as raised:
            lists.create(alice.subject_id, "Team", [NewNumber(FI_MOBILE), NewNumber("+1 555")])
        assert str(raised.value) == "numbers[1] is not a valid phone number: too short"
        with pytest.raises(NumberAlreadyListed):
            lists.create(
                alice.subject_id,
                "Team",
                [NewNumber(FI_MOBILE), NewNumber("0401234567", region="FI")],
            )
        assert lists.lists(alice.subject_id) == []


def test_p2_6_a_number_is_in_a_list_once_but_may_be_in_several(
    runtime: Runtime, alice: Person
) -> None:
    with runtime.transaction() as session:
        lists = runtime.number_lists(session)
        first = lists.create(alice.subject_id, "First", [NewNumber(FI_MOBILE)])
        second = lists.create(alice.subject_id, "Second", [NewNumber(FI_MOBILE)])
        with pytest.raises(NumberAlreadyListed):
            lists.add_number(alice.subject_id, first.id, NewNumber("+358 40 123 4567"))
        assert len(lists.get(alice.subject_id, second.id).numbers) == 1


def test_p2_6_lists_rename_delete_and_lose_numbers(runtime: Runtime, alice: Person) -> None:
    with runtime.transaction() as session:
        lists = runtime.number_lists(session)
        made = lists.create(alice.subject_id, "Team", [NewNumber(FI_MOBILE), NewNumber(GB_LONDON)])
        assert lists.rename(alice.subject_id, made.id, "Crew").name == "Crew"
        lists.remove_number(alice.subject_id, made.id, made.numbers[0].id)
        assert [n.number for n in lists.get(alice.subject_id, made.id).numbers] == [GB_LONDON]
        with pytest.raises(NumberListEntryNotFound):
            lists.remove_number(alice.subject_id, made.id, made.numbers[0].id)
        lists.delete(alice.subject_id, made.id)
        with pytest.raises(NumberListNotFound):
            lists.get(alice.subject_id, made.id)
        assert (
            session.scalars(select(NumberListEntry).where(NumberListEntry.list_id == made.id)).all()
            == []
        )


def test_p2_6_another_persons_list_is_not_found_like_a_made_up_one(
    runtime: Runtime, alice: Person, mallory: Person
) -> None:
    with runtime.transaction() as session:
        lists = runtime.number_lists(session)
        made = lists.create(alice.subject_id, "Team", [NewNumber(FI_MOBILE)])
        mine = lists.create(mallory.subject_id, "Mine")
        entry = made.numbers[0].id
        attempts = [
            lambda list_id: lists.get(mallory.subject_id, list_id),
            lambda list_id: lists.rename(mallory.subject_id, list_id, "Taken"),
            lambda list_id: lists.add_number(mallory.subject_id, list_id, NewNumber(GB_LONDON)),
            lambda list_id: lists.remove_number(mallory.subject_id, list_id, entry),
            lambda list_id: lists.delete(mallory.subject_id, list_id),
        ]
        for attempt in attempts:
            for list_id in (made.id, secrets.token_hex(16)):
                with pytest.raises(NumberListNotFound, match=r"^no such number list$"):
                    attempt(list_id)
        with pytest.raises(NumberListEntryNotFound):
            lists.remove_number(mallory.subject_id, mine.id, entry)
        assert lists.get(alice.subject_id, made.id) == made


def _stored_values(session: Session) -> Iterator[bytes]:
    for table in Base.metadata.sorted_tables:
        for row in session.execute(table.select()):
            for value in row:
                if value is not None:
                    yield value if isinstance(value, bytes) else str(value).encode()


def test_p2_6_list_names_numbers_and_labels_are_encrypted_at_rest(
    runtime: Runtime, alice: Person
) -> None:
    name, label = f"list-{secrets.token_hex(6)}", f"label-{secrets.token_hex(6)}"
    with runtime.transaction() as session:
        lists = runtime.number_lists(session)
        made = lists.create(alice.subject_id, name, [NewNumber("040 123 4567", label, "FI")])
        stored = b"\n".join(_stored_values(session))
        row = session.get(NumberList, made.id)
        assert row is not None and row.subject_id == alice.subject_id
    assert made.id.encode() in stored, "the scan sees what is kept in clear"
    for plain in (name, label, FI_MOBILE, FI_MOBILE[1:], "0401234567", "401234567"):
        assert plain.encode() not in stored, plain


def test_p2_6_a_sealed_number_moved_to_another_entry_fails_loudly(
    runtime: Runtime, alice: Person
) -> None:
    with runtime.transaction() as session:
        lists = runtime.number_lists(session)
        made = lists.create(alice.subject_id, "Team", [NewNumber(FI_MOBILE), NewNumber(GB_LONDON)])
        first, second = (session.get(NumberListEntry, n.id) for n in made.numbers)
        assert first is not None and second is not None
        session.execute(
            update(NumberListEntry)
            .where(NumberListEntry.id == second.id)
            .values(number_ct=first.number_ct)
        )
        session.expire_all()
        with pytest.raises(TamperedCiphertext):
            lists.get(alice.subject_id, made.id)


def test_p2_6_number_lists_go_with_their_owner(runtime: Runtime, alice: Person) -> None:
    with runtime.transaction() as session:
        made = runtime.number_lists(session).create(
            alice.subject_id, "Team", [NewNumber(FI_MOBILE)]
        )
        session.execute(text("DELETE FROM subjects WHERE id = :s"), {"s": alice.subject_id})
        session.expire_all()
        assert session.get(NumberList, made.id) is None
        assert session.scalars(select(NumberListEntry)).all() == []
