"""The policy file and its typed model: policies/kallu.toml must encode the seed, and a
broken file must be refused with one line naming the key and the reason."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from factories import KALLU, kallu_data, policy_refusal
from privault.policy import (
    ACCOUNT,
    CookieCategory,
    CookieKind,
    Duration,
    Policy,
    PolicyError,
    RecipientKind,
    UnknownPolicyEntry,
    build_policy,
    load_policy,
    parse_policy,
)

KALLU_TEXT = KALLU.read_text(encoding="utf-8")

CATEGORIES = [
    "device",
    "visits",
    "registration",
    "profile",
    "newsletter",
    "service_input",
    "call_records",
    "transactions",
    "publications",
    "communications",
    "other",
]
PURPOSES = {
    "administration",
    "personalisation",
    "service",
    "supply",
    "billing",
    "notices",
    "requested_notifications",
    "newsletters",
    "marketing",
    "statistics",
    "support",
    "security",
    "compliance",
    "publication",
    "legal",
}

Data = dict[str, Any]


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(KALLU)


def index_of(entries: list[Data], key: str, value: str) -> int:
    return next(i for i, entry in enumerate(entries) if entry[key] == value)


# --- The Kallu policy ---------------------------------------------------------------------


def test_kallu_policy_loads_with_eleven_categories(policy: Policy) -> None:
    assert list(policy.categories) == CATEGORIES
    assert {"email", "display_name", "room_id"} <= set(policy.category("registration").fields)
    assert policy.category("profile").fields == (
        "name",
        "pictures",
        "gender",
        "birthday",
        "relationship_status",
        "interests",
        "education",
        "employment",
    )
    assert [c.promise for c in policy.categories.values()] == [f"P2.{n}" for n in range(1, 12)]
    assert policy.meta.privacy_address == "privacy@kallu.cc"
    assert policy.meta.request_subject == "My Personal Data"


def test_kallu_policy_has_a_purpose_for_every_use_in_section_3(policy: Policy) -> None:
    assert set(policy.purposes) == PURPOSES


def test_p6_2_every_category_has_a_retention_rule_with_a_reason(policy: Policy) -> None:
    for category in policy.categories.values():
        assert category.retention.reason.strip()
    assert policy.category("transactions").retention.period == Duration(years=10)
    assert policy.category("transactions").retention.from_ == "contract_end"
    assert policy.category("call_records").retention.period == Duration(months=12)
    assert policy.category("device").retention.period == Duration(months=13)
    assert policy.category("profile").retention.period == ACCOUNT


def test_retention_expires_at_the_end_of_its_period(policy: Policy) -> None:
    collected = datetime(2026, 1, 31, 12, tzinfo=UTC)
    assert policy.category("device").retention.expires_at(collected) == datetime(
        2027, 2, 28, 12, tzinfo=UTC
    )
    assert policy.category("profile").retention.expires_at(collected) is None
    assert policy.category("profile").retention.while_account_exists


def test_purpose_allows_only_listed_categories(policy: Policy) -> None:
    assert policy.purpose_allows("newsletters", "newsletter")
    assert not policy.purpose_allows("newsletters", "profile")
    assert not policy.purpose_allows("security", "visits")
    assert not policy.purpose_allows("no_such_purpose", "newsletter")
    assert not policy.purpose_allows("newsletters", "no_such_category")
    assert "legal" in policy.purposes_for("other")


def test_lookups_of_undeclared_entries_raise_unknown_policy_entry(policy: Policy) -> None:
    assert policy.recipient("hosting").kind == RecipientKind.PROCESSOR
    assert policy.location("primary_database").country == "FR"
    for lookup in (policy.category, policy.purpose, policy.recipient, policy.location):
        with pytest.raises(UnknownPolicyEntry):
            lookup("nope")
    with pytest.raises(UnknownPolicyEntry):
        policy.cookie("nope")


def test_policy_is_frozen(policy: Policy) -> None:
    with pytest.raises(ValidationError):
        policy.meta.name = "Other"  # type: ignore[misc]


def test_fingerprint_follows_content_not_comments(policy: Policy) -> None:
    assert len(policy.fingerprint) == 64
    assert parse_policy(KALLU_TEXT + "\n# a comment\n").fingerprint == policy.fingerprint
    changed = KALLU_TEXT.replace('version = "1.0.0"', 'version = "1.0.1"')
    assert parse_policy(changed).fingerprint != policy.fingerprint


# --- Promises enforced by the model -------------------------------------------------------


def test_p0_1_buyer_recipient_kind_cannot_exist() -> None:
    assert "buyer" not in {kind.value for kind in RecipientKind}
    data = kallu_data()
    data["recipients"].append(
        {
            "id": "data_broker",
            "name": "Data broker",
            "kind": "buyer",
            "country": "FR",
            "purposes": ["marketing"],
            "description": "Buys our users' data.",
        }
    )
    index = len(data["recipients"]) - 1
    assert policy_refusal(data) == (
        f"kallu.toml: recipients.{index}.kind: 'buyer' is not one of "
        "'group', 'processor', 'authority', 'statistics' or 'marketing'"
    )


def test_p5_2_processor_outside_adequacy_list_is_refused() -> None:
    data = kallu_data()
    index = index_of(data["recipients"], "id", "hosting")
    data["recipients"][index]["country"] = "CN"
    assert policy_refusal(data) == (
        f"kallu.toml: recipients.{index}.country: processor 'hosting' in country 'CN' "
        "is outside the EEA and the adequacy list"
    )


def test_p5_2_location_outside_adequacy_list_is_refused() -> None:
    data = kallu_data()
    index = index_of(data["locations"], "id", "backups")
    data["locations"][index]["country"] = "RU"
    assert policy_refusal(data) == (
        f"kallu.toml: locations.{index}.country: location 'backups' in country 'RU' "
        "is outside the EEA and the adequacy list"
    )


def test_p5_2_adequacy_list_is_the_eea_plus_adequacy_decisions(policy: Policy) -> None:
    eu = "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE"
    for country in [*eu.split(), "IS", "LI", "NO", "CH", "GB", "JP", "KR", "US", "UY", "NZ", "BR"]:
        assert policy.is_adequate(country), country
    for country in ("CN", "RU", "IN", "SA", "fr"):
        assert not policy.is_adequate(country), country
    assert "Data Privacy Framework" in policy.transfers.conditions["US"]
    for location in policy.locations:
        assert policy.is_adequate(location.country)


def test_p3_10_anonymous_statistics_recipient_is_not_a_transfer() -> None:
    data = kallu_data()
    index = index_of(data["recipients"], "id", "statistics_recipients")
    data["recipients"][index]["country"] = "IN"
    assert build_policy(data).recipient("statistics_recipients").country == "IN"


def test_p3_16_marketing_recipient_needs_express_consent() -> None:
    data = kallu_data()
    partner = {
        "id": "partner",
        "name": "Partner",
        "kind": "marketing",
        "country": "FR",
        "purposes": ["marketing"],
        "description": "Receives data for its own marketing.",
    }
    data["recipients"].append(partner)
    index = len(data["recipients"]) - 1
    assert policy_refusal(data) == (
        f"kallu.toml: recipients.{index}.consent: required: "
        "a marketing recipient needs express consent"
    )
    partner["consent"] = "third_party_marketing"
    assert build_policy(data).recipient("partner").consent == "third_party_marketing"


def test_p0_2_direct_marketing_purposes_need_a_consent_kind(policy: Policy) -> None:
    assert policy.purpose("newsletters").consent == "newsletter"
    assert policy.purpose("marketing").consent == "marketing"
    assert policy.marketing.max_per_month == 2
    data = kallu_data()
    del data["purposes"]["marketing"]["consent"]
    assert policy_refusal(data) == (
        "kallu.toml: purposes.marketing.consent: "
        "required: consent-based and marketing purposes name one"
    )


def test_p3_8_marketing_by_post_is_opt_out_and_by_email_opt_in(policy: Policy) -> None:
    assert policy.marketing.channels == {"email": "opt_in", "post": "opt_out"}
    assert policy.purpose("marketing").channels == ("email", "post")
    data = kallu_data()
    data["marketing"]["channels"]["email"] = "opt_out"
    assert policy_refusal(data) == (
        "kallu.toml: marketing.channels.email: email marketing must be opt_in (P3.8)"
    )


def test_p9_4_requests_are_due_in_30_days_and_at_most_three_months(policy: Policy) -> None:
    received = datetime(2026, 11, 30, tzinfo=UTC)
    assert policy.rights.due_at(received) == received + timedelta(days=30)
    assert policy.rights.latest_due_at(received) == datetime(2027, 2, 28, tzinfo=UTC)
    assert {kind.value for kind in policy.rights.kinds} == {
        "access",
        "rectification",
        "erasure",
        "portability",
        "restriction",
        "objection",
    }
    data = kallu_data()
    data["rights"]["extension_max_months"] = 4
    assert policy_refusal(data).startswith("kallu.toml: rights.extension_max_months: ")


# --- Cookies ------------------------------------------------------------------------------


def test_p11_1_every_cookie_has_name_purpose_kind_lifetime_category(policy: Policy) -> None:
    assert policy.cookies
    for cookie in policy.cookies:
        assert cookie.name and cookie.purpose and cookie.provider and cookie.description
        assert cookie.category in CookieCategory
        if cookie.kind == CookieKind.PERSISTENT:
            assert cookie.lifetime is not None, cookie.name
        else:
            assert cookie.lifetime is None, cookie.name
    session = policy.cookie("privault_session")
    assert (session.category, session.kind) == ("strictly_necessary", "session")
    assert str(policy.cookie("_ga").lifetime) == "P2Y"
    ads = policy.cookie("_gcl_au")
    assert (ads.category, str(ads.lifetime)) == ("advertising", "P90D")


def test_p1_2_consent_cookie_lasts_as_long_as_the_consent(policy: Policy) -> None:
    assert policy.cookie("privault_consent").lifetime == policy.consent.lifetime
    data = kallu_data()
    index = index_of(data["cookies"], "name", "privault_consent")
    data["cookies"][index]["lifetime"] = "P13M"
    assert policy_refusal(data) == (
        f"kallu.toml: cookies.{index}.lifetime: must equal consent.lifetime (P6M)"
    )


def test_cookie_with_a_placeholder_matches_the_names_it_stands_for(policy: Policy) -> None:
    assert policy.cookie("_ga_G7XK2P").name == "_ga_<container-id>"
    assert policy.cookie("_ga").name == "_ga"
    with pytest.raises(UnknownPolicyEntry):
        policy.cookie("_ga_")


def test_only_strictly_necessary_cookies_are_always_on(policy: Policy) -> None:
    always_on = [c for c, entry in policy.consent.categories.items() if entry.always_on]
    assert always_on == [CookieCategory.STRICTLY_NECESSARY]
    data = kallu_data()
    data["consent"]["categories"]["analytics"]["always_on"] = True
    assert policy_refusal(data) == (
        "kallu.toml: consent.categories.analytics: only strictly_necessary is always on"
    )


def test_p11_3_global_privacy_control_refuses_advertising(policy: Policy) -> None:
    refused = {c for c, entry in policy.consent.categories.items() if entry.gpc_refuses}
    assert refused == {CookieCategory.ADVERTISING}


def test_session_cookie_must_be_declared() -> None:
    data = kallu_data()
    data["cookies"] = [c for c in data["cookies"] if c["name"] != "privault_session"]
    assert policy_refusal(data) == (
        "kallu.toml: cookies: 'privault_session' (the login session) must be declared"
    )


# --- Durations ----------------------------------------------------------------------------


def test_duration_adds_calendar_months() -> None:
    month = Duration.parse("P1M")
    assert month.add_to(datetime(2025, 1, 31)) == datetime(2025, 2, 28)
    assert month.add_to(datetime(2024, 1, 31)) == datetime(2024, 2, 29)
    assert month.add_to(datetime(2025, 12, 15)) == datetime(2026, 1, 15)
    assert month.subtract_from(datetime(2025, 3, 31)) == datetime(2025, 2, 28)
    assert Duration.parse("P1Y").add_to(datetime(2024, 2, 29)) == datetime(2025, 2, 28)
    assert Duration.parse("P13M").add_to(datetime(2025, 1, 31)) == datetime(2026, 2, 28)
    assert Duration.parse("P2Y6M").add_to(datetime(2025, 8, 31)) == datetime(2028, 2, 29)
    assert Duration.parse("PT30M").add_to(datetime(2025, 1, 1, 23, 45)) == datetime(
        2025, 1, 2, 0, 15
    )
    assert Duration.parse("P1M1D").add_to(datetime(2025, 1, 31)) == datetime(2025, 3, 1)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [("P13M", "P13M"), ("P30D", "P30D"), ("P10Y", "P10Y"), ("P2W", "P14D"), ("PT90M", "PT1H30M")],
)
def test_duration_prints_canonically(text: str, canonical: str) -> None:
    assert str(Duration.parse(text)) == canonical


@pytest.mark.parametrize("text", ["", "P", "PT", "13M", "p13m", "P1.5M", "P13X", "P1YT", "P-1D"])
def test_duration_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration like P13M or P30D"):
        Duration.parse(text)


# --- Broken files -------------------------------------------------------------------------


def _bad_duration(data: Data) -> None:
    data["categories"]["profile"]["retention"] = {
        "period": "P13X",
        "from": "collection",
        "reason": "Test.",
    }


def _unknown_category(data: Data) -> None:
    data["purposes"]["newsletters"]["categories"] = ["mailing_list"]


def _two_unknown_categories(data: Data) -> None:
    data["purposes"]["newsletters"]["categories"] = ["mailing_list"]
    data["purposes"]["notices"]["categories"] = ["inbox"]


def _unknown_key(data: Data) -> None:
    data["categories"]["device"]["colour"] = "blue"


def _missing_key(data: Data) -> None:
    del data["meta"]["privacy_address"]


def _bad_country(data: Data) -> None:
    data["locations"][0]["country"] = "XX"


def _bad_id(data: Data) -> None:
    data["purposes"]["Billing"] = data["purposes"].pop("billing")


def _two_bad_durations(data: Data) -> None:
    data["categories"]["device"]["retention"]["period"] = "13 months"
    data["categories"]["visits"]["retention"]["period"] = "P13"


def _persistent_without_lifetime(data: Data) -> None:
    del data["cookies"][2]["lifetime"]


def _session_with_lifetime(data: Data) -> None:
    data["cookies"][0]["lifetime"] = "P1D"


def _account_with_anchor(data: Data) -> None:
    data["categories"]["profile"]["retention"]["from"] = "collection"


def _unused_category(data: Data) -> None:
    data["purposes"]["support"]["categories"].remove("other")
    data["purposes"]["legal"]["categories"].remove("other")


def _bad_enum(data: Data) -> None:
    data["categories"]["profile"]["sensitivity"] = "private"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            _bad_duration,
            "categories.profile.retention.period: "
            "'P13X' is not a duration like P13M or P30D, or 'account'",
        ),
        (_unknown_category, "purposes.newsletters.categories: unknown category 'mailing_list'"),
        (
            _two_unknown_categories,
            "purposes.notices.categories: unknown category 'inbox' (and 1 more)",
        ),
        (_unknown_key, "categories.device.colour: unknown key"),
        (_missing_key, "meta.privacy_address: required key is missing"),
        (_bad_country, "locations.0.country: 'XX' is not an ISO 3166-1 alpha-2 country code"),
        (_bad_id, "purposes.Billing: 'Billing' is not a lowercase snake_case id"),
        (
            _two_bad_durations,
            "categories.device.retention.period: "
            "'13 months' is not a duration like P13M or P30D, or 'account' (and 1 more)",
        ),
        (_persistent_without_lifetime, "cookies.2.lifetime: required for a persistent cookie"),
        (
            _session_with_lifetime,
            "cookies.0.lifetime: a session cookie ends with the session; leave it out",
        ),
        (
            _account_with_anchor,
            "categories.profile.retention.from: leave 'from' out when the period is 'account'",
        ),
        (_unused_category, "categories.other: no purpose uses this category"),
        (
            _bad_enum,
            "categories.profile.sensitivity: "
            "'private' is not one of 'low', 'normal', 'high' or 'secret'",
        ),
    ],
    ids=lambda case: case.__name__.strip("_") if callable(case) else "",
)
def test_broken_file_names_the_key_and_reason(
    mutate: Callable[[Data], None], expected: str
) -> None:
    data = kallu_data()
    mutate(data)
    assert policy_refusal(data) == f"kallu.toml: {expected}"


def test_broken_file_names_the_line_of_a_toml_syntax_error() -> None:
    lines = KALLU_TEXT.splitlines()
    lines.insert(2, "this is not toml")
    with pytest.raises(PolicyError) as caught:
        parse_policy("\n".join(lines), "kallu.toml")
    assert caught.value.detail == (
        "kallu.toml: line 3, column 6: Expected '=' after a key in a key/value pair"
    )


def test_broken_file_names_a_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "kallu.toml"
    with pytest.raises(PolicyError) as caught:
        load_policy(missing)
    assert caught.value.detail == f"{missing}: no such file"


def test_broken_file_names_a_wrong_value_in_the_text() -> None:
    broken = KALLU_TEXT.replace('lifetime = "P90D"', 'lifetime = "90 days"')
    index = index_of(kallu_data()["cookies"], "name", "_gcl_au")
    with pytest.raises(PolicyError) as caught:
        parse_policy(broken, "kallu.toml")
    assert caught.value.detail == (
        f"kallu.toml: cookies.{index}.lifetime: '90 days' is not a duration like P13M or P30D"
    )


def test_p9_4_due_date_is_the_policys_days_or_one_calendar_month_whichever_is_sooner() -> None:
    rights = load_policy(KALLU).rights
    march = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
    assert rights.due_at(march) == datetime(2027, 3, 31, 9, 0, tzinfo=UTC)
    february = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)
    assert rights.due_at(february) == datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
    january_end = datetime(2027, 1, 31, 9, 0, tzinfo=UTC)
    assert rights.due_at(january_end) == datetime(2027, 2, 28, 9, 0, tzinfo=UTC)
