"""Sending through an SMTP relay: a real aiosmtpd server on 127.0.0.1, with a login, with
STARTTLS or implicit TLS on a certificate made here; refusals come back as OSError."""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import SecretStr
from sqlalchemy import select

from factories import register
from privault.clock import FrozenClock, aware
from privault.notify.models import OutboxMessage
from privault.notify.transport import MaildirTransport, SmtpTransport
from privault.runtime import Runtime

USER = "relay-user"
PASSWORD = "relay-password-for-tests"


class Relay:
    """A relay that keeps what it accepts, and refuses the recipients in ``refuse``."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.refuse: set[str] = set()

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        self.received.append(
            {
                "from": envelope.mail_from,
                "to": list(envelope.rcpt_tos),
                "message": message_from_bytes(envelope.content, policy=default),
                "login": session.login_data,
                "tls": session.ssl is not None,
            }
        )
        return "250 2.0.0 accepted"


def authenticate(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: object
) -> AuthResult:
    good = isinstance(auth_data, LoginPassword) and auth_data == (
        USER.encode(),
        PASSWORD.encode(),
    )
    if not good:
        return AuthResult(success=False, handled=False)  # aiosmtpd answers 535
    return AuthResult(success=True, auth_data=auth_data)


class Listening(Controller):
    """A controller on a port the system picks (port 0), read back once it listens."""

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@dataclasses.dataclass
class Certificate:
    cert: Path
    key: Path
    pem: str

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cadata=self.pem)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A self-signed certificate for 127.0.0.1, valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "relay.privault.test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("relay-tls")
    pem = cert.public_bytes(serialization.Encoding.PEM)
    (folder / "cert.pem").write_bytes(pem)
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Certificate(folder / "cert.pem", folder / "key.pem", pem.decode())


def serve(relay: Relay, **options: Any) -> Iterator[Listening]:
    controller = Listening(relay, hostname="127.0.0.1", port=0, **options)
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()


@pytest.fixture
def relay() -> Relay:
    return Relay()


@pytest.fixture
def plain(relay: Relay) -> Iterator[Listening]:
    """A relay without TLS that takes a login (as one on localhost might)."""
    yield from serve(relay, authenticator=authenticate, auth_require_tls=False)


@pytest.fixture
def starttls(relay: Relay, certificate: Certificate) -> Iterator[Listening]:
    """A relay that requires STARTTLS, then a login."""
    yield from serve(
        relay,
        tls_context=certificate.server_context(),
        require_starttls=True,
        authenticator=authenticate,
        auth_required=True,
    )


def on_relay(runtime: Runtime, port: int, **settings: Any) -> Runtime:
    """The runtime, configured to send through the relay on ``port``."""
    changed = runtime.settings.model_copy(
        update={"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_timeout": 10.0} | settings
    )
    return dataclasses.replace(runtime, settings=changed)


def a_mail(to: str = "carol@example.com") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Kallu <no-reply@kallu.cc>"
    message["To"] = to
    message["Subject"] = "A test"
    message["Message-ID"] = "<0123abcd@kallu.cc>"
    message.set_content("Hello.")
    return message


# --- the runtime chooses ------------------------------------------------------------------


def test_the_maildir_is_the_transport_unless_a_relay_is_set(runtime: Runtime) -> None:
    assert isinstance(runtime.transport(), MaildirTransport)
    relayed = on_relay(
        runtime,
        2587,
        smtp_security="tls",
        smtp_username=USER,
        smtp_password=SecretStr(PASSWORD),
        smtp_timeout=7.5,
    ).transport()
    assert isinstance(relayed, SmtpTransport)
    assert (relayed.host, relayed.port, relayed.security) == ("127.0.0.1", 2587, "tls")
    assert (relayed.username, relayed.timeout) == (USER, 7.5)
    assert PASSWORD not in repr(relayed)


def test_the_sweep_sends_through_the_relay_after_logging_in(
    at: Runtime, plain: Listening, relay: Relay
) -> None:
    alice = register(at, "alice")
    relayed = on_relay(
        at, plain.port, smtp_security="none", smtp_username=USER, smtp_password=SecretStr(PASSWORD)
    )
    assert relayed.mailer().deliver_pending() == 1
    with at.factory() as session:
        row = session.scalars(
            select(OutboxMessage).where(OutboxMessage.subject_id == alice.subject_id)
        ).one()
    assert row.state == "sent" and row.payload_ct is None
    [mail] = relay.received
    assert mail["to"] == [alice.email] and mail["from"] == "no-reply@kallu.cc"
    assert mail["login"] == USER.encode() and mail["tls"] is False
    assert mail["message"]["Message-ID"] == f"<{row.id}@kallu.cc>"
    assert mail["message"]["Subject"] == "Confirm your email address"


def test_a_wrong_password_is_an_oserror(plain: Listening, relay: Relay) -> None:
    transport = SmtpTransport("127.0.0.1", plain.port, "none", USER, "not-it", timeout=5)
    with pytest.raises(OSError, match="535"):
        transport.send("k", a_mail())
    assert relay.received == []


# --- TLS ----------------------------------------------------------------------------------


def test_starttls_on_a_trusted_certificate_delivers_with_the_message_id(
    starttls: Listening, relay: Relay, certificate: Certificate
) -> None:
    transport = SmtpTransport(
        "127.0.0.1",
        starttls.port,
        "starttls",
        USER,
        PASSWORD,
        ssl_context=certificate.client_context(),
    )
    transport.send("k", a_mail())
    [mail] = relay.received
    assert mail["tls"] is True and mail["login"] == USER.encode()
    assert mail["message"]["Message-ID"] == "<0123abcd@kallu.cc>"
    assert mail["to"] == ["carol@example.com"]


def test_starttls_refuses_a_certificate_it_does_not_trust(
    starttls: Listening, relay: Relay
) -> None:
    transport = SmtpTransport("127.0.0.1", starttls.port, "starttls", USER, PASSWORD)
    with pytest.raises(ssl.SSLCertVerificationError):
        transport.send("k", a_mail())
    assert relay.received == []


def test_implicit_tls_delivers(relay: Relay, certificate: Certificate) -> None:
    for controller in serve(relay, ssl_context=certificate.server_context()):
        transport = SmtpTransport(
            "127.0.0.1", controller.port, "tls", ssl_context=certificate.client_context()
        )
        transport.send("k", a_mail())
    [mail] = relay.received
    assert mail["message"]["Subject"] == "A test"


# --- refusals -----------------------------------------------------------------------------


def test_a_refused_recipient_puts_the_mail_back_with_a_backoff(
    at: Runtime, clock: FrozenClock, plain: Listening, relay: Relay
) -> None:
    alice = register(at, "alice")
    relay.refuse.add(alice.email)
    assert on_relay(at, plain.port, smtp_security="none").mailer().deliver_pending() == 0
    with at.factory() as session:
        row = session.scalars(
            select(OutboxMessage).where(OutboxMessage.subject_id == alice.subject_id)
        ).one()
    assert (row.state, row.attempts, row.last_error) == ("pending", 1, "SMTPRecipientsRefused")
    assert aware(row.next_attempt_at) == clock.now() + timedelta(minutes=2)
    assert row.payload_ct is not None and row.claimed_until is None
    assert relay.received == []

    relay.refuse.clear()
    clock.advance(timedelta(minutes=2))
    assert on_relay(at, plain.port, smtp_security="none").mailer().deliver_pending() == 1
    [mail] = relay.received
    assert mail["to"] == [alice.email]


def test_a_relay_that_is_not_there_is_an_oserror() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(OSError):
        SmtpTransport("127.0.0.1", port, "none", timeout=5).send("k", a_mail())
