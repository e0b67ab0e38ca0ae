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

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final, TypeVar

import pycountry
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

import privault.models  # noqa: F401  (every table in the data map before it is counted)
from privault.policy.model import (
    Category,
    LegalBasis,
    Policy,
    RecipientKind,
    Retention,
    RetentionAnchor,
)
from privault.policy.types import Duration
from privault.rights.models import RetainedRecord
from privault.vault.datamap import TableCount, census

#: The European Economic Area: the 27 EU member states, Iceland, Liechtenstein and Norway.
#: Data going elsewhere is a transfer to a third country (GDPR Chapter V), even where an
#: adequacy decision allows it.
EEA: Final = frozenset(
    {
        *("AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE"),
        *("IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE"),
        *("IS", "LI", "NO"),
    }
)

LEGAL_BASES: Final = {
    LegalBasis.CONSENT: "Consent (GDPR Art. 6(1)(a))",
    LegalBasis.CONTRACT: "Contract (GDPR Art. 6(1)(b))",
    LegalBasis.LEGAL_OBLIGATION: "Legal obligation (GDPR Art. 6(1)(c))",
    LegalBasis.VITAL_INTERESTS: "Vital interests (GDPR Art. 6(1)(d))",
    LegalBasis.PUBLIC_TASK: "Public task (GDPR Art. 6(1)(e))",
    LegalBasis.LEGITIMATE_INTERESTS: "Legitimate interests (GDPR Art. 6(1)(f))",
}
RECIPIENT_KINDS: Final = {
    RecipientKind.GROUP: "Group company",
    RecipientKind.PROCESSOR: "Processor (GDPR Art. 28)",
    RecipientKind.AUTHORITY: "Court or authority",
    RecipientKind.STATISTICS: "Recipient of anonymous statistics",
    RecipientKind.MARKETING: "Marketing recipient (with the person's express consent)",
}
ANCHORS: Final = {
    RetentionAnchor.COLLECTION: "collection",
    RetentionAnchor.ACCOUNT_CLOSURE: "the closure of the account",
    RetentionAnchor.CONTRACT_END: "the end of the contract",
    RetentionAnchor.LAST_ACTIVITY: "the person's last activity",
}
NONE: Final = "none"
_E = TypeVar("_E", bound=StrEnum)


class Format(StrEnum):
    MARKDOWN = "md"
    HTML = "html"


@dataclass(frozen=True)
class Table:
    """A table of the record; the first cell of each row heads that row."""

    caption: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


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
    template = _templates.get_template("ropa.md" if fmt is Format.MARKDOWN else "ropa.html")
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
                _label(LEGAL_BASES, purpose.legal_basis),
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
            _label(RECIPIENT_KINDS, recipient.kind),
            _country(recipient.country),
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
            _country(location.country),
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
    outside = [
        (_named(r.name, r.id), r.country, r.kind is RecipientKind.STATISTICS)
        for r in policy.recipients
        if r.country not in EEA
    ] + [
        (_named(loc.name, loc.id), loc.country, False)
        for loc in policy.locations
        if loc.country not in EEA
    ]
    rows = tuple(
        (name, _country(country), _safeguard(policy, country, anonymous))
        for name, country, anonymous in outside
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
            _country(country),
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


def _safeguard(policy: Policy, country: str, anonymous: bool) -> str:
    if anonymous:
        return "none needed: anonymous statistics are not personal data"
    condition = policy.transfers.conditions.get(country)
    return "EU adequacy decision (GDPR Art. 45)" + (f"; {condition}" if condition else "")


def _retention(policy: Policy) -> Section:
    rows = tuple(
        (
            _named(category.title, cid),
            _period(category.retention),
            _anchor(category.retention),
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


def _label(labels: Mapping[_E, str], value: _E) -> str:
    """The wording for an enum value; a value added to the model later reads as itself."""
    return labels.get(value) or str(value).replace("_", " ")


def _named(title: str, entry_id: str) -> str:
    return f"{title} ({entry_id})"


def _list(items: Iterable[str]) -> str:
    return ", ".join(items) or NONE


def _when(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _country(code: str) -> str:
    country = pycountry.countries.get(alpha_2=code)
    name = getattr(country, "common_name", None) or getattr(country, "name", code)
    return f"{name} ({code})"


def _period(retention: Retention) -> str:
    period = retention.period
    if not isinstance(period, Duration):
        return "while the account exists; erased when it closes"
    return f"{_duration(period)} ({period})"


def _anchor(retention: Retention) -> str:
    return _label(ANCHORS, retention.from_) if retention.from_ is not None else "not applicable"


def _duration(period: Duration) -> str:
    hours, rest = divmod(period.seconds, 3600)
    parts = [
        (period.years, "year"),
        (period.months, "month"),
        (period.days, "day"),
        (hours, "hour"),
        (rest // 60, "minute"),
        (rest % 60, "second"),
    ]
    return ", ".join(f"{n} {unit}{'s' if n != 1 else ''}" for n, unit in parts if n)


def _retained(category: Category, held: Holding) -> str:
    if category.retention.obligation is None and not held.retained_records:
        return "nothing: no legal obligation"
    records = "record" if held.retained_records == 1 else "records"
    people = "person" if held.retained_subjects == 1 else "people"
    return f"{held.retained_records} {records} of {held.retained_subjects} {people}"


def _markdown_cell(text: str) -> str:
    """Text safe in a Markdown table cell or paragraph: pipes, backslashes and angle
    brackets escaped, lines joined."""
    for char in ("\\", "|", "<", "*", "`"):
        text = text.replace(char, "\\" + char)
    return " ".join(text.split())


_templates = Environment(
    loader=PackageLoader("privault.policy", "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_templates.filters["md"] = _markdown_cell
