"""Where sent mail goes: a local maildir by default."""

from __future__ import annotations

import os
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol


class Transport(Protocol):
    def send(self, key: str, message: EmailMessage) -> None:
        """Deliver ``message``; delivering the same ``key`` twice must deliver it once."""

    def forget(self, keys: list[str]) -> None:
        """Drop any copy kept here of the mail sent under ``keys`` (its person is erased)."""


class MaildirTransport:
    """Delivers into a maildir (``tmp/`` then rename into ``new/``), keyed by outbox id."""

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
