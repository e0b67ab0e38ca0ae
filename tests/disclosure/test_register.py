"""The disclosure register: a disclosure the policy allows is recorded with who asked, on
what basis, which people and categories, approved by whom, and logged per person
(P4.2-P4.5); every other one is refused, logged, and leaves nothing else behind (P4.6,
P0.1, P3.16, P3.10, P3.x, P4.1)."""

from __future__ import annotations

import dataclasses
import json
import tomllib
from typing import Any

import pytest
from sqlalchemy import func, select

from factories import Person, marker, register
from privault.access.models import AccessLogEntry
from privault.consent.channels import ConsentChannel
from privault.disclosure.errors import (
    AggregatesOnly,
    CategoryRefused,
    InvalidDisclosure,
    RecipientPurposeRefused,
    SaleRefused,
    ThirdPartyConsentMissing,
    UnknownCategory,
    UnknownPurpose,
    UnknownRecipient,
    UnknownSubject,
)
from privault.disclosure.models import Disclosure, DisclosureSubject
from privault.disclosure.service import DisclosureBasis, Entry, is_sale
from privault.errors import PrivaultError
from privault.policy import build_policy
from privault.rights.export import Exporter
from privault.rights.service import Channel
from privault.runtime import Runtime
from privault.staff.errors import PurposeRefused
from privault.staff.service import Staff

REQUESTER = "Tribunal judiciaire de Paris, case 24/123"


def add_staff(runtime: Runtime, name: str, role: str) -> Staff:
    with runtime.transaction() as session:
        runtime.staff(session).add(name, role)
        return runtime.staff(session).on_server(name)


def disclose(runtime: Runtime, approver: Staff, subjects: list[str], **changes: Any) -> Entry:
    arguments: dict[str, Any] = {
        "recipient_id": "courts_and_authorities",
        "subjects": subjects,
        "categories": ["call_records", "registration"],
        "purpose": "legal",
        "legal_basis": "court_order",
        "requester": REQUESTER,
        "approved_by": approver,
    } | changes
    with runtime.transaction() as session:
        return runtime.disclosures(session).disclose(**arguments)


def last_entry(runtime: Runtime) -> AccessLogEntry:
    with runtime.factory() as session:
        return session.scalars(
            select(AccessLogEntry).order_by(AccessLogEntry.seq.desc()).limit(1)
        ).one()


def refused(
    runtime: Runtime,
    approver: Staff,
    subjects: list[str],
    error: type[PrivaultError],
    **changes: Any,
) -> PrivaultError:
    """The disclosure is refused with ``error``: nothing of it stored, the refusal logged
    (and kept, though the transaction failed)."""
    with pytest.raises(error) as caught:
        disclose(runtime, approver, subjects, **changes)
    assert type(caught.value) is error
    with runtime.factory() as session:
        assert session.scalar(select(func.count()).select_from(Disclosure)) == 0
        assert session.scalar(select(func.count()).select_from(DisclosureSubject)) == 0
    entry = last_entry(runtime)
    assert entry.action == "cli:disclosure:refused"
    assert entry.actor == approver.actor
    assert json.loads(entry.detail)["reason"] == caught.value.code
    return caught.value


def test_p4_2_a_disclosure_is_registered_with_who_asked_the_basis_and_the_approver(
    at: Runtime, ann: Staff
) -> None:
    alice, bob = register(at, "alice"), register(at, "bob")
    entry = disclose(at, ann, [alice.subject_id, bob.subject_id, alice.subject_id])
    assert (entry.recipient_id, entry.recipient_kind, entry.recipient_country) == (
        "courts_and_authorities",
        "authority",
        "FR",
    )
    assert entry.recipient_name == "Courts and competent authorities"
    assert (entry.purpose, entry.legal_basis, entry.requester) == (
        "legal",
        "court_order",
        REQUESTER,
    )
    assert entry.categories == ("registration", "call_records")  # the policy's order
    assert (entry.subjects, entry.approved_by, entry.confidential) == (2, "staff:ann", False)
    assert entry.created_at == at.clock.now()

    with at.transaction() as session:
        service = at.disclosures(session)
        assert service.register() == [entry]
        assert service.register(recipient="courts_and_authorities") == [entry]
        assert service.register(recipient="hosting") == []
        assert service.register(subject=bob.subject_id) == [entry]
        assert service.register(subject=register(at, "carol").subject_id) == []
        logged = session.scalars(
            select(AccessLogEntry).where(AccessLogEntry.action == "cli:disclosure:recorded")
        ).all()
    # One access-log entry per person: who, whose data, which categories, what purpose.
    assert sorted(e.subject_id or "" for e in logged) == sorted([alice.subject_id, bob.subject_id])
    for log in logged:
        assert (log.actor, log.categories, log.purpose) == (
            "staff:ann",
            "call_records,registration",
            "legal",
        )
        assert json.loads(log.detail) == {
            "disclosure": entry.id,
            "recipient": "courts_and_authorities",
            "basis": "court_order",
        }
        assert "Tribunal" not in log.detail


def test_p4_2_who_asked_is_sealed_at_rest(at: Runtime, ann: Staff, alice: Person) -> None:
    requester = f"Officer {marker('name')} of the Police nationale"
    entry = disclose(at, ann, [alice.subject_id], requester=requester)
    with at.factory() as session:
        row = session.get(Disclosure, entry.id)
        assert row is not None
        assert requester.encode() not in row.requester_ct
        assert requester not in repr(row.__dict__)
    assert entry.requester == requester


def test_p4_2_to_p4_5_each_legal_ground_of_the_policy_is_a_basis(
    at: Runtime, ann: Staff, alice: Person
) -> None:
    for basis in ("law", "court_order", "proceedings", "legal_rights", "likely_court_order"):
        assert disclose(at, ann, [alice.subject_id], legal_basis=basis).legal_basis == basis
    assert {b.value for b in DisclosureBasis} >= {"consent", "contract"}


def test_a_disclosure_needs_a_known_basis_a_requester_people_and_categories(
    at: Runtime, ann: Staff, alice: Person
) -> None:
    people = [alice.subject_id]
    refused(at, ann, people, InvalidDisclosure, legal_basis="whim")
    refused(at, ann, people, InvalidDisclosure, requester="  ")
    refused(at, ann, people, InvalidDisclosure, requester="x" * 501)
    refused(at, ann, [], InvalidDisclosure)
    refused(at, ann, people, InvalidDisclosure, categories=[])


def test_p4_6_a_recipient_not_in_the_policy_file_is_refused(
    at: Runtime, ann: Staff, alice: Person
) -> None:
    error = refused(at, ann, [alice.subject_id], UnknownRecipient, recipient_id="data_broker")
    assert error.code == "unknown_recipient"
    assert error.detail == (
        "the recipient 'data_broker' is not in the policy file, and personal data goes to "
        "no other third party"
    )
    assert json.loads(last_entry(at).detail)["recipient"] is None
    # What was typed is neither repeated nor logged when it could be anything.
    address = "someone@example.com"
    error = refused(at, ann, [alice.subject_id], UnknownRecipient, recipient_id=address)
    assert address not in error.detail
    assert address not in last_entry(at).detail


def test_p0_1_a_disclosure_for_a_sale_is_refused_and_logged(
    at: Runtime, ann: Staff, alice: Person
) -> None:
    for purpose in ("sale", "data_sale", "selling"):
        error = refused(at, ann, [alice.subject_id], SaleRefused, purpose=purpose)
        assert error.detail == "we do not sell personal data: a disclosure for a sale is refused"
    assert last_entry(at).purpose is None  # not a purpose of the policy
    assert is_sale("resale_of_lists") and is_sale("Sale")
    assert not is_sale("legal") and not is_sale("wholesale_billing")


def test_p4_6_a_purpose_the_recipient_is_not_declared_for_is_refused(
    at: Runtime, ann: Staff, alice: Person
) -> None:
    people = [alice.subject_id]
    error = refused(at, ann, people, RecipientPurposeRefused, recipient_id="payments")
    assert error.detail == (
        "the policy declares payments for billing, supply, security, not for legal"
    )
    entry = last_entry(at)
    assert (entry.purpose, json.loads(entry.detail)["recipient"]) == ("legal", "payments")
    refused(at, ann, people, UnknownPurpose, purpose="curiosity")


def test_p3_x_a_category_the_purpose_may_not_use_is_refused(
    at: Runtime, ann: Staff, alice: Person
) -> None:
    people = [alice.subject_id]
    error = refused(
        at,
        ann,
        people,
        CategoryRefused,
        recipient_id="payments",
        purpose="billing",
        categories=["transactions", "profile", "visits"],
    )
    assert error.detail == "the purpose billing may not use profile, visits"
    error = refused(at, ann, people, UnknownCategory, categories=["registration", "call_record"])
    assert error.detail == "the policy file declares no category 'call_record'"
    assert last_entry(at).categories == "registration"  # only the policy's ids are logged


def test_p3_10_statistics_recipients_receive_no_personal_data(
    at: Runtime, ann: Staff, alice: Person
) -> None:
    error = refused(
        at,
        ann,
        [alice.subject_id],
        AggregatesOnly,
        recipient_id="statistics_recipients",
        purpose="statistics",
        categories=["device"],
    )
    assert error.detail == (
        "statistics_recipients receives anonymous statistics only, never personal data"
    )


def test_p4_1_the_approver_needs_the_disclosure_purpose_and_the_legal_purpose(
    at: Runtime, ann: Staff, alice: Person
) -> None:
    people = [alice.subject_id]
    sam = add_staff(at, "sam", "support")
    error = refused(at, sam, people, PurposeRefused)
    assert error.detail == "the role support may not use personal data for the purpose legal"
    with at.factory() as session:
        actions = session.scalars(
            select(AccessLogEntry.action).order_by(AccessLogEntry.seq.desc()).limit(2)
        ).all()
    assert actions == ["cli:disclosure:refused", "staff:staff:purpose_refused"]

    # Billing to the payment provider: the billing role holds the purpose but not the legal
    # one; the privacy officer holds the legal one but not billing. Nobody may approve it.
    bill = add_staff(at, "bill", "billing")
    to_payments = {"recipient_id": "payments", "purpose": "billing", "categories": ["transactions"]}
    for approver in (bill, ann):
        refused(at, approver, people, PurposeRefused, **to_payments)
    # The administrator's role holds the legal purpose too.
    admin = add_staff(at, "ada", "administrator")
    assert disclose(at, admin, people).approved_by == "staff:ada"


def test_a_person_who_does_not_exist_is_refused(at: Runtime, ann: Staff, alice: Person) -> None:
    error = refused(at, ann, [alice.subject_id, "0" * 32], UnknownSubject)
    assert error.detail == "1 of the 2 people named do not exist (or were erased)"
    assert "0" * 32 not in last_entry(at).detail


def marketing_runtime(at: Runtime) -> Runtime:
    """The Kallu policy with a marketing partner (consent: the ``third_party`` channel) and
    a role allowed marketing and the legal purpose, on the test's runtime."""
    data = tomllib.loads(at.settings.policy_file.read_text(encoding="utf-8"))
    data["recipients"].append(
        {
            "id": "partner",
            "name": "A partner of the group",
            "kind": "marketing",
            "country": "DE",
            "purposes": ["marketing"],
            "consent": "third_party",
            "description": "Sends its own offers to people who agreed to it.",
        }
    )
    data["roles"]["partnerships"] = {"title": "Partnerships", "purposes": ["marketing", "legal"]}
    return dataclasses.replace(at, policy=build_policy(data))


def test_p3_16_a_marketing_recipient_needs_each_persons_express_consent(at: Runtime) -> None:
    rt = marketing_runtime(at)
    alice, bob = register(rt, "alice"), register(rt, "bob")
    pat = add_staff(rt, "pat", "partnerships")
    to_partner = {
        "recipient_id": "partner",
        "purpose": "marketing",
        "categories": ["registration"],
        "legal_basis": "consent",
    }
    both = [alice.subject_id, bob.subject_id]
    error = refused(rt, pat, both, ThirdPartyConsentMissing, **to_partner)
    assert error.detail == (
        "2 of the 2 people have not given the consent third_party that partner needs, "
        "a marketing recipient"
    )
    with rt.transaction() as session:
        rt.channel_consents(session).give(alice.subject_id, "third_party", "web")
        # Marketing by post (opt-out, so on) is not the consent to share with others.
        assert rt.channel_consents(session).is_given(bob.subject_id, ConsentChannel.MARKETING_POST)
    error = refused(rt, pat, both, ThirdPartyConsentMissing, **to_partner)
    assert error.detail.startswith("1 of the 2 people")
    assert disclose(rt, pat, [alice.subject_id], **to_partner).subjects == 1

    with rt.transaction() as session:
        rt.channel_consents(session).withdraw(alice.subject_id, "third_party", "web")
    with pytest.raises(ThirdPartyConsentMissing):
        disclose(rt, pat, [alice.subject_id], **to_partner)


def test_p4_2_the_access_export_lists_the_recipients_but_not_who_asked_nor_gagged_ones(
    at: Runtime, ann: Staff
) -> None:
    alice, bob = register(at, "alice"), register(at, "bob")
    requester = f"Maître {marker('lawyer')}, counsel for the claimant"
    disclose(at, ann, [alice.subject_id], legal_basis="proceedings", requester=requester)
    secret = f"Juge d'instruction {marker('judge')}"
    disclose(
        at,
        ann,
        [alice.subject_id],
        categories=["communications"],
        requester=secret,
        confidential=True,
    )
    with at.transaction() as session:
        exporter = Exporter(session, at.vault, at.policy, at.clock)
        export = exporter.build(alice.subject_id)
        assert exporter.build(bob.subject_id).document["disclosures"] == []
        assert at.disclosures(session).recipients_of(alice.subject_id)[0].recipient == (
            "Courts and competent authorities"
        )
    assert export.document["disclosures"] == [
        {
            "recipient": "Courts and competent authorities",
            "kind": "authority",
            "country": "FR",
            "at": at.clock.now().isoformat(),
            "categories": ["registration", "call_records"],
            "purpose": "legal",
            "legal_basis": "proceedings",
            "text": (
                "On 20 January 2027, Courts and competent authorities (authority, FR) received "
                "your data (Registration; Call detail records) for legal obligations and legal "
                "claims, for ongoing or prospective legal proceedings."
            ),
        }
    ]
    everything = json.dumps(export.document, ensure_ascii=False) + export.html
    for hidden in (requester, secret, "communications", "staff:ann"):
        assert hidden not in everything
    assert "Who received your data" in export.html
    assert "your data (Registration; Call detail records)" in export.html


def test_p0_4_erasure_takes_the_person_out_of_the_register_but_keeps_the_entry(
    runtime: Runtime, alice: Person, bob: Person
) -> None:
    ann = add_staff(runtime, "ann", "privacy_officer")
    entry = disclose(runtime, ann, [alice.subject_id, bob.subject_id])
    with runtime.transaction() as session:
        request = runtime.rights(session).file(
            alice.subject_id, "erasure", Channel.STAFF, actor="t", verified=True
        )
    for _ in range(3):
        runtime.rights_engine().run_once()
        runtime.mailer().deliver_pending()
    with runtime.transaction() as session:
        assert runtime.rights(session).get(request.id).state == "completed"
        service = runtime.disclosures(session)
        assert service.register(subject=alice.subject_id) == []
        assert service.register(subject=bob.subject_id) == [entry]
        assert service.register()[0].subjects == 2
        linked = session.scalars(select(DisclosureSubject.subject_id)).all()
        assert linked == [bob.subject_id]
        # The access log keeps its pseudonymous record of the disclosure.
        assert session.scalar(
            select(func.count())
            .select_from(AccessLogEntry)
            .where(
                AccessLogEntry.subject_id == alice.subject_id,
                AccessLogEntry.action == "cli:disclosure:recorded",
            )
        )
