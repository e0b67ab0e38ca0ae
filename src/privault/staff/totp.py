"""Time-based one-time passwords (RFC 6238: HMAC-SHA1, 6 digits, 30-second steps), the
second factor of staff logins. Written here: the algorithm is a dozen lines."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
from datetime import datetime
from urllib.parse import quote

STEP = 30
DIGITS = 6
#: Codes one step early or late still count (clock drift).
WINDOW = 1


def new_secret() -> bytes:
    return secrets.token_bytes(20)


def step_of(moment: datetime) -> int:
    return int(moment.timestamp()) // STEP


def code_at(secret: bytes, step: int) -> str:
    digest = hmac.new(secret, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    number = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{number % 10**DIGITS:0{DIGITS}d}"


def matching_step(secret: bytes, code: str, moment: datetime) -> int | None:
    """The step ``code`` belongs to, within the window around ``moment``; else ``None``."""
    now = step_of(moment)
    found = None
    for step in range(now - WINDOW, now + WINDOW + 1):
        if hmac.compare_digest(code_at(secret, step), code):
            found = step
    return found


def provisioning_uri(secret: bytes, account: str, issuer: str) -> str:
    """The ``otpauth://`` URI an authenticator app reads (usually from a QR code)."""
    key = base64.b32encode(secret).decode().rstrip("=")
    label = quote(f"{issuer}:{account}")
    return (
        f"otpauth://totp/{label}?secret={key}&issuer={quote(issuer)}&digits={DIGITS}&period={STEP}"
    )
