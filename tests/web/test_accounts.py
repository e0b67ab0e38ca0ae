"""Registration, email verification, login sessions and passwords over HTTP."""

from __future__ import annotations

import email
import email.policy
import logging
import re
import secrets
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import Engine, select

from factories import Person, api_error, unique_email
from privault.access.models import AccessLogEntry
from privault.config import Settings
from privault.notify.models import OutboxMessage
from privault.runtime import Runtime, open_runtime, prepare
from privault.service.models import Account
from privault.service.passwords import Passwords
from privault.web.app import create_app

PASSWORD = "correct-horse-battery-42"
NEW_PASSWORD = "another-staple-of-97-words"
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def register(client: TestClient, address: str, password: str = PASSWORD) -> dict[str, str]:
    response = client.post(
        "/api/v1/accounts", json={"email": address, "password": password, "display_name": "Carol"}
    )
    assert response.status_code == 201, response.text
    body: dict[str, str] = response.json()
    return body


def login(client: TestClient, address: str, password: str) -> Response:
    return client.post("/api/v1/session", json={"email": address, "password": password})


def token_of(client: TestClient, address: str, password: str) -> str:
    """Log in and return the token; the client's cookie jar is left empty."""
    response = login(client, address, password)
    assert response.status_code == 200, response.text
    client.cookies.clear()
    token: str = response.json()["token"]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def session_cookie(response: Response) -> tuple[str, set[str]]:
    """The value and the lower-cased attributes of the session cookie set by ``response``."""
    [header] = [
        h for h in response.headers.get_list("set-cookie") if h.startswith("privault_session=")
    ]
    pair, *attributes = (part.strip() for part in header.split(";"))
    return pair.partition("=")[2], {a.lower() for a in attributes}


def verification_link(runtime: Runtime, subject_id: str) -> str:
    """The link in the verification mail delivered to the maildir for ``subject_id``."""
    with runtime.transaction() as session:
        row_id = session.scalar(
            select(OutboxMessage.id).where(
                OutboxMessage.subject_id == subject_id, OutboxMessage.template == "verify_email"
            )
        )
    assert row_id is not None
    path = runtime.settings.maildir / "new" / f"{row_id}.eml"
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    body = message.get_body(("plain",))
    assert body is not None
    found = re.search(r"\S+/verify-email\?token=\S+", body.get_content())
    assert found is not None
    return found.group(0)


def account_row(runtime: Runtime, subject_id: str) -> Account:
    with runtime.transaction() as session:
        account = session.get(Account, subject_id)
    assert account is not None
    return account


# Registration


def test_registration_answers_201_with_subject_and_room_id(client: TestClient) -> None:
    body = register(client, unique_email("carol"))
    assert set(body) == {"subject_id", "room_id"}
    assert re.fullmatch(r"[0-9]{10}", body["room_id"])


def test_every_registration_gets_its_own_room_id(client: TestClient) -> None:
    rooms = [register(client, unique_email("carol"))["room_id"] for _ in range(5)]
    assert len(set(rooms)) == 5


@pytest.mark.parametrize("case", [str, str.upper])
def test_duplicate_email_is_409_without_saying_more(
    client: TestClient, alice: Person, case: Callable[[str], str]
) -> None:
    response = client.post(
        "/api/v1/accounts", json={"email": case(alice.email), "password": PASSWORD}
    )
    detail = api_error(response, 409, "email_taken")
    local = alice.email.split("@")[0]
    for secret in (alice.subject_id, alice.room_id, local, "example.com"):
        assert secret not in detail.lower()


# P2.3: verified email, stored encrypted, found by blind index


@pytest.mark.parametrize("route", ["api", "page"])
def test_p2_3_the_mailed_link_verifies_the_email(
    client: TestClient, runtime: Runtime, route: str
) -> None:
    address = unique_email("carol")
    subject_id = register(client, address)["subject_id"]
    auth = bearer(token_of(client, address, PASSWORD))
    assert client.get("/api/v1/me", headers=auth).json()["email_verified"] is False

    runtime.mailer().deliver_pending()
    link = urlsplit(verification_link(runtime, subject_id))
    token = parse_qs(link.query)["token"][0]
    if route == "api":
        response = client.post("/api/v1/accounts/verify", json={"token": token})
        assert response.status_code == 200, response.text
        assert response.json() == {"verified": True}
    else:
        response = client.get(f"{link.path}?{link.query}")
        assert response.status_code == 200
        assert "Email address confirmed" in response.text

    me = client.get("/api/v1/me", headers=auth).json()
    assert me["email_verified"] is True
    assert me["email"] == address


def test_p2_3_a_verification_token_works_once(client: TestClient, runtime: Runtime) -> None:
    subject_id = register(client, unique_email("carol"))["subject_id"]
    runtime.mailer().deliver_pending()
    token = verification_link(runtime, subject_id).split("token=", 1)[1]
    assert client.post("/api/v1/accounts/verify", json={"token": token}).status_code == 200

    again = client.post("/api/v1/accounts/verify", json={"token": token})
    assert token not in api_error(again, 422, "verification_invalid")
    page = client.get("/verify-email", params={"token": token})
    assert page.status_code == 400
    assert "This link does not work" in page.text


@pytest.mark.parametrize(
    "token", ["made-up-token", secrets.token_urlsafe(32)], ids=["word", "random"]
)
def test_p2_3_a_made_up_token_is_refused(client: TestClient, alice: Person, token: str) -> None:
    api_error(
        client.post("/api/v1/accounts/verify", json={"token": token}), 422, "verification_invalid"
    )
    assert client.get("/verify-email", params={"token": token}).status_code == 400
    assert client.get("/verify-email").status_code == 400
    assert client.get("/api/v1/me", headers=alice.auth).json()["email_verified"] is False


def test_p2_3_a_sent_mail_drops_its_payload_and_is_never_sent_twice(
    client: TestClient, runtime: Runtime
) -> None:
    address = unique_email("carol")
    subject_id = register(client, address)["subject_id"]
    with runtime.transaction() as session:
        row = session.scalars(
            select(OutboxMessage).where(OutboxMessage.subject_id == subject_id)
        ).one()
    assert row.state == "pending" and row.payload_ct is not None
    assert address.encode() not in row.payload_ct

    assert runtime.mailer().deliver_pending() >= 1
    with runtime.transaction() as session:
        sent = session.get(OutboxMessage, row.id)
        assert sent is not None
        assert sent.state == "sent"
        assert sent.payload_ct is None
        assert sent.sent_at is not None

    mail = runtime.settings.maildir / "new" / f"{row.id}.eml"
    first = mail.read_bytes()
    assert address.encode() in first
    assert runtime.mailer().deliver_pending() == 0
    assert mail.read_bytes() == first
    assert list(runtime.settings.maildir.rglob(mail.name)) == [mail]


def test_p2_3_the_email_is_stored_only_encrypted(client: TestClient, runtime: Runtime) -> None:
    address = unique_email("Carol.Mixed")
    subject_id = register(client, address)["subject_id"]
    account = account_row(runtime, subject_id)
    local = address.split("@")[0]
    for form in (address, address.lower(), local, local.lower()):
        assert form.encode() not in account.email_ct
        assert form.encode() not in account.email_index


@pytest.mark.parametrize("case", [str.lower, str.upper, str.swapcase])
def test_p2_3_login_finds_the_account_by_blind_index_whatever_the_case(
    client: TestClient, case: Callable[[str], str]
) -> None:
    address = unique_email("Carol.Mixed")
    subject_id = register(client, address)["subject_id"]
    response = login(client, case(address), PASSWORD)
    assert response.status_code == 200, response.text
    client.cookies.clear()
    me = client.get("/api/v1/me", headers=bearer(response.json()["token"])).json()
    assert me["subject_id"] == subject_id


# Login, the session cookie, logout


def test_me_returns_the_callers_own_account(client: TestClient, alice: Person) -> None:
    response = client.get("/api/v1/me", headers=alice.auth)
    assert response.status_code == 200
    assert response.json() == {
        "subject_id": alice.subject_id,
        "email": alice.email,
        "display_name": "Alice",
        "room_id": alice.room_id,
        "email_verified": False,
    }


def test_login_answers_a_token_and_an_httponly_lax_cookie(
    client: TestClient, alice: Person
) -> None:
    response = login(client, alice.email, alice.password)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token", "expires_in"}
    assert body["expires_in"] > 0
    value, attributes = session_cookie(response)
    assert value == body["token"]
    assert "httponly" in attributes
    assert "samesite=lax" in attributes
    assert "path=/" in attributes
    assert "secure" not in attributes


def test_the_session_cookie_is_secure_over_https(runtime: Runtime, alice: Person) -> None:
    with TestClient(create_app(runtime), base_url="https://testserver") as https:
        response = login(https, alice.email, alice.password)
        assert response.status_code == 200
        _, attributes = session_cookie(response)
        assert {"secure", "httponly", "samesite=lax"} <= attributes
        assert https.get("/api/v1/me").json()["subject_id"] == alice.subject_id


def test_the_cookie_alone_authenticates(client: TestClient, alice: Person) -> None:
    assert client.get("/api/v1/me").status_code == 401
    assert login(client, alice.email, alice.password).status_code == 200
    assert "privault_session" in client.cookies
    response = client.get("/api/v1/me")
    assert response.status_code == 200
    assert response.json()["subject_id"] == alice.subject_id


def test_wrong_password_and_unknown_email_get_the_same_401(
    client: TestClient, alice: Person
) -> None:
    wrong = api_error(login(client, alice.email, alice.password + "x"), 401, "invalid_credentials")
    unknown = api_error(
        login(client, unique_email("nobody"), alice.password), 401, "invalid_credentials"
    )
    assert wrong == unknown
    assert "privault_session" not in client.cookies


def test_logout_makes_the_token_stop_working(client: TestClient, alice: Person) -> None:
    assert client.get("/api/v1/me", headers=alice.auth).status_code == 200
    assert client.delete("/api/v1/session", headers=alice.auth).status_code == 204
    api_error(client.get("/api/v1/me", headers=alice.auth), 401, "not_authenticated")


def test_logout_by_cookie_ends_the_session_and_clears_the_cookie(
    client: TestClient, alice: Person
) -> None:
    token = login(client, alice.email, alice.password).json()["token"]
    response = client.delete("/api/v1/session")
    assert response.status_code == 204
    value, attributes = session_cookie(response)
    assert value in ("", '""')
    assert "max-age=0" in attributes
    assert "privault_session" not in client.cookies
    api_error(client.get("/api/v1/me", headers=bearer(token)), 401, "not_authenticated")


def test_logout_does_not_touch_other_sessions(client: TestClient, alice: Person) -> None:
    other = token_of(client, alice.email, alice.password)
    assert client.delete("/api/v1/session", headers=bearer(other)).status_code == 204
    assert client.get("/api/v1/me", headers=alice.auth).status_code == 200


# Password change


def change_password(client: TestClient, auth: dict[str, str], current: str, new: str) -> Response:
    return client.put(
        "/api/v1/me/password",
        json={"current_password": current, "new_password": new},
        headers=auth,
    )


def test_password_change_refuses_a_wrong_current_password(
    client: TestClient, alice: Person
) -> None:
    response = change_password(client, alice.auth, alice.password + "x", NEW_PASSWORD)
    api_error(response, 401, "invalid_credentials")
    assert login(client, alice.email, alice.password).status_code == 200


@pytest.mark.parametrize(
    ("new", "reason"),
    [
        ("short-1", "at least 10 characters"),
        ("password123", "most common"),
        (None, "email"),
    ],
)
def test_password_change_refuses_a_weak_new_password(
    client: TestClient, alice: Person, new: str | None, reason: str
) -> None:
    new = new or f"{alice.email.split('@')[0]}-2024!"
    response = change_password(client, alice.auth, alice.password, new)
    assert reason in api_error(response, 422, "weak_password")
    assert login(client, alice.email, alice.password).status_code == 200


def test_password_change_closes_the_other_sessions_and_keeps_this_one(
    client: TestClient, runtime: Runtime, alice: Person
) -> None:
    other = token_of(client, alice.email, alice.password)
    response = change_password(client, alice.auth, alice.password, NEW_PASSWORD)
    assert response.status_code == 204
    assert response.content == b""

    assert client.get("/api/v1/me", headers=alice.auth).status_code == 200
    api_error(client.get("/api/v1/me", headers=bearer(other)), 401, "not_authenticated")
    api_error(login(client, alice.email, alice.password), 401, "invalid_credentials")
    assert login(client, alice.email, NEW_PASSWORD).status_code == 200
    assert account_row(runtime, alice.subject_id).password_hash.startswith("$argon2id$")


# P7.2: personal-data endpoints need authentication; Argon2id


def me_operations(client: TestClient) -> list[tuple[str, str]]:
    """Every (method, path) the OpenAPI document lists under /api/v1/me."""
    paths = client.get("/openapi.json").json()["paths"]
    return sorted(
        (method.upper(), re.sub(r"\{[^}]+\}", "1", path))
        for path, operations in paths.items()
        if path == "/api/v1/me" or path.startswith("/api/v1/me/")
        for method in operations
        if method in HTTP_METHODS
    )


def test_p7_2_the_openapi_document_lists_the_me_routes(client: TestClient) -> None:
    operations = me_operations(client)
    for expected in [
        ("GET", "/api/v1/me"),
        ("PUT", "/api/v1/me/password"),
        ("GET", "/api/v1/me/profile"),
        ("PATCH", "/api/v1/me/profile"),
    ]:
        assert expected in operations


@pytest.mark.parametrize(
    "credentials",
    ["none", "garbage bearer", "empty bearer", "garbage cookie", "other scheme"],
)
def test_p7_2_every_me_route_needs_authentication(
    client: TestClient, alice: Person, credentials: str
) -> None:
    headers = {
        "none": {},
        "garbage bearer": bearer("garbage-" + secrets.token_urlsafe(16)),
        "empty bearer": {"Authorization": "Bearer "},
        "garbage cookie": {},
        "other scheme": {"Authorization": f"Basic {alice.token}"},
    }[credentials]
    if credentials == "garbage cookie":
        client.cookies.set("privault_session", secrets.token_urlsafe(32))
    for method, path in me_operations(client):
        response = client.request(method, path, headers=headers)
        assert response.status_code == 401, (method, path, response.text)
        api_error(response, 401, "not_authenticated")
        assert alice.email not in response.text


def test_p7_2_every_me_route_refuses_a_closed_session(client: TestClient, alice: Person) -> None:
    assert client.delete("/api/v1/session", headers=alice.auth).status_code == 204
    for method, path in me_operations(client):
        api_error(client.request(method, path, headers=alice.auth), 401, "not_authenticated")


def test_p7_2_passwords_are_stored_as_argon2id(client: TestClient, runtime: Runtime) -> None:
    subject_id = register(client, unique_email("carol"))["subject_id"]
    stored = account_row(runtime, subject_id).password_hash
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


# P7.5: passwords never leak


def test_p7_5_passwords_never_appear_in_responses_logs_or_error_details(
    client: TestClient, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    address = unique_email("dora")
    local = address.split("@")[0]
    first = f"first-{secrets.token_hex(8)}"
    second = f"second-{secrets.token_hex(8)}"
    wrong = f"wrong-{secrets.token_hex(8)}"
    weak = f"{local}-{secrets.token_hex(4)}"
    short = f"q!{secrets.token_hex(3)}"
    passwords = [first, second, wrong, weak, short]

    responses = [
        client.post("/api/v1/accounts", json={"email": address, "password": short}),
        client.post("/api/v1/accounts", json={"email": address, "password": weak}),
        client.post("/api/v1/accounts", json={"email": address, "password": first}),
        client.post("/api/v1/accounts", json={"email": address, "password": first}),
        client.post("/api/v1/accounts", json={"email": "not-an-email", "password": first}),
        client.post("/api/v1/accounts", json={"email": address, "password": [first]}),
        client.post("/api/v1/accounts", json={"email": first, "password": first}),
        login(client, address, wrong),
        login(client, address, first),
    ]
    client.cookies.clear()
    auth = bearer(responses[-1].json()["token"])
    responses += [
        change_password(client, auth, wrong, second),
        change_password(client, auth, first, weak),
        change_password(client, auth, first, short),
        change_password(client, auth, first, second),
        login(client, address, first),
        login(client, address, second),
        client.get("/api/v1/me", headers=auth),
    ]
    assert [r.status_code for r in responses] == [
        *(422, 422, 201, 409, 422, 422, 422, 401, 200),
        *(401, 422, 422, 204, 401, 200, 200),
    ]

    for response in responses:
        for password in passwords:
            assert password not in response.text
            assert password not in str(response.headers)
    with runtime.transaction() as session:
        trail = " ".join(
            f"{e.actor} {e.action} {e.categories} {e.purpose} {e.detail}"
            for e in session.scalars(select(AccessLogEntry))
        )
    assert "account:password_changed" in trail
    for password in passwords:
        assert password not in caplog.text
        assert password not in trail


def test_a_refused_login_stays_on_record_in_the_access_log(
    client: TestClient, runtime: Runtime, alice: Person
) -> None:
    api_error(login(client, alice.email, alice.password + "-wrong"), 401, "invalid_credentials")
    with runtime.transaction() as session:
        refused = session.scalars(
            select(AccessLogEntry).where(AccessLogEntry.action == "api:session:refused")
        ).all()
        assert [entry.subject_id for entry in refused] == [alice.subject_id]
        assert runtime.audit.verify(session).ok


def test_401_says_how_to_authenticate(client: TestClient) -> None:
    response = client.get("/api/v1/me")
    api_error(response, 401, "not_authenticated")
    assert response.headers["www-authenticate"] == "Bearer"


class CountingPasswords(Passwords):
    """Argon2id as configured, noting how many of ``engine``'s connections are checked out
    each time a password is verified."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        super().__init__(settings.argon2_time_cost, settings.argon2_memory_kib)
        self.engine = engine
        self.held: list[int] = []

    def verify(self, stored: str | None, password: str) -> bool:
        self.held.append(self.engine.pool.checkedout())
        return super().verify(stored, password)


def test_login_verifies_the_password_holding_no_database_connection(
    fresh_settings: Settings,
) -> None:
    """A login's Argon2id verification runs outside any transaction: on SQLite a transaction
    holds the one write lock, so every write would wait for the hash (issue 11's load run)."""
    prepare(fresh_settings).dispose()
    runtime = open_runtime(fresh_settings)
    engine = runtime.factory.kw["bind"]
    runtime.passwords = counting = CountingPasswords(fresh_settings, engine)
    try:
        with TestClient(create_app(runtime)) as client:
            address = unique_email("carol")
            register(client, address)
            assert login(client, address, PASSWORD).status_code == 200
            api_error(login(client, address, PASSWORD + "-wrong"), 401, "invalid_credentials")
            api_error(login(client, unique_email("nobody"), PASSWORD), 401, "invalid_credentials")
            page = client.post("/login", data={"email": address, "password": PASSWORD})
            assert page.status_code == 200
            assert "privault_session" in client.cookies
    finally:
        runtime.close()
    assert counting.held == [0, 0, 0, 0]
