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
import struct
import zipfile
import zlib
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from html import escape
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from sqlalchemy import DateTime, Integer, String, Table, select
from sqlalchemy.orm import Session

from privault.clock import Clock, aware
from privault.db import Base
from privault.disclosure.service import DisclosureBasis, Received, recipients_of
from privault.policy.model import Policy
from privault.retention.holds import holds_covering
from privault.rights.models import RightsRequest
from privault.vault import Field, Vault
from privault.vault.datamap import PersonalTable, field_name, tables

#: Answering an access or portability request, and keeping what the law obliges us to keep
#: when erasing, are legal obligations: the purpose "legal", which may use every category.
PURPOSE = "legal"
SCHEMA = "privault-export"
SCHEMA_VERSION = 1
#: Fixed so the same data makes the same zip (and its hash can prove what was sent).

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


def _deflate(text: str) -> tuple[bytes, int, int]:
    """``text`` as UTF-8, deflated (raw, level 1), with its CRC-32 and plain size."""
    data = text.encode()
    packer = zlib.compressobj(1, zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush(), zlib.crc32(data), len(data)


class _Zip:
    """A zip whose members are deflated on threads while the caller renders the next
    part (deflate runs without the GIL, and on two cores the last two parts compress side
    by side), then laid out here: local headers, data, the central directory. Python's
    zipfile cannot take data deflated elsewhere. Members keep the order they are added."""

    _pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="export-zip")
    #: Version 2.0 (deflate), UTF-8 names (bit 11), 2000-01-01 00:00 in DOS form.
    _VERSION, _UTF8, _TIME, _DATE = 20, 0x800, 0, (2000 - 1980) << 9 | 1 << 5 | 1
    #: The three records of the format (PKWARE APPNOTE 4.3.7, 4.3.12, 4.3.16).
    _LOCAL, _CENTRAL, _END = (
        struct.Struct("<4s2B4HL2L2H"),
        struct.Struct("<4s4B4HL2L5H2L"),
        struct.Struct("<4s4H2LH"),
    )

    def __init__(self) -> None:
        self._parts: list[tuple[bytes, Future[tuple[bytes, int, int]]]] = []

    def add(self, name: str, text: str) -> None:
        self._parts.append((name.encode(), self._pool.submit(_deflate, text)))

    def result(self) -> bytes:
        out = io.BytesIO()
        central = []
        for name, part in self._parts:
            data, crc, size = part.result()
            if max(len(data), size, out.tell()) >= 0xFFFFFFFF:
                raise ValueError("an export over 4 GiB needs ZIP64: not written here")
            offset = out.tell()
            sizes = (self._VERSION, 0, self._UTF8, zipfile.ZIP_DEFLATED, self._TIME, self._DATE)
            out.write(
                self._LOCAL.pack(
                    b"PK\x03\x04",
                    *sizes,
                    crc,
                    len(data),
                    size,
                    len(name),
                    0,
                )
            )
            out.write(name)
            out.write(data)
            central.append(
                self._CENTRAL.pack(
                    b"PK\x01\x02",
                    self._VERSION,
                    0,
                    *sizes,
                    crc,
                    len(data),
                    size,
                    len(name),
                    0,
                    0,
                    0,
                    0,
                    0o644 << 16,
                    offset,
                )
                + name
            )
        start = out.tell()
        directory = b"".join(central)
        out.write(directory)
        count = len(central)
        out.write(
            self._END.pack(
                b"PK\x05\x06",
                0,
                0,
                count,
                count,
                len(directory),
                start,
                0,
            )
        )
        return out.getvalue()


@dataclass(frozen=True)
class Export:
    kind: ExportKind
    document: dict[str, Any]
    csvs: dict[str, str]
    html: str
    _zip: _Zip

    def zip_bytes(self) -> bytes:
        """The export as a zip: data.json, index.html, <category>.csv for each category."""
        return self._zip.result()


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


def _iso_texts(values: Sequence[str | None]) -> list[str | None]:
    """SQLite's UTC times (``2024-05-01 09:30:00.000000``) as ``_iso`` writes them, in a
    few passes over the joined column rather than three string calls per value."""
    if not values:
        return []
    joined = "\0".join(v or "" for v in values) + "\0"
    joined = joined.replace(" ", "T").replace(".000000\0", "\0").replace("\0", "+00:00\0")
    out: list[str | None] = list(joined.split("\0")[:-1])
    if None in values:
        out = [None if v is None else text for v, text in zip(values, out, strict=True)]
    return out


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
        self, entry: PersonalTable, subject_id: str, *, opened: int | None = None
    ) -> tuple[list[str], list[str], list[tuple[Any, ...]]]:
        """The person's rows of one data-map table: the exported field names, each row's
        id (as sealing names it), and the rows' values in field order, sealed ones opened.
        With ``opened``, only the first ``opened`` rows' values are read and opened (every
        row's id still comes back): a few samples and a count cost one decryption per
        sample, not per row.

        One plain indexed query through the driver, then the work done column by column
        (a transpose is one call): an export of thousands of call records should cost
        little more than reading and opening them."""
        table: Table = Base.metadata.tables[entry.table]
        names = list(dict.fromkeys([*entry.key, *entry.exported]))
        at = {name: i for i, name in enumerate(names)}
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
        if not raw:
            return fields, [], []
        read: list[Sequence[Any]] = list(zip(*raw, strict=True))
        keys = [read[at[name]] for name in entry.key]
        row_ids = (
            [v if type(v) is str else str(v) for v in keys[0]]
            if len(keys) == 1
            else ["/".join(map(str, parts)) for parts in zip(*keys, strict=True)]
        )
        shown_ids = row_ids
        if opened is not None and opened < len(raw):
            read, shown_ids = [column[:opened] for column in read], row_ids[:opened]
        columns: list[Sequence[Any]] = []
        for name in entry.exported:
            values = read[at[name]]
            kind = table.c[name].type
            if name in entry.encrypted:
                values = self._open(entry, subject_id, name, shown_ids, values)
            elif isinstance(kind, DateTime):
                if all(type(v) is str or v is None for v in values):
                    values = _iso_texts(values)  # SQLite, the common case: all at once
                else:
                    values = [v if v is None else _iso(v) for v in values]
            elif not isinstance(kind, String | Integer):
                values = [v if v is None else _plain(v) for v in values]
            columns.append(values)
        return fields, row_ids, list(zip(*columns, strict=True))

    def _open(
        self,
        entry: PersonalTable,
        subject_id: str,
        column: str,
        row_ids: list[str],
        sealed: Sequence[bytes | None],
    ) -> list[Any]:
        """A column of sealed values, opened (JSON ones parsed); ``None`` stays ``None``."""
        places = [
            (Field(entry.table, column, row_id), blob)
            for row_id, blob in zip(row_ids, sealed, strict=True)
            if blob is not None
        ]
        opened = iter(self.vault.decrypt_many(self.session, subject_id, places, purpose=PURPOSE))
        if column in entry.json:
            return [None if blob is None else json.loads(next(opened)) for blob in sealed]
        if len(places) == len(sealed):
            return list(opened)
        return [None if blob is None else next(opened) for blob in sealed]

    def build(self, subject_id: str, kind: ExportKind = ExportKind.ACCESS) -> Export:
        """The person's export. Portability keeps the categories whose source the policy
        says the person provided or the service generated; access keeps every one."""
        records = self.records(subject_id)
        categories = [
            self.category(category_id, records.get(category_id, []))
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
            "disclosures": [self.disclosure(d) for d in recipients_of(self.session, subject_id)],
            "rights": RIGHTS,
            "complaint": meta.supervisory_authority,
            "automated_decisions": self.policy.rights.automated_decisions,
        }
        # Each part is handed to the zip as soon as it is made, to deflate meanwhile.
        archive = _Zip()
        archive.add("data.json", json.dumps(document, ensure_ascii=False) + "\n")
        texts = {c["id"]: [_text(b) for b in c["records"]] for c in categories}
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
        archive.add("index.html", html)
        csvs = {}
        for c in categories:
            csvs[c["id"]] = _csv(c["records"], texts[c["id"]])
            archive.add(f"{c['id']}.csv", csvs[c["id"]])
        return Export(kind, document, csvs, html, archive)

    def category(self, category_id: str, records: list[dict[str, Any]]) -> dict[str, Any]:
        """A category as the export describes it: what it is, why it is used (purposes and
        legal bases), how long it is kept, who may receive it, where, and ``records``."""
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

    def disclosure(self, received: Received) -> dict[str, Any]:
        """A disclosure that covered the person (Art. 15(1)(c)): who received which
        categories, when, why and on what basis; never who asked, who may be someone else."""
        titles = [
            self.policy.categories[c].title if c in self.policy.categories else c
            for c in received.categories
        ]
        purpose = self.policy.purposes.get(received.purpose)
        basis = DisclosureBasis(received.legal_basis)
        return {
            "recipient": received.recipient,
            "kind": received.kind,
            "country": received.country,
            "at": received.at.isoformat(),
            "categories": list(received.categories),
            "purpose": received.purpose,
            "legal_basis": basis.value,
            "text": (
                f"On {received.at:%d %B %Y}, {received.recipient} ({received.kind}, "
                f"{received.country}) received your data ({'; '.join(titles)}) for "
                f"{(purpose.title if purpose else received.purpose).lower()}, {basis.text}."
            ),
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


def _text(block: dict[str, Any]) -> list[tuple[str, ...]]:
    """A table's values as text, column by column: lists and objects as JSON, no value as
    empty text. A column that is all text already (most of them) is taken as it is."""
    if not block["rows"]:
        return [() for _ in block["fields"]]
    return [
        column if all(type(v) is str for v in column) else tuple(map(_cell, column))
        for column in zip(*block["rows"], strict=True)
    ]


def _quoted(column: tuple[str, ...], special: tuple[str, ...]) -> bool:
    joined = "".join(column)
    return any(c in joined for c in special)


def _csv_cell(cell: str) -> str:
    if "," in cell or '"' in cell or "\n" in cell or "\r" in cell:
        return '"' + cell.replace('"', '""') + '"'
    return cell


def _csv(blocks: list[dict[str, Any]], texts: list[list[tuple[str, ...]]]) -> str:
    """One category's CSV (RFC 4180, a header row): a ``table`` column, then every field
    of its tables. Written here, column by column, because ``csv.writer`` is the slowest
    part of a large export: a cell is quoted only when it holds a comma, a quote, CR or
    LF, and a column is looked at cell by cell only when some cell of it needs quoting."""
    names = list(dict.fromkeys(name for block in blocks for name in block["fields"]))
    at = {name: i for i, name in enumerate(names)}
    lines = [",".join(map(_csv_cell, ["table", *names])) + "\n"]
    for block, columns in zip(blocks, texts, strict=True):
        count = len(block["rows"])
        out: list[tuple[str, ...]] = [("",) * count] * (len(names) + 1)
        out[0] = (_csv_cell(block["table"]),) * count
        for name, column in zip(block["fields"], columns, strict=True):
            dirty = _quoted(column, (",", '"', "\n", "\r"))
            out[at[name] + 1] = tuple(map(_csv_cell, column)) if dirty else column
        lines += (",".join(row) + "\n" for row in zip(*out, strict=True))
    return "".join(lines)


_SPECIAL = ("&", "<", ">", '"', "'")


def _html_table(block: dict[str, Any], columns: list[tuple[str, ...]]) -> Markup:
    """One table's records as HTML, written here rather than in the template (which would
    take most of an export's time for thousands of rows). Each column is escaped only
    when some cell of it needs it: most hold dates, numbers and codes."""
    safe = [tuple(map(escape, c)) if _quoted(c, _SPECIAL) else c for c in columns]
    head = "".join(f'<th scope="col">{escape(n)}</th>' for n in block["fields"])
    body = "".join(
        "<tr><td>" + "</td><td>".join(row) + "</td></tr>\n" for row in zip(*safe, strict=True)
    )
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
