"""Reading a request by mail (P9.2): the subject, the reason, the Room ID and the name."""

from __future__ import annotations

import pytest

from mailkit import message
from privault.mail.reading import (
    is_request_subject,
    kinds_in,
    name_in,
    parse,
    read_request,
    room_id_in,
)
from privault.policy.model import RequestKind

ALL = tuple(RequestKind)
SUBJECT = "My Personal Data"


@pytest.mark.parametrize(
    "subject",
    [
        "My Personal Data",
        "my personal data",
        "MY  PERSONAL\tDATA",
        "Re: My Personal Data",
        "RE: Fwd: re: My Personal Data",
        "Fwd: [External] My Personal Data - erasure",
        "AW: WG: My Personal Data.",
        "\u201cMy Personal Data\u201d",
        "My Personal Data request",
    ],
)
def test_p9_2_the_request_subject_is_matched_tolerantly(subject: str) -> None:
    assert is_request_subject(subject, SUBJECT)


@pytest.mark.parametrize(
    "subject", ["", "Personal data", "My Personal Datasets", "Question", "Re: invoice 42"]
)
def test_p9_2_other_subjects_are_not_requests(subject: str) -> None:
    assert not is_request_subject(subject, SUBJECT)


def test_p9_2_an_encoded_word_subject_is_decoded() -> None:
    raw = (
        b"From: ann@example.com\r\nSubject: =?utf-8?q?My_Personal=C2=A0Data?=\r\n"
        b"Message-ID: <x@test>\r\n\r\nHello\r\n"
    )
    assert is_request_subject(parse(raw).subject, SUBJECT)
    raw = b"From: ann@example.com\r\nSubject: =?utf-8?b?TXkgUGVyc29uYWwgRGF0YQ==?=\r\n\r\nHi\r\n"
    assert is_request_subject(parse(raw).subject, SUBJECT)


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ("Please send me a copy of my data.", {RequestKind.ACCESS}),
        ("Send me a copy.", {RequestKind.ACCESS}),
        ("Send me everything you have on me", {RequestKind.ACCESS}),
        ("I want to know what personal data you hold about me", {RequestKind.ACCESS}),
        ("My billing address is wrong, please correct it", {RequestKind.RECTIFICATION}),
        ("Please amend my display name", {RequestKind.RECTIFICATION}),
        ("Delete everything about me.", {RequestKind.ERASURE}),
        ("I would like my account and everything about me deleted.", {RequestKind.ERASURE}),
        ("My address needs updating", {RequestKind.RECTIFICATION}),
        ("I exercise my right to be forgotten", {RequestKind.ERASURE}),
        ("Send my data in a machine-readable file", {RequestKind.PORTABILITY}),
        (
            "Give me a copy of my data, then erase my account. I also want a portable file.",
            {RequestKind.ACCESS, RequestKind.ERASURE, RequestKind.PORTABILITY},
        ),
        ("Send me a copy of my data. Do not delete anything!", {RequestKind.ACCESS}),
        ("I don't want you to erase it, but correct my name", {RequestKind.RECTIFICATION}),
        ("Hello, how are you?", set()),
    ],
)
def test_p9_2_the_reason_is_classified(text: str, kinds: set[RequestKind]) -> None:
    assert set(kinds_in(text, ALL)) == kinds


def test_p9_2_only_kinds_the_policy_offers_are_read() -> None:
    assert kinds_in("please delete and restrict", (RequestKind.ACCESS,)) == ()


@pytest.mark.parametrize(
    ("text", "room_id"),
    [
        ("Room ID: 1234567890", "1234567890"),
        ("room id 123 456 7890", "1234567890"),
        ("My room number is 123-456-7890.", "1234567890"),
        ("it is 1234567890 I think", "1234567890"),
        ("Room ID: 1234567890\nMobile: +44 7700 900123", "1234567890"),
        ("call me on +44 7700 900123", None),
        ("order 12345678901234", None),
    ],
)
def test_p9_2_the_room_id_is_found(text: str, room_id: str | None) -> None:
    assert room_id_in(text) == (room_id, False)


def test_p9_2_two_room_ids_are_one_too_many() -> None:
    assert room_id_in("Room ID: 1234567890, or maybe Room ID: 1234567891") == (None, True)


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Name: Ann Example", "Ann Example"),
        ("full name = Ann  Example\n", "Ann Example"),
        ("Hi, my name is Ann Example, and I want my data.", "Ann Example"),
        ("Please do it.\n\nBest regards,\nAnn Example\n", "Ann Example"),
        ("Thanks!\n\nAnn\n", "Ann"),
        ("Please do it.\n\nRegards,\n+44 7700 900123\n", None),
        ("Nothing here", None),
    ],
)
def test_p9_2_the_name_is_found(text: str, name: str | None) -> None:
    assert name_in(text) == name


def test_p9_2_a_reply_quoting_our_instructions_is_read_without_them() -> None:
    raw = message(
        "ann@example.com",
        "Please delete my data.\nRoom ID: 1234567890\nName: Ann Example\n\n"
        "On 20 Jan 2027, Kallu <privacy@kallu.cc> wrote:\n"
        "> say what you ask: access, rectification, erasure or portability\n",
        subject="Re: My Personal Data",
    )
    reading = read_request(parse(raw), ALL)
    assert reading.kinds == (RequestKind.ERASURE,)
    assert reading.complete


def test_p9_2_what_is_missing_is_said_part_by_part() -> None:
    reading = read_request(parse(message("ann@example.com", "Hello there")), ALL)
    assert not reading.complete
    assert len(reading.missing) == 3
    assert any("access" in m and "erasure" in m for m in reading.missing)
    assert any("Room ID" in m for m in reading.missing)
    assert any("name" in m for m in reading.missing)


def test_the_sender_is_one_address_lower_cased() -> None:
    mail = parse(message("Ann Example <Ann.Example@EXAMPLE.com>", "hi"))
    assert (mail.sender, mail.sender_domain) == ("ann.example@example.com", "example.com")
    two = b"From: a@example.com, b@example.com\r\nSubject: x\r\n\r\nhi\r\n"
    assert parse(two).sender is None
    assert parse(b"From: nobody\r\n\r\nhi\r\n").sender is None


def test_an_html_only_message_is_read_as_text() -> None:
    raw = (
        b"From: ann@example.com\r\nSubject: My Personal Data\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/html; charset=utf-8\r\n\r\n"
        b"<html><style>p{}</style><body><p>Please <b>delete</b> my data.</p>"
        b"<p>Room ID: 1234567890</p><p>Name: Ann Example</p></body></html>\r\n"
    )
    reading = read_request(parse(raw), ALL)
    assert reading.kinds == (RequestKind.ERASURE,)
    assert (reading.room_id, reading.name) == ("1234567890", "Ann Example")
