"""Personal data never lies in plaintext at rest, nor in the logs (P7.1, P7.5, P2.3, P2.6,
P2.7): one scan over everything the service stores."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from factories import cdr, marker
from privault.config import Settings
from privault.db import make_engine
from privault.runtime import open_runtime, prepare
from privault.service.errors import WeakPin
from privault.service.pbx import PbxTokenService
from privault.service.pins import check_pin_strength
from privault.web.app import create_app

PEOPLE = 50


def _buy_post_and_write(client: TestClient, auth: dict[str, str]) -> list[str]:
    """A purchase, a username, a public post, a message by API and one by the visitor form
    (P2.8, P2.9, P2.10); returns their markers."""
    billing_name, address, token = marker("bn"), marker("ba"), marker("tk")
    billing_email, username, post = marker("be"), marker("us"), marker("po")
    subject, message, visitor, visitor_message = (marker(k) for k in ("su", "me", "vi", "vm"))
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


def _fi_mobile() -> str:
    """A random valid Finnish mobile number, E.164."""
    return f"+35840{secrets.randbelow(10**7):07d}"


def _pin_for(room_id: str) -> str:
    """Eight random digits the strength rules accept: long enough not to occur by chance."""
    while True:
        pin = f"{secrets.randbelow(9 * 10**7) + 10**7}"
        try:
            check_pin_strength(pin, room_id)
        except WeakPin:
            continue
        return pin


def _phone_markers(numbers: list[str]) -> list[str]:
    """A number as E.164 and as its bare digits."""
    return [*numbers, *(n[1:] for n in numbers)]


def _room_lists_and_calls(
    client: TestClient, auth: dict[str, str], pbx: dict[str, str], room_id: str, locked: bool
) -> tuple[list[str], str]:
    """A PIN, a number list, PIN checks (locking the room when ``locked``) and two CDRs
    from the PBX (P7.5, P2.6, P2.7); returns the markers and the list's id."""
    pin, wrong = _pin_for(room_id), _pin_for(room_id)
    assert client.put("/api/v1/me/room/pin", json={"pin": pin}, headers=auth).status_code == 204
    name, label, numbers = marker("ls"), marker("lb"), [_fi_mobile() for _ in range(3)]
    made = client.post(
        "/api/v1/me/number-lists",
        json={"name": name, "numbers": [{"number": n, "label": label} for n in numbers]},
        headers=auth,
    )
    assert made.status_code == 201, made.text
    checker = _fi_mobile()
    for _ in range(6 if locked else 1):
        check = {"room_id": room_id, "pin": wrong, "caller": checker}
        answer = client.post("/api/v1/pbx/pin-check", json=check, headers=pbx)
        assert answer.json() == {"allowed": False}
    callers = [_fi_mobile(), _fi_mobile()]
    cdrs = [cdr(room_id, marker("call"), caller=caller) for caller in callers]
    ingested = client.post("/api/v1/pbx/cdrs", json={"cdrs": cdrs}, headers=pbx)
    assert ingested.status_code == 200 and ingested.json()["accepted"] == 2, ingested.text
    markers = [room_id, pin, wrong, name, label]
    return [*markers, *_phone_markers([*numbers, checker, *callers])], made.json()["id"]


def _register_everyone(client: TestClient, pbx: dict[str, str]) -> tuple[list[str], list[str]]:
    """Register, log in and fill the profile, room and data of PEOPLE people; returns every
    marker used and the ids of the number lists (stored in the clear, as a control)."""
    markers: list[str] = []
    list_ids: list[str] = []
    for i in range(PEOPLE):
        email_local, name, password = marker("em"), marker("nm"), marker("pw")
        fields = {k: marker(k[:2]) for k in ("gender", "education", "employment")}
        interest = marker("in")
        markers += [email_local, name, password, interest, *fields.values()]
        email = f"{email_local}@example.com"
        made = client.post(
            "/api/v1/accounts", json={"email": email, "password": password, "display_name": name}
        )
        assert made.status_code == 201
        login = client.post("/api/v1/session", json={"email": email, "password": password})
        assert login.status_code == 200
        auth = {"Authorization": f"Bearer {login.json()['token']}"}
        patch = {k: {"value": v, "visibility": "members"} for k, v in fields.items()}
        patch["name"] = {"value": name}
        patch["interests"] = {"value": [interest]}
        assert client.patch("/api/v1/me/profile", json=patch, headers=auth).status_code == 200
        markers += _buy_post_and_write(client, auth)
        room, list_id = _room_lists_and_calls(
            client, auth, pbx, made.json()["room_id"], locked=i % 2 == 1
        )
        markers += room
        list_ids.append(list_id)
        # A failed login with the real address must not leak it either.
        assert (
            client.post(
                "/api/v1/session", json={"email": email, "password": password + "x"}
            ).status_code
            == 401
        )
    return markers, list_ids


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


def test_p7_1_p7_5_no_personal_data_in_plaintext_at_rest_or_in_logs(
    served: tuple[Settings, TestClient], caplog: pytest.LogCaptureFixture, backend: str
) -> None:
    """Accounts, profiles, purchases, posts, messages, Room IDs, PINs, number lists, PIN
    checks and CDRs: none of their values lies in the database or the logs in the clear."""
    settings, client = served
    caplog.set_level(logging.DEBUG)
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    with runtime.transaction() as session:
        pbx = {"Authorization": f"Bearer {PbxTokenService(session, runtime.clock).create('p')}"}
    markers, list_ids = _register_everyone(client, pbx)
    assert runtime.mailer().deliver_pending() == PEOPLE

    if backend == "sqlite":
        runtime.close()
        stored = _sqlite_bytes(settings)
        assert len(stored) > 100_000
    else:
        engine = make_engine(settings.db_url)
        stored = b"\n".join(_postgres_values(engine))
        engine.dispose()
    assert [i for i in list_ids if i.encode() not in stored] == [], "the scan sees list ids"
    assert _found(markers, stored) == []
    assert _found(markers, caplog.text.encode()) == []
    assert "PIN checks of a room" in caplog.text, "the lockouts were logged, without values"


def test_p7_1_the_scan_would_see_plaintext(
    served: tuple[Settings, TestClient], backend: str
) -> None:
    """The scan above is not blind: a plaintext marker written to a table is found."""
    settings, _ = served
    planted = marker("control")
    engine = make_engine(settings.db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE access_log SET actor = :m WHERE seq = 1"), {"m": planted})
    if backend == "sqlite":
        engine.dispose()
        assert _found([planted], _sqlite_bytes(settings)) == [planted]
    else:
        assert _found([planted], b"\n".join(_postgres_values(engine))) == [planted]
        engine.dispose()
