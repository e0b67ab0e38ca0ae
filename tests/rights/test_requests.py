"""Requests as workflows: due dates, identity, extensions, refusals, withdrawal (P9.1, P9.4)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from factories import api_error, mails, register
from privault.access.models import AccessLogEntry
from privault.clock import FrozenClock
from privault.rights.errors import (
    ExtensionRefused,
    ReasonRequired,
    RequestClosed,
    UnknownRequestKind,
)
from privault.rights.service import Channel, Refusal, RightsService
from privault.runtime import Runtime

REQUESTS = "/api/v1/me/requests"


def rights(runtime: Runtime) -> Iterator[RightsService]:
    with runtime.transaction() as session:
        yield runtime.rights(session)


def test_p9_4_a_logged_in_request_is_due_in_30_days(client_at: TestClient, at: Runtime) -> None:
    alice = register(at, "alice")
    made = client_at.post(REQUESTS, json={"kind": "access"}, headers=alice.auth)
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["state"] == "verified" and body["channel"] == "api"
    assert datetime.fromisoformat(body["due_at"]) == datetime(2027, 2, 19, 9, 0, tzinfo=UTC)
    listed = client_at.get(REQUESTS, headers=alice.auth).json()["requests"]
    assert [r["id"] for r in listed] == [body["id"]]


def test_p9_4_in_february_the_calendar_month_comes_first(at: Runtime, clock: FrozenClock) -> None:
    alice = register(at, "alice")
    clock.at = datetime(2027, 2, 1, 12, 0, tzinfo=UTC)
    for service in rights(at):
        request = service.file(alice.subject_id, "access", Channel.API, actor="t", verified=True)
        assert request.due_at == datetime(2027, 3, 1, 12, 0, tzinfo=UTC)  # 28 days, not 30


def test_p9_4_an_unverified_request_is_due_from_the_confirmation_of_identity(
    at: Runtime, clock: FrozenClock
) -> None:
    alice = register(at, "alice")
    for service in rights(at):
        request = service.file(
            alice.subject_id, "rectification", Channel.MAIL, actor="mail", verified=False
        )
        assert request.due_at is None and request.state == "received"
        request_id = request.id
    clock.advance(timedelta(days=3))
    for service in rights(at):
        with pytest.raises(ReasonRequired):
            service.verify(request_id, actor="staff:ann", note=" ")
        view = service.verify(
            request_id, actor="staff:ann", note="replied from the registered address"
        )
        assert view.due_at == datetime(2027, 2, 22, 9, 0, tzinfo=UTC)
        assert [(h.state, h.actor) for h in service.history(request_id)] == [
            ("received", "mail"),
            ("verified", "staff:ann"),
        ]
        with pytest.raises(RequestClosed):
            service.verify(request_id, actor="staff:ann", note="again")


def test_p9_4_an_extension_needs_a_reason_stops_at_three_months_and_tells_the_person(
    at: Runtime, clock: FrozenClock
) -> None:
    alice = register(at, "alice")
    for service in rights(at):
        request_id = service.file(
            alice.subject_id, "access", Channel.API, actor="t", verified=True
        ).id
    for service in rights(at):
        with pytest.raises(ReasonRequired):
            service.extend(request_id, reason="", actor="staff:ann")
        with pytest.raises(ExtensionRefused):
            service.extend(
                request_id,
                reason="many systems",
                actor="staff:ann",
                to=datetime(2027, 4, 21, tzinfo=UTC),
            )
        with pytest.raises(ExtensionRefused):
            service.extend(
                request_id,
                reason="many systems",
                actor="staff:ann",
                to=datetime(2027, 2, 1, tzinfo=UTC),
            )
        view = service.extend(
            request_id, reason="Your data spans many call records", actor="staff:ann"
        )
        assert view.extended_to == datetime(2027, 4, 20, 9, 0, tzinfo=UTC)
        assert view.deadline == view.extended_to
        assert not view.overdue(clock.now())
        assert service.history(request_id)[-1].note.endswith("Your data spans many call records")
    [notice] = mails(at, alice.subject_id, "rights_extended")
    assert notice["context"]["reason"] == "Your data spans many call records"  # type: ignore[index]
    clock.advance(timedelta(days=100))
    for service in rights(at):
        assert service.get(request_id).overdue(clock.now())
        assert service.queue()[0].id == request_id


def test_p9_4_a_refusal_states_its_grounds_and_the_right_to_complain(at: Runtime) -> None:
    alice = register(at, "alice")
    for service in rights(at):
        request_id = service.file(
            alice.subject_id, "objection", Channel.API, actor="t", verified=True
        ).id
        with pytest.raises(ReasonRequired):
            service.refuse(request_id, grounds="because", reason="x", actor="staff:ann")
        view = service.refuse(
            request_id,
            grounds=Refusal.MANIFESTLY_UNFOUNDED,
            reason="The same objection was answered last week.",
            actor="staff:ann",
        )
        assert view.state == "refused" and view.outcome is not None
        with pytest.raises(RequestClosed):
            service.complete(request_id, actor="staff:ann", outcome="done")
    [notice] = mails(at, alice.subject_id, "rights_refused")
    context = notice["context"]
    assert isinstance(context, dict)
    assert context["grounds"] == "manifestly unfounded"
    assert "CNIL" in context["complaint"]


def test_p9_1_staff_kinds_wait_for_staff_and_their_completion_is_mailed(at: Runtime) -> None:
    alice = register(at, "alice")
    for service in rights(at):
        request = service.file(
            alice.subject_id,
            "rectification",
            Channel.API,
            actor="t",
            verified=True,
            details="My billing address is wrong",
        )
        request_id = request.id
    assert at.rights_engine().run_once().to_staff == 1
    assert at.rights_engine().run_once().to_staff == 0
    for service in rights(at):
        assert service.get(request_id).state == "in_progress"
        assert service.details(request_id) == "My billing address is wrong"
        service.complete(request_id, actor="staff:ann", outcome="Billing address corrected.")
    assert len(mails(at, alice.subject_id, "rights_completed")) == 1


def test_bad_requests_get_clear_errors_and_nothing_of_another_person(
    client_at: TestClient, at: Runtime
) -> None:
    alice, mallory = register(at, "alice"), register(at, "mallory")
    api_error(
        client_at.post(REQUESTS, json={"kind": "everything"}, headers=alice.auth),
        422,
        "unknown_request_kind",
    )
    api_error(
        client_at.post(REQUESTS, json={"kind": "access", "extra": 1}, headers=alice.auth), 422
    )
    api_error(client_at.post(REQUESTS, json={"kind": "access"}), 401)
    made = client_at.post(
        REQUESTS, json={"kind": "restriction", "details": "stop marketing"}, headers=alice.auth
    ).json()
    assert client_at.get(REQUESTS, headers=mallory.auth).json() == {"requests": []}
    gone = client_at.post(f"{REQUESTS}/{made['id']}/withdraw", headers=mallory.auth)
    api_error(gone, 404, "request_not_found")
    assert "stop marketing" not in gone.text
    done = client_at.post(f"{REQUESTS}/{made['id']}/withdraw", headers=alice.auth)
    assert done.status_code == 200 and done.json()["state"] == "withdrawn"
    api_error(
        client_at.post(f"{REQUESTS}/{made['id']}/withdraw", headers=alice.auth),
        409,
        "request_state",
    )
    for service in rights(at):
        with pytest.raises(UnknownRequestKind):
            service.file(alice.subject_id, "complaint", Channel.API, actor="t", verified=True)


def test_p9_1_the_self_service_export_needs_a_fresh_login_and_is_recorded(
    client_at: TestClient, at: Runtime, clock: FrozenClock
) -> None:
    alice = register(at, "alice")
    clock.advance(timedelta(minutes=16))
    api_error(
        client_at.get("/api/v1/me/export", headers=alice.auth), 401, "reauthentication_required"
    )
    api_error(client_at.get("/api/v1/me/export?kind=everything", headers=alice.auth), 422)
    fresh = client_at.post(
        "/api/v1/session", json={"email": alice.email, "password": alice.password}
    )
    auth = {"Authorization": f"Bearer {fresh.json()['token']}"}
    got = client_at.get("/api/v1/me/export?kind=portability", headers=auth)
    assert got.status_code == 200 and got.headers["content-type"] == "application/zip"
    [request] = client_at.get(REQUESTS, headers=auth).json()["requests"]
    assert (request["kind"], request["state"]) == ("portability", "completed")
    assert "sha256" in request["outcome"]


def test_p9_1_a_person_corrects_contact_and_billing_details_and_each_change_is_logged(
    client_at: TestClient, at: Runtime
) -> None:
    alice = register(at, "alice")
    fixed = client_at.patch(
        "/api/v1/me",
        json={"display_name": "Alice Liddell", "email": "alice.l@example.com"},
        headers=alice.auth,
    )
    assert fixed.status_code == 200, fixed.text
    assert (
        fixed.json()["email"] == "alice.l@example.com" and fixed.json()["email_verified"] is False
    )
    assert fixed.json()["display_name"] == "Alice Liddell"
    assert mails(at, alice.subject_id, "verify_email")[-1]["to"] == "alice.l@example.com"
    bob = register(at, "bob")
    api_error(
        client_at.patch("/api/v1/me", json={"email": bob.email}, headers=alice.auth),
        409,
        "email_taken",
    )
    purchase = {
        "kind": "purchase",
        "item": "Premium room",
        "amount_minor": 4999,
        "currency": "EUR",
        "billing_name": "A. Liddel",
        "payment_token": "tok_abc",
    }
    made = client_at.post("/api/v1/me/purchases", json=purchase, headers=alice.auth).json()
    path = f"/api/v1/me/purchases/{made['id']}"
    changed = client_at.patch(
        path,
        json={"billing_name": "Alice Liddell", "phone": "+44 20 7946 0958"},
        headers=alice.auth,
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["billing_name"], changed.json()["phone"]) == (
        "Alice Liddell",
        "+442079460958",
    )
    api_error(
        client_at.patch(path, json={"billing_address": "4111 1111 1111 1111"}, headers=alice.auth),
        422,
        "card_number_refused",
    )
    api_error(client_at.patch(path, json={"billing_name": "x"}, headers=bob.auth), 404)
    with at.transaction() as session:
        actions = session.scalars(
            select(AccessLogEntry.action).where(AccessLogEntry.subject_id == alice.subject_id)
        ).all()
    assert "api:account:corrected" in actions and "api:purchase:corrected" in actions


def test_p9_4_staff_cannot_complete_an_erasure_or_export_by_hand(at: Runtime) -> None:
    """Completing one by hand would close it with the data still there (or no export):
    the sweep, or staff's "carry it out now", completes it when the work is done."""
    alice = register(at, "alice")
    for service in rights(at):
        for kind in ("erasure", "access", "portability"):
            request_id = service.file(
                alice.subject_id, kind, Channel.API, actor="t", verified=True
            ).id
            with pytest.raises(RequestClosed, match="carry it out instead"):
                service.complete(request_id, actor="staff:ann", outcome="done")
            assert service.get(request_id).state == "verified"
            assert "carry_out" in service.get(request_id).steps
