"""Staff accounts: a name, a role from the policy file, an Argon2id password and a TOTP
second factor; sessions of a working day; every use of personal data names a purpose the
role must be allowed, and every read of a person's data a purpose the policy allows for its
categories (P4.1, P3.x). Reads, refusals and logins are in the access log."""

from __future__ import annotations

import re
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from privault.access.audit import AuditLog, Event
from privault.access.errors import PurposeNotAllowed
from privault.access.purposes import refusal
from privault.clock import Clock, aware
from privault.db import new_id
from privault.policy.model import Policy
from privault.service.passwords import Passwords
from privault.staff import totp
from privault.staff.errors import (
    InvalidStaffName,
    PurposeRefused,
    StaffLoginFailed,
    StaffNameTaken,
    StaffNotFound,
    StaffSessionInvalid,
)
from privault.staff.models import StaffMember, StaffSession
from privault.vault import crypto
from privault.vault.crypto import token_digest

SESSION_HOURS = 8
ISSUER = "Privault"
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,59}")


@dataclass(frozen=True)
class Staff:
    """A logged-in staff member."""

    id: str
    name: str
    role: str

    @property
    def actor(self) -> str:
        return f"staff:{self.name}"


@dataclass(frozen=True)
class NewStaff:
    name: str
    role: str
    #: Shown once, never stored.
    password: str
    #: For the authenticator app; shown once.
    totp_uri: str


class StaffService:
    def __init__(
        self,
        session: Session,
        policy: Policy,
        staff_key: bytes,
        passwords: Passwords,
        audit: AuditLog,
        clock: Clock,
    ) -> None:
        self.session = session
        self.policy = policy
        self._cipher = AESGCM(staff_key)
        self.passwords = passwords
        self.audit = audit
        self.clock = clock

    # -- the operator's commands ---------------------------------------------------------

    def add(
        self, name: str, role: str, *, password: str | None = None, secret: bytes | None = None
    ) -> NewStaff:
        """A new staff member with a generated password and TOTP secret (given ones only for
        the demo), both returned once. Raises ``InvalidStaffName``, ``StaffNameTaken``,
        ``UnknownPolicyEntry``."""
        if not _NAME.fullmatch(name):
            raise InvalidStaffName(
                "a staff name is 2 to 60 of a-z 0-9 . _ - and starts with a letter or digit"
            )
        self.policy.role(role)
        if self.session.scalar(select(StaffMember.id).where(StaffMember.name == name)):
            raise StaffNameTaken(f"there is already a staff member called {name}")
        staff_id = new_id()
        password = password or secrets.token_urlsafe(18)
        secret = secret or totp.new_secret()
        self.session.add(
            StaffMember(
                id=staff_id,
                name=name,
                role=role,
                password_hash=self.passwords.hash(password),
                totp_ct=crypto.seal(self._cipher, secret, crypto.aad("staff", "totp_ct", staff_id)),
                totp_step=0,
                created_at=self.clock.now(),
            )
        )
        self._log(Event.STAFF_ADDED, "operator", {"staff": name, "role": role})
        return NewStaff(name, role, password, totp.provisioning_uri(secret, name, ISSUER))

    def set_role(self, name: str, role: str) -> None:
        """Change a member's role; their open sessions end."""
        self.policy.role(role)
        member = self._named(name)
        member.role = role
        self.session.execute(delete(StaffSession).where(StaffSession.staff_id == member.id))
        self._log(Event.STAFF_ROLE_CHANGED, "operator", {"staff": name, "role": role})

    def disable(self, name: str) -> None:
        """Stop a member logging in; their open sessions end."""
        member = self._named(name)
        member.disabled_at = member.disabled_at or self.clock.now()
        self.session.execute(delete(StaffSession).where(StaffSession.staff_id == member.id))
        self._log(Event.STAFF_DISABLED, "operator", {"staff": name})

    def members(self) -> list[StaffMember]:
        return list(self.session.scalars(select(StaffMember).order_by(StaffMember.name)))

    # -- logging in ----------------------------------------------------------------------

    def login(self, name: str, password: str, code: str) -> str:
        """A session token for a working day. Needs the password and a TOTP code not used
        before; raises ``StaffLoginFailed`` (one answer for every reason) and logs it."""
        # A name no staff member can have is not looked up: PostgreSQL refuses some (a NUL).
        member = (
            self.session.scalar(select(StaffMember).where(StaffMember.name == name))
            if _NAME.fullmatch(name)
            else None
        )
        good = self.passwords.verify(member.password_hash if member else None, password)
        step = None
        if member is not None and good and member.disabled_at is None:
            secret = crypto.open_sealed(
                self._cipher,
                member.totp_ct,
                crypto.aad("staff", "totp_ct", member.id),
                f"staff.totp_ct[{member.id}]",
            )
            step = totp.matching_step(secret, code.strip(), self.clock.now())
        if member is None or step is None or step <= member.totp_step:
            # Only a known name is logged: what was typed could be anything, an address even.
            self._log(Event.STAFF_SESSION_REFUSED, f"staff:{name}" if member else "staff:?", {})
            raise StaffLoginFailed("wrong name, password or code (a code works once)")
        member.totp_step = step
        token = secrets.token_urlsafe(32)
        now = self.clock.now()
        self.session.add(
            StaffSession(
                token_hash=token_digest(token),
                staff_id=member.id,
                created_at=now,
                expires_at=now + timedelta(hours=SESSION_HOURS),
            )
        )
        self._log(Event.STAFF_SESSION_OPENED, f"staff:{name}", {})
        return token

    def authenticate(self, token: str) -> Staff:
        """The staff member behind a session token; raises ``StaffSessionInvalid``."""
        row = self.session.get(StaffSession, token_digest(token))
        member = self.session.get(StaffMember, row.staff_id) if row is not None else None
        if (
            row is None
            or member is None
            or member.disabled_at is not None
            or self.clock.now() >= aware(row.expires_at)
        ):
            raise StaffSessionInvalid(
                "log in as staff first: the session is missing or has expired"
            )
        return Staff(member.id, member.name, member.role)

    def on_server(self, name: str) -> Staff:
        """The active staff member called ``name``, for a command the operator runs on the
        server: whoever can run it there needs no login. Raises ``StaffNotFound``."""
        member = self._named(name)
        if member.disabled_at is not None:
            raise StaffNotFound(f"staff member {name} is disabled")
        return Staff(member.id, member.name, member.role)

    def logout(self, token: str) -> None:
        self.session.execute(
            delete(StaffSession).where(StaffSession.token_hash == token_digest(token))
        )

    def require(
        self,
        staff: Staff,
        purpose: str,
        *,
        subject_id: str | None = None,
        categories: Collection[str] = (),
    ) -> None:
        """Refuse (and log) unless the member's role may use personal data for ``purpose``;
        ``subject_id`` and ``categories``, when known, go in the log entry of a refusal."""
        if purpose not in self.policy.role(staff.role).purposes:
            self._record(Event.STAFF_PURPOSE_REFUSED, staff, subject_id, categories, purpose)
            raise PurposeRefused(
                f"the role {staff.role} may not use personal data for the purpose {purpose}"
            )

    def read(
        self, staff: Staff, subject_id: str | None, categories: Collection[str], purpose: str
    ) -> None:
        """Clear a staff member's read of a person's data and put it on record (P4.1): the
        role must be allowed ``purpose`` (else ``PurposeRefused``) and the policy must let
        ``purpose`` use every one of ``categories`` (else ``PurposeNotAllowed``). Refusals
        are logged like the read: who, whose data, which categories, which purpose."""
        self.require(staff, purpose, subject_id=subject_id, categories=categories)
        refused = sorted(c for c in set(categories) if not self.policy.purpose_allows(purpose, c))
        if refused:
            self._record(Event.STAFF_PURPOSE_REFUSED, staff, subject_id, refused, purpose)
            raise PurposeNotAllowed(refusal(self.policy, purpose, refused))
        self._record(Event.STAFF_READ, staff, subject_id, categories, purpose)

    # -- helpers -------------------------------------------------------------------------

    def _named(self, name: str) -> StaffMember:
        member = self.session.scalar(select(StaffMember).where(StaffMember.name == name))
        if member is None:
            raise StaffNotFound(f"no staff member is called {name}")
        return member

    def _record(
        self,
        event: Event,
        staff: Staff,
        subject_id: str | None,
        categories: Collection[str],
        purpose: str,
    ) -> None:
        self.audit.record(
            self.session,
            "staff",
            event,
            actor=staff.actor,
            subject_id=subject_id,
            categories=categories,
            purpose=purpose,
            detail={"role": staff.role},
        )

    def _log(
        self, event: Event, actor: str, detail: dict[str, object], purpose: str | None = None
    ) -> None:
        self.audit.record(self.session, "staff", event, actor=actor, purpose=purpose, detail=detail)
