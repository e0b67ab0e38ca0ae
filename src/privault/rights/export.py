"""A person's data as an access export (Art. 15) or a portable one (Art. 20).

Built by walking the data map: every table registered with ``@personal_data`` is read
for the person, its sealed columns opened, and its rows grouped by category; beside
each category the policy's purposes, legal bases, retention, source, recipients and
countries. No table is known here by name. Delivered as a zip of ``data.json`` (the
schema of docs/export-schema.md), one CSV per category and a readable ``index.html``.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from privault.clock import Clock, aware
from privault.db import Base
from privault.policy.model import Policy
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
                archive.writestr(zipfile.ZipInfo(name, ZIP_TIME), text.encode())

            add("data.json", json.dumps(self.document, indent=2, ensure_ascii=False) + "\n")
            for category, text in self.csvs.items():
                add(f"{category}.csv", text)
            add("index.html", self.html)
        return buffer.getvalue()

    @property
    def values(self) -> int:
        return sum(len(r["values"]) for c in self.document["categories"] for r in c["records"])


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return aware(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes | memoryview):
        raise TypeError("a binary column is listed as exported: export only readable columns")
    return value


class Exporter:
    """Reads one person's data across the data map and renders it."""

    def __init__(self, session: Session, vault: Vault, policy: Policy, clock: Clock) -> None:
        self.session = session
        self.vault = vault
        self.policy = policy
        self.clock = clock

    def records(self, subject_id: str) -> dict[str, list[dict[str, Any]]]:
        """Category -> the person's records in it, each ``{"table", "values"}``, with sealed
        values opened. Raises ``SubjectKeyMissing`` for an erased person."""
        found: dict[str, list[dict[str, Any]]] = {}
        for entry in tables():
            if entry.in_export:
                for row in self.rows(entry, subject_id):
                    found.setdefault(entry.category, []).append(
                        {"table": row["table"], "values": row["values"]}
                    )
        return found

    def rows(self, entry: PersonalTable, subject_id: str) -> list[dict[str, Any]]:
        """The person's rows of one data-map table: ``{"table", "row", "values"}`` with the
        exported columns, sealed ones opened; ``row`` names the row as sealing does."""
        table: Table = Base.metadata.tables[entry.table]
        columns = [table.c[name] for name in dict.fromkeys([*entry.key, *entry.exported])]
        opened_columns = [c for c in entry.exported if c in entry.encrypted]
        query = select(*columns).where(table.c[entry.subject_column] == subject_id)
        rows = [row._mapping for row in self.session.execute(query.order_by(*columns[:1]))]
        sealed = [
            (row_number, column, Field(entry.table, column, entry.row_id(row)), row[column])
            for row_number, row in enumerate(rows)
            for column in opened_columns
            if row[column] is not None
        ]
        opened = self.vault.decrypt_many(
            self.session, subject_id, [(place, blob) for _, _, place, blob in sealed]
        )
        out: list[dict[str, Any]] = [
            {
                "table": entry.table,
                "row": entry.row_id(row),
                "values": {
                    field_name(name): None if name in entry.encrypted else _plain(row[name])
                    for name in entry.exported
                },
            }
            for row in rows
        ]
        for (row_number, column, _, _), text in zip(sealed, opened, strict=True):
            value = json.loads(text) if column in entry.json else text
            out[row_number]["values"][field_name(column)] = value
        return out

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
            "rights": RIGHTS,
            "complaint": meta.supervisory_authority,
            "automated_decisions": self.policy.rights.automated_decisions,
        }
        csvs = {c["id"]: _csv(c["records"]) for c in categories}
        html = _templates.get_template("export.html").render(
            doc=document,
            kind=str(kind),
            columns={c["id"]: _names(c["records"]) for c in categories},
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
            "records": sorted(records, key=lambda r: (r["table"], json.dumps(r["values"]))),
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


def _names(records: list[dict[str, Any]]) -> list[str]:
    """Every field name seen in ``records``, in first-seen order."""
    return list(dict.fromkeys(name for r in records for name in r["values"]))


def _csv(records: list[dict[str, Any]]) -> str:
    """One category's records as CSV: a ``table`` column, then every field seen."""
    names = _names(records)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["table", *names])
    for record in records:
        values = record["values"]
        writer.writerow([record["table"], *(_cell(values.get(name)) for name in names)])
    return out.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)
