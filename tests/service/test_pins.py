"""Room PINs and the PBX's PIN check on the service's own clock (P7.5)."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from factories import Person
from privault.access.models import AccessLogEntry
from privault.clock import FrozenClock
from privault.runtime import Runtime
from privault.service import pins as pins_module
from privault.service.errors import PinInvalid, WeakPin
from privault.service.models import Account, PinFailure, PinLockout, Room
from privault.service.pins import PinService, check_pin_strength

CALLER = "+358401234567"
OTHER_CALLER = "+442079460958"
MADE_UP = "1000000001"  # Room IDs never start with 0 and are ten digits: this one may exist...
STRONG = ("4831", "5927", "7364", "80426", "3719520")
#: Long enough not to turn up by chance in a subject id or a digest.
LONG = ("3719520", "8042613", "5926481")
WRONG = "041738"


def strong_pin(room_id: str) -> str:
    """A PIN the strength rules accept for this room (not part of its Room ID)."""
    return next(pin for pin in STRONG if pin not in room_id)


def made_up_room(runtime: Runtime) -> str:
    """A Room ID that no room has."""
    with runtime.transaction() as session:
        rooms = runtime.rooms(session)
        candidate = int(MADE_UP)
        while rooms.owner_of(str(candidate)) is not None:
            candidate += 1
    return str(candidate)


@dataclass
class Desk:
    """The PBX's side of the desk: each call is its own transaction, as over HTTP."""

    runtime: Runtime
    clock: FrozenClock

    def service(self, session: Session) -> PinService:
        return PinService(
            session,
            self.runtime.vault,
            self.runtime.audit,
            self.clock,
            self.runtime.keyring.secret("pin_pepper"),
            self.runtime.acceptances(session),
            source="pbx",
        )

    def check(self, room_id: str, pin: str, caller: str | None = None) -> bool:
        with self.runtime.transaction() as session:
            return self.service(session).check(room_id, pin, caller, pbx="test-pbx")

    def set_pin(self, person: Person, pin: str) -> None:
        with self.runtime.transaction() as session:
            self.service(session).set_pin(person.subject_id, pin)

    def fail(self, room_id: str, times: int, caller: str | None = None) -> None:
        for _ in range(times):
            assert self.check(room_id, WRONG, caller) is False

    def count(self, model: type[PinFailure] | type[PinLockout]) -> int:
        with self.runtime.transaction() as session:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2030, 3, 4, 9, 30, tzinfo=UTC))


@pytest.fixture
def desk(runtime: Runtime, clock: FrozenClock) -> Desk:
    return Desk(runtime, clock)


@pytest.fixture
def alice_pin(desk: Desk, alice: Person) -> str:
    pin = strong_pin(alice.room_id)
    desk.set_pin(alice, pin)
    return pin


def test_p7_5_the_right_pin_opens_the_room_and_a_wrong_one_does_not(
    desk: Desk, alice: Person, alice_pin: str
) -> None:
    assert desk.check(alice.room_id, alice_pin, CALLER) is True
    assert desk.check(alice.room_id, WRONG, CALLER) is False
    assert desk.check(alice.room_id, alice_pin + "1", CALLER) is False
    assert desk.check(f" {alice.room_id} ", alice_pin) is True


def test_p7_5_it_refuses_the_right_pin_while_the_room_is_locked(
    desk: Desk, alice: Person, alice_pin: str
) -> None:
    desk.fail(alice.room_id, 4)
    assert desk.check(alice.room_id, alice_pin) is True, "four wrong PINs do not lock"
    desk.fail(alice.room_id, 1)
    assert desk.check(alice.room_id, alice_pin) is False
    desk.clock.advance(timedelta(minutes=14, seconds=59))
    assert desk.check(alice.room_id, alice_pin) is False


def test_p7_5_the_room_unlocks_after_15_minutes(desk: Desk, alice: Person, alice_pin: str) -> None:
    desk.fail(alice.room_id, 5)
    assert desk.check(alice.room_id, alice_pin) is False
    desk.clock.advance(timedelta(minutes=15))
    assert desk.check(alice.room_id, alice_pin) is True


def test_p7_5_wrong_pins_count_only_within_15_minutes(
    desk: Desk, alice: Person, alice_pin: str
) -> None:
    desk.fail(alice.room_id, 4)
    desk.clock.advance(timedelta(minutes=15, seconds=1))
    desk.fail(alice.room_id, 4)
    assert desk.check(alice.room_id, alice_pin) is True


def test_p7_5_a_lockout_is_per_typed_room_id(
    desk: Desk, alice: Person, bob: Person, alice_pin: str
) -> None:
    bob_pin = strong_pin(bob.room_id)
    desk.set_pin(bob, bob_pin)
    desk.fail(alice.room_id, 5)
    assert desk.check(alice.room_id, alice_pin) is False
    assert desk.check(bob.room_id, bob_pin) is True


def test_p7_5_a_caller_failing_on_three_rooms_is_refused_for_an_hour(
    runtime: Runtime, desk: Desk, alice: Person, bob: Person, alice_pin: str
) -> None:
    made_up = made_up_room(runtime)
    desk.fail(made_up, 1, CALLER)
    desk.fail(bob.room_id, 1, CALLER)
    assert desk.check(alice.room_id, alice_pin, CALLER) is True, "two rooms are not yet three"
    desk.fail(alice.room_id, 1, "+358 40 123 4567")  # the same caller, written otherwise
    assert desk.check(alice.room_id, alice_pin, CALLER) is False
    assert desk.check(alice.room_id, alice_pin, OTHER_CALLER) is True
    assert desk.check(alice.room_id, alice_pin) is True
    desk.clock.advance(timedelta(minutes=59))
    assert desk.check(alice.room_id, alice_pin, CALLER) is False
    desk.clock.advance(timedelta(minutes=1))
    assert desk.check(alice.room_id, alice_pin, CALLER) is True


def test_p7_5_ten_failures_of_one_caller_lock_it(
    runtime: Runtime, desk: Desk, alice: Person, bob: Person, alice_pin: str
) -> None:
    made_up = made_up_room(runtime)
    desk.fail(bob.room_id, 4, CALLER)
    desk.fail(made_up, 4, CALLER)
    desk.clock.advance(timedelta(minutes=14))
    assert desk.check(alice.room_id, alice_pin, CALLER) is True, "eight failures on two rooms"
    desk.fail(bob.room_id, 1, CALLER)
    desk.fail(made_up, 1, CALLER)
    assert desk.count(PinFailure) == 10
    assert desk.check(alice.room_id, alice_pin, CALLER) is False
    assert desk.check(alice.room_id, alice_pin, OTHER_CALLER) is True, "alice's room is open"


def test_p7_5_an_unknown_room_is_indistinguishable_from_a_real_one_with_a_wrong_pin(
    runtime: Runtime,
    desk: Desk,
    alice: Person,
    alice_pin: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Same answer, same records, same lockout, and a PIN digest computed for each."""
    digests: list[str] = []
    real_digest = pins_module.pin_digest

    def counting(pepper: bytes, subject_id: str, pin: str) -> bytes:
        digests.append(subject_id)
        return real_digest(pepper, subject_id, pin)

    monkeypatch.setattr(pins_module, "pin_digest", counting)
    made_up = made_up_room(runtime)
    answers = {}
    for room_id in (alice.room_id, made_up):
        before = desk.count(PinFailure)
        answers[room_id] = [desk.check(room_id, WRONG) for _ in range(6)]
        assert desk.count(PinFailure) - before == 5, "five failures, then locked"
    assert answers[alice.room_id] == answers[made_up] == [False] * 6
    assert len(digests) == 12
    assert desk.count(PinLockout) == 2


def test_p7_5_a_room_without_a_pin_refuses_every_pin(desk: Desk, alice: Person) -> None:
    assert desk.check(alice.room_id, strong_pin(alice.room_id)) is False
    assert desk.check(alice.room_id, "") is False
    assert desk.count(PinFailure) == 2


def test_p7_5_a_closed_account_refuses_its_pin(
    runtime: Runtime, desk: Desk, alice: Person, alice_pin: str
) -> None:
    with runtime.transaction() as session:
        session.execute(
            update(Account)
            .where(Account.subject_id == alice.subject_id)
            .values(closed_at=desk.clock.now())
        )
    assert desk.check(alice.room_id, alice_pin) is False


def test_p7_5_a_rotated_room_id_stops_working_at_once(
    runtime: Runtime, desk: Desk, alice: Person, alice_pin: str
) -> None:
    with runtime.transaction() as session:
        new_id = runtime.rooms(session).rotate_room_id(alice.subject_id)
    assert new_id != alice.room_id
    assert desk.check(alice.room_id, alice_pin) is False
    assert desk.check(new_id, alice_pin) is True, "the PIN stays"
    with runtime.transaction() as session:
        assert runtime.rooms(session).owner_of(alice.room_id) is None
        assert runtime.rooms(session).room_id_of(alice.subject_id, purpose="service") == new_id


def test_p7_5_the_pin_is_stored_only_as_a_keyed_hash(
    runtime: Runtime, desk: Desk, alice: Person, bob: Person
) -> None:
    pin = next(p for p in LONG if p not in alice.room_id and p not in bob.room_id)
    desk.set_pin(alice, pin)
    desk.set_pin(bob, pin)
    pepper = runtime.keyring.secret("pin_pepper")
    with runtime.transaction() as session:
        rooms = {r.subject_id: r for r in session.scalars(select(Room))}
        a, b = rooms[alice.subject_id], rooms[bob.subject_id]
        expected = hmac.new(
            pepper, f"pin\x1f{alice.subject_id}\x1f{pin}".encode(), hashlib.sha256
        ).digest()
        assert a.pin_hash == expected
        assert a.pin_hash != b.pin_hash, "the same PIN in two rooms gives unrelated digests"
        assert a.pin_hash != hashlib.sha256(pin.encode()).digest()
        for column in Room.__table__.columns:
            value = getattr(a, column.key)
            raw = value if isinstance(value, bytes) else str(value).encode()
            assert pin.encode() not in raw, column.key


@pytest.mark.parametrize(
    ("pin", "error", "reason"),
    [
        ("123", PinInvalid, "4 to 8 digits"),
        ("123456789", PinInvalid, "4 to 8 digits"),
        ("12a4", PinInvalid, "4 to 8 digits"),
        ("١٢٣٤٥", PinInvalid, "4 to 8 digits"),  # digits, but not 0 to 9
        (" 4831", PinInvalid, "4 to 8 digits"),
        ("0000", WeakPin, "repeats"),
        ("1212", WeakPin, "repeats"),
        ("123123", WeakPin, "repeats"),
        ("1234", WeakPin, "run of digits"),
        ("98765", WeakPin, "run of digits"),
        ("2580", WeakPin, "most often chosen"),
    ],
)
def test_p7_5_weak_or_malformed_pins_are_refused_with_the_reason(
    runtime: Runtime, alice: Person, pin: str, error: type[Exception], reason: str
) -> None:
    with runtime.transaction() as session, pytest.raises(error) as raised:
        runtime.pins(session).set_pin(alice.subject_id, pin)
    assert reason in str(raised.value)
    assert pin.strip() not in str(raised.value)


def acceptable(pin: str) -> bool:
    try:
        check_pin_strength(pin)
    except WeakPin:
        return False
    return True


def test_p7_5_a_pin_from_the_room_id_is_refused(runtime: Runtime, alice: Person) -> None:
    pieces = [alice.room_id[i : i + n] for n in (4, 5, 6) for i in range(11 - n)]
    piece = next(p for p in pieces if acceptable(p))
    with runtime.transaction() as session, pytest.raises(WeakPin, match="part of the Room ID"):
        runtime.pins(session).set_pin(alice.subject_id, piece)


@pytest.fixture
def captured(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)
    yield caplog


def test_p7_5_lockouts_are_logged_without_the_pin_room_id_or_caller(
    runtime: Runtime, desk: Desk, alice: Person, captured: pytest.LogCaptureFixture
) -> None:
    alice_pin = next(p for p in LONG if p not in alice.room_id)
    desk.set_pin(alice, alice_pin)
    made_up = made_up_room(runtime)
    desk.fail(alice.room_id, 5, CALLER)
    desk.fail(made_up, 5, OTHER_CALLER)
    desk.clock.advance(timedelta(minutes=16))
    for room_id in (made_up, made_up + "9", alice.room_id):
        desk.fail(room_id, 1, OTHER_CALLER)
    assert desk.check(alice.room_id, alice_pin, OTHER_CALLER) is False
    assert desk.check(alice.room_id, alice_pin, CALLER) is True

    messages = [r.getMessage() for r in captured.records if r.name == "privault.pins"]
    assert messages == [
        f"PIN checks of a room of subject {alice.subject_id} locked for 15 minutes",
        "PIN checks of a room locked for 15 minutes",
        "PIN checks from a caller locked for 60 minutes",
    ]
    with runtime.transaction() as session:
        entries = session.scalars(
            select(AccessLogEntry)
            .where(AccessLogEntry.action.like("pbx:pin:%"))
            .order_by(AccessLogEntry.seq)
        ).all()
    assert [(e.action, e.subject_id, e.actor) for e in entries] == [
        ("pbx:pin:room_locked", alice.subject_id, "pbx:test-pbx"),
        ("pbx:pin:room_locked", None, "pbx:test-pbx"),
        ("pbx:pin:caller_locked", None, "pbx:test-pbx"),
    ]
    written = captured.text + "".join(f"{e.actor}{e.detail}{e.categories}" for e in entries)
    hidden = [alice_pin, WRONG, alice.room_id, made_up]
    hidden += [CALLER, CALLER[1:], OTHER_CALLER, OTHER_CALLER[1:]]
    for value in hidden:
        assert value not in written


def test_p7_5_old_failures_and_ended_lockouts_are_purged(
    desk: Desk, alice: Person, alice_pin: str
) -> None:
    desk.fail(alice.room_id, 5, CALLER)
    assert (desk.count(PinFailure), desk.count(PinLockout)) == (5, 1)
    desk.clock.advance(timedelta(minutes=15))
    desk.fail(alice.room_id, 1)
    assert (desk.count(PinFailure), desk.count(PinLockout)) == (1, 0)
    desk.clock.advance(timedelta(hours=1))
    with desk.runtime.transaction() as session:
        assert desk.service(session).purge_pin_failures() == 1
    assert desk.count(PinFailure) == 0
