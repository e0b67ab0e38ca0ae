"""Messages to support, by API and by the contact form (P2.10)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from factories import Person, api_error, marker
from privault.runtime import Runtime
from privault.service.messages import truncate_ip
from privault.service.models import Account, Message
from privault.vault import Field
from privault.vault.models import Subject
from privault.web.app import create_app

MESSAGES = "/api/v1/me/messages"
CARD = "4111 1111 1111 1111"


def rows(runtime: Runtime, **where: Any) -> list[Message]:
    with runtime.transaction() as session:
        query = select(Message).order_by(Message.created_at)
        for name, value in where.items():
            query = query.where(getattr(Message, name) == value)
        return list(session.scalars(query))


def metadata_of(runtime: Runtime, row: Message) -> Any:
    with runtime.transaction() as session:
        return runtime.vault.decrypt_json(
            session,
            row.subject_id,
            Field("messages", "metadata_ct", row.id),
            row.metadata_ct,
            purpose="support",
        )


def subjects(runtime: Runtime) -> int:
    with runtime.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(Subject)) or 0)


@pytest.fixture
def remote(runtime: Runtime) -> Iterator[TestClient]:
    """A client that connects from 203.0.113.77 (a documentation address)."""
    app = create_app(runtime)
    with TestClient(app, raise_server_exceptions=False, client=("203.0.113.77", 50123)) as c:
        yield c


# The API


def test_p2_10_a_member_message_is_stored_encrypted_with_minimal_metadata(
    remote: TestClient, runtime: Runtime, alice: Person
) -> None:
    subject, body = marker("subj"), f"{marker('body')}\nsecond line"
    response = remote.post(
        MESSAGES,
        json={"subject": subject, "body": body},
        headers={**alice.auth, "User-Agent": "Mozilla/5.0 mkagent"},
    )
    assert response.status_code == 201, response.text
    out = response.json()
    assert out == {
        "id": out["id"],
        "channel": "api",
        "subject": subject,
        "body": body,
        "received_at": out["received_at"],
        "sender_email": None,
        "ip_prefix": "203.0.113.0/24",
    }
    [row] = rows(runtime, subject_id=alice.subject_id)
    assert row.id == out["id"] and row.channel == "api"
    for text in (subject, body, "203.0.113", "mkagent"):
        assert text.encode() not in row.content_ct + row.metadata_ct
    metadata = metadata_of(runtime, row)
    assert set(metadata) == {"subject", "received_at", "ip_prefix"}
    assert metadata["ip_prefix"] == "203.0.113.0/24"
    assert "mkagent" not in str(metadata)


def test_p2_10_the_caller_lists_their_own_messages(client: TestClient, alice: Person) -> None:
    first = client.post(MESSAGES, json={"subject": "A", "body": "one"}, headers=alice.auth)
    second = client.post(MESSAGES, json={"subject": "B", "body": "two"}, headers=alice.auth)
    listed = client.get(MESSAGES, headers=alice.auth).json()["messages"]
    assert [m["id"] for m in listed] == [second.json()["id"], first.json()["id"]]
    one = client.get(f"{MESSAGES}/{first.json()['id']}", headers=alice.auth)
    assert one.json() == first.json()


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"subject": "", "body": "x"}, "invalid_request"),
        ({"subject": "Hi", "body": " \n "}, "invalid_input"),
        ({"subject": "Hi"}, "invalid_request"),
        ({"subject": "Hi", "body": "x" * 10_001}, "invalid_request"),
        ({"subject": "Hi", "body": "x", "cc": "someone"}, "invalid_request"),
        ({"subject": "Refund", "body": f"my card {CARD} was charged"}, "card_number_refused"),
    ],
    ids=["no-subject", "blank-body", "no-body", "too-long", "unknown-field", "card-number"],
)
def test_p2_10_a_bad_message_is_refused(
    client: TestClient, runtime: Runtime, alice: Person, body: dict[str, Any], code: str
) -> None:
    response = client.post(MESSAGES, json=body, headers=alice.auth)
    api_error(response, 422, code)
    assert "4111" not in response.text
    assert rows(runtime, subject_id=alice.subject_id) == []


def test_it_rejects_mallory(client: TestClient, alice: Person, mallory: Person) -> None:
    secret = marker("secret")
    sent = client.post(MESSAGES, json={"subject": "Help", "body": secret}, headers=alice.auth)
    message_id = sent.json()["id"]
    assert client.get(MESSAGES, headers=mallory.auth).json() == {"messages": []}
    response = client.get(f"{MESSAGES}/{message_id}", headers=mallory.auth)
    api_error(response, 404, "message_not_found")
    assert secret not in response.text
    api_error(client.get(MESSAGES), 401, "not_authenticated")
    api_error(client.post(MESSAGES, json={"subject": "x", "body": "y"}), 401)


# Truncating the address


@pytest.mark.parametrize(
    ("host", "prefix"),
    [
        ("203.0.113.77", "203.0.113.0/24"),
        ("2001:db8:1234:5678::1", "2001:db8:1234::/48"),
        ("::ffff:198.51.100.9", "198.51.100.0/24"),
        ("testclient", None),
        ("", None),
        (None, None),
    ],
)
def test_p2_10_the_address_is_kept_only_as_its_network(
    host: str | None, prefix: str | None
) -> None:
    assert truncate_ip(host) == prefix


# The contact form: plain HTML, no script, no cookie


def test_p2_10_the_form_works_without_script_or_cookies(client: TestClient) -> None:
    response = client.get("/contact")
    assert response.status_code == 200
    page = response.text
    # The only script is the cookie banner's, which the form does not need.
    assert re.findall(r"<script[^>]*>", page.lower()) == ['<script src="/static/consent.js" defer>']
    assert "set-cookie" not in response.headers
    assert re.search(r'<form class="stack" method="post" action="/contact"', page)
    for name in ("email", "subject", "message"):
        assert re.search(rf'<label for="f-{name}">', page)
        assert f'id="f-{name}" name="{name}"' in page


def test_p2_10_a_visitor_message_creates_a_subject_of_its_own(
    remote: TestClient, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    before = subjects(runtime)
    email, body = f"{marker('visitor')}@example.com", marker("body")
    response = remote.post(
        "/contact",
        data={"email": email, "subject": "Question", "message": body},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/contact/sent"
    assert "set-cookie" not in response.headers
    assert "Thank you" in remote.get("/contact/sent").text
    assert subjects(runtime) == before + 1
    [row] = [
        r for r in rows(runtime, channel="web") if metadata_of(runtime, r)["subject"] == "Question"
    ]
    with runtime.transaction() as session:
        assert session.get(Account, row.subject_id) is None
    assert email.encode() not in row.metadata_ct and body.encode() not in row.content_ct
    assert metadata_of(runtime, row) == {
        "subject": "Question",
        "received_at": metadata_of(runtime, row)["received_at"],
        "ip_prefix": "203.0.113.0/24",
        "sender_email": email,
    }
    assert email not in caplog.text and body not in caplog.text


def test_p2_10_a_member_sends_the_form_as_themselves(
    client: TestClient, runtime: Runtime, alice: Person
) -> None:
    cookie = {"Cookie": f"privault_session={alice.token}"}
    page = client.get("/contact", headers=cookie).text
    assert 'name="email"' not in page
    response = client.post(
        "/contact",
        data={"subject": "From the web", "message": "Hello"},
        headers=cookie,
        follow_redirects=False,
    )
    assert response.status_code == 303
    listed = client.get(MESSAGES, headers=alice.auth).json()["messages"]
    assert [(m["channel"], m["subject"], m["body"]) for m in listed] == [
        ("web", "From the web", "Hello")
    ]


@pytest.mark.parametrize(
    ("data", "field", "error"),
    [
        (
            {"email": "not-an-address", "subject": "Hi", "message": "Hello"},
            "email",
            "not a valid email",
        ),
        ({"subject": "Hi", "message": "Hello"}, "email", "email address must be"),
        ({"email": "carol@example.com", "subject": "", "message": "Hello"}, "subject", "subject"),
        ({"email": "carol@example.com", "subject": "Hi", "message": ""}, "message", "message"),
    ],
    ids=["bad-email", "no-email", "no-subject", "no-message"],
)
def test_p2_10_a_bad_form_comes_back_filled_in(
    client: TestClient, runtime: Runtime, data: dict[str, str], field: str, error: str
) -> None:
    """The message sits under its field, which says it is invalid and points to it."""
    before = subjects(runtime)
    response = client.post("/contact", data=data)
    assert response.status_code == 422
    shown = re.search(rf'<p class="error" id="f-{field}-error">([^<]*)</p>', response.text)
    assert shown is not None and error in shown.group(1)
    opening = re.search(rf'<(input|textarea) id="f-{field}"[^>]*>', response.text)
    assert opening is not None and 'aria-invalid="true"' in opening.group(0)
    assert f"f-{field}-error" in opening.group(0)
    for value in data.values():
        assert value in response.text
    assert subjects(runtime) == before


def test_p7_3_a_card_number_in_the_form_is_taken_out_and_nothing_kept(
    client: TestClient, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    before = subjects(runtime)
    response = client.post(
        "/contact",
        data={"email": "carol@example.com", "subject": "Refund", "message": f"Card {CARD} ok?"},
    )
    assert response.status_code == 422
    assert "Card [card number removed] ok?" in response.text
    assert "card number" in response.text
    for form in (CARD, CARD.replace(" ", "")):
        assert form not in response.text and form not in caplog.text
    assert subjects(runtime) == before


def test_p2_10_a_form_from_another_origin_is_refused(client: TestClient, runtime: Runtime) -> None:
    before = subjects(runtime)
    data = {"email": "carol@example.com", "subject": "Hi", "message": "Hello"}
    for origin in ("https://attacker.example", "null", "http://testserver.example"):
        response = client.post("/contact", data=data, headers={"Origin": origin})
        api_error(response, 403, "cross_origin_form")
    assert subjects(runtime) == before
    same = client.post(
        "/contact", data=data, headers={"Origin": "http://testserver"}, follow_redirects=False
    )
    assert same.status_code == 303
