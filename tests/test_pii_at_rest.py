"""Personal data never lies in plaintext at rest, nor in the logs (P7.1, P7.5, P2.3, P2.6,
P2.7): one scan over everything the service stores."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from factories import fill_person, marker, write_as_visitor
from mailkit import Dns, message, request_body
from privault.config import Settings
from privault.db import make_engine
from privault.runtime import Runtime, open_runtime, prepare
from privault.service.pbx import PbxTokenService
from privault.web.app import create_app

PEOPLE = 50


def _register_everyone(client: TestClient, pbx: dict[str, str]) -> tuple[list[str], list[str]]:
    """PEOPLE people with data everywhere, and visitors' messages; returns every value used
    (numbers also as bare digits) and the ids of the number lists (kept in the clear, as a
    control that the scan sees what is there)."""
    markers: list[str] = []
    list_ids: list[str] = []
    for i in range(PEOPLE):
        person = fill_person(client, pbx, locked=i % 2 == 1)
        markers += person.kept + person.secret
        markers += [m[1:] for m in markers if m.startswith("+")]
        markers += write_as_visitor(client)
        list_ids.append(person.list_id)
        # A failed login with the real address must not leak it either.
        email, password = person.kept[0], person.secret[0]
        failed = client.post("/api/v1/session", json={"email": email, "password": password + "x"})
        assert failed.status_code == 401
        markers += _write_to_privacy(client.app.state.runtime, email, person.room_id)  # type: ignore[attr-defined]
    return markers, list_ids


def _write_to_privacy(runtime: Runtime, email: str, room_id: str) -> list[str]:
    """A mail to support and a request by mail (unsigned: a confirmation link goes out),
    as the intake takes them (P2.10, P9.2); returns the words they hold."""
    name = marker("mailname").translate(str.maketrans("0123456789", "ghijklmnop")).title()
    words = [marker("mailsubject"), marker("mailbody"), name]
    support = message(email, f"About {words[1]}", subject=f"Question {words[0]}")
    request = message(email, request_body(f"Delete it all. {words[1]}", room_id, words[2]))
    with runtime.transaction() as session:
        for raw in (support, request):
            runtime.mail_intake(session, Dns()).receive(raw)
    return words


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
    # Each person: the address check, the link to confirm the request by mail, the reply
    # to that mail, the newsletter's confirmation link, a marketing mail and a password
    # reset link.
    assert runtime.mailer().deliver_pending(limit=10 * PEOPLE) == 6 * PEOPLE

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
