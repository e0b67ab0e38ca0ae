"""Service tokens of the PBX: the Asterisk or FreeSWITCH box that checks PINs and sends CDRs."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from privault.clock import Clock
from privault.db import new_id
from privault.errors import Conflict, NotAuthenticated, NotFound
from privault.service.models import PbxToken
from privault.vault.crypto import token_digest

PREFIX = "pbx_"


class PbxTokenInvalid(NotAuthenticated):
    code = "pbx_token_invalid"


class PbxTokenExists(Conflict):
    code = "pbx_token_exists"


class PbxTokenNotFound(NotFound):
    code = "pbx_token_not_found"


@dataclass(frozen=True)
class TokenInfo:
    name: str
    created_at: datetime
    revoked_at: datetime | None


class PbxTokenService:
    def __init__(self, session: Session, clock: Clock) -> None:
        self.session = session
        self.clock = clock

    def create(self, name: str) -> str:
        """A new token for the PBX called ``name``; shown once, only its digest is kept.

        Raises ``PbxTokenExists`` when the name is taken (revoked tokens keep their name).
        """
        name = name.strip()
        if not name or len(name) > 80:
            raise PbxTokenInvalid("a PBX token needs a name of 1 to 80 characters")
        if self.session.scalar(select(PbxToken.id).where(PbxToken.name == name)):
            raise PbxTokenExists(f"a PBX token named {name!r} exists already")
        token = PREFIX + secrets.token_urlsafe(32)
        self.session.add(
            PbxToken(
                id=new_id(),
                name=name,
                token_hash=token_digest(token),
                created_at=self.clock.now(),
            )
        )
        self.session.flush()
        return token

    def authenticate(self, token: str) -> str:
        """The name of the PBX holding ``token``; raises ``PbxTokenInvalid``."""
        row = self.session.scalar(
            select(PbxToken).where(PbxToken.token_hash == token_digest(token))
        )
        if row is None or row.revoked_at is not None:
            raise PbxTokenInvalid("send a valid PBX service token as a bearer token")
        return row.name

    def revoke(self, name: str) -> None:
        row = self.session.scalar(select(PbxToken).where(PbxToken.name == name))
        if row is None:
            raise PbxTokenNotFound(f"no PBX token named {name!r}")
        row.revoked_at = row.revoked_at or self.clock.now()

    def list(self) -> list[TokenInfo]:
        rows = self.session.scalars(select(PbxToken).order_by(PbxToken.created_at))
        return [TokenInfo(r.name, r.created_at, r.revoked_at) for r in rows]
