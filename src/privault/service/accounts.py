"""Registration, email verification, login sessions and passwords."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from privault.access.audit import AuditLog, Event
from privault.clock import Clock, aware
from privault.consent.acceptance import PolicyAcceptances
from privault.notify.outbox import Outbox
from privault.policy.model import RequestKind
from privault.rights.models import RightsRequest
from privault.rights.service import Channel, RightsService
from privault.service.emails import check_email
from privault.service.errors import (
    AccountNotFound,
    EmailTaken,
    InvalidCredentials,
    InvalidDisplayName,
    ReauthenticationRequired,
    ResetLinkInvalid,
    SessionInvalid,
    VerificationInvalid,
)
from privault.service.models import Account, EmailVerification, LoginSession, PasswordReset
from privault.service.passwords import PasswordCheck, Passwords, check_strength
from privault.service.rooms import RoomService
from privault.vault import Field, Vault
from privault.vault.crypto import token_digest

VERIFY_HOURS = 48
#: A password reset link works this long, once.
RESET_LIFETIME = timedelta(hours=1)
#: At most one reset mail per account this often, however often the form is sent.
RESET_EVERY = timedelta(minutes=5)
#: Closing an account needs a login at most this old (a fresh login, "step-up").
STEP_UP = timedelta(minutes=15)
#: Longest display name, as registration takes it.
MAX_DISPLAY_NAME = 100


def normalise_email(email: str) -> str:
    return email.strip().lower()


@dataclass(frozen=True)
class Registration:
    subject_id: str
    room_id: str


@dataclass(frozen=True)
class AccountSummary:
    email: str
    display_name: str | None
    email_verified: bool


@dataclass(frozen=True)
class Login:
    subject_id: str
    token: str
    expires_in: timedelta


class AccountService:
    """Accounts. Emails are sealed under the person's key and found by blind index."""

    def __init__(
        self,
        session: Session,
        vault: Vault,
        audit: AuditLog,
        outbox: Outbox,
        clock: Clock,
        passwords: Passwords,
        acceptances: PolicyAcceptances,
        *,
        base_url: str,
        session_lifetime: timedelta,
        source: str = "api",
    ) -> None:
        self.session = session
        self.vault = vault
        self.audit = audit
        self.outbox = outbox
        self.clock = clock
        self.passwords = passwords
        self.acceptances = acceptances
        self.base_url = base_url.rstrip("/")
        self.session_lifetime = session_lifetime
        self.source = source

    def _email_index(self, email: str) -> bytes:
        return self.vault.blind_index("email", normalise_email(email))

    def register(
        self,
        email: str,
        password: str,
        display_name: str | None = None,
        *,
        ip: str | None = None,
    ) -> Registration:
        """Create the subject, account and room, and queue the verification mail. Registering
        accepts the policy's current version (P8.3), recorded with its proof (``ip``: the
        address registering, kept as its network).

        Raises ``WeakPassword`` (with the reason) or ``EmailTaken``.
        """
        check_strength(password, email=email)
        index = self._email_index(email)
        if self.session.scalar(select(Account.subject_id).where(Account.email_index == index)):
            raise EmailTaken("an account with this email address already exists")
        subject_id = self.vault.create_subject(self.session)
        account = Account(
            subject_id=subject_id,
            email_index=index,
            email_ct=self.vault.encrypt(
                self.session, subject_id, Field("accounts", "email_ct", subject_id), email.strip()
            ),
            display_name_ct=(
                self.vault.encrypt(
                    self.session,
                    subject_id,
                    Field("accounts", "display_name_ct", subject_id),
                    display_name,
                )
                if display_name
                else None
            ),
            password_hash=self.passwords.hash(password),
            created_at=self.clock.now(),
        )
        try:
            with self.session.begin_nested():
                self.session.add(account)
        except IntegrityError:
            # Another registration with the same address committed between our check and insert.
            raise EmailTaken("an account with this email address already exists") from None
        room_id = RoomService(self.session, self.vault, self.audit, self.clock).create_room(
            subject_id
        )
        self._send_verification(subject_id, email.strip(), display_name)
        self.acceptances.accept(subject_id, self.acceptances.version, ip=ip, registration=True)
        self.audit.record(
            self.session,
            self.source,
            Event.ACCOUNT_REGISTERED,
            actor=f"subject:{subject_id}",
            subject_id=subject_id,
            categories=["registration"],
        )
        return Registration(subject_id, room_id)

    def _send_verification(self, subject_id: str, email: str, display_name: str | None) -> None:
        token = secrets.token_urlsafe(32)
        self.session.add(
            EmailVerification(
                token_hash=token_digest(token),
                subject_id=subject_id,
                expires_at=self.clock.now() + timedelta(hours=VERIFY_HOURS),
            )
        )
        self.outbox.enqueue(
            self.session,
            subject_id,
            email,
            "verify_email",
            {
                "display_name": display_name,
                "link": f"{self.base_url}/verify-email?token={token}",
                "hours": VERIFY_HOURS,
            },
        )

    def verify_email(self, token: str) -> str:
        """Mark the address verified; returns the subject id. Raises ``VerificationInvalid``."""
        pending = self.session.get(EmailVerification, token_digest(token))
        if pending is None or aware(pending.expires_at) < self.clock.now():
            raise VerificationInvalid("this verification link is unknown or has expired")
        account = self.session.get(Account, pending.subject_id)
        if account is None:
            raise VerificationInvalid("this verification link is unknown or has expired")
        account.email_verified_at = self.clock.now()
        self.session.execute(
            delete(EmailVerification).where(EmailVerification.subject_id == pending.subject_id)
        )
        self.audit.record(
            self.session,
            self.source,
            Event.ACCOUNT_EMAIL_VERIFIED,
            actor=f"subject:{account.subject_id}",
            subject_id=account.subject_id,
            categories=["registration"],
        )
        return account.subject_id

    def password_hash_of(self, email: str) -> str | None:
        """The password hash of the account registered with ``email``, or ``None``: for a
        check made outside the transaction that logs in (``Runtime.log_in``)."""
        return self.session.scalar(
            select(Account.password_hash).where(Account.email_index == self._email_index(email))
        )

    def login(self, email: str, password: str, checked: PasswordCheck | None = None) -> Login:
        """Open a session; raises ``InvalidCredentials`` without saying which part was wrong.
        ``checked``: the password already verified against the account's hash, trusted while
        the account still has that hash (else verified again here)."""
        account = self.session.scalar(
            select(Account).where(Account.email_index == self._email_index(email))
        )
        stored = account.password_hash if account else None
        if checked is None or checked.stored != stored:
            checked = self.passwords.check(stored, password)
        if not checked.ok or account is None or account.closed_at is not None:
            self.audit.record(
                self.session,
                self.source,
                Event.SESSION_REFUSED,
                actor="anonymous",
                subject_id=account.subject_id if account else None,
            )
            raise InvalidCredentials("the email address or the password is wrong")
        if self.passwords.needs_rehash(account.password_hash):
            account.password_hash = self.passwords.hash(password)
        token = secrets.token_urlsafe(32)
        now = self.clock.now()
        self.session.add(
            LoginSession(
                token_hash=token_digest(token),
                subject_id=account.subject_id,
                created_at=now,
                expires_at=now + self.session_lifetime,
            )
        )
        self.audit.record(
            self.session,
            self.source,
            Event.SESSION_OPENED,
            actor=f"subject:{account.subject_id}",
            subject_id=account.subject_id,
        )
        return Login(account.subject_id, token, self.session_lifetime)

    def authenticate(self, token: str) -> str:
        """The subject id of a live session token; raises ``SessionInvalid``."""
        login = self.session.get(LoginSession, token_digest(token))
        if login is None or aware(login.expires_at) <= self.clock.now():
            raise SessionInvalid("log in first: the session is missing or has expired")
        return login.subject_id

    def logout(self, token: str) -> None:
        login = self.session.get(LoginSession, token_digest(token))
        if login is None:
            return
        self.session.delete(login)
        self.audit.record(
            self.session,
            self.source,
            Event.SESSION_CLOSED,
            actor=f"subject:{login.subject_id}",
            subject_id=login.subject_id,
        )

    def change_password(
        self, subject_id: str, current: str, new: str, keep_token: str | None
    ) -> None:
        """Replace the password and close every other session.

        Raises ``InvalidCredentials`` for a wrong ``current``, ``WeakPassword`` for a weak ``new``.
        """
        account = self.session.get(Account, subject_id)
        if account is None:
            raise AccountNotFound("no such account")
        if not self.passwords.verify(account.password_hash, current):
            raise InvalidCredentials("the current password is wrong")
        check_strength(new, email=self.email_of(subject_id, purpose="security"))
        account.password_hash = self.passwords.hash(new)
        others = delete(LoginSession).where(LoginSession.subject_id == subject_id)
        if keep_token is not None:
            others = others.where(LoginSession.token_hash != token_digest(keep_token))
        self.session.execute(others)
        self.audit.record(
            self.session,
            self.source,
            Event.ACCOUNT_PASSWORD_CHANGED,
            actor=f"subject:{subject_id}",
            subject_id=subject_id,
        )

    def send_password_reset(self, email: str) -> None:
        """Mail a link to set a new password to ``email`` if an open account has it, and do
        nothing otherwise: the caller answers the same either way, so no one learns which
        addresses have accounts. At most one mail per account every five minutes; the link
        works once, within the hour."""
        subject_id = self.subject_of(email)
        account = self.session.get(Account, subject_id) if subject_id else None
        if account is None or account.closed_at is not None:
            return
        now = self.clock.now()
        recent = self.session.scalar(
            select(PasswordReset.token_hash).where(
                PasswordReset.subject_id == account.subject_id,
                PasswordReset.created_at > now - RESET_EVERY,
            )
        )
        if recent is not None:
            return
        token = secrets.token_urlsafe(32)
        self.session.add(
            PasswordReset(
                token_hash=token_digest(token),
                subject_id=account.subject_id,
                created_at=now,
                expires_at=now + RESET_LIFETIME,
            )
        )
        summary = self.summary(account.subject_id, purpose="notices")
        self.outbox.enqueue(
            self.session,
            account.subject_id,
            summary.email,
            "password_reset",
            {
                "display_name": summary.display_name,
                "link": f"{self.base_url}/password/reset/{token}",
                "minutes": int(RESET_LIFETIME.total_seconds() // 60),
            },
        )
        self.audit.record(
            self.session,
            self.source,
            Event.ACCOUNT_PASSWORD_RESET_SENT,
            actor="anonymous",
            subject_id=account.subject_id,
        )

    def _live_reset(self, token: str) -> tuple[PasswordReset, Account]:
        reset = self.session.get(PasswordReset, token_digest(token))
        account = self.session.get(Account, reset.subject_id) if reset else None
        if (
            reset is None
            or account is None
            or reset.used_at is not None
            or aware(reset.expires_at) <= self.clock.now()
            or account.closed_at is not None
        ):
            raise ResetLinkInvalid("this link is unknown, was used already or has expired")
        return reset, account

    def check_password_reset(self, token: str) -> None:
        """Raises ``ResetLinkInvalid`` unless ``token`` is a live reset link."""
        self._live_reset(token)

    def reset_password(self, token: str, new: str) -> str:
        """Set a new password through a reset link; returns the subject id. The link is used
        up, every other unused link of the account too, and every session ends.

        Raises ``ResetLinkInvalid`` (the link stays unused on any other error), or
        ``WeakPassword`` by the rules of registration.
        """
        _, account = self._live_reset(token)
        subject_id = account.subject_id
        check_strength(new, email=self.email_of(subject_id, purpose="security"))
        account.password_hash = self.passwords.hash(new)
        now = self.clock.now()
        for unused in self.session.scalars(
            select(PasswordReset).where(
                PasswordReset.subject_id == subject_id, PasswordReset.used_at.is_(None)
            )
        ):
            unused.used_at = now
        self.session.execute(delete(LoginSession).where(LoginSession.subject_id == subject_id))
        self.audit.record(
            self.session,
            self.source,
            Event.ACCOUNT_PASSWORD_RESET,
            actor=f"subject:{subject_id}",
            subject_id=subject_id,
        )
        return subject_id

    def close(self, subject_id: str, token: str, rights: RightsService) -> RightsRequest:
        """Close the account at once and file the erasure of its data (P0.4).

        Login stops working, every session ends, and a verified erasure request is
        filed for the rights engine, due within the policy's deadline. Closing needs
        a login from the last few minutes: raises ``ReauthenticationRequired``.
        """
        self.require_recent_login(subject_id, token, "close the account")
        account = self.session.get(Account, subject_id)
        if account is None:
            raise SessionInvalid("log in first: the session is missing or has expired")
        now = self.clock.now()
        email = self.email_of(subject_id, purpose="notices")
        account.closed_at = now
        self.session.execute(delete(LoginSession).where(LoginSession.subject_id == subject_id))
        self.session.execute(
            delete(EmailVerification).where(EmailVerification.subject_id == subject_id)
        )
        request = rights.file(
            subject_id,
            RequestKind.ERASURE,
            Channel.API if self.source == "api" else Channel.WEB,
            actor=f"subject:{subject_id}",
            verified=True,
        )
        assert request.due_at is not None
        self.outbox.enqueue(
            self.session,
            subject_id,
            email,
            "account_closed",
            {"due": f"{request.due_at:%d %B %Y}", "request_id": request.id},
        )
        self.audit.record(
            self.session,
            self.source,
            Event.ACCOUNT_CLOSED,
            actor=f"subject:{subject_id}",
            subject_id=subject_id,
            detail={"request": request.id},
        )
        return request

    def correct(
        self, subject_id: str, *, email: str | None = None, display_name: str | object | None = ...
    ) -> AccountSummary:
        """Rectify the contact details (Art. 16): a new ``email`` is sealed, re-indexed and
        must be verified again (the link goes to the new address); ``display_name`` set or
        cleared with ``None``; ``...`` keeps it. Raises ``InvalidDisplayName`` (before any
        change), ``InvalidInput`` for a malformed address, ``EmailTaken``,
        ``AccountNotFound``."""
        account = self.session.get(Account, subject_id)
        if account is None:
            raise AccountNotFound("no such account")
        name = str(display_name).strip() if display_name not in (None, ...) else ""
        if len(name) > MAX_DISPLAY_NAME:
            raise InvalidDisplayName(
                f"the display name must be at most {MAX_DISPLAY_NAME} characters"
            )
        changed = []
        if display_name is not ...:
            account.display_name_ct = (
                self.vault.encrypt(
                    self.session, subject_id, Field("accounts", "display_name_ct", subject_id), name
                )
                if name
                else None
            )
            changed.append("display_name")
        if email is not None:
            address = check_email(email, what="the email")
            index = self._email_index(address)
            if index != account.email_index:
                owner = self.session.scalar(
                    select(Account.subject_id).where(Account.email_index == index)
                )
                if owner is not None:
                    raise EmailTaken("an account with this email address already exists")
                account.email_index = index
                account.email_ct = self.vault.encrypt(
                    self.session, subject_id, Field("accounts", "email_ct", subject_id), address
                )
                account.email_verified_at = None
                self.session.flush()
                shown = self.summary(subject_id, purpose="administration").display_name
                self._send_verification(subject_id, address, shown)
                changed.append("email")
        self.audit.record(
            self.session,
            self.source,
            Event.ACCOUNT_CORRECTED,
            actor=f"subject:{subject_id}",
            subject_id=subject_id,
            categories=["registration"],
            detail={"fields": changed},
        )
        return self.summary(subject_id, purpose="administration")

    def require_recent_login(self, subject_id: str, token: str, to: str) -> None:
        """Step-up for what cannot be undone or exposes everything (closing, exporting):
        raises ``ReauthenticationRequired`` unless the session ``token`` was opened in the
        last 15 minutes, ``SessionInvalid`` unless it is the person's."""
        login = self.session.get(LoginSession, token_digest(token))
        if login is None or login.subject_id != subject_id:
            raise SessionInvalid("log in first: the session is missing or has expired")
        if self.clock.now() - aware(login.created_at) > STEP_UP:
            minutes = int(STEP_UP.total_seconds() // 60)
            raise ReauthenticationRequired(
                f"log in again to {to}: the login must be under {minutes} minutes old"
            )

    def subject_of(self, email: str) -> str | None:
        """The subject id of the account registered with ``email``, or ``None``."""
        index = self._email_index(email.strip())
        return self.session.scalar(select(Account.subject_id).where(Account.email_index == index))

    def email_of(self, subject_id: str, *, purpose: str) -> str:
        """The registered address, read for ``purpose``."""
        return self.summary(subject_id, purpose=purpose).email

    def address_of(self, subject_id: str, *, purpose: str) -> str | None:
        """``email_of``, or None when there is no account (one being erased, say)."""
        try:
            return self.email_of(subject_id, purpose=purpose)
        except AccountNotFound:
            return None

    def summary(self, subject_id: str, *, purpose: str) -> AccountSummary:
        """The account's own data, read for ``purpose`` (``PurposeNotAllowed`` unless the
        policy lets it use registration data)."""
        account = self.session.get(Account, subject_id)
        if account is None:
            raise AccountNotFound("no such account")
        name = None
        if account.display_name_ct is not None:
            name = self.vault.decrypt(
                self.session,
                subject_id,
                Field("accounts", "display_name_ct", subject_id),
                account.display_name_ct,
                purpose=purpose,
            )
        return AccountSummary(
            email=self.vault.decrypt(
                self.session,
                subject_id,
                Field("accounts", "email_ct", subject_id),
                account.email_ct,
                purpose=purpose,
            ),
            display_name=name,
            email_verified=account.email_verified_at is not None,
        )
