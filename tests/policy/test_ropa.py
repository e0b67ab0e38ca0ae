"""The record of processing activities (GDPR Art. 30), `privault ropa`: everything the
policy file says about purposes, people, categories, recipients, places, transfers,
retention and security, and what the database holds per category, in Markdown and HTML."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from factories import KALLU, fill_person, kallu_data, policy_refusal, register, run_cli
from privault.config import Settings
from privault.policy import PolicyError, build_policy, load_policy
from privault.policy.ropa import Record, build_record, render
from privault.policy.wording import Format
from privault.runtime import Runtime, prepare
from privault.service.pbx import PbxTokenService

DATA_MAP_HEADERS = ("Category", "Tables (records)", "People", "Records", "Kept after erasure")
NO_SECURITY = (
    "security: required: the technical and organisational measures that protect the data "
    "(GDPR Art. 30(1)(g), Art. 32)"
)


def record_of(runtime: Runtime) -> Record:
    with runtime.factory() as session:
        return build_record(session, runtime.policy, runtime.policy_version, runtime.clock.now())


# --- Reading the two renderings back ---------------------------------------------------------


#: A table as read: caption, header, rows.
Table = tuple[str, tuple[str, ...], list[tuple[str, ...]]]


@dataclass
class Doc:
    """What a rendering says: its headings, paragraphs and tables (caption, header, rows)."""

    headings: list[str] = field(default_factory=list)
    paragraphs: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)

    def text(self) -> str:
        cells = [c for t in self.tables for row in [(t[0], *t[1]), *t[2]] for c in row]
        return "\n".join([*self.headings, *self.paragraphs, *cells])


VOID = {"meta", "br", "hr", "img", "input", "link"}


class HtmlReader(HTMLParser):
    """Reads the HTML back, failing on any tag closed out of order or left open, and on a
    table header cell without a scope."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.doc = Doc()
        self.stack: list[str] = []
        self.text: list[str] | None = None
        self.row: list[str] = []
        self.header: tuple[str, ...] = ()
        self.rows: list[tuple[str, ...]] = []
        self.caption = ""
        self.scopes: list[tuple[str, str | None]] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag in VOID:
            return
        self.stack.append(tag)
        if tag in {"h1", "h2", "p", "caption", "th", "td"}:
            self.text = []
        if tag == "th":
            self.scopes.append(
                ("thead" if "thead" in self.stack else "tbody", dict(attrs).get("scope"))
            )
        if tag == "table":
            assert "table" not in self.stack[:-1], "nested table"
            self.header, self.rows, self.caption = (), [], ""
        if tag == "tr":
            self.row = []

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1:]}>"
        self.stack.pop()
        words = " ".join("".join(self.text or []).split())
        if tag in {"h1", "h2"}:
            self.doc.headings.append(words)
        elif tag == "p":
            self.doc.paragraphs.append(words)
        elif tag == "caption":
            self.caption = words
        elif tag in {"th", "td"}:
            self.row.append(words)
        elif tag == "tr":
            if "thead" in self.stack:
                self.header = tuple(self.row)
            else:
                self.rows.append(tuple(self.row))
        elif tag == "table":
            self.doc.tables.append((self.caption, self.header, self.rows))
        if tag in {"h1", "h2", "p", "caption", "th", "td"}:
            self.text = None

    def handle_data(self, data: str) -> None:
        if self.text is not None:
            self.text.append(data)


def read_html(html: str) -> tuple[Doc, HtmlReader]:
    reader = HtmlReader()
    reader.feed(html)
    reader.close()
    assert reader.stack == [], f"left open: {reader.stack}"
    return reader.doc, reader


_ESCAPED = re.compile(r"\\(.)")
_CELL_BREAK = re.compile(r"(?<!\\) \| ")


def _unescape(text: str) -> str:
    return _ESCAPED.sub(r"\1", text)


def read_markdown(markdown: str) -> Doc:
    doc = Doc()
    caption = ""
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            doc.headings.append(_unescape(line.lstrip("#").strip()))
        elif line.startswith("**") and line.endswith("**"):
            caption = _unescape(line[2:-2])
        elif line.startswith("| "):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                if not set(lines[i]) <= {"|", " ", "-"}:
                    cells = _CELL_BREAK.split(lines[i][2:-2])
                    rows.append(tuple(_unescape(cell) for cell in cells))
                i += 1
            doc.tables.append((caption, rows[0], rows[1:]))
            continue
        elif line.strip():
            doc.paragraphs.append(_unescape(line))
        i += 1
    return doc


@pytest.fixture
def renderings(runtime: Runtime) -> tuple[Doc, Doc]:
    record = record_of(runtime)
    return read_markdown(render(record, Format.MARKDOWN)), read_html(render(record, Format.HTML))[0]


# --- What the record says --------------------------------------------------------------------


def test_p6_2_every_category_purpose_recipient_location_and_retention_is_in_the_record(
    runtime: Runtime, renderings: tuple[Doc, Doc]
) -> None:
    policy = runtime.policy
    expected = [policy.meta.controller, policy.meta.privacy_address]
    for cid, category in policy.categories.items():
        retention = category.retention
        expected += [f"{category.title} ({cid})", category.description, retention.reason]
        expected += [str(retention.period)] if retention.from_ else []
        expected += [retention.obligation] if retention.obligation else []
    for pid, purpose in policy.purposes.items():
        expected += [f"{purpose.title} ({pid})", purpose.description]
    for recipient in policy.recipients:
        expected += [f"{recipient.name} ({recipient.id})", recipient.description]
    for location in policy.locations:
        expected += [f"{location.name} ({location.id})"]
    for sid, subjects in policy.subjects.items():
        expected += [f"{subjects.title} ({sid})", subjects.description]
    for mid, measure in policy.security.items():
        expected += [f"{measure.title} ({mid})", measure.description]
    expected += [f"({country})" for country in policy.transfers.adequacy]
    expected += list(policy.transfers.conditions.values())
    for doc in renderings:
        text = doc.text()
        missing = [item for item in expected if item not in text]
        assert not missing, missing


def test_each_purpose_row_names_its_legal_basis_and_categories(
    runtime: Runtime, renderings: tuple[Doc, Doc]
) -> None:
    for doc in renderings:
        [(_, header, rows)] = [t for t in doc.tables if t[0].startswith("Purposes")]
        assert header[:4] == (
            "Purpose",
            "Description",
            "Legal basis",
            "Categories of personal data",
        )
        by_purpose = {row[0]: row for row in rows}
        newsletters = by_purpose["Newsletters (newsletters)"]
        assert newsletters[2] == "Consent (GDPR Art. 6(1)(a))"
        assert newsletters[3] == ", ".join(runtime.policy.purpose("newsletters").categories)
        billing = by_purpose["Billing (billing)"]
        assert billing[2] == "Contract (GDPR Art. 6(1)(b))"
        assert billing[3] == ", ".join(runtime.policy.purpose("billing").categories)
        assert "by post: opt out" in by_purpose["Marketing (marketing)"][4]


def test_p5_1_every_recipient_and_location_has_its_country_and_no_transfer_leaves_the_eea(
    runtime: Runtime, renderings: tuple[Doc, Doc]
) -> None:
    checked = f"{runtime.policy.transfers.checked:%d %B %Y}"
    for doc in renderings:
        assert any(
            t[0].startswith("Countries personal data") and checked in t[0] for t in doc.tables
        )
        recipients = next(t for t in doc.tables if t[0].startswith("Categories of recipients"))
        countries = {row[0]: row[2] for row in recipients[2]}
        assert countries["Payment service provider (payments)"] == "Ireland (IE)"
        assert "None: every recipient and every location is in the EEA." in doc.paragraphs


def test_markdown_and_html_say_the_same(renderings: tuple[Doc, Doc]) -> None:
    markdown, html = renderings
    assert markdown.headings == html.headings
    assert markdown.paragraphs == html.paragraphs
    assert markdown.tables == html.tables
    assert len(markdown.tables) >= 10


def test_markup_in_the_policy_is_shown_as_text_in_both(runtime: Runtime) -> None:
    data = kallu_data()
    odd = "Kallu <b>SAS</b> | *not bold* \\ `x` & co"
    data["meta"]["controller"] = odd
    policy = build_policy(data)
    with runtime.factory() as session:
        record = build_record(session, policy, 1, runtime.clock.now())
    markdown, html = render(record, Format.MARKDOWN), render(record, Format.HTML)
    assert "\\<b>SAS\\</b>" in markdown and "&lt;b&gt;SAS&lt;/b&gt;" in html
    for doc in (read_markdown(markdown), read_html(html)[0]):
        [(_, _, rows)] = [t for t in doc.tables if t[0].startswith("Controller")]
        assert ("Controller", odd) in rows


def test_the_html_is_well_formed_with_captions_and_scoped_headers(runtime: Runtime) -> None:
    html = render(record_of(runtime), Format.HTML)
    assert html.startswith('<!doctype html>\n<html lang="en">')
    doc, reader = read_html(html)
    assert reader.tags.count("style") == 1
    assert not {"script", "link", "img", "iframe"} & set(reader.tags), "nothing loaded from outside"
    assert reader.tags.count("table") == reader.tags.count("caption") == len(doc.tables)
    assert all(caption for caption, _, _ in doc.tables)
    assert reader.scopes and all(
        scope == ("col" if where == "thead" else "row") for where, scope in reader.scopes
    )
    headers = [header for _, header, _ in doc.tables]
    assert ("Category", "Kept for", "Counted from", "Why", "Legal obligation to keep it") in headers
    assert ("Measure", "Kind", "Description", "Promises") in headers
    assert DATA_MAP_HEADERS in headers
    assert all(len(row) == len(header) for _, header, rows in doc.tables for row in rows)


# --- Counting what the database holds --------------------------------------------------------


def data_map(record: Record) -> dict[str, tuple[str, ...]]:
    doc = read_markdown(render(record, Format.MARKDOWN))
    [(_, _, rows)] = [t for t in doc.tables if t[1] == DATA_MAP_HEADERS]
    return {row[0]: row for row in rows}


def tables_of(record: Record, category: str) -> dict[str, int]:
    return {t.table: t.records for t in record.holdings[category].tables}


def test_the_data_map_counts_people_and_records_per_category_in_the_database(
    at: Runtime, client_at: TestClient
) -> None:
    before = record_of(at)
    people = [register(at, name) for name in ("ann", "ben", "cid")]
    with at.transaction() as session:
        at.posts(session).create(people[0].subject_id, "Hello from a synthetic person")
    # A visitor who is not logged in accepts analytics and views a page: records of no one.
    choice = {"strictly_necessary": True, "analytics": True, "advertising": False}
    assert client_at.put("/api/v1/consent", json={"choices": choice}).status_code == 200
    seen = {"visit": secrets.token_urlsafe(16), "page": "/", "referrer": None}
    assert client_at.post("/api/v1/analytics/events", json=seen).status_code == 204
    after = record_of(at)

    def grew(category: str) -> tuple[int, int]:
        old, new = before.holdings[category], after.holdings[category]
        return new.subjects - old.subjects, new.records - old.records

    old_tables, new_tables = tables_of(before, "registration"), tables_of(after, "registration")
    assert new_tables["accounts"] - old_tables["accounts"] == 3
    assert new_tables["rooms"] - old_tables["rooms"] == 3
    # Three people in several tables each are three people; the records are every row.
    assert grew("registration") == (3, sum(new_tables.values()) - sum(old_tables.values()))
    assert grew("publications") == (1, 1)
    assert grew("visits") == (0, 1)
    assert grew("device") == (0, 2)  # the visit and the cookie choice
    assert grew("call_records") == (0, 0)
    for holding in after.holdings.values():
        assert holding.records == sum(t.records for t in holding.tables)

    row = data_map(after)["Registration (registration)"]
    assert f"accounts ({new_tables['accounts']})" in row[1]
    assert row[2:4] == (
        str(after.holdings["registration"].subjects),
        str(after.holdings["registration"].records),
    )
    other = data_map(after)["Anything else you send us (other)"]
    assert other[1:4] == ("other_items (0)", "0", "0")
    assert "2027-01-20 09:00 UTC" in render(after, Format.MARKDOWN)


def test_p0_4_after_an_erasure_the_record_counts_what_the_law_keeps(served: TestClient) -> None:
    runtime: Runtime = served.app.state.runtime  # type: ignore[attr-defined]
    with runtime.transaction() as session:
        pbx = {"Authorization": f"Bearer {PbxTokenService(session, runtime.clock).create('p')}"}
    leaving, staying = fill_person(served, pbx), fill_person(served, pbx)
    before = record_of(runtime)
    assert before.holdings["transactions"].subjects == 2
    assert before.holdings["registration"].subjects == 2
    assert data_map(before)["Purchases and payments (transactions)"][4] == "0 records of 0 people"

    assert served.delete("/api/v1/me", headers=leaving.auth).status_code == 202
    engine, mailer = runtime.rights_engine(), runtime.mailer()
    for _ in range(4):
        engine.run_once()
        mailer.deliver_pending()
    after = record_of(runtime)
    for category, holding in after.holdings.items():
        held = before.holdings[category]
        assert holding.subjects == (held.subjects - 1 if held.subjects else 0), category
    assert after.holdings["transactions"].retained_records == 1
    assert after.holdings["transactions"].retained_subjects == 1
    assert data_map(after)["Purchases and payments (transactions)"][4] == "1 record of 1 person"
    assert staying.subject_id not in render(after, Format.MARKDOWN)


# --- The command -----------------------------------------------------------------------------


def undated(tables: list[Table]) -> list[Table]:
    """The tables without their "Record made" row (one each run, to the minute)."""
    kept = [
        (title, header, [row for row in rows if row[0] != "Record made"])
        for title, header, rows in tables
    ]
    assert sum(len(rows) for _, _, rows in tables) == sum(len(r) for _, _, r in kept) + 1
    return kept


def test_privault_ropa_prints_markdown_and_writes_html_to_a_file(
    fresh_settings: Settings, tmp_path: Path
) -> None:
    prepare(fresh_settings).dispose()
    target = tmp_path / "ropa.html"
    printed = run_cli(fresh_settings, tmp_path, "ropa")
    written = run_cli(fresh_settings, tmp_path, "ropa", "--format", "html", "--output", str(target))
    nowhere = run_cli(fresh_settings, tmp_path, "ropa", "--output", str(tmp_path / "no" / "x.md"))
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.startswith("# Record of processing activities: Kallu\n")
    assert "| Purchases and payments (transactions) | purchases (0) | 0 | 0 |" in printed.stdout
    assert written.returncode == 0, written.stderr
    assert str(target) in written.stdout
    doc, _ = read_html(target.read_text(encoding="utf-8"))
    # The two runs may fall in different minutes: all but when each record was made agrees.
    assert undated(doc.tables) == undated(read_markdown(printed.stdout).tables[: len(doc.tables)])
    assert nowhere.returncode == 1
    assert nowhere.stderr.startswith("privault: cannot write ") and nowhere.stderr.count("\n") == 1


# --- The policy's new sections ---------------------------------------------------------------


def test_a_policy_without_security_measures_is_refused_naming_the_section() -> None:
    data = kallu_data()
    del data["security"]
    assert policy_refusal(data) == f"kallu.toml: {NO_SECURITY}"
    data["security"] = {}
    assert policy_refusal(data).startswith("kallu.toml: security: required:")


def test_a_policy_file_without_security_fails_to_load_naming_the_section(tmp_path: Path) -> None:
    text = KALLU.read_text(encoding="utf-8")
    start = text.index("[security.")
    broken = tmp_path / "broken.toml"
    broken.write_text(text[:start] + text[text.index("# ---", start) :], encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_policy(broken)
    assert caught.value.detail == f"{broken}: {NO_SECURITY}"


def test_a_security_measure_needs_a_kind_and_real_promise_ids() -> None:
    data = kallu_data()
    data["security"]["keyring"]["kind"] = "magic"
    assert policy_refusal(data) == (
        "kallu.toml: security.keyring.kind: 'magic' is not one of 'technical' or 'organisational'"
    )
    data = kallu_data()
    data["security"]["keyring"]["promises"] = ["P7.1", "P7.1"]
    assert policy_refusal(data) == "kallu.toml: security.keyring.promises: lists 'P7.1' twice"


def test_data_subjects_are_required_and_must_cover_every_category() -> None:
    data = kallu_data()
    del data["subjects"]
    assert policy_refusal(data).startswith("kallu.toml: subjects: required: the kinds of people")
    data = kallu_data()
    data["subjects"]["callers"]["categories"].append("horoscopes")
    assert (
        policy_refusal(data)
        == "kallu.toml: subjects.callers.categories: unknown category 'horoscopes'"
    )
    data = kallu_data()
    for group in data["subjects"].values():
        if "other" in group["categories"]:
            group["categories"].remove("other")
    assert policy_refusal(data) == (
        "kallu.toml: categories.other: no kind of data subject in [subjects] lists this category"
    )
