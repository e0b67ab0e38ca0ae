"""The SMTP intake on 127.0.0.1: a real round trip with smtplib (P9.2, P9.3)."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from factories import free_port, mails, register, run_cli
from mailkit import Dns, Signer, message, request_body
from privault.config import Settings
from privault.mail.models import InboundMail
from privault.mail.server import IntakeServer, RateLimit
from privault.rights.models import RightsRequest
from privault.runtime import Runtime, open_runtime, prepare

PRIVACY = "privacy@kallu.cc"


@pytest.fixture
def dns() -> Dns:
    return Dns()


def serving(settings: Settings, dns: Dns) -> Iterator[tuple[Runtime, int]]:
    prepare(settings).dispose()
    runtime = open_runtime(settings)
    port = free_port()
    server = IntakeServer(runtime, "127.0.0.1", port, dns)
    server.start()
    try:
        yield runtime, port
    finally:
        server.stop()
        runtime.close()


@pytest.fixture
def intake(fresh_settings: Settings, dns: Dns) -> Iterator[tuple[Runtime, int]]:
    limited = fresh_settings.model_copy(update={"intake_max_bytes": 4096, "intake_per_hour": 3})
    yield from serving(limited, dns)


def test_p9_2_p9_3_a_signed_request_sent_over_smtp_is_filed_verified(
    intake: tuple[Runtime, int], dns: Dns
) -> None:
    runtime, port = intake
    alice = register(runtime, "alice")
    signer = Signer.make("example.com", dns)
    raw = signer.sign(message(alice.email, request_body("Send me a copy.", alice.room_id)))
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        refused = smtp.sendmail(alice.email, [PRIVACY], raw)
    assert refused == {}
    with runtime.transaction() as session:
        [request] = session.scalars(
            select(RightsRequest).where(RightsRequest.subject_id == alice.subject_id)
        ).all()
        assert (request.kind, request.state, request.channel) == ("access", "verified", "mail")
    [ack] = mails(runtime, alice.subject_id, "rights_received")
    assert ack["to"] == alice.email and ack["context"]["requests"] == [request.id]


def test_the_intake_takes_mail_for_the_privacy_address_only(
    intake: tuple[Runtime, int],
) -> None:
    _, port = intake
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.ehlo()
        smtp.mail("bo@example.org")
        code, reply = smtp.rcpt("someone@kallu.cc")
        assert code == 550 and PRIVACY.encode() in reply
        assert smtp.rcpt(PRIVACY.upper())[0] == 250


def test_the_intake_refuses_a_message_over_the_size_limit(intake: tuple[Runtime, int]) -> None:
    _, port = intake
    raw = message("bo@example.org", "x" * 5000, subject="Big")
    with (
        smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp,
        pytest.raises(smtplib.SMTPResponseException) as refused,
    ):
        smtp.sendmail("bo@example.org", [PRIVACY], raw)
    assert refused.value.smtp_code == 552


def test_a_flood_from_one_sender_is_slowed_not_lost(intake: tuple[Runtime, int]) -> None:
    runtime, port = intake
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        for n in range(3):
            smtp.sendmail(
                "bo@example.org", [PRIVACY], message("bo@example.org", f"Hi {n}", subject="Hi")
            )
        with pytest.raises(smtplib.SMTPSenderRefused) as slowed:
            smtp.sendmail(
                "bo@example.org", [PRIVACY], message("bo@example.org", "Hi 3", subject="Hi")
            )
    assert slowed.value.smtp_code == 450  # a temporary answer: the sender's MTA tries later
    with runtime.transaction() as session:
        outcomes = session.scalars(select(InboundMail.outcome)).all()
    assert outcomes == ["support"] * 3


def test_the_rate_limit_forgets_after_an_hour_and_keeps_few_keys() -> None:
    limit = RateLimit(2, keys=3)
    for at in (0.0, 10.0):
        assert limit.allows("a", at)
        limit.count("a", at)
    assert not limit.allows("a", 3599.0)
    assert limit.allows("a", 3600.0)
    for key in ("b", "c", "d"):
        limit.count(key, 0.0)
    assert limit.allows("a", 20.0), "the oldest key is forgotten past the bound"


def test_p9_2_mail_ingest_takes_one_message_from_an_mta_pipe(
    fresh_settings: Settings, tmp_path: Path
) -> None:
    prepare(fresh_settings).dispose()
    runtime = open_runtime(fresh_settings)
    alice = register(runtime, "alice")
    runtime.close()
    ours = "mx.kallu.cc; dkim=pass header.d=example.com; dmarc=pass header.from=example.com"
    raw = message(
        alice.email,
        request_body("Please erase my account.", alice.room_id),
        headers={"Authentication-Results": ours},
    ).decode()
    trusting = {"PRIVAULT_TRUSTED_AUTHSERV_IDS": '["mx.kallu.cc"]'}
    taken = run_cli(fresh_settings, tmp_path, "mail", "ingest", stdin=raw, env=trusting)
    assert taken.returncode == 0, taken.stderr
    assert taken.stdout.strip() == "filed, 1 request(s) filed"
    again = run_cli(fresh_settings, tmp_path, "mail", "ingest", stdin=raw, env=trusting)
    assert again.stdout.strip() == "duplicate"
    junk = run_cli(fresh_settings, tmp_path, "mail", "ingest", stdin="\x00\x01 not mail")
    assert (junk.returncode, junk.stdout.strip()) == (0, "unreadable")
    big = run_cli(
        fresh_settings,
        tmp_path,
        "mail",
        "ingest",
        stdin="x" * 5000,
        env={"PRIVAULT_INTAKE_MAX_BYTES": "4096"},
    )
    assert big.returncode == 1
    assert big.stderr.strip().splitlines() == [
        "privault: the message is over the intake's limit of 4096 bytes"
    ]
