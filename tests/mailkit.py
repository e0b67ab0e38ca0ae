"""Mail for tests: messages written as people write them, signed with DKIM keys the test
makes, and a DNS that answers only for those keys (no network)."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from email.utils import format_datetime, make_msgid

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


@dataclass
class Dns:
    """TXT records of DKIM keys, by name; anything else is unknown (``None``)."""

    records: dict[bytes, bytes] = field(default_factory=dict)
    asked: list[bytes] = field(default_factory=list)

    def __call__(self, name: bytes, timeout: float = 5) -> bytes | None:
        self.asked.append(name)
        return self.records.get(name.rstrip(b"."))


@dataclass(frozen=True)
class Signer:
    """A domain's DKIM key: signs messages as ``d=domain; s=selector``."""

    domain: str
    selector: str
    pem: bytes
    record: bytes

    @classmethod
    def make(cls, domain: str, dns: Dns, selector: str = "s1") -> Signer:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        der = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)
        dns.records[f"{selector}._domainkey.{domain}".encode()] = record
        return cls(domain, selector, pem, record)

    def sign(self, raw: bytes, **options: object) -> bytes:
        header = dkim.sign(
            raw,
            self.selector.encode(),
            self.domain.encode(),
            self.pem,
            include_headers=[b"from", b"to", b"subject", b"date", b"message-id"],
            **options,
        )
        return bytes(header) + raw


def message(
    sender: str,
    body: str,
    *,
    subject: str = "My Personal Data",
    to: str = "privacy@kallu.cc",
    message_id: str | None = None,
    headers: dict[str, str] | None = None,
) -> bytes:
    """An RFC 5322 message with CRLF line ends, as it travels."""
    mail = EmailMessage()
    for name, value in (headers or {}).items():
        mail[name] = value
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = subject
    mail["Date"] = format_datetime(datetime(2027, 1, 20, 9, 0, tzinfo=UTC))
    mail["Message-ID"] = message_id or make_msgid(idstring=secrets.token_hex(6), domain="test")
    mail.set_content(body)
    return mail.as_bytes(policy=mail.policy.clone(linesep="\r\n"))


def with_files(sender: str, body: str, *files: tuple[str, str, bytes]) -> bytes:
    """A mail to the privacy address that encloses ``files`` (name, type, content)."""
    mail = message_from_bytes(message(sender, body, subject="A file"), policy=default)
    assert isinstance(mail, EmailMessage)
    for name, kind, data in files:
        maintype, subtype = kind.split("/")
        mail.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return mail.as_bytes()


def request_body(kind_words: str, room_id: str, name: str = "Ann Example") -> str:
    return f"Hello,\n\n{kind_words}\n\nRoom ID: {room_id}\nName: {name}\n\nThank you.\n"
