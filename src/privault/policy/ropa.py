"""The record of processing activities (GDPR Art. 30(1)), from the policy file and the
live data map.

Art. 30(1) asks for the controller and its contacts (a), the purposes (b), the kinds of
data subjects and the categories of personal data (c), the recipients (d), transfers to
third countries with their safeguards (e), the time limits for erasure (f) and the
security measures (g). All of it is read from the policy; beside it the data map says,
per category, which tables hold it and how many people and records they hold now,
counted by the database. The record is built once as sections of tables, then rendered
as Markdown or HTML from the same sections, so both say the same thing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

import privault.models  # noqa: F401  (every table in the data map before it is counted)
from privault.policy.model import Category, Policy
from privault.policy.wording import (
    EEA,
    LEGAL_BASES,
    NONE,
    RECIPIENT_KINDS,
    Format,
    Table,
    anchor_words,
    country_name,
    label,
    period_words,
    templates,
    transfers,
)
from privault.rights.models import RetainedRecord
from privault.vault.datamap import TableCount, census


@dataclass(frozen=True)
class Section:
    anchor: str
    title: str
    paragraphs: tuple[str, ...]
    tables: tuple[Table, ...]


@dataclass(frozen=True)
class Holding:
    """What the database holds of one category now."""

    category: str
    tables: tuple[TableCount, ...]
    #: Distinct people across the category's tables.
    subjects: int
    records: int
    #: Kept after erasure because the law requires it (under the retention key).
    retained_records: int
    retained_subjects: int


@dataclass(frozen=True)
class Record:
    title: str
    made_at: datetime
    sections: tuple[Section, ...]
    holdings: dict[str, Holding]


def build_record(session: Session, policy: Policy, policy_version: int, now: datetime) -> Record:
    """The record of processing activities of ``policy`` (stored as ``policy_version``),
    with what the database holds per category at ``now``. Reads counts only, never a
    person's data, so it needs no purpose and writes nothing to the access log."""
    holdings = _holdings(session, policy)
    sections = (
        _controller(policy, policy_version, now),
        _purposes(policy),
        _subjects(policy),
        _categories(policy),
        _recipients(policy),
        _locations(policy),
        _transfers(policy),
        _retention(policy),
        _security(policy),
        _data_map(policy, holdings),
    )
    title = f"Record of processing activities: {policy.meta.name}"
    return Record(title, now, sections, holdings)


def render(record: Record, fmt: Format) -> str:
    """The record as a Markdown or a standalone HTML document."""
    template = templates.get_template("ropa.md" if fmt is Format.MARKDOWN else "ropa.html")
    return template.render(record=record)


# --- Counting ------------------------------------------------------------------------------


def _holdings(session: Session, policy: Policy) -> dict[str, Holding]:
    counted = census(session)
    retained = {
        row.category: (int(row.records), int(row.subjects))
        for row in session.execute(
            select(
                RetainedRecord.category,
                func.count().label("records"),
                func.count(distinct(RetainedRecord.subject_ref)).label("subjects"),
            ).group_by(RetainedRecord.category)
        )
    }
    holdings = {}
    for cid in policy.categories:
        held = counted.get(cid)
        kept = retained.get(cid, (0, 0))
        holdings[cid] = Holding(
            cid,
            held.tables if held else (),
            held.subjects if held else 0,
            held.records if held else 0,
            *kept,
        )
    return holdings


# --- The sections --------------------------------------------------------------------------


def _controller(policy: Policy, version: int, now: datetime) -> Section:
    meta = policy.meta
    rows = (
        ("Controller", meta.controller),
        ("Service", f"{meta.name}, {meta.website}"),
        ("Contact for personal data", meta.privacy_address),
        ("Data protection officer", meta.dpo or "none named in the policy file"),
        (
            "Representative in the EU (Art. 27)",
            meta.representative or "none named in the policy file",
        ),
        ("Supervisory authority", meta.supervisory_authority),
        (
            "Policy",
            f"version {meta.version}, in force since {meta.effective_date.isoformat()} "
            f"(stored as policy version {version})",
        ),
        ("Record made", _when(now)),
    )
    intro = (
        f"The record of the processing activities of {meta.name} as controller (GDPR Art. "
        "30(1)), made from its policy file, which the software enforces, and from what the "
        "database holds when the record is made.",
    )
    table = Table("Controller and contacts (Art. 30(1)(a))", ("Item", "Details"), rows)
    return Section("controller", "Controller", intro, (table,))


def _purposes(policy: Policy) -> Section:
    rows = []
    for pid, purpose in policy.purposes.items():
        notes = [f"consent: {purpose.consent}"] if purpose.consent else []
        if purpose.direct_marketing:
            notes.append("direct marketing; the person may object at any time")
        for channel in purpose.channels:
            mode = policy.marketing.channels[channel].replace("_", " ")
            notes.append(f"by {channel}: {mode}")
        rows.append(
            (
                _named(purpose.title, pid),
                purpose.description,
                label(LEGAL_BASES, purpose.legal_basis),
                _list(purpose.categories),
                "; ".join(notes) or NONE,
            )
        )
    table = Table(
        "Purposes, legal bases and the categories each may use (Art. 30(1)(b))",
        ("Purpose", "Description", "Legal basis", "Categories of personal data", "Conditions"),
        tuple(rows),
    )
    intro = ("Each purpose may use only the categories listed for it (P3.x).",)
    return Section("purposes", "Purposes of the processing", intro, (table,))


def _subjects(policy: Policy) -> Section:
    rows = tuple(
        (_named(group.title, sid), group.description, _list(group.categories))
        for sid, group in policy.subjects.items()
    )
    table = Table(
        "Categories of data subjects (Art. 30(1)(c))",
        ("Data subjects", "Who they are", "Categories of personal data"),
        rows,
    )
    return Section("subjects", "Data subjects", (), (table,))


def _categories(policy: Policy) -> Section:
    rows = tuple(
        (
            _named(category.title, cid),
            category.description,
            _list(category.fields),
            str(category.sensitivity),
            str(category.source),
            _list(policy.purposes_for(cid)),
        )
        for cid, category in policy.categories.items()
    )
    table = Table(
        "Categories of personal data (Art. 30(1)(c))",
        ("Category", "Description", "Fields", "Sensitivity", "Source", "Purposes"),
        rows,
    )
    return Section("categories", "Categories of personal data", (), (table,))


def _recipients(policy: Policy) -> Section:
    rows = tuple(
        (
            _named(recipient.name, recipient.id),
            label(RECIPIENT_KINDS, recipient.kind),
            country_name(recipient.country),
            _list(recipient.purposes),
            recipient.description,
        )
        for recipient in policy.recipients
    )
    table = Table(
        "Categories of recipients (Art. 30(1)(d))",
        ("Recipient", "Kind", "Country", "Purposes", "Description"),
        rows,
    )
    intro = (
        "The policy allows no other recipient (P4.6), and it has no kind of recipient for a "
        "buyer: personal data is never sold (P0.1). Staff see personal data only through "
        "roles bound to purposes (P4.1).",
    )
    return Section("recipients", "Recipients", intro, (table,))


def _locations(policy: Policy) -> Section:
    rows = tuple(
        (
            _named(location.name, location.id),
            str(location.role),
            country_name(location.country),
            location.description or NONE,
        )
        for location in policy.locations
    )
    table = Table(
        "Where personal data is stored and processed",
        ("Location", "Role", "Country", "Description"),
        rows,
    )
    return Section("locations", "Locations", (), (table,))


def _transfers(policy: Policy) -> Section:
    rows = tuple(
        (_named(t.name, t.entry_id), country_name(t.country), t.safeguard)
        for t in transfers(policy)
    )
    tables = []
    if rows:
        tables.append(
            Table(
                "Transfers to third countries (Art. 30(1)(e))",
                ("Recipient or location", "Country", "Safeguard"),
                rows,
            )
        )
        intro = "Recipients and locations outside the EEA, each with its safeguard."
    else:
        intro = "None: every recipient and every location is in the EEA."
    adequacy = tuple(
        (
            country_name(country),
            "EEA" if country in EEA else "EU adequacy decision",
            policy.transfers.conditions.get(country, NONE),
        )
        for country in policy.transfers.adequacy
    )
    tables.append(
        Table(
            "Countries personal data may go to (P5.2), as checked against the Commission's "
            f"decisions on {policy.transfers.checked:%d %B %Y}; any other is refused",
            ("Country", "Grounds", "Condition"),
            adequacy,
        )
    )
    return Section("transfers", "Transfers to third countries", (intro,), tuple(tables))


def _retention(policy: Policy) -> Section:
    rows = tuple(
        (
            _named(category.title, cid),
            period_words(category.retention),
            anchor_words(category.retention),
            category.retention.reason,
            category.retention.obligation or NONE,
        )
        for cid, category in policy.categories.items()
    )
    table = Table(
        "Time limits for erasure, per category (Art. 30(1)(f))",
        ("Category", "Kept for", "Counted from", "Why", "Legal obligation to keep it"),
        rows,
    )
    intro = (
        "A legal hold (the law, legal proceedings, or to establish, exercise or defend legal "
        "rights) keeps what it covers past these limits until it ends.",
    )
    return Section("retention", "Time limits for erasure", intro, (table,))


def _security(policy: Policy) -> Section:
    rows = tuple(
        (
            _named(measure.title, mid),
            str(measure.kind),
            measure.description,
            _list(measure.promises),
        )
        for mid, measure in policy.security.items()
    )
    table = Table(
        "Technical and organisational security measures (Art. 30(1)(g), Art. 32(1))",
        ("Measure", "Kind", "Description", "Promises"),
        rows,
    )
    return Section("security", "Security measures", (), (table,))


def _data_map(policy: Policy, holdings: dict[str, Holding]) -> Section:
    rows = []
    for cid, category in policy.categories.items():
        held = holdings[cid]
        tables = ", ".join(f"{t.table} ({t.records})" for t in held.tables)
        rows.append(
            (
                _named(category.title, cid),
                tables or "no table",
                str(held.subjects),
                str(held.records),
                _retained(category, held),
            )
        )
    table = Table(
        "Personal data held now, per category",
        ("Category", "Tables (records)", "People", "Records", "Kept after erasure"),
        tuple(rows),
    )
    intro = (
        "Counted in the database when the record was made. People are the distinct persons "
        "the records belong to (a visit by someone not logged in is a record of no one); "
        "records are rows. What erasure kept because the law requires it is sealed under the "
        "retention key and restricted to that obligation.",
    )
    return Section("data-map", "Data map", intro, (table,))


# --- Wording -------------------------------------------------------------------------------


def _named(title: str, entry_id: str) -> str:
    return f"{title} ({entry_id})"


def _list(items: Iterable[str]) -> str:
    return ", ".join(items) or NONE


def _when(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _retained(category: Category, held: Holding) -> str:
    if category.retention.obligation is None and not held.retained_records:
        return "nothing: no legal obligation"
    records = "record" if held.retained_records == 1 else "records"
    people = "person" if held.retained_subjects == 1 else "people"
    return f"{held.retained_records} {records} of {held.retained_subjects} {people}"
