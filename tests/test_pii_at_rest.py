"""Personal data never lies in plaintext at rest, nor in the logs (P7.1, P7.5, P2.3)."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from privault.config import Settings
from privault.db import make_engine
from privault.runtime import open_runtime, prepare
from privault.web.app import create_app

PEOPLE = 50


def _marker(kind: str) -> str:
    return f"mk{kind}{secrets.token_hex(6)}"


def _buy_post_and_write(client: TestClient, auth: dict[str, str]) -> list[str]:
    """A purchase, a username, a public post, a message by API and one by the visitor form
    (P2.8, P2.9, P2.10); returns their markers."""
    billing_name, address, token = _marker("bn"), _marker("ba"), _marker("tk")
    billing_email, username, post = _marker("be"), _marker("us"), _marker("po")
    subject, message, visitor, visitor_message = (_marker(k) for k in ("su", "me", "vi", "vm"))
    purchase = {
        "kind": "purchase",
        "item": "Premium room",
        "amount_minor": 4999,
        "currency": "EUR",
        "billing_name": billing_name,
        "billing_address": f"{address}\n75001 Paris",
        "phone": "+442079460958",
        "email": f"{billing_email}@example.com",
        "payment_token": f"tok_{token}",
        "card_brand": "visa",
        "card_last4": "4242",
        "card_expiry": "09/27",
    }
    assert client.post("/api/v1/me/purchases", json=purchase, headers=auth).status_code == 201
    assert (
        client.put("/api/v1/me/username", json={"username": username}, headers=auth).status_code
        == 200
    )
    assert (
        client.post(
            "/api/v1/me/posts", json={"body": post, "visibility": "public"}, headers=auth
        ).status_code
        == 201
    )
    assert (
        client.post(
            "/api/v1/me/messages", json={"subject": subject, "body": message}, headers=auth
        ).status_code
        == 201
    )
    sent = client.post(
        "/contact",
        data={"email": f"{visitor}@example.com", "subject": "Hello", "message": visitor_message},
        follow_redirects=False,
    )
    assert sent.status_code == 303
    return [
        *(billing_name, address, token, billing_email, username, post, subject, message),
        *(visitor, visitor_message),
    ]


def _register_everyone(client: TestClient) -> list[str]:
    """Register, log in and fill the profile of PEOPLE people; returns every marker used."""
    markers: list[str] = []
    for _ in range(PEOPLE):
        email_local, name, password = _marker("em"), _marker("nm"), _marker("pw")
        fields = {k: _marker(k[:2]) for k in ("gender", "education", "employment")}
        interest = _marker("in")
        markers += [email_local, name, password, interest, *fields.values()]
        email = f"{email_local}@example.com"
        assert (
            client.post(
                "/api/v1/accounts",
                json={"email": email, "password": password, "display_name": name},
            ).status_code
            == 201
        )
        login = client.post("/api/v1/session", json={"email": email, "password": password})
        assert login.status_code == 200
        auth = {"Authorization": f"Bearer {login.json()['token']}"}
        patch = {k: {"value": v, "visibility": "members"} for k, v in fields.items()}
        patch["name"] = {"value": name}
        patch["interests"] = {"value": [interest]}
        assert client.patch("/api/v1/me/profile", json=patch, headers=auth).status_code == 200
        markers += _buy_post_and_write(client, auth)
        # A failed login with the real address must not leak it either.
        assert (
            client.post(
                "/api/v1/session", json={"email": email, "password": password + "x"}
            ).status_code
            == 401
        )
    return markers


def _sqlite_bytes(settings: Settings) -> bytes:
    folder = settings.data_dir
    return b"".join(
        path.read_bytes()
        for path in [*sorted(folder.glob("privault.db*")), folder / "keyring.json"]
        if path.exists()
    )


def _postgres_values(engine: Engine) -> Iterator[bytes]:
    with engine.connect() as conn:
        columns = conn.execute(
            text(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() "
                "AND data_type IN ('text', 'character varying', 'bytea', 'json', 'jsonb')"
            )
        ).all()
        assert columns, "no columns found in the test schema"
        for table, column in columns:
            for (value,) in conn.execute(text(f'SELECT "{column}" FROM "{table}"')):  # noqa: S608
                if value is None:
                    continue
                yield bytes(value) if isinstance(value, bytes | memoryview) else str(value).encode()


def _found(markers: list[str], haystack: bytes) -> list[str]:
    lower = haystack.lower()
    return [m for m in markers if m.encode() in haystack or m.lower().encode() in lower]


@pytest.fixture
def served(fresh_settings: Settings) -> Iterator[tuple[Settings, TestClient]]:
    prepare(fresh_settings).dispose()
    runtime = open_runtime(fresh_settings)
    with TestClient(create_app(runtime)) as client:
        yield fresh_settings, client
    runtime.close()


def test_p7_1_no_personal_data_in_plaintext_at_rest_or_in_logs(
    served: tuple[Settings, TestClient], caplog: pytest.LogCaptureFixture, backend: str
) -> None:
    settings, client = served
    caplog.set_level(logging.DEBUG)
    markers = _register_everyone(client)
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    assert runtime.mailer().deliver_pending() == PEOPLE

    if backend == "sqlite":
        runtime.close()
        stored = _sqlite_bytes(settings)
        assert len(stored) > 100_000
    else:
        engine = make_engine(settings.db_url)
        stored = b"\n".join(_postgres_values(engine))
        engine.dispose()
    assert _found(markers, stored) == []
    assert _found(markers, caplog.text.encode()) == []


def test_p7_1_the_scan_would_see_plaintext(
    served: tuple[Settings, TestClient], backend: str
) -> None:
    """The scan above is not blind: a plaintext marker written to a table is found."""
    settings, _ = served
    marker = _marker("control")
    engine = make_engine(settings.db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE access_log SET actor = :m WHERE seq = 1"), {"m": marker})
    if backend == "sqlite":
        engine.dispose()
        assert _found([marker], _sqlite_bytes(settings)) == [marker]
    else:
        assert _found([marker], b"\n".join(_postgres_values(engine))) == [marker]
        engine.dispose()
