"""Transfers (P5.1, P5.2): every location and recipient has a country; the adequacy list
says when it was checked; a policy putting data outside it does not load, and a
disclosure to a recipient outside it is refused."""

from __future__ import annotations

import dataclasses
import json
from datetime import date

import pytest
from sqlalchemy import func, select

from factories import Person, kallu_data, policy_refusal
from privault.access.models import AccessLogEntry
from privault.disclosure.errors import TransferRefused
from privault.disclosure.models import Disclosure
from privault.policy import ISO_COUNTRIES, Policy, RecipientKind, build_policy
from privault.runtime import Runtime
from privault.staff.service import Staff


def test_p5_2_the_adequacy_list_says_when_it_was_checked() -> None:
    assert build_policy(kallu_data()).transfers.checked == date(2026, 11, 29)


def test_p5_2_a_policy_without_the_date_its_adequacy_list_was_checked_is_refused() -> None:
    data = kallu_data()
    del data["transfers"]["checked"]
    assert policy_refusal(data) == "kallu.toml: transfers.checked: required key is missing"
    data["transfers"]["checked"] = "last spring"
    assert policy_refusal(data).startswith("kallu.toml: transfers.checked: ")


def test_p5_1_every_location_and_recipient_has_a_country(runtime: Runtime) -> None:
    policy = runtime.policy
    for entry in (*policy.locations, *policy.recipients):
        assert entry.country in ISO_COUNTRIES, entry
    data = kallu_data()
    del data["locations"][1]["country"]
    assert policy_refusal(data) == "kallu.toml: locations.1.country: required key is missing"


@pytest.mark.parametrize(
    ("section", "entry_id", "country", "what"),
    [
        ("recipients", "group_staff", "IN", "group"),
        ("recipients", "mail_delivery", "SA", "processor"),
        ("recipients", "courts_and_authorities", "CN", "authority"),
        ("locations", "application_servers", "RU", "location"),
    ],
)
def test_p5_2_a_policy_putting_data_outside_the_adequacy_list_names_the_entry_and_country(
    section: str, entry_id: str, country: str, what: str
) -> None:
    data = kallu_data()
    index = next(i for i, e in enumerate(data[section]) if e["id"] == entry_id)
    data[section][index]["country"] = country
    assert policy_refusal(data) == (
        f"kallu.toml: {section}.{index}.country: {what} {entry_id!r} in country {country!r} "
        "is outside the EEA and the adequacy list"
    )


def without_france(policy: Policy) -> Policy:
    """The policy after France left the adequacy list: it could never load, but the list
    changes and a stored policy outlives it; the disclosure checks again (P5.2)."""
    adequacy = tuple(c for c in policy.transfers.adequacy if c != "FR")
    return policy.model_copy(
        update={"transfers": policy.transfers.model_copy(update={"adequacy": adequacy})}
    )


def test_p5_2_a_disclosure_to_a_recipient_outside_the_adequacy_list_is_refused(
    at: Runtime, ann: Staff, alice: Person
) -> None:
    rt = dataclasses.replace(at, policy=without_france(at.policy))
    assert rt.policy.recipient("courts_and_authorities").kind is RecipientKind.AUTHORITY
    with pytest.raises(TransferRefused) as caught, rt.transaction() as session:
        rt.disclosures(session).disclose(
            "courts_and_authorities",
            [alice.subject_id],
            ["call_records"],
            "legal",
            "law",
            "Parquet de Paris, réquisition 26/00417",
            ann,
        )
    assert caught.value.code == "transfer_refused"
    assert caught.value.detail == (
        "courts_and_authorities is in FR, outside the EEA and the adequacy list "
        "(checked 2026-11-29)"
    )
    with rt.factory() as session:
        assert session.scalar(select(func.count()).select_from(Disclosure)) == 0
        logged = session.scalars(
            select(AccessLogEntry).order_by(AccessLogEntry.seq.desc()).limit(1)
        ).one()
    assert logged.action == "cli:disclosure:refused"
    assert json.loads(logged.detail) == {
        "reason": "transfer_refused",
        "recipient": "courts_and_authorities",
        "subjects": 1,
    }
