"""The diff between two policy versions: one test per kind of change, each saying whether
it needs fresh consent or only notice."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from factories import kallu_data
from privault.policy import build_policy
from privault.policy.diff import ChangeKind, PolicyDiff, diff, unreadable

Data = dict[str, Any]


def changed(edit: Callable[[Data], None]) -> PolicyDiff:
    """The diff from the reference policy to a copy changed by ``edit``."""
    new = kallu_data()
    edit(new)
    return diff(build_policy(kallu_data()), build_policy(new))


def only(result: PolicyDiff, kind: ChangeKind) -> str:
    kinds = [c.kind for c in result.changes if c.kind is not ChangeKind.OTHER]
    assert kinds == [kind], result.changes
    return next(c.text for c in result.changes if c.kind is kind)


def recipient(data: Data, rid: str) -> Data:
    return next(r for r in data["recipients"] if r["id"] == rid)


def cookie(data: Data, name: str) -> Data:
    return next(c for c in data["cookies"] if c["name"] == name)


def test_the_same_policy_has_no_changes_and_needs_no_consent() -> None:
    result = changed(lambda data: None)
    assert result.changes == ()
    assert result.summary() == ["Nothing changed.", "Notice only: nobody needs to agree again."]


def test_a_new_category_is_notice_only() -> None:
    def edit(data: Data) -> None:
        data["categories"]["voice"] = {
            "title": "Voice recordings",
            "description": "Recordings of calls you ask us to record.",
            "promise": "P2.6",
            "source": "provided",
            "fields": ["audio"],
            "sensitivity": "high",
            "retention": {"period": "P30D", "from": "collection", "reason": "Replays."},
        }
        data["purposes"]["service"]["categories"].append("voice")
        data["purposes"]["legal"]["categories"].append("voice")
        data["subjects"]["registered_users"]["categories"].append("voice")

    result = changed(edit)
    kinds = [c.kind for c in result.changes]
    assert kinds[0] is ChangeKind.CATEGORY_ADDED
    assert result.changes[0].text == "New kind of data collected: Voice recordings (audio)."
    # A purpose using a category that did not exist is no new use of data already held.
    assert not result.needs_consent


def test_a_removed_category_is_notice_only() -> None:
    def edit(data: Data) -> None:
        del data["categories"]["other"]
        for purpose in ("support", "legal"):
            data["purposes"][purpose]["categories"].remove("other")
        data["subjects"]["registered_users"]["categories"].remove("other")
        data["subjects"]["correspondents"]["categories"].remove("other")

    result = changed(edit)
    assert result.changes[0].text == "No longer collected: Anything else you send us."
    assert result.changes[0].kind is ChangeKind.CATEGORY_REMOVED
    assert not result.needs_consent


def test_a_field_added_to_a_category_is_notice_only() -> None:
    result = changed(lambda data: data["categories"]["registration"]["fields"].append("phone"))
    assert only(result, ChangeKind.FIELD_ADDED) == "Registration: now also collected: phone."
    assert not result.needs_consent


def test_a_purpose_added_to_a_category_needs_fresh_consent() -> None:
    result = changed(lambda data: data["purposes"]["marketing"]["categories"].append("visits"))
    assert only(result, ChangeKind.PURPOSE_EXTENDED) == "Marketing: now also uses Your visits."
    assert result.needs_consent
    assert result.reasons == ["a new purpose for data already held (Your visits)"]
    assert result.verdict.startswith("Needs fresh consent: a new purpose for data already held")


def test_a_new_purpose_for_existing_data_needs_fresh_consent() -> None:
    def edit(data: Data) -> None:
        data["purposes"]["research"] = {
            "title": "Research",
            "description": "Studying how calls are made.",
            "legal_basis": "legitimate_interests",
            "categories": ["call_records"],
        }

    result = changed(edit)
    text = only(result, ChangeKind.PURPOSE_ADDED)
    assert text == "New purpose: Research, using Call detail records."
    assert result.needs_consent


def test_a_longer_retention_is_said_in_words() -> None:
    def edit(data: Data) -> None:
        data["categories"]["call_records"]["retention"]["period"] = "P18M"

    result = changed(edit)
    assert only(result, ChangeKind.RETENTION_LONGER) == (
        "Call detail records: kept longer: 18 months from collection, "
        "instead of 12 months from collection."
    )
    assert not result.needs_consent


def test_a_shorter_retention_is_said_in_words() -> None:
    def edit(data: Data) -> None:
        data["categories"]["device"]["retention"]["period"] = "P6M"

    result = changed(edit)
    assert only(result, ChangeKind.RETENTION_SHORTER) == (
        "Your device: kept for less time: 6 months from collection, "
        "instead of 13 months from collection."
    )


def test_a_new_recipient_needs_fresh_consent() -> None:
    def edit(data: Data) -> None:
        data["recipients"].append(
            {
                "id": "crm",
                "name": "Customer relationship provider",
                "kind": "processor",
                "country": "FR",
                "purposes": ["support"],
                "description": "Keeps our support tickets.",
            }
        )

    result = changed(edit)
    text = only(result, ChangeKind.RECIPIENT_ADDED)
    assert text == "New recipient: Customer relationship provider (processor, in FR)."
    assert result.reasons == ["a new recipient (Customer relationship provider)"]


def test_a_removed_recipient_is_notice_only() -> None:
    def edit(data: Data) -> None:
        data["recipients"].remove(recipient(data, "payments"))

    result = changed(edit)
    text = only(result, ChangeKind.RECIPIENT_REMOVED)
    assert text == "Payment service provider no longer receives data."
    assert not result.needs_consent


def test_a_recipient_given_a_new_purpose_needs_fresh_consent() -> None:
    result = changed(lambda data: recipient(data, "payments")["purposes"].append("support"))
    text = only(result, ChangeKind.RECIPIENT_EXTENDED)
    assert text == "Payment service provider now also receives data for: Inquiries and complaints."
    assert result.needs_consent


def test_a_new_country_and_location_are_notice_only() -> None:
    def edit(data: Data) -> None:
        data["locations"].append(
            {"id": "dr_site", "name": "Disaster recovery site", "country": "CH", "role": "storage"}
        )

    result = changed(edit)
    assert [c.kind for c in result.changes] == [ChangeKind.COUNTRY_ADDED, ChangeKind.LOCATION_ADDED]
    assert result.changes[0].text == "Personal data may now go to a new country: CH."
    assert result.changes[1].text == (
        "New place where data is stored: Disaster recovery site, in CH."
    )
    assert not result.needs_consent


def test_a_transfer_safeguard_change_is_said() -> None:
    def edit(data: Data) -> None:
        data["transfers"]["conditions"]["JP"] = "Only under the supplementary rules of 2019."

    result = changed(edit)
    assert only(result, ChangeKind.SAFEGUARD_CHANGED) == (
        "Transfers to JP: now only on a condition: Only under the supplementary rules of 2019."
    )
    assert not result.needs_consent


def test_a_new_advertising_cookie_needs_fresh_consent() -> None:
    def edit(data: Data) -> None:
        data["cookies"].append(
            {
                "name": "_fbp",
                "provider": "Meta Platforms Ireland",
                "purpose": "Measures ads",
                "category": "advertising",
                "kind": "persistent",
                "lifetime": "P90D",
                "description": "Recognises a browser for ads.",
            }
        )

    result = changed(edit)
    assert only(result, ChangeKind.COOKIE_ADDED) == (
        "New advertising cookie: _fbp (Meta Platforms Ireland), lasting 90 days."
    )
    assert result.reasons == ["a new advertising cookie (_fbp)"]


def test_a_new_analytics_cookie_is_notice_only() -> None:
    def edit(data: Data) -> None:
        data["cookies"].append(cookie(data, "_gid") | {"name": "_gat", "lifetime": "PT1M"})

    result = changed(edit)
    assert only(result, ChangeKind.COOKIE_ADDED).startswith("New analytics cookie: _gat")
    assert not result.needs_consent


def test_a_removed_cookie_is_notice_only() -> None:
    result = changed(lambda data: data["cookies"].remove(cookie(data, "IDE")))
    assert only(result, ChangeKind.COOKIE_REMOVED) == "Cookie IDE is no longer used."
    assert not result.needs_consent


def test_a_cookie_lifetime_change_is_said() -> None:
    result = changed(lambda data: cookie(data, "_ga").update(lifetime="P13M"))
    assert only(result, ChangeKind.COOKIE_LIFETIME) == (
        "Cookie _ga now lasts 13 months instead of 2 years."
    )


def test_a_change_of_wording_only_is_said() -> None:
    result = changed(lambda data: data["meta"].update(version="1.0.1"))
    assert [c.text for c in result.changes] == [
        "Changed: the policy's details (name, contact, version, dates)."
    ]
    assert not result.needs_consent


def test_an_unreadable_old_version_says_so_and_asks_for_consent() -> None:
    result = unreadable(3, "policy version 3: subjects: required")
    (change,) = result.changes
    assert change.kind is ChangeKind.UNREADABLE
    assert change.text.startswith("Version 3 can no longer be read (policy version 3:")
    assert result.needs_consent
