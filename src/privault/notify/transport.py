"""Where sent mail goes: a local maildir by default, an SMTP relay when one is set."""

from __future__ import annotations

import os
import re
import smtplib
import ssl
from email.message import EmailMessage
from pathlib import Path
from typing import Literal, Protocol

Security = Literal["starttls", "tls", "none"]

#: What a key may look like in a file name: an outbox id, nothing that walks the tree.
_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")


class Transport(Protocol):
    def send(self, key: str, message: EmailMessage) -> None:
        """Deliver ``message``, or raise ``OSError``. ``key`` names the outbox row."""

    def forget(self, keys: list[str]) -> None:
        """Drop any copy kept here of the mail sent under ``keys`` (its person is erased)."""


class MaildirTransport:
    """Delivers into a maildir (``tmp/`` then rename into ``new/``), keyed by outbox id;
    delivering the same key twice delivers it once."""

    def __init__(self, root: Path) -> None:
        self.root = root
        for sub in ("tmp", "new", "cur"):
            (root / sub).mkdir(parents=True, exist_ok=True, mode=0o700)

    def send(self, key: str, message: EmailMessage) -> None:
        name = f"{key}.eml"
        if (self.root / "new" / name).exists() or (self.root / "cur" / name).exists():
            return
        tmp = self.root / "tmp" / name
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, message.as_bytes())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.root / "new" / name)

    def forget(self, keys: list[str]) -> None:
        for key in keys:
            for sub in ("tmp", "new", "cur"):
                (self.root / sub / f"{key}.eml").unlink(missing_ok=True)

    def messages(self) -> list[Path]:
        return sorted((self.root / "new").glob("*.eml")) + sorted((self.root / "cur").glob("*.eml"))

    def copy_of(self, key: str) -> bytes | None:
        """The delivered mail sent under ``key``, or None when there is none."""
        if not _KEY.fullmatch(key):
            return None
        for sub in ("new", "cur"):
            path = self.root / sub / f"{key}.eml"
            if path.is_file():
                return path.read_bytes()
        return None


class SmtpTransport:
    """Hands each mail to a relay over SMTP, one connection per mail; keeps no copy.

    ``security`` is ``starttls`` (a plain connection upgraded before anything is said),
    ``tls`` (implicit TLS) or ``none`` (for a relay on localhost). Every failure, a refused
    recipient included, is an ``OSError`` (``smtplib.SMTPException`` is one).
    """

    def __init__(
        self,
        host: str,
        port: int = 587,
        security: Security = "starttls",
        username: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.security = security
        self.username = username
        self._password = password
        self.timeout = timeout
        self.ssl_context = ssl_context

    def _connect(self) -> smtplib.SMTP:
        if self.security == "tls":
            return smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=self._context()
            )
        smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        if self.security == "starttls":
            try:
                smtp.starttls(context=self._context())
            except BaseException:
                smtp.close()
                raise
        return smtp

    def _context(self) -> ssl.SSLContext:
        return self.ssl_context or ssl.create_default_context()

    def send(self, key: str, message: EmailMessage) -> None:
        with self._connect() as smtp:
            if self.username is not None:
                smtp.login(self.username, self._password or "")
            refused = smtp.send_message(message)
        if refused:
            # Some recipients were accepted and others not: the mail is not delivered as
            # written, so the row is retried rather than marked sent.
            raise smtplib.SMTPRecipientsRefused(refused)

    def forget(self, keys: list[str]) -> None:
        """Nothing to drop: the relay has the mail, this side keeps no copy."""
