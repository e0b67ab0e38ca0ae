"""Appending to and verifying the hash-chained access log.

Each entry's hash is an HMAC (key from the keyring) over the previous entry's
hash and the entry's own content, so changing, inserting or removing an entry
breaks the chain, and rebuilding the chain needs the key, not just the database.
The head (``access_log_head``) holds the last entry's number under a keyed tag, so
removing entries from the end (a truncation) is caught too, unless the head is put
back to a copy taken earlier: ``privault audit verify`` prints it to keep elsewhere.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from privault.access.models import AccessLogEntry, AccessLogHead
from privault.clock import Clock, SystemClock, aware
from privault.db import advisory_lock

GENESIS = bytes(32)


class Event(StrEnum):
    """What happened, as ``subject:action``; the source is given when logging."""

    ACCOUNT_REGISTERED = "account:registered"
    ACCOUNT_EMAIL_VERIFIED = "account:email_verified"
    ACCOUNT_PASSWORD_CHANGED = "account:password_changed"  # noqa: S105 - an event name
    ACCOUNT_PASSWORD_RESET_SENT = "account:password_reset_sent"  # noqa: S105 - an event name
    ACCOUNT_PASSWORD_RESET = "account:password_reset"  # noqa: S105 - an event name
    ACCOUNT_CLOSED = "account:closed"
    ACCOUNT_CORRECTED = "account:corrected"
    SESSION_OPENED = "session:opened"
    SESSION_REFUSED = "session:refused"
    SESSION_CLOSED = "session:closed"
    PROFILE_READ = "profile:read"
    PROFILE_UPDATED = "profile:updated"
    ROOM_PIN_CHANGED = "room:pin_changed"
    ROOM_ID_ROTATED = "room:id_rotated"
    PIN_ROOM_LOCKED = "pin:room_locked"
    PIN_CALLER_LOCKED = "pin:caller_locked"
    DIAL_IN_ADDED = "dial_in:added"
    DIAL_IN_REMOVED = "dial_in:removed"
    NUMBER_LIST_CREATED = "number_list:created"
    NUMBER_LIST_RENAMED = "number_list:renamed"
    NUMBER_LIST_DELETED = "number_list:deleted"
    NUMBER_LIST_CHANGED = "number_list:numbers_changed"
    CDRS_INGESTED = "cdr:ingested"
    PURCHASE_RECORDED = "purchase:recorded"
    PURCHASE_CORRECTED = "purchase:corrected"
    USERNAME_CHOSEN = "username:chosen"
    USERNAME_DROPPED = "username:dropped"
    POST_CREATED = "post:created"
    POST_UPDATED = "post:updated"
    POST_DELETED = "post:deleted"
    MESSAGE_RECEIVED = "message:received"
    MAIL_COPY_READ = "mail:copy_read"
    KEYS_ROTATED = "keys:rotated"
    BACKUP_WRITTEN = "backup:written"
    BACKUP_RESTORED = "backup:restored"
    HOLD_PLACED = "hold:placed"
    HOLD_RELEASED = "hold:released"
    STAFF_ADDED = "staff:added"
    STAFF_ROLE_CHANGED = "staff:role_changed"
    STAFF_DISABLED = "staff:disabled"
    STAFF_SESSION_OPENED = "staff_session:opened"
    STAFF_SESSION_REFUSED = "staff_session:refused"
    STAFF_PURPOSE_REFUSED = "staff:purpose_refused"
    STAFF_READ = "staff:read"
    PURPOSE_REFUSED = "purpose:refused"
    POLICY_LOADED = "policy:loaded"
    POLICY_PUBLISHED = "policy:published"
    POLICY_NOTIFIED = "policy:notified"
    CONSENT_GIVEN = "consent:given"
    CONSENT_WITHDRAWN = "consent:withdrawn"
    POLICY_ACCEPTED = "policy:accepted"
    POLICY_REFUSED = "policy:refused"
    MARKETING_SENT = "marketing:sent"
    DISCLOSURE_RECORDED = "disclosure:recorded"
    DISCLOSURE_REFUSED = "disclosure:refused"
    STATISTICS_RELEASED = "statistics:released"


@dataclass(frozen=True)
class Verification:
    ok: bool
    entries: int
    head: bytes
    problem: str | None = None


def canonical(entry: AccessLogEntry) -> bytes:
    """The entry's content as hashed: every column but the hashes, in a fixed order."""
    return json.dumps(
        [
            entry.seq,
            aware(entry.at).astimezone(UTC).isoformat(timespec="microseconds"),
            entry.actor,
            entry.action,
            entry.subject_id,
            entry.categories,
            entry.purpose,
            entry.detail,
        ],
        separators=(",", ":"),
    ).encode()


def _digest(key: bytes, prev: bytes, entry: AccessLogEntry) -> bytes:
    return hmac.new(key, prev + canonical(entry), hashlib.sha256).digest()


def _head_tag(key: bytes, seq: int, entry_hash: bytes) -> bytes:
    # Not the entry's own hash, which anyone reading the table sees: a tag only the key makes.
    return hmac.new(key, b"head\x1f%d\x1f" % seq + entry_hash, hashlib.sha256).digest()


class AuditLog:
    """Writes entries in the caller's transaction: an entry lands exactly when its change does."""

    def __init__(self, key: bytes, clock: Clock | None = None) -> None:
        self._key = key
        self.clock = clock or SystemClock()

    def record(
        self,
        session: Session,
        source: str,
        event: Event,
        *,
        actor: str,
        subject_id: str | None = None,
        categories: Iterable[str] = (),
        purpose: str | None = None,
        detail: dict[str, object] | None = None,
    ) -> AccessLogEntry:
        """Append one entry. ``detail`` must hold no personal data (ids and counts only)."""
        advisory_lock(session, "access_log")
        tail = session.execute(
            select(AccessLogEntry.seq, AccessLogEntry.hash)
            .order_by(AccessLogEntry.seq.desc())
            .limit(1)
        ).first()
        seq, prev = (tail.seq + 1, tail.hash) if tail else (1, GENESIS)
        entry = AccessLogEntry(
            seq=seq,
            at=self.clock.now(),
            actor=actor,
            action=f"{source}:{event.value}",
            subject_id=subject_id,
            categories=",".join(sorted(set(categories))),
            purpose=purpose,
            detail=json.dumps(detail or {}, sort_keys=True, separators=(",", ":")),
            prev_hash=prev,
        )
        entry.hash = _digest(self._key, prev, entry)
        session.add(entry)
        self._move_head(session, entry)
        session.flush()
        return entry

    def anchor(self, session: Session) -> None:
        """Set the head at the log's last entry. Only for a log written before heads existed
        (``prepare`` calls it once, on the upgrade that adds them): anywhere else it would
        bless a log cut short."""
        advisory_lock(session, "access_log")
        tail = session.scalars(
            select(AccessLogEntry).order_by(AccessLogEntry.seq.desc()).limit(1)
        ).first()
        if tail is not None:
            self._move_head(session, tail)

    def _move_head(self, session: Session, entry: AccessLogEntry) -> None:
        tag = _head_tag(self._key, entry.seq, entry.hash)
        head = session.get(AccessLogHead, 1)
        if head is None:
            session.add(AccessLogHead(id=1, seq=entry.seq, tag=tag))
        else:
            head.seq, head.tag = entry.seq, tag

    def verify(self, session: Session, batch: int = 2000) -> Verification:
        """Walk the chain from the start; report the first break, if any, or a log that ends
        before its head. The head is read first: entries appended meanwhile lie past it."""
        head = session.get(AccessLogHead, 1)
        if head is None:
            return Verification(False, 0, GENESIS, "the head of the log is missing")
        head_seq, head_tag = head.seq, head.tag
        prev, expected_seq, count = GENESIS, 1, 0
        last_seq = 0
        while True:
            rows = session.scalars(
                select(AccessLogEntry)
                .where(AccessLogEntry.seq > last_seq)
                .order_by(AccessLogEntry.seq)
                .limit(batch)
            ).all()
            if not rows:
                if count < head_seq:
                    return Verification(
                        False,
                        count,
                        prev,
                        f"entry {count + 1} is missing (the log ends at {count}, "
                        f"its head is entry {head_seq})",
                    )
                return Verification(True, count, prev)
            for entry in rows:
                if entry.seq != expected_seq:
                    return Verification(
                        False, count, prev, f"entry {expected_seq} is missing (next is {entry.seq})"
                    )
                if entry.prev_hash != prev:
                    return Verification(
                        False,
                        count,
                        prev,
                        f"entry {entry.seq} does not follow entry {entry.seq - 1}",
                    )
                if not hmac.compare_digest(entry.hash, _digest(self._key, prev, entry)):
                    return Verification(False, count, prev, f"entry {entry.seq} was altered")
                if entry.seq == head_seq and not hmac.compare_digest(
                    head_tag, _head_tag(self._key, entry.seq, entry.hash)
                ):
                    return Verification(False, count, prev, "the head of the log was altered")
                prev, expected_seq, count = entry.hash, expected_seq + 1, count + 1
                last_seq = entry.seq
            session.expunge_all()

    @staticmethod
    def entries(
        session: Session,
        subject_id: str | None = None,
        limit: int = 100,
        *,
        actor: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        before: int | None = None,
    ) -> list[AccessLogEntry]:
        """The newest entries first: of ``subject_id`` (exactly), whose actor or action
        holds ``actor`` or ``action`` (case as stored), at or after ``since`` and before
        ``until``, and older than the entry numbered ``before`` (the next page)."""
        query = select(AccessLogEntry).order_by(AccessLogEntry.seq.desc()).limit(limit)
        if subject_id is not None:
            query = query.where(AccessLogEntry.subject_id == subject_id)
        if actor:
            query = query.where(AccessLogEntry.actor.contains(actor, autoescape=True))
        if action:
            query = query.where(AccessLogEntry.action.contains(action, autoescape=True))
        if since is not None:
            query = query.where(AccessLogEntry.at >= since)
        if until is not None:
            query = query.where(AccessLogEntry.at < until)
        if before is not None:
            query = query.where(AccessLogEntry.seq < before)
        return list(session.scalars(query))
