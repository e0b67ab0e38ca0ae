"""P4.1 and P3.x: a staff member reads a person's data only for a purpose of their role, and
only the categories the policy lets that purpose use; every read and every refusal is in the
access log with who, whose data, which categories and which purpose. The matrix is computed
from the policy file; the spot checks below it would catch a regression of that file."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from factories import Person, add_staff, api_error, staff_login
from privault.access.errors import PurposeNotAllowed
from privault.access.models import AccessLogEntry
from privault.clock import FrozenClock
from privault.errors import PrivaultError
from privault.rights.service import Channel
from privault.runtime import Runtime
from privault.staff.errors import PurposeRefused
from privault.staff.service import Staff, StaffService

STAFF = "/api/v1/staff"
READ = "staff:staff:read"
REFUSED = "staff:staff:purpose_refused"


def members(runtime: Runtime, session: Session) -> dict[str, Staff]:
    """One staff member for each role of the policy file."""
    service = runtime.staff(session)
    for role in runtime.policy.roles:
        service.add(f"matrix.{role}", role)
    return {m.role: Staff(m.id, m.name, m.role) for m in service.members()}


def entries(session: Session, subject_id: str) -> list[AccessLogEntry]:
    return list(
        session.scalars(
            select(AccessLogEntry)
            .where(AccessLogEntry.subject_id == subject_id)
            .where(AccessLogEntry.action.in_([READ, REFUSED]))
            .order_by(AccessLogEntry.seq)
        )
    )


def attempt(
    staff: StaffService, member: Staff, subject_id: str, category: str, purpose: str
) -> str:
    """``read`` when the read was cleared, else the refusal's code."""
    try:
        staff.read(member, subject_id, [category], purpose)
    except PrivaultError as exc:
        return exc.code
    return "read"


def test_p4_1_every_role_reads_exactly_what_its_purposes_and_the_policy_allow(
    runtime: Runtime, alice: Person
) -> None:
    """Every role against every purpose and every category of the policy file."""
    policy = runtime.policy
    combinations = [
        (role, purpose, category)
        for role in policy.roles
        for purpose in policy.purposes
        for category in policy.categories
    ]
    with runtime.transaction() as session:
        staff, people = runtime.staff(session), members(runtime, session)
        outcome = {
            (role, purpose, category): attempt(
                staff, people[role], alice.subject_id, category, purpose
            )
            for role, purpose, category in combinations
        }
        logged = entries(session, alice.subject_id)
        check = runtime.audit.verify(session)

    def expected(role: str, purpose: str, category: str) -> str:
        if purpose not in policy.roles[role].purposes:
            return "purpose_refused"
        if not policy.purpose_allows(purpose, category):
            return "purpose_not_allowed"
        return "read"

    assert outcome == {c: expected(*c) for c in combinations}
    assert {"read", "purpose_refused", "purpose_not_allowed"} == set(outcome.values())
    assert [(e.actor, e.action, e.categories, e.purpose) for e in logged] == [
        (
            f"staff:matrix.{role}",
            READ if expected(role, purpose, category) == "read" else REFUSED,
            category,
            purpose,
        )
        for role, purpose, category in combinations
    ]
    assert check.ok, check.problem


@pytest.mark.parametrize(
    ("role", "category", "purpose", "error"),
    [
        # Support deals with inquiries: never billing, so never transactions for billing.
        ("support", "transactions", "billing", PurposeRefused),
        ("support", "profile", "support", PurposeNotAllowed),
        ("support", "device", "support", PurposeNotAllowed),
        # Billing sees transactions and call records, never what people write or publish.
        ("billing", "communications", "billing", PurposeNotAllowed),
        ("billing", "profile", "billing", PurposeNotAllowed),
        ("billing", "communications", "support", PurposeRefused),
        # Security: no device or visit data (collected for statistics, under consent).
        ("security", "device", "security", PurposeNotAllowed),
        ("security", "visits", "security", PurposeNotAllowed),
        ("security", "communications", "legal", PurposeRefused),
        # No role may use data for marketing or statistics.
        ("administrator", "profile", "marketing", PurposeRefused),
        ("privacy_officer", "visits", "statistics", PurposeRefused),
        ("administrator", "communications", "administration", PurposeNotAllowed),
    ],
)
def test_p4_1_spot_checks_that_would_catch_a_policy_regression(
    runtime: Runtime,
    alice: Person,
    role: str,
    category: str,
    purpose: str,
    error: type[PrivaultError],
) -> None:
    with runtime.transaction() as session:
        member = members(runtime, session)[role]
        with pytest.raises(error) as refused:
            runtime.staff(session).read(member, alice.subject_id, [category], purpose)
        [entry] = entries(session, alice.subject_id)
    assert purpose in refused.value.detail
    assert (entry.action, entry.categories, entry.purpose) == (REFUSED, category, purpose)


@pytest.mark.parametrize(
    ("role", "categories", "purpose"),
    [
        ("support", ["communications", "registration", "call_records"], "support"),
        ("billing", ["transactions", "call_records", "registration"], "billing"),
        ("security", ["call_records", "transactions"], "security"),
        ("privacy_officer", ["device", "visits", "profile", "other", "newsletter"], "legal"),
        ("administrator", ["registration", "service_input"], "administration"),
    ],
)
def test_p4_1_each_role_reads_what_its_work_needs(
    runtime: Runtime, alice: Person, role: str, categories: list[str], purpose: str
) -> None:
    with runtime.transaction() as session:
        member = members(runtime, session)[role]
        runtime.staff(session).read(member, alice.subject_id, categories, purpose)
        [entry] = entries(session, alice.subject_id)
    assert (entry.actor, entry.action, entry.categories, entry.purpose) == (
        f"staff:matrix.{role}",
        READ,
        ",".join(sorted(categories)),
        purpose,
    )


def test_p4_1_one_category_the_purpose_may_not_use_refuses_the_whole_read(
    runtime: Runtime, alice: Person
) -> None:
    with runtime.transaction() as session:
        member = members(runtime, session)["billing"]
        with pytest.raises(PurposeNotAllowed, match="billing use communications, profile data"):
            runtime.staff(session).read(
                member, alice.subject_id, ["transactions", "profile", "communications"], "billing"
            )
        [entry] = entries(session, alice.subject_id)
    assert (entry.action, entry.categories) == (REFUSED, "communications,profile")


def test_p4_1_a_staff_read_of_what_a_person_wrote_is_in_the_access_log(
    client_at: TestClient, at: Runtime, clock: FrozenClock
) -> None:
    """Over HTTP: the privacy officer opens a request; the entry names who, whose data,
    which category and why. A role without the purpose is refused and logged."""
    with at.transaction() as session:
        subject_id = at.vault.create_subject(session)
        request_id = (
            at.rights(session)
            .file(
                subject_id,
                "access",
                Channel.MAIL,
                actor="mail",
                verified=False,
                details="Please send me my call records",
            )
            .id
        )
    ann = staff_login(client_at, add_staff(at, "ann", "privacy_officer"), clock)
    shown = client_at.get(f"{STAFF}/requests/{request_id}", headers=ann)
    assert shown.status_code == 200 and shown.json()["details"] == "Please send me my call records"
    bill = staff_login(client_at, add_staff(at, "bill", "billing"), clock)
    api_error(client_at.get(f"{STAFF}/requests/{request_id}", headers=bill), 403, "purpose_refused")
    with at.transaction() as session:
        [read] = entries(session, subject_id)
        check = at.audit.verify(session)
    assert (read.actor, read.action, read.categories, read.purpose) == (
        "staff:ann",
        READ,
        "communications",
        "legal",
    )
    assert "call records" not in read.detail
    assert check.ok, check.problem
