"""Requests by mail to the privacy address (P9.2) from verified senders only (P9.3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from factories import Person, mails, register
from mailkit import Dns, Signer, message, request_body
from privault.clock import FrozenClock
from privault.mail.auth import Proof
from privault.mail.intake import MailIntake, Outcome, Received
from privault.mail.models import InboundMail
from privault.notify.models import OutboxMessage
from privault.notify.outbox import template_of
from privault.rights.models import RightsRequest
from privault.runtime import Runtime, open_runtime
from privault.vault import Field
from privault.worker import Worker

ACCESS = "Please send me a copy of my personal data."


@pytest.fixture
def dns() -> Dns:
    return Dns()


@pytest.fixture
def signer(dns: Dns) -> Signer:
    """The DKIM key of example.com, the domain of every test person's address."""
    return Signer.make("example.com", dns)


def take(runtime: Runtime, raw: bytes, dns: Dns, *, trusted: bool = False) -> Received:
    with runtime.transaction() as session:
        intake: MailIntake = runtime.mail_intake(session, dns)
        return intake.receive(raw, trust_auth_results=trusted)


def requests_of(runtime: Runtime, subject_id: str) -> list[RightsRequest]:
    with runtime.transaction() as session:
        rows = session.scalars(
            select(RightsRequest).where(RightsRequest.subject_id == subject_id)
        ).all()
        session.expunge_all()
        return list(rows)


def all_mail(runtime: Runtime, template: str) -> list[dict[str, Any]]:
    """Every pending mail from ``template``, whoever it is for, opened."""
    with runtime.transaction() as session:
        rows = session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.template == template)
            .order_by(OutboxMessage.created_at, OutboxMessage.id)
        ).all()
        return [
            runtime.vault.decrypt_json(
                session,
                r.subject_id,
                Field("outbox", "payload_ct", r.id),
                r.payload_ct,
                purpose=template_of(template).purpose,
            )  # type: ignore[misc]
            for r in rows
            if r.payload_ct is not None
        ]


def signed_request(signer: Signer, person: Person, words: str = ACCESS) -> bytes:
    return signer.sign(message(person.email, request_body(words, person.room_id)))


def test_p9_2_p9_3_a_signed_request_from_the_registered_address_is_filed_verified(
    at: Runtime, clock: FrozenClock, dns: Dns, signer: Signer
) -> None:
    alice = register(at, "alice")
    got = take(at, signed_request(signer, alice, ACCESS + " Then delete my account."), dns)
    assert (got.outcome, got.proof) == (Outcome.FILED, Proof.DKIM)
    filed = requests_of(at, alice.subject_id)
    assert sorted(r.kind for r in filed) == ["access", "erasure"]
    assert {(r.state, r.channel) for r in filed} == {("verified", "mail")}
    due = clock.now() + timedelta(days=30)
    assert {r.due_at.replace(tzinfo=UTC) for r in filed if r.due_at} == {due}
    [ack] = mails(at, alice.subject_id, "rights_received")
    assert ack["to"] == alice.email
    assert ack["context"]["due"] == f"{due:%d %B %Y}"
    assert sorted(ack["context"]["requests"]) == sorted(r.id for r in filed)
    assert dns.asked == [b"s1._domainkey.example.com."]


def test_p9_3_the_right_from_without_a_signature_is_not_verified(
    at: Runtime, dns: Dns, signer: Signer
) -> None:
    alice = register(at, "alice")
    got = take(at, message(alice.email, request_body(ACCESS, alice.room_id)), dns)
    assert (got.outcome, got.proof) == (Outcome.UNCONFIRMED, Proof.NONE)
    [request] = requests_of(at, alice.subject_id)
    assert (request.state, request.due_at) == ("received", None)
    [link] = mails(at, alice.subject_id, "rights_confirm")
    assert link["to"] == alice.email and "/requests/confirm/" in link["context"]["link"]
    assert mails(at, alice.subject_id, "rights_received") == []


def test_p9_3_a_signature_that_does_not_verify_is_not_proof(
    at: Runtime, dns: Dns, signer: Signer
) -> None:
    alice = register(at, "alice")
    signed = signed_request(signer, alice)
    tampered = signed.replace(b"Please send me", b"Please SEND me")
    assert take(at, tampered, dns).outcome is Outcome.UNCONFIRMED
    dns.records.clear()  # the key is gone from DNS
    other = signer.sign(message(alice.email, request_body(ACCESS, alice.room_id)))
    assert take(at, other, dns).outcome is Outcome.UNCONFIRMED


def test_p9_3_a_valid_signature_from_another_domain_is_not_enough(at: Runtime, dns: Dns) -> None:
    alice = register(at, "alice")
    stranger = Signer.make("example.net", dns)
    raw = stranger.sign(message(alice.email, request_body(ACCESS, alice.room_id)))
    got = take(at, raw, dns)
    assert (got.outcome, got.proof) == (Outcome.UNCONFIRMED, Proof.NONE)
    assert [r.state for r in requests_of(at, alice.subject_id)] == ["received"]


def test_p9_3_a_signature_over_part_of_the_body_is_not_proof(
    at: Runtime, dns: Dns, signer: Signer
) -> None:
    alice = register(at, "alice")
    raw = signer.sign(message(alice.email, request_body(ACCESS, alice.room_id)), length=True)
    assert take(at, raw, dns).outcome is Outcome.UNCONFIRMED


def test_p9_3_a_proved_sender_asking_about_another_room_proves_nothing(
    at: Runtime, dns: Dns, signer: Signer
) -> None:
    alice, mallory = register(at, "alice"), register(at, "mallory")
    raw = signer.sign(message(mallory.email, request_body("Delete my data.", alice.room_id)))
    got = take(at, raw, dns)
    assert (got.outcome, got.proof) == (Outcome.UNCONFIRMED, Proof.DKIM)
    [request] = requests_of(at, alice.subject_id)
    assert (request.kind, request.state) == ("erasure", "received")
    [link] = mails(at, alice.subject_id, "rights_confirm")
    assert link["to"] == alice.email
    assert requests_of(at, mallory.subject_id) == []


def test_p9_3_replies_never_reveal_whether_an_address_or_a_room_id_exists(
    at: Runtime, dns: Dns
) -> None:
    alice, mallory = register(at, "alice"), register(at, "mallory")
    take(at, message(mallory.email, request_body("Delete my data.", alice.room_id)), dns)
    take(at, message("nobody@example.org", request_body("Delete my data.", "1000000001")), dns)
    take(at, message(mallory.email, request_body("Delete my data.", "1000000001")), dns)
    replies = all_mail(at, "rights_pending")
    assert sorted(r["to"] for r in replies) == sorted(
        [mallory.email, mallory.email, "nobody@example.org"]
    )
    assert replies[0]["context"] == replies[1]["context"] == replies[2]["context"]
    assert len(all_mail(at, "rights_confirm")) == 1  # to alice only


def test_p9_3_the_mtas_authentication_results_are_believed_from_our_mta_only(
    base_settings: Any, at: Runtime, clock: FrozenClock, dns: Dns
) -> None:
    settings = base_settings.model_copy(update={"trusted_authserv_ids": ["mx.kallu.cc"]})
    runtime = open_runtime(settings, factory=at.factory, clock=clock)
    alice = register(runtime, "alice")
    body = request_body(ACCESS, alice.room_id)

    def with_results(*headers: str) -> bytes:
        extra = "".join(f"Authentication-Results: {h}\r\n" for h in headers).encode()
        return extra + message(alice.email, body)

    ours = "mx.kallu.cc; spf=pass smtp.mailfrom=example.com; dmarc=pass header.from=example.com"
    theirs = "mx.evil.example; dmarc=pass header.from=example.com"
    failed = "mx.kallu.cc; dmarc=fail header.from=example.com"
    other_domain = "mx.kallu.cc; dmarc=pass header.from=example.net"
    for raw, trusted in [
        (with_results(ours), False),  # sent to the intake directly, not through our MTA
        (with_results(theirs), True),
        (with_results(failed), True),
        (with_results(other_domain), True),
        (with_results(theirs, ours), True),  # ours, but not on top
    ]:
        assert take(runtime, raw, dns, trusted=trusted).outcome is Outcome.UNCONFIRMED
    got = take(runtime, with_results(ours, theirs), dns, trusted=True)
    assert (got.outcome, got.proof) == (Outcome.FILED, Proof.DMARC)


def test_p9_3_a_replayed_message_files_nothing_new(at: Runtime, dns: Dns, signer: Signer) -> None:
    alice = register(at, "alice")
    raw = signed_request(signer, alice)
    assert take(at, raw, dns).outcome is Outcome.FILED
    assert take(at, raw, dns).outcome is Outcome.DUPLICATE
    assert len(requests_of(at, alice.subject_id)) == 1
    assert len(mails(at, alice.subject_id, "rights_received")) == 1
    # The same Message-ID on another text is the same message, replayed.
    again = signer.sign(
        message(
            alice.email,
            request_body("Delete my data.", alice.room_id),
            message_id=raw.split(b"Message-ID: ")[1].split(b"\r\n")[0].decode(),
        )
    )
    assert take(at, again, dns).outcome is Outcome.DUPLICATE
    with at.transaction() as session:
        assert session.scalar(select(func.count()).select_from(InboundMail)) == 1


def test_p9_2_an_incomplete_request_gets_a_reply_saying_what_is_missing(
    at: Runtime, dns: Dns, signer: Signer
) -> None:
    alice = register(at, "alice")
    raw = signer.sign(message(alice.email, "Please delete my data.\n\nName: Alice Example\n"))
    assert take(at, raw, dns).outcome is Outcome.INCOMPLETE
    assert requests_of(at, alice.subject_id) == []
    [reply] = mails(at, alice.subject_id, "request_incomplete")
    assert reply["to"] == alice.email
    [missing] = reply["context"]["missing"]
    assert "Room ID" in missing
    assert reply["context"]["request_subject"] == "My Personal Data"


def test_p2_10_a_message_that_is_not_a_request_goes_to_support(
    at: Runtime, dns: Dns, signer: Signer
) -> None:
    alice = register(at, "alice")
    raw = signer.sign(message(alice.email, "Which number do I dial?", subject="Dial-in"))
    assert take(at, raw, dns).outcome is Outcome.SUPPORT
    assert take(at, message("Bo <bo@example.org>", "Hi", subject="Hello"), dns).outcome == (
        Outcome.SUPPORT
    )
    with at.transaction() as session:
        [kept] = at.messages(session).list_messages(alice.subject_id)
        assert (kept.channel, kept.subject, kept.body) == (
            "mail",
            "Dial-in",
            "Which number do I dial?",
        )
    assert requests_of(at, alice.subject_id) == []


def test_p9_3_the_confirmation_link_verifies_and_starts_the_clock(
    at: Runtime, client_at: TestClient, clock: FrozenClock, dns: Dns
) -> None:
    alice = register(at, "alice")
    take(at, message(alice.email, request_body("Delete my data.", alice.room_id)), dns)
    [link] = mails(at, alice.subject_id, "rights_confirm")
    path = "/requests/confirm/" + link["context"]["link"].rsplit("/", 1)[1]
    clock.advance(timedelta(days=2))
    page = client_at.get(path)
    assert page.status_code == 200 and "<form" in page.text
    assert requests_of(at, alice.subject_id)[0].state == "received", "opening is not confirming"
    done = client_at.post(path)
    assert done.status_code == 200 and "Request confirmed" in done.text
    [request] = requests_of(at, alice.subject_id)
    assert request.state == "verified"
    assert request.due_at is not None
    assert request.due_at.replace(tzinfo=UTC) == clock.now() + timedelta(days=30)
    [ack] = mails(at, alice.subject_id, "rights_received")
    assert ack["context"]["due"] == f"{clock.now() + timedelta(days=30):%d %B %Y}"
    assert client_at.post(path).status_code == 410
    assert client_at.post("/requests/confirm/not-a-token").status_code == 404


def test_p9_3_an_unfollowed_link_expires_and_the_request_is_refused(
    at: Runtime, client_at: TestClient, clock: FrozenClock, dns: Dns
) -> None:
    alice = register(at, "alice")
    take(at, message(alice.email, request_body(ACCESS, alice.room_id)), dns)
    [link] = mails(at, alice.subject_id, "rights_confirm")
    clock.advance(timedelta(days=6))
    with at.transaction() as session:
        assert at.mail_intake(session, dns).expire_unconfirmed() == 0
    clock.advance(timedelta(days=1, seconds=1))
    with at.transaction() as session:
        assert at.mail_intake(session, dns).expire_unconfirmed() == 1
    [request] = requests_of(at, alice.subject_id)
    assert request.state == "refused" and "identity_not_confirmed" in (request.outcome or "")
    [notice] = mails(at, alice.subject_id, "rights_refused")
    assert "7 days" in notice["context"]["reason"]
    path = "/requests/confirm/" + link["context"]["link"].rsplit("/", 1)[1]
    assert client_at.post(path).status_code == 410


def test_p9_2_a_message_without_a_readable_sender_is_kept_as_nothing(at: Runtime, dns: Dns) -> None:
    got = take(at, b"Subject: My Personal Data\r\n\r\nDelete my data. Room ID: 1000000001\r\n", dns)
    assert got.outcome is Outcome.UNREADABLE
    assert all_mail(at, "rights_pending") == [] and all_mail(at, "request_incomplete") == []


def test_the_intake_time_is_the_clock(at: Runtime, clock: FrozenClock, dns: Dns) -> None:
    take(at, message("bo@example.org", "Hi", subject="Hello"), dns)
    with at.transaction() as session:
        [row] = session.scalars(select(InboundMail)).all()
        assert row.received_at.replace(tzinfo=UTC) == clock.now()
        assert (row.outcome, row.verified_by, row.requests) == ("support", "none", 0)
    assert clock.now() == datetime(2027, 1, 20, 9, 0, tzinfo=UTC)


def test_p9_3_the_worker_closes_requests_whose_link_expired(
    at: Runtime, clock: FrozenClock, dns: Dns
) -> None:
    alice = register(at, "alice")
    take(at, message(alice.email, request_body(ACCESS, alice.room_id)), dns)
    clock.advance(timedelta(days=8))
    Worker(at).sweep_once()
    assert [r.state for r in requests_of(at, alice.subject_id)] == ["refused"]


def test_p9_1_an_access_request_by_mail_is_answered_with_a_link_never_the_data(
    at: Runtime, dns: Dns, signer: Signer
) -> None:
    alice = register(at, "alice")
    take(at, signed_request(signer, alice), dns)
    at.rights_engine().run_once()
    [ready] = mails(at, alice.subject_id, "rights_export_ready")
    assert ready["to"] == alice.email
    link = ready["context"]["link"]
    assert "/api/v1/me/exports/" in link
    sent = at.mailer().render("x" * 32, "rights_export_ready", alice.email, ready["context"])
    assert list(sent.iter_attachments()) == []
    assert [p.get_content_type() for p in sent.iter_parts()] == ["text/plain", "text/html"]
    assert link in sent.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    [request] = requests_of(at, alice.subject_id)
    assert request.state == "completed"
