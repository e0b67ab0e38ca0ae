"""Room IDs, PINs, number lists and callers' numbers never lie in plaintext at rest nor in
the logs (P7.5, P2.6, P7.1): the foundation's scan, over what rooms and PIN checks store."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from privault.config import Settings
from privault.db import make_engine
from privault.runtime import open_runtime, prepare
from privault.service.errors import WeakPin
from privault.service.pbx import PbxTokenService
from privault.service.pins import check_pin_strength
from privault.web.app import create_app

PEOPLE = 10


def marker(kind: str) -> str:
    return f"mk{kind}{secrets.token_hex(6)}"


def fi_mobile() -> str:
    """A random valid Finnish mobile number, E.164."""
    return f"+35840{secrets.randbelow(10**7):07d}"


def pin_for(room_id: str) -> str:
    """Eight random digits the strength rules accept: long enough not to occur by chance."""
    while True:
        pin = f"{secrets.randbelow(9 * 10**7) + 10**7}"
        try:
            check_pin_strength(pin, room_id)
        except WeakPin:
            continue
        return pin


def stored_bytes(settings: Settings, backend: str) -> bytes:
    if backend == "sqlite":
        folder = settings.data_dir
        return b"".join(
            path.read_bytes()
            for path in [*sorted(folder.glob("privault.db*")), folder / "keyring.json"]
            if path.exists()
        )
    engine = make_engine(settings.db_url)
    values = []
    with engine.connect() as conn:
        columns = conn.execute(
            text(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() "
                "AND data_type IN ('text', 'character varying', 'bytea', 'json', 'jsonb')"
            )
        ).all()
        for table, column in columns:
            for (value,) in conn.execute(text(f'SELECT "{column}" FROM "{table}"')):  # noqa: S608
                if value is not None:
                    values.append(
                        bytes(value)
                        if isinstance(value, bytes | memoryview)
                        else str(value).encode()
                    )
    engine.dispose()
    return b"\n".join(values)


@pytest.fixture
def served(fresh_settings: Settings) -> Iterator[TestClient]:
    prepare(fresh_settings).dispose()
    runtime = open_runtime(fresh_settings)
    with TestClient(create_app(runtime)) as client:
        yield client
    runtime.close()


def test_p7_5_rooms_pins_number_lists_and_callers_are_not_in_plaintext_at_rest_or_in_logs(
    served: TestClient,
    fresh_settings: Settings,
    backend: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = served
    caplog.set_level(logging.DEBUG)
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    with runtime.transaction() as session:
        pbx = {"Authorization": f"Bearer {PbxTokenService(session, runtime.clock).create('p')}"}
    markers: list[str] = []
    in_clear: list[str] = []
    for i in range(PEOPLE):
        address, password = f"{marker('em')}@example.com", marker("pw")
        room_id = client.post("/api/v1/accounts", json={"email": address, "password": password})
        room_id = room_id.json()["room_id"]
        token = client.post("/api/v1/session", json={"email": address, "password": password})
        auth = {"Authorization": f"Bearer {token.json()['token']}"}
        pin = pin_for(room_id)
        assert client.put("/api/v1/me/room/pin", json={"pin": pin}, headers=auth).status_code == 204
        name, label, numbers = marker("ls"), marker("lb"), [fi_mobile() for _ in range(3)]
        made = client.post(
            "/api/v1/me/number-lists",
            json={"name": name, "numbers": [{"number": n, "label": label} for n in numbers]},
            headers=auth,
        )
        assert made.status_code == 201, made.text
        in_clear.append(made.json()["id"])
        caller, wrong = fi_mobile(), pin_for(room_id)
        for _ in range(6 if i % 2 else 1):  # half the rooms get locked
            check = {"room_id": room_id, "pin": wrong, "caller": caller}
            assert client.post("/api/v1/pbx/pin-check", json=check, headers=pbx).json() == {
                "allowed": False
            }
        markers += [room_id, pin, wrong, name, label, caller, caller[1:]]
        markers += numbers + [n[1:] for n in numbers]

    if backend == "sqlite":
        runtime.close()
    stored = stored_bytes(fresh_settings, backend)
    assert [i for i in in_clear if i.encode() not in stored] == [], "the scan sees list ids"
    assert [m for m in markers if m.encode() in stored] == []
    assert [m for m in markers if m in caplog.text] == []
    assert "PIN checks of a room" in caplog.text, "the lockouts were logged, without values"
