"""A person's data as an access export (Art. 15) or a portable one (Art. 20).

Built by walking the data map: every table registered with ``@personal_data`` is read
for the person, its sealed columns opened, and its rows grouped by category; beside
each category the policy's purposes, legal bases, retention, source, recipients and
countries. No table is known here by name. Delivered as a zip of ``data.json`` (the
schema of docs/export-schema.md), one CSV per category and a readable ``index.html``.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from html import escape
from operator import itemgetter
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from sqlalchemy import DateTime, Integer, String, Table, select
from sqlalchemy.orm import Session

from privault.clock import Clock, aware
from privault.db import Base
from privault.policy.model import Policy
from privault.retention.holds import holds_covering
from privault.rights.models import RightsRequest
from privault.vault import Field, Vault
from privault.vault.datamap import PersonalTable, field_name, tables

SCHEMA = "privault-export"
SCHEMA_VERSION = 1
#: Fixed so the same data makes the same zip (and its hash can prove what was sent).
ZIP_TIME = (2000, 1, 1, 0, 0, 0)

_templates = Environment(
    loader=PackageLoader("privault.rights", "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
)


class ExportKind(StrEnum):
    ACCESS = "access"
    PORTABILITY = "portability"


RIGHTS = {
    "access": "See the personal data we hold about you and how we use it (Art. 15).",
    "rectification": "Have inaccurate data corrected and incomplete data completed (Art. 16).",
    "erasure": "Have your data erased (Art. 17).",
    "restriction": "Have the use of your data restricted (Art. 18).",
    "portability": "Receive the data you gave us in a machine-readable form (Art. 20).",
    "objection": "Object to uses based on our legitimate interests or for marketing (Art. 21).",
    "complaint": "Complain to a supervisory authority (Art. 77).",
}


@dataclass(frozen=True)
class Export:
    kind: ExportKind
    document: dict[str, Any]
    csvs: dict[str, str]
    html: str

    def zip_bytes(self) -> bytes:
        """The export as a zip: data.json, <category>.csv for each category, index.html."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:

            def add(name: str, text: str) -> None:
                info = zipfile.ZipInfo(name, ZIP_TIME)
                archive.writestr(
                    info, text.encode(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=1
                )

            add("data.json", json.dumps(self.document, ensure_ascii=False) + "\n")
            for category, text in self.csvs.items():
                add(f"{category}.csv", text)
            add("index.html", self.html)
        return buffer.getvalue()


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return aware(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes | memoryview):
        raise TypeError("a binary column is listed as exported: export only readable columns")
    return value


def _iso(value: Any) -> str:
    """A stored time in ISO 8601 with its UTC offset. SQLite keeps UTC as text
    (``2024-05-01 09:30:00.000000``); PostgreSQL gives a datetime."""
    if isinstance(value, str):
        # As datetime.isoformat() writes it, the same on both backends.
        return value.replace(" ", "T", 1).removesuffix(".000000") + "+00:00"
    return str(_plain(value))


class Exporter:
    """Reads one person's data across the data map and renders it."""

    def __init__(self, session: Session, vault: Vault, policy: Policy, clock: Clock) -> None:
        self.session = session
        self.vault = vault
        self.policy = policy
        self.clock = clock

    def records(self, subject_id: str) -> dict[str, list[dict[str, Any]]]:
        """Category -> the person's tables in it, each ``{"table", "fields", "rows"}`` with
        sealed values opened. Raises ``SubjectKeyMissing`` for an erased person."""
        found: dict[str, list[dict[str, Any]]] = {}
        for entry in tables():
            if entry.in_export:
                fields, _, rows = self.table_rows(entry, subject_id)
                if rows:
                    block = {"table": entry.table, "fields": fields, "rows": rows}
                    found.setdefault(entry.category, []).append(block)
        return found

    def rows(self, entry: PersonalTable, subject_id: str) -> list[dict[str, Any]]:
        """The person's rows of one data-map table as ``{"table", "row", "values"}``;
        ``row`` names the row as sealing does."""
        fields, row_ids, rows = self.table_rows(entry, subject_id)
        return [
            {"table": entry.table, "row": row_id, "values": dict(zip(fields, row, strict=True))}
            for row_id, row in zip(row_ids, rows, strict=True)
        ]

    def table_rows(
        self, entry: PersonalTable, subject_id: str
    ) -> tuple[list[str], list[str], list[list[Any]]]:
        """The person's rows of one data-map table: the exported field names, each row's
        id (as sealing names it), and the rows' values in field order, sealed ones opened.

        One plain indexed query through the driver, and lists rather than a mapping per
        row: an export of thousands of call records should cost little more than reading
        and opening them."""
        table: Table = Base.metadata.tables[entry.table]
        names = list(dict.fromkeys([*entry.key, *entry.exported]))
        at = {name: i for i, name in enumerate(names)}
        key = [at[name] for name in entry.key]
        marker = "?" if self.session.get_bind().dialect.paramstyle == "qmark" else "%s"
        sql = (
            f"SELECT {', '.join(names)} FROM {entry.table} "  # noqa: S608 - names from the model
            f"WHERE {entry.subject_column} = {marker} ORDER BY {names[0]}"
        )
        cursor = self.session.connection().connection.cursor()
        try:
            cursor.execute(sql, (subject_id,))
            raw = cursor.fetchall()
        finally:
            cursor.close()
        fields = [field_name(n) for n in entry.exported]
        where = [at[n] for n in entry.exported]
        # Exported positions the driver does not give as they are exported: times (SQLite
        # keeps text), other non-text, non-number types, and sealed values (opened below).
        convert = [
            (pos, _iso if isinstance(table.c[n].type, DateTime) else _plain)
            for pos, n in enumerate(entry.exported)
            if n not in entry.encrypted and not isinstance(table.c[n].type, String | Integer)
        ]
        sealed = [(pos, n) for pos, n in enumerate(entry.exported) if n in entry.encrypted]
        row_ids = [
            str(r[key[0]]) if len(key) == 1 else "/".join(str(r[i]) for i in key) for r in raw
        ]
        pick = itemgetter(*where)
        rows = [list(pick(r)) for r in raw] if len(where) > 1 else [[r[where[0]]] for r in raw]
        for pos, read in convert:
            if read is _iso:
                for row in rows:
                    value = row[pos]
                    if type(value) is str:  # SQLite: UTC as text, the common case
                        row[pos] = value.replace(" ", "T", 1).removesuffix(".000000") + "+00:00"
                    elif value is not None:
                        row[pos] = _iso(value)
                continue
            for row in rows:
                if row[pos] is not None:
                    row[pos] = read(row[pos])
        for pos, column in sealed:
            places = [
                (number, Field(entry.table, column, row_ids[number]), row[pos])
                for number, row in enumerate(rows)
                if row[pos] is not None
            ]
            opened = self.vault.decrypt_many(
                self.session, subject_id, [(place, blob) for _, place, blob in places]
            )
            as_json = column in entry.json
            for (number, _, _), text in zip(places, opened, strict=True):
                rows[number][pos] = json.loads(text) if as_json else text
        return fields, row_ids, rows

    def build(self, subject_id: str, kind: ExportKind = ExportKind.ACCESS) -> Export:
        """The person's export. Portability keeps the categories whose source the policy
        says the person provided or the service generated; access keeps every one."""
        records = self.records(subject_id)
        categories = [
            self._category(category_id, records.get(category_id, []))
            for category_id, category in self.policy.categories.items()
            if category_id in records and (kind is ExportKind.ACCESS or category.source.portable)
        ]
        meta = self.policy.meta
        document: dict[str, Any] = {
            "schema": SCHEMA,
            "version": SCHEMA_VERSION,
            "kind": str(kind),
            "generated_at": self.clock.now().isoformat(),
            "controller": {
                "name": meta.name,
                "controller": meta.controller,
                "privacy_address": str(meta.privacy_address),
                "website": str(meta.website),
            },
            "policy_version": meta.version,
            "subject_id": subject_id,
            "categories": categories,
            "requests": self._requests(subject_id),
            "holds": [
                {
                    "category": h.category,
                    "kind": h.kind,
                    "reason": h.reason,
                    "until": h.ends_at.isoformat() if h.ends_at else None,
                    "text": h.describe(),
                }
                for h in holds_covering(self.session, self.clock, subject_id)
                if not h.confidential
            ],
            "rights": RIGHTS,
            "complaint": meta.supervisory_authority,
            "automated_decisions": self.policy.rights.automated_decisions,
        }
        texts = {c["id"]: [_text(b) for b in c["records"]] for c in categories}
        csvs = {c["id"]: _csv(c["records"], texts[c["id"]]) for c in categories}
        html = _templates.get_template("export.html").render(
            doc=document,
            kind=str(kind),
            tables={
                c["id"]: Markup("\n").join(
                    _html_table(b, t) for b, t in zip(c["records"], texts[c["id"]], strict=True)
                )
                for c in categories
            },
            counts={c["id"]: sum(len(b["rows"]) for b in c["records"]) for c in categories},
        )
        return Export(kind, document, csvs, html)

    def _category(self, category_id: str, records: list[dict[str, Any]]) -> dict[str, Any]:
        category = self.policy.category(category_id)
        purposes = self.policy.purposes_for(category_id)
        recipients = [r for r in self.policy.recipients if set(r.purposes) & set(purposes)]
        countries = sorted(
            {loc.country for loc in self.policy.locations} | {r.country for r in recipients}
        )
        retention = category.retention
        return {
            "id": category_id,
            "title": category.title,
            "description": category.description,
            "source": str(category.source),
            "purposes": [
                {
                    "id": pid,
                    "title": self.policy.purpose(pid).title,
                    "legal_basis": str(self.policy.purpose(pid).legal_basis),
                }
                for pid in purposes
            ],
            "retention": {
                "period": str(retention.period),
                "from": str(retention.from_) if retention.from_ else None,
                "reason": retention.reason,
                "obligation": retention.obligation,
            },
            "recipients": [
                {"name": r.name, "kind": str(r.kind), "country": r.country} for r in recipients
            ],
            "countries": countries,
            "records": records,
        }

    def _requests(self, subject_id: str) -> list[dict[str, Any]]:
        rows = self.session.scalars(
            select(RightsRequest)
            .where(RightsRequest.subject_id == subject_id)
            .order_by(RightsRequest.received_at)
        )
        return [
            {
                "id": r.id,
                "kind": r.kind,
                "state": r.state,
                "received_at": _plain(r.received_at),
                "due_at": _plain(r.due_at) if r.due_at else None,
            }
            for r in rows
        ]


def _text(block: dict[str, Any]) -> list[list[str]]:
    """A table's rows as text: lists and objects as JSON, no value as empty text."""
    return [[v if type(v) is str else _cell(v) for v in row] for row in block["rows"]]


def _csv(blocks: list[dict[str, Any]], texts: list[list[list[str]]]) -> str:
    """One category's CSV (RFC 4180, a header row): a ``table`` column, then every field
    of its tables."""
    names = list(dict.fromkeys(name for block in blocks for name in block["fields"]))
    at = {name: i for i, name in enumerate(names)}
    lines = [_csv_line(["table", *names])]
    for block, text in zip(blocks, texts, strict=True):
        if block["fields"] == names:
            lines += (_csv_line([block["table"], *row]) for row in text)
            continue
        places = [at[name] + 1 for name in block["fields"]]
        for row in text:
            line = [block["table"]] + [""] * len(names)
            for place, cell in zip(places, row, strict=True):
                line[place] = cell
            lines.append(_csv_line(line))
    return "".join(lines)


def _csv_line(cells: list[str]) -> str:
    """Cells quoted only when they hold a comma, a quote, CR or LF (RFC 4180); written
    here because ``csv.writer`` is the slowest part of a large export."""
    return (
        ",".join(
            f'"{c.replace(chr(34), chr(34) * 2)}"'
            if ("," in c or '"' in c or "\n" in c or "\r" in c)
            else c
            for c in cells
        )
        + "\n"
    )


_SPECIAL = ("&", "<", ">", '"', "'")


def _html_table(block: dict[str, Any], text: list[list[str]]) -> Markup:
    """One table's records as HTML, written here rather than in the template (which would
    take most of an export's time for thousands of rows). Each column is escaped only
    when some cell of it needs it: most hold dates, numbers and codes."""
    if text:
        columns = ["".join(column) for column in zip(*text, strict=True)]
        dirty = [i for i, joined in enumerate(columns) if any(c in joined for c in _SPECIAL)]
        if dirty:
            text = [list(row) for row in text]
            for row in text:
                for i in dirty:
                    row[i] = escape(row[i])
    head = "".join(f'<th scope="col">{escape(n)}</th>' for n in block["fields"])
    body = "".join("<tr><td>" + "</td><td>".join(row) + "</td></tr>\n" for row in text)
    html = (
        f'<h4>{escape(block["table"])}</h4>\n<div class="wrap"><table>\n'
        f"<thead><tr>{head}</tr></thead>\n<tbody>\n{body}"
    )
    return Markup(html + "</tbody>\n</table></div>")  # noqa: S704 - every value was escaped


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if type(value) is str:
        return value
    if type(value) is int:
        return str(value)
    return json.dumps(value, ensure_ascii=False)
