"""Closing an account (P0.4): at once, and an erasure request is filed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Connection, select, text

from factories import Person, api_error
from privault.access.models import AccessLogEntry
from privault.clock import aware
from privault.notify.models import OutboxMessage
from privault.rights.models import RightsRequest, RightsRequestEvent
from privault.runtime import Runtime


def login(client: TestClient, person: Person) -> int:
    response = client.post(
        "/api/v1/session", json={"email": person.email, "password": person.password}
    )
    return response.status_code


def test_p0_4_closing_stops_login_at_once_and_files_an_erasure(
    client: TestClient, runtime: Runtime, alice: Person
) -> None:
    response = client.delete("/api/v1/me", headers=alice.auth)
    assert response.status_code == 202
    body = response.json()
    due = datetime.fromisoformat(body["erasure_due_at"])
    assert timedelta(days=27) < due - datetime.now(UTC) <= timedelta(days=31)

    assert login(client, alice) == 401
    api_error(client.get("/api/v1/me", headers=alice.auth), 401)

    with runtime.transaction() as session:
        request = session.get(RightsRequest, body["erasure_request_id"])
        assert request is not None
        assert (request.subject_id, request.kind, request.channel, request.state) == (
            alice.subject_id,
            "erasure",
            "api",
            "verified",
        )
        assert aware(request.due_at or datetime.min) == due
        states = session.scalars(
            select(RightsRequestEvent.state).where(RightsRequestEvent.request_id == request.id)
        ).all()
        assert list(states) == ["received", "verified"]
        templates = session.scalars(
            select(OutboxMessage.template).where(OutboxMessage.subject_id == alice.subject_id)
        ).all()
        assert "account_closed" in templates
        actions = session.scalars(
            select(AccessLogEntry.action).where(AccessLogEntry.subject_id == alice.subject_id)
        ).all()
        assert "api:account:closed" in actions


def test_p0_4_closing_needs_a_fresh_login(
    client: TestClient, connection: Connection, alice: Person
) -> None:
    connection.execute(
        text("UPDATE login_sessions SET created_at = :at WHERE subject_id = :s"),
        {"at": datetime.now(UTC) - timedelta(minutes=20), "s": alice.subject_id},
    )
    detail = api_error(
        client.delete("/api/v1/me", headers=alice.auth), 401, "reauthentication_required"
    )
    assert "log in again" in detail
    assert client.get("/api/v1/me", headers=alice.auth).status_code == 200


def test_it_rejects_mallory(client: TestClient, alice: Person, mallory: Person) -> None:
    """Mallory can close only her own account; alice's keeps working."""
    assert client.delete("/api/v1/me", headers=mallory.auth).status_code == 202
    assert client.get("/api/v1/me", headers=alice.auth).status_code == 200
    assert login(client, alice) == 200


def test_p0_4_closing_needs_a_login(client: TestClient) -> None:
    api_error(client.delete("/api/v1/me"), 401, "not_authenticated")
