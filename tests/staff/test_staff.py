"""Staff log in with a second factor and work the request queue within their role (P4.1, P9.4)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from fastapi.testclient import TestClient
from sqlalchemy import select

from factories import Person, api_error, register, run_cli
from privault import demo
from privault.access.models import AccessLogEntry
from privault.clock import FrozenClock
from privault.config import Settings
from privault.rights.service import Channel
from privault.runtime import Runtime, prepare
from privault.staff import totp
from privault.staff.service import NewStaff

STAFF = "/api/v1/staff"


def secret_of(made: NewStaff) -> bytes:
    key = parse_qs(urlsplit(made.totp_uri).query)["secret"][0]
    return base64.b32decode(key + "=" * (-len(key) % 8))


def add(at: Runtime, name: str, role: str) -> NewStaff:
    with at.transaction() as session:
        return at.staff(session).add(name, role)


def login(client_at: TestClient, made: NewStaff, clock: FrozenClock) -> dict[str, str]:
    code = totp.code_at(secret_of(made), totp.step_of(clock.now()))
    answer = client_at.post(
        f"{STAFF}/session", json={"name": made.name, "password": made.password, "code": code}
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def test_totp_matches_the_rfc_6238_test_vector() -> None:
    secret = b"12345678901234567890"
    assert totp.code_at(secret, totp.step_of(datetime.fromtimestamp(59, UTC))) == "287082"
    assert totp.code_at(secret, totp.step_of(datetime.fromtimestamp(1111111109, UTC))) == "081804"


def test_p4_1_a_staff_login_needs_the_password_and_a_fresh_code(
    client_at: TestClient, at: Runtime, clock: FrozenClock
) -> None:
    ann = add(at, "ann", "privacy_officer")
    secret = secret_of(ann)
    code = totp.code_at(secret, totp.step_of(clock.now()))
    wrong = {"name": "ann", "password": ann.password + "x", "code": code}
    api_error(client_at.post(f"{STAFF}/session", json=wrong), 401, "invalid_credentials")
    stale = totp.code_at(secret, totp.step_of(clock.now() - timedelta(minutes=2)))
    old = {"name": "ann", "password": ann.password, "code": stale}
    api_error(client_at.post(f"{STAFF}/session", json=old), 401, "invalid_credentials")
    good = {"name": "ann", "password": ann.password, "code": code}
    assert client_at.post(f"{STAFF}/session", json=good).status_code == 200
    api_error(client_at.post(f"{STAFF}/session", json=good), 401, "invalid_credentials")  # replayed
    clock.advance(timedelta(seconds=30))
    auth = login(client_at, ann, clock)
    assert client_at.get(f"{STAFF}/requests", headers=auth).status_code == 200
    clock.advance(timedelta(hours=8))
    api_error(client_at.get(f"{STAFF}/requests", headers=auth), 401)
    with at.transaction() as session:
        actions = session.scalars(select(AccessLogEntry.action)).all()
    assert actions.count("staff:staff_session:refused") == 3
    assert ann.password not in str(actions)


def test_a_staff_login_under_a_name_no_staff_can_have_is_refused_like_any_other(
    client_at: TestClient, at: Runtime, clock: FrozenClock
) -> None:
    """Found by the fuzzer (issue 11): a NUL in the name was a 500 on PostgreSQL."""
    ann = add(at, "ann", "privacy_officer")
    code = totp.code_at(secret_of(ann), totp.step_of(clock.now()))
    for name in ("a\x00nn", "Ann", "ann\n", "\u00e4nn"):
        typed = {"name": name, "password": ann.password, "code": code}
        api_error(client_at.post(f"{STAFF}/session", json=typed), 401, "invalid_credentials")
    assert client_at.post(f"{STAFF}/session", json={**typed, "name": "ann"}).status_code == 200


def test_p9_4_staff_work_the_queue_overdue_first(
    client_at: TestClient, at: Runtime, clock: FrozenClock
) -> None:
    alice, bob = register(at, "alice"), register(at, "bob")
    with at.transaction() as session:
        rights = at.rights(session)
        late = rights.file(alice.subject_id, "objection", Channel.API, actor="t", verified=True).id
        mailed = rights.file(
            bob.subject_id,
            "rectification",
            Channel.MAIL,
            actor="mail",
            verified=False,
            details="My display name is misspelt",
        ).id
    clock.advance(timedelta(days=31))
    auth = login(client_at, add(at, "ann", "privacy_officer"), clock)
    listed = client_at.get(f"{STAFF}/requests", headers=auth).json()["requests"]
    assert [(r["id"], r["overdue"]) for r in listed] == [(late, True), (mailed, False)]
    assert [
        r["id"]
        for r in client_at.get(f"{STAFF}/requests?overdue=true", headers=auth).json()["requests"]
    ] == [late]
    shown = client_at.get(f"{STAFF}/requests/{mailed}", headers=auth).json()
    assert shown["details"] == "My display name is misspelt" and len(shown["history"]) == 1
    verified = client_at.post(
        f"{STAFF}/requests/{mailed}/verify", json={"note": "called back"}, headers=auth
    )
    assert verified.status_code == 200 and verified.json()["state"] == "verified"
    extended = client_at.post(
        f"{STAFF}/requests/{mailed}/extend", json={"reason": "archives"}, headers=auth
    )
    assert extended.status_code == 200 and extended.json()["extension_reason"] == "archives"
    api_error(
        client_at.post(
            f"{STAFF}/requests/{mailed}/extend",
            json={"reason": "more", "to": "2030-01-01T00:00:00Z"},
            headers=auth,
        ),
        422,
        "extension_refused",
    )
    done = client_at.post(
        f"{STAFF}/requests/{mailed}/complete", json={"outcome": "Name corrected."}, headers=auth
    )
    assert done.json()["state"] == "completed"
    refused = client_at.post(
        f"{STAFF}/requests/{late}/refuse",
        json={"grounds": "excessive", "reason": "Asked daily."},
        headers=auth,
    )
    assert refused.json()["state"] == "refused"
    api_error(
        client_at.post(f"{STAFF}/requests/{late}/complete", json={"outcome": "x"}, headers=auth),
        409,
    )
    api_error(client_at.get(f"{STAFF}/requests/nope", headers=auth), 404, "request_not_found")
    history = client_at.get(f"{STAFF}/requests/{mailed}", headers=auth).json()["history"]
    assert [h["actor"] for h in history] == ["mail", "staff:ann", "staff:ann", "staff:ann"]


def test_p4_1_a_role_without_the_purpose_and_a_member_session_are_refused(
    client_at: TestClient, at: Runtime, clock: FrozenClock, alice: Person
) -> None:
    bill = login(client_at, add(at, "bill", "billing"), clock)
    api_error(client_at.get(f"{STAFF}/requests", headers=bill), 403, "purpose_refused")
    api_error(client_at.get(f"{STAFF}/requests", headers=alice.auth), 401)
    api_error(client_at.get(f"{STAFF}/requests"), 401)
    with at.transaction() as session:
        refusals = session.scalars(
            select(AccessLogEntry).where(AccessLogEntry.action == "staff:staff:purpose_refused")
        ).all()
    assert [(r.actor, r.purpose) for r in refusals] == [("staff:bill", "legal")]


def test_p4_1_staff_commands(fresh_settings: Settings, tmp_path: Path) -> None:
    prepare(fresh_settings).dispose()
    added = run_cli(fresh_settings, tmp_path, "staff", "add", "ann", "--role", "privacy_officer")
    assert added.returncode == 0, added.stderr
    assert "otpauth://totp/" in added.stdout and "password: " in added.stdout
    bad = run_cli(fresh_settings, tmp_path, "staff", "add", "bob", "--role", "king")
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "role" in bad.stderr
    assert run_cli(fresh_settings, tmp_path, "staff", "disable", "ann").returncode == 0
    listed = run_cli(fresh_settings, tmp_path, "staff", "list")
    assert listed.stdout.split() == ["ann", "privacy_officer", "disabled"]


def test_the_demo_prints_a_staff_login_that_works(
    client_at: TestClient, at: Runtime, clock: FrozenClock
) -> None:
    printed = demo.seed(at).staff[0].login(clock.now())
    uri = printed.split()[-1]
    secret = parse_qs(urlsplit(uri).query)["secret"][0]
    code = totp.code_at(
        base64.b32decode(secret + "=" * (-len(secret) % 8)), totp.step_of(clock.now())
    )
    body = {"name": demo.STAFF_NAME, "password": demo.STAFF_PASSWORD, "code": code}
    assert demo.STAFF_PASSWORD in printed
    answer = client_at.post(f"{STAFF}/session", json=body)
    assert answer.status_code == 200 and answer.json()["role"] == "privacy_officer"
