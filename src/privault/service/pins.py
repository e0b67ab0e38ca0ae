"""Room PINs: setting them, and checking them for the PBX with guessing locked out (P7.5).

A PIN is never stored: only ``HMAC-SHA256(pepper, "pin" \\x1f subject_id \\x1f pin)``,
with the pepper in the keyring, so a copy of the database cannot be brute-forced
offline and the same PIN in two rooms gives two unrelated digests.

A check answers only "allowed" or "not allowed". An unknown Room ID, a room
without a PIN, a closed account, a wrong PIN and a lockout all look the same to
the PBX and do the same work, so the answer never tells whether a Room ID exists.
Failures and lockouts are keyed by blind indexes of what was typed (the Room ID,
the caller's number), never by the values.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from itertools import pairwise

from sqlalchemy import delete, distinct, func, or_, select
from sqlalchemy.orm import Session

from privault.access.audit import AuditLog, Event
from privault.clock import Clock
from privault.consent.acceptance import PolicyAcceptances
from privault.db import advisory_lock
from privault.errors import InvalidInput
from privault.service.errors import PinInvalid, RoomNotFound, WeakPin
from privault.service.models import Account, PinFailure, PinLockout, Room
from privault.service.phones import parse_phone
from privault.service.rooms import RoomService
from privault.vault import Vault

log = logging.getLogger("privault.pins")

PIN_PATTERN = re.compile(r"[0-9]{4,8}")

#: Wrong PINs for one typed Room ID within ROOM_WINDOW that lock it for ROOM_LOCK.
ROOM_FAILURES = 5
ROOM_WINDOW = timedelta(minutes=15)
ROOM_LOCK = timedelta(minutes=15)
#: A caller number failing on CALLER_ROOMS distinct rooms, or CALLER_FAILURES times in all,
#: within CALLER_WINDOW is refused for CALLER_LOCK.
CALLER_ROOMS = 3
CALLER_FAILURES = 10
CALLER_WINDOW = timedelta(minutes=15)
CALLER_LOCK = timedelta(hours=1)
#: Failures older than this count for nothing and are purged.
KEEP_FAILURES = max(ROOM_WINDOW, CALLER_WINDOW)

#: The most chosen PINs that no pattern below catches (PIN-frequency studies: keypad
#: columns, pairs, years); the first guesses of anyone who tries.
NOTORIOUS = frozenset({"1122", "2580", "0852", "6969", "1004", "2000", "1998", "1999"})

# Compared against when there is no room or no PIN, so every refusal costs the same.
_NO_SUBJECT = "0" * 32
_NO_DIGEST = bytes(32)


class Scope(StrEnum):
    ROOM = "room"
    CALLER = "caller"


def pin_digest(pepper: bytes, subject_id: str, pin: str) -> bytes:
    """The stored form of a PIN: bound to the room's owner, keyed with the keyring's pepper."""
    return hmac.new(pepper, f"pin\x1f{subject_id}\x1f{pin}".encode(), hashlib.sha256).digest()


def check_pin_strength(pin: str, room_id: str | None = None) -> None:
    """Refuse a PIN that is not 4 to 8 digits (``PinInvalid``) or is among the first
    guesses (``WeakPin``): one digit or a short group repeated (0000, 1212, 123123), a run
    up or down (1234, 9876), a notorious one (2580), or a piece of the Room ID, which
    every guesser has. The lockout allows a few hundred guesses a day; these would be first.
    """
    if not PIN_PATTERN.fullmatch(pin):
        raise PinInvalid("a PIN is 4 to 8 digits, 0 to 9")
    n = len(pin)
    if any(n % size == 0 and pin == pin[:size] * (n // size) for size in range(1, n // 2 + 1)):
        raise WeakPin("this PIN repeats one digit or group of digits: choose a less guessable one")
    steps = {int(b) - int(a) for a, b in pairwise(pin)}
    if steps in ({1}, {-1}):
        raise WeakPin("this PIN is a run of digits up or down: choose a less guessable one")
    if pin in NOTORIOUS:
        raise WeakPin("this PIN is among the most often chosen ones: choose a less guessable one")
    if room_id is not None and pin in room_id:
        raise WeakPin("this PIN is part of the Room ID: choose one that is not")


#: Why the right PIN was refused: the room's owner has not accepted the policy's current
#: version, and its PBX grace is over (the PBX can say so to the caller).
ACCEPTANCE_REQUIRED = "policy_acceptance_required"


@dataclass(frozen=True)
class PinVerdict:
    allowed: bool
    #: Set only for the right PIN refused for a reason the owner can fix.
    reason: str | None = None


@dataclass(frozen=True)
class _Target:
    subject_id: str | None
    pin_hash: bytes | None
    closed: bool


class PinService:
    """Setting a room's PIN, and the PBX's PIN check with its lockouts."""

    def __init__(
        self,
        session: Session,
        vault: Vault,
        audit: AuditLog,
        clock: Clock,
        pepper: bytes,
        acceptances: PolicyAcceptances,
        *,
        source: str = "api",
    ) -> None:
        self.session = session
        self.vault = vault
        self.audit = audit
        self.clock = clock
        self._pepper = pepper
        self.acceptances = acceptances
        self.source = source

    # -- the owner ---------------------------------------------------------------------

    def set_pin(self, subject_id: str, pin: str) -> None:
        """Set or change the PIN of the subject's room; only its keyed digest is stored.

        Raises ``PinInvalid`` or ``WeakPin`` saying why (never quoting the PIN),
        ``RoomNotFound`` when the subject has no room.
        """
        room = self.session.get(Room, subject_id)
        if room is None:
            raise RoomNotFound("this account has no room")
        rooms = RoomService(self.session, self.vault, self.audit, self.clock)
        # A PIN that repeats the Room ID guards nothing: keeping the room safe.
        check_pin_strength(pin, rooms.room_id_of(subject_id, purpose="security"))
        room.pin_hash = pin_digest(self._pepper, subject_id, pin)
        room.pin_changed_at = self.clock.now()
        self.audit.record(
            self.session,
            self.source,
            Event.ROOM_PIN_CHANGED,
            actor=f"subject:{subject_id}",
            subject_id=subject_id,
            categories=["registration"],
        )

    # -- the PBX -----------------------------------------------------------------------

    def check(self, room_id: str, pin: str, caller: str | None = None, *, pbx: str) -> bool:
        """Whether ``pin`` opens the room typed as ``room_id``: ``verdict(...).allowed``."""
        return self.verdict(room_id, pin, caller, pbx=pbx).allowed

    def verdict(self, room_id: str, pin: str, caller: str | None = None, *, pbx: str) -> PinVerdict:
        """Whether ``pin`` opens the room typed as ``room_id``, asked by the PBX named ``pbx``.

        Not allowed, with no reason, for an unknown Room ID, a room without a PIN, a closed
        account, a wrong PIN, and while the typed Room ID or the caller's number is locked
        out (then even for the right PIN). A wrong PIN is recorded and may start a lockout.
        The right PIN of a room whose owner has not accepted the policy's current version
        opens it during the policy's PBX grace, then is refused with the reason
        ``policy_acceptance_required`` (P8.3). Raises nothing for anything the caller typed.
        """
        now = self.clock.now()
        room_key = self.vault.blind_index("room_id", room_id.strip())
        caller_key = self._caller_key(caller)
        # Concurrent guesses at one room wait for each other, so a burst cannot slip
        # past the count (SQLite has one writer at a time already).
        advisory_lock(self.session, f"pin:room:{room_key.hex()}")
        if caller_key is not None:
            advisory_lock(self.session, f"pin:caller:{caller_key.hex()}")

        locked = self._locked(room_key, caller_key, now)
        target = self._target(room_key)
        stored = target.pin_hash if target.pin_hash is not None else _NO_DIGEST
        typed = pin_digest(self._pepper, target.subject_id or _NO_SUBJECT, pin)
        matches = hmac.compare_digest(typed, stored)
        usable = target.subject_id is not None and target.pin_hash is not None
        if matches and usable and not target.closed and not locked:
            assert target.subject_id is not None
            if self.acceptances.pin_allowed(target.subject_id):
                return PinVerdict(True)
            return PinVerdict(False, ACCEPTANCE_REQUIRED)
        if not locked:
            self._record_failure(room_key, caller_key, target.subject_id, pbx, now)
        return PinVerdict(False)

    def _caller_key(self, caller: str | None) -> bytes | None:
        """The blind index of the caller's number in E.164; of the text as sent when it
        is no number (a spoofed caller ID is still one caller)."""
        if caller is None or not caller.strip():
            return None
        try:
            value = parse_phone(caller).e164
        except InvalidInput:
            value = caller.strip()
        return self.vault.blind_index("phone", value)

    def _locked(self, room_key: bytes, caller_key: bytes | None, now: datetime) -> bool:
        scopes = [(PinLockout.scope == Scope.ROOM) & (PinLockout.key == room_key)]
        if caller_key is not None:
            scopes.append((PinLockout.scope == Scope.CALLER) & (PinLockout.key == caller_key))
        found = self.session.scalar(
            select(PinLockout.id).where(or_(*scopes), PinLockout.until > now).limit(1)
        )
        return found is not None

    def _target(self, room_key: bytes) -> _Target:
        row = self.session.execute(
            select(Room.subject_id, Room.pin_hash, Account.closed_at)
            .join(Account, Account.subject_id == Room.subject_id)
            .where(Room.room_id_index == room_key)
        ).first()
        if row is None:
            return _Target(None, None, False)
        return _Target(row.subject_id, row.pin_hash, row.closed_at is not None)

    def _record_failure(
        self,
        room_key: bytes,
        caller_key: bytes | None,
        subject_id: str | None,
        pbx: str,
        now: datetime,
    ) -> None:
        self.purge_pin_failures()
        self.session.add(PinFailure(room_key=room_key, caller_key=caller_key, at=now))
        self.session.flush()
        room_failures = self.session.scalar(
            select(func.count())
            .select_from(PinFailure)
            .where(PinFailure.room_key == room_key, PinFailure.at > now - ROOM_WINDOW)
        )
        if (room_failures or 0) >= ROOM_FAILURES:
            self._lock(Scope.ROOM, room_key, ROOM_LOCK, subject_id, pbx, now)
        if caller_key is None:
            return
        failures, rooms = self.session.execute(
            select(func.count(), func.count(distinct(PinFailure.room_key))).where(
                PinFailure.caller_key == caller_key, PinFailure.at > now - CALLER_WINDOW
            )
        ).one()
        if rooms >= CALLER_ROOMS or failures >= CALLER_FAILURES:
            self._lock(Scope.CALLER, caller_key, CALLER_LOCK, None, pbx, now)

    def _lock(
        self,
        scope: Scope,
        key: bytes,
        length: timedelta,
        subject_id: str | None,
        pbx: str,
        now: datetime,
    ) -> None:
        """Refuse every PIN for ``scope`` until ``now + length``; logged with the room's
        owner where known and nothing else (no PIN, no Room ID, no caller number)."""
        self.session.add(PinLockout(scope=scope.value, key=key, until=now + length))
        minutes = int(length.total_seconds() // 60)
        if scope is Scope.ROOM:
            whose = f" of subject {subject_id}" if subject_id else ""
            log.warning("PIN checks of a room%s locked for %d minutes", whose, minutes)
        else:
            log.warning("PIN checks from a caller locked for %d minutes", minutes)
        self.audit.record(
            self.session,
            "pbx",
            Event.PIN_ROOM_LOCKED if scope is Scope.ROOM else Event.PIN_CALLER_LOCKED,
            actor=f"pbx:{pbx}",
            subject_id=subject_id,
            detail={"minutes": minutes},
        )

    def purge_pin_failures(self) -> int:
        """Delete failures too old to count for any lockout, and lockouts that have ended.

        Returns how many failures went. Called whenever a failure is recorded.
        """
        now = self.clock.now()
        gone = self.session.execute(delete(PinFailure).where(PinFailure.at <= now - KEEP_FAILURES))
        self.session.execute(delete(PinLockout).where(PinLockout.until <= now))
        return int(getattr(gone, "rowcount", 0) or 0)
