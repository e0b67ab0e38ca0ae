"""Synthetic demo people for `privault demo`. Nobody real: example.com addresses."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from privault.runtime import Runtime
from privault.service.models import Account
from privault.service.profile import Change, Visibility
from privault.staff import totp
from privault.staff.service import ISSUER

#: The demo's privacy officer; the TOTP secret is public, for an authenticator app.
STAFF_NAME = "ann"
STAFF_PASSWORD = "quiet-meadow-ledger"  # noqa: S105 - a demo login, printed on purpose
STAFF_SECRET = b"privault-demo-totp!!"


@dataclass(frozen=True)
class DemoPerson:
    email: str
    password: str
    display_name: str
    room_id: str


CAST: list[tuple[str, str, str, dict[str, object]]] = [
    (
        "alice@example.com",
        "sailing-choir-kettle",
        "Alice Example",
        {
            "name": "Alice Example",
            "interests": ["choir", "sailing"],
            "employment": "Product manager",
        },
    ),
    ("bob@example.com", "granite-harbour-lamp", "Bob Example", {"name": "Bob Example"}),
    ("mallory@example.com", "crooked-lantern-fig", "Mallory Example", {}),
]
#: Numbers from ranges reserved for fiction (Ofcom's drama numbers, the US 555-01xx).
DIAL_IN = [
    ("+44 20 7946 0000", "London"),
    ("+44 161 496 0000", "Manchester"),
    ("+1 202 555 0100", "Washington"),
]


def seed(runtime: Runtime) -> list[DemoPerson]:
    """Create the demo cast once; later runs find them and print the same logins."""
    people = []
    with runtime.transaction() as session:
        accounts = runtime.accounts(session, source="cli")
        for email, password, name, profile in CAST:
            index = runtime.vault.blind_index("email", email)
            subject_id = session.scalar(
                select(Account.subject_id).where(Account.email_index == index)
            )
            if subject_id is None:
                subject_id = accounts.register(email, password, name).subject_id
                runtime.profiles(session).update(
                    subject_id,
                    {
                        field: Change(visibility=Visibility.MEMBERS, value=value, has_value=True)
                        for field, value in profile.items()
                    },
                )
            room_id = runtime.rooms(session).room_id_of(subject_id, purpose="administration")
            people.append(DemoPerson(email, password, name, room_id or "-"))
        staff = runtime.staff(session)
        if not any(m.name == STAFF_NAME for m in staff.members()):
            staff.add(STAFF_NAME, "privacy_officer", password=STAFF_PASSWORD, secret=STAFF_SECRET)
        dial_ins = runtime.dial_ins(session)
        if not dial_ins.list():
            for number, city in DIAL_IN:
                dial_ins.add(number, city)
    return people


def staff_login() -> str:
    """The demo staff login as printed: name, password and the TOTP URI."""
    uri = totp.provisioning_uri(STAFF_SECRET, STAFF_NAME, ISSUER)
    return f"staff {STAFF_NAME} (privacy officer) password {STAFF_PASSWORD}  TOTP {uri}"
