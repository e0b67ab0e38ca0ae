"""P3.x: every read of personal data names a purpose, and the vault opens a value only when the
policy lets that purpose use the value's category (its table's, from the data map). A
refusal is a clear 403 naming the purpose and the category, and lands in the hash-chained
access log, never with the data."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

import privault.models  # noqa: F401  (registers every table on Base.metadata)
from factories import Person, api_error, marker
from privault.access.errors import PurposeNotAllowed
from privault.access.models import AccessLogEntry
from privault.config import Settings
from privault.db import Base
from privault.notify.outbox import TEMPLATES, Kind
from privault.policy.model import Policy
from privault.runtime import Runtime
from privault.vault import Field, Vault, datamap
from privault.web.app import create_app

REFUSED = "vault:purpose:refused"


def refusals(session: Session, subject_id: str | None = None) -> list[AccessLogEntry]:
    query = select(AccessLogEntry).where(AccessLogEntry.action == REFUSED)
    if subject_id is not None:
        query = query.where(AccessLogEntry.subject_id == subject_id)
    return list(session.scalars(query.order_by(AccessLogEntry.seq)))


def sealed_tables() -> dict[str, str]:
    """Every table whose sealed values are personal data, and their category."""
    return {entry.table: entry.category for entry in datamap.tables()} | datamap.OUTSIDE


def without(policy: Policy, purpose: str, category: str) -> Policy:
    """``policy`` with ``purpose`` no longer allowed to use ``category``."""
    entry = policy.purposes[purpose]
    narrowed = entry.model_copy(
        update={"categories": tuple(c for c in entry.categories if c != category)}
    )
    return policy.model_copy(update={"purposes": {**policy.purposes, purpose: narrowed}})


@pytest.fixture
def narrowed(base_settings: Settings, runtime: Runtime) -> Runtime:
    """The test's runtime (same transaction) under a policy whose support purpose no longer
    covers what people write to us."""
    policy = without(runtime.policy, "support", "communications")
    return Runtime(
        base_settings,
        runtime.factory,
        runtime.keyring,
        runtime.policy_version,
        policy,
        runtime.clock,
    )


@pytest.fixture
def narrowed_client(narrowed: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(narrowed), raise_server_exceptions=False) as test_client:
        yield test_client


class Counting:
    """A purpose check that counts its calls before asking the real one."""

    def __init__(self, inner: Vault) -> None:
        self.inner = inner.purposes
        self.calls: list[tuple[str, str]] = []

    def require(self, session: Session, subject_id: str | None, table: str, purpose: str) -> None:
        self.calls.append((table, purpose))
        self.inner.require(session, subject_id, table, purpose)


def test_p3_x_the_vault_opens_each_table_only_for_the_purposes_its_category_allows(
    runtime: Runtime, alice: Person
) -> None:
    """Every purpose of the policy file against every table holding sealed personal data."""
    policy, value = runtime.policy, marker("probe")
    outcome: dict[tuple[str, str], bool] = {}
    with runtime.transaction() as session:
        sealed = {
            table: runtime.vault.encrypt(
                session, alice.subject_id, Field(table, "probe_ct", "r1"), value
            )
            for table in sealed_tables()
        }
        for purpose in policy.purposes:
            for table, blob in sealed.items():
                field = Field(table, "probe_ct", "r1")
                try:
                    opened = runtime.vault.decrypt(
                        session, alice.subject_id, field, blob, purpose=purpose
                    )
                except PurposeNotAllowed as exc:
                    category = sealed_tables()[table]
                    assert exc.code == "purpose_not_allowed"
                    assert exc.detail == (
                        f"the policy does not let the purpose {purpose} use {category} data"
                    )
                    outcome[purpose, table] = False
                else:
                    assert opened == value
                    outcome[purpose, table] = True
        logged = refusals(session, alice.subject_id)
    expected = {
        (purpose, table): policy.purpose_allows(purpose, category)
        for purpose in policy.purposes
        for table, category in sealed_tables().items()
    }
    assert outcome == expected
    assert not all(expected.values()) and any(expected.values())
    assert [(e.purpose, json.loads(e.detail)["table"], e.categories, e.actor) for e in logged] == [
        (purpose, table, sealed_tables()[table], "system")
        for (purpose, table), allowed in outcome.items()
        if not allowed
    ]
    assert all(value not in f"{e.detail}{e.categories}{e.purpose}" for e in logged)


def test_p3_x_spot_checks_that_would_catch_a_policy_regression(
    runtime: Runtime, alice: Person
) -> None:
    policy = runtime.policy
    # Support reads what people write to us; billing and marketing never do.
    assert policy.purpose_allows("support", "communications")
    assert not policy.purpose_allows("billing", "communications")
    assert not policy.purpose_allows("marketing", "communications")
    # Device and visit data were collected for statistics, under consent, and for nothing else
    # but the law.
    assert set(policy.purposes_for("device")) == {"statistics", "legal"}
    assert set(policy.purposes_for("visits")) == {"statistics", "legal"}
    # Card details and addresses: never for statistics, personalisation or publication.
    for purpose in ("statistics", "personalisation", "publication", "newsletters"):
        assert not policy.purpose_allows(purpose, "transactions"), purpose
    # Answering requests (access exports, erasure) is the purpose that may use everything.
    assert set(policy.purposes["legal"].categories) == set(policy.categories)


def test_p3_x_decrypt_many_checks_once_per_table_not_per_value(
    runtime: Runtime, alice: Person
) -> None:
    counting = Counting(runtime.vault)
    vault = Vault(runtime.keyring, counting)
    records = [Field("call_records", "caller_ct", f"c{n}") for n in range(50)]
    account = Field("accounts", "display_name_ct", alice.subject_id)
    with runtime.transaction() as session:
        items = [
            (f, vault.encrypt(session, alice.subject_id, f, f"+4477009{n:05}"))
            for n, f in enumerate(records)
        ]
        items.append((account, vault.encrypt(session, alice.subject_id, account, "Alice")))
        opened = vault.decrypt_many(session, alice.subject_id, items, purpose="legal")
        assert opened[0] == "+447700900000" and opened[-1] == "Alice"
        assert sorted(counting.calls) == [("accounts", "legal"), ("call_records", "legal")]
        # One table the purpose may not use refuses the whole call: nothing is opened.
        messages = Field("messages", "content_ct", "m1")
        items.append((messages, vault.encrypt(session, alice.subject_id, messages, "hello")))
        with pytest.raises(PurposeNotAllowed, match="billing use communications"):
            vault.decrypt_many(session, alice.subject_id, items, purpose="billing")
        assert [e.categories for e in refusals(session, alice.subject_id)] == ["communications"]


def test_p3_x_what_erasure_kept_opens_for_the_category_of_its_source_table(
    runtime: Runtime, alice: Person
) -> None:
    purchase = Field("retained_records", "values_ct", "purchases/p1")
    cdr = Field("retained_records", "values_ct", "call_records/c1")
    with runtime.transaction() as session:
        kept = runtime.vault.seal_retained(purchase, {"billing_name": "Alice"})
        assert runtime.vault.open_retained(session, purchase, kept, purpose="legal") == {
            "billing_name": "Alice"
        }
        with pytest.raises(PurposeNotAllowed, match="statistics use transactions"):
            runtime.vault.open_retained(session, purchase, kept, purpose="statistics")
        call = runtime.vault.seal_retained(cdr, {"duration": 61})
        assert runtime.vault.open_retained(session, cdr, call, purpose="statistics") == {
            "duration": 61
        }
        [refused] = refusals(session)
    assert (refused.subject_id, refused.categories, refused.purpose) == (
        None,
        "transactions",
        "statistics",
    )


def test_p3_x_an_unknown_purpose_or_a_table_outside_the_data_map_is_refused(
    runtime: Runtime, alice: Person
) -> None:
    field = Field("accounts", "email_ct", alice.subject_id)
    with runtime.transaction() as session:
        blob = runtime.vault.encrypt(session, alice.subject_id, field, alice.email)
        with pytest.raises(PurposeNotAllowed, match="declares no purpose 'curiosity'"):
            runtime.vault.decrypt(session, alice.subject_id, field, blob, purpose="curiosity")
        stray = Field("no_such_table", "x_ct", "1")
        sealed = runtime.vault.encrypt(session, alice.subject_id, stray, "x")
        with pytest.raises(LookupError, match="no_such_table"):
            runtime.vault.decrypt(session, alice.subject_id, stray, sealed, purpose="legal")


#: Sealed columns whose category is not their table's: a retained record's is its source
#: table's; staff TOTP secrets are no subject's personal data.
NO_TABLE_CATEGORY = {"retained_records", "staff"}


def test_p3_x_every_table_with_sealed_values_has_a_category_to_check_purposes_against(
    runtime: Runtime,
) -> None:
    sealed = {
        table.name
        for table in Base.metadata.tables.values()
        if any(column.name.endswith("_ct") for column in table.columns)
    }
    assert sealed >= NO_TABLE_CATEGORY
    for table in sealed - NO_TABLE_CATEGORY:
        assert datamap.category_of(table) in runtime.policy.categories, table


def test_p3_x_every_mail_is_opened_to_send_it_for_a_purpose_the_policy_allows(
    runtime: Runtime,
) -> None:
    outbox = datamap.category_of("outbox")
    for name, template in TEMPLATES.items():
        assert runtime.policy.purpose_allows(template.purpose, outbox), name
    kinds = {t.kind: t.purpose for t in TEMPLATES.values() if t.kind is not Kind.NOTICE}
    assert kinds == {Kind.NEWSLETTER: "newsletters", Kind.MARKETING: "marketing"}


def test_p3_x_a_refused_read_answers_403_and_its_entry_survives_and_chains(
    client: TestClient, narrowed_client: TestClient, runtime: Runtime, alice: Person
) -> None:
    """Under a policy that no longer lets support read what people write to us, a person's
    messages cannot be read: 403 naming the purpose and the category, the refusal committed
    in the access log, and the chain still verifies."""
    subject, body = marker("subj"), marker("body")
    sent = client.post(
        "/api/v1/me/messages", json={"subject": subject, "body": body}, headers=alice.auth
    )
    assert sent.status_code == 201, sent.text
    answer = narrowed_client.get("/api/v1/me/messages", headers=alice.auth)
    detail = api_error(answer, 403, "purpose_not_allowed")
    assert detail == "the policy does not let the purpose support use communications data"
    assert subject not in answer.text and body not in answer.text
    with runtime.transaction() as session:
        [entry] = refusals(session, alice.subject_id)
        check = runtime.audit.verify(session)
    assert (entry.purpose, entry.categories, json.loads(entry.detail)) == (
        "support",
        "communications",
        {"table": "messages"},
    )
    assert check.ok, check.problem
    assert client.get("/api/v1/me/messages", headers=alice.auth).status_code == 200
