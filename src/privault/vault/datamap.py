"""The data map: every table that holds personal data declares its category and subject column.

Export, erasure, retention and the at-rest checks walk this registry instead of
knowing tables one by one. What an export shows is an allowlist, ``exported``: sealed
columns in it are opened and shown under their name without ``_ct``. Blind indexes,
hashes, tokens and anything else not listed stay out by construction.

``census`` counts what the map holds, per table and per category, in the database.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, distinct, func, select, union_all
from sqlalchemy.orm import Session

from privault.db import Base

T = TypeVar("T", bound=type)


@dataclass(frozen=True)
class PersonalTable:
    table: str
    category: str
    subject_column: str
    encrypted: tuple[str, ...]
    indexed: tuple[str, ...]
    #: The columns an export shows (sealed ones opened), in order.
    exported: tuple[str, ...]
    #: Sealed columns that hold JSON rather than text.
    json: tuple[str, ...]
    #: The primary key columns; a sealed value's associated data names the row by them.
    key: tuple[str, ...]
    #: Whether the person's export shows this table (their downloads themselves do not).
    in_export: bool
    #: The time column the category's retention counts from for a row (when it was
    #: collected, the contract ended, the person was last active); None for a table whose
    #: category is kept while the account exists.
    kept_from: str | None = None

    def row_id(self, row: Mapping[Any, Any]) -> str:
        """How a row is named in its sealed values' associated data (``vault.Field``)."""
        return "/".join(str(row[column]) for column in self.key)


REGISTRY: dict[str, PersonalTable] = {}
#: Tables outside the map whose sealed values are still a subject's personal data, and the
#: category of those values.
OUTSIDE: dict[str, str] = {}


def field_name(column: str) -> str:
    """A sealed column's name in exports: ``email_ct`` is ``email``."""
    return column.removesuffix("_ct")


def personal_data(
    category: str,
    *,
    subject_column: str = "subject_id",
    encrypted: tuple[str, ...] = (),
    indexed: tuple[str, ...] = (),
    exported: tuple[str, ...] = (),
    json: tuple[str, ...] = (),
    in_export: bool = True,
    kept_from: str | None = None,
) -> Callable[[T], T]:
    """Class decorator for an ORM model holding personal data of ``category``."""

    def register(model: T) -> T:
        table = model.__tablename__  # type: ignore[attr-defined]
        columns = model.__table__.columns  # type: ignore[attr-defined]
        named = (subject_column, *encrypted, *indexed, *exported, *json)
        for name in (*named, kept_from) if kept_from else named:
            if name not in columns:
                raise LookupError(f"data map: {table} has no column {name!r}")
        if not set(json) <= set(encrypted):
            raise LookupError(f"data map: {table}: json columns must be encrypted ones")
        if set(exported) & set(indexed):
            raise LookupError(f"data map: {table}: a blind index is never exported")
        key = tuple(column.name for column in model.__table__.primary_key.columns)  # type: ignore[attr-defined]
        REGISTRY[table] = PersonalTable(
            table,
            category,
            subject_column,
            encrypted,
            indexed,
            exported,
            json,
            key,
            in_export,
            kept_from,
        )
        return model

    return register


def outside_the_map(category: str) -> Callable[[T], T]:
    """Class decorator for a table export, erasure and retention do not walk (it outlives its
    subject, say) whose sealed values are personal data of ``category``: reading them still
    names a purpose the policy allows for that category."""

    def register(model: T) -> T:
        OUTSIDE[model.__tablename__] = category  # type: ignore[attr-defined]
        return model

    return register


def category_of(table: str) -> str:
    """The category of the personal data ``table`` holds; ``LookupError`` for a table that
    holds none."""
    entry = REGISTRY.get(table)
    if entry is not None:
        return entry.category
    try:
        return OUTSIDE[table]
    except KeyError:
        raise LookupError(f"data map: {table} holds no personal data of a known category") from None


def tables() -> list[PersonalTable]:
    return sorted(REGISTRY.values(), key=lambda t: t.table)


@dataclass(frozen=True)
class TableCount:
    table: str
    #: Rows of the table.
    records: int
    #: Distinct subjects its rows name (rows without a subject, e.g. anonymous visits,
    #: count as records only).
    subjects: int


@dataclass(frozen=True)
class CategoryCount:
    category: str
    tables: tuple[TableCount, ...]
    records: int
    #: Distinct subjects across the category's tables (a person in two tables counts once).
    subjects: int


def census(session: Session) -> dict[str, CategoryCount]:
    """Records and distinct subjects of every table in the data map, and of every category
    across its tables, by category. Counted by the database (COUNT, COUNT DISTINCT) in one
    statement: no row is read. Only tables whose models are imported are in the map."""
    entries = tables()
    if not entries:
        return {}
    by_category: dict[str, list[PersonalTable]] = {}
    for entry in entries:
        by_category.setdefault(entry.category, []).append(entry)
    counts: list[ColumnElement[int]] = []
    for i, entry in enumerate(entries):
        subject = _subject_column(entry)
        rows = select(func.count()).select_from(subject.table)
        counts.append(rows.scalar_subquery().label(f"r{i}"))
        counts.append(select(func.count(distinct(subject))).scalar_subquery().label(f"s{i}"))
    for j, members in enumerate(by_category.values()):
        ids = union_all(*(select(_subject_column(m).label("id")) for m in members)).subquery()
        counts.append(select(func.count(distinct(ids.c.id))).scalar_subquery().label(f"c{j}"))
    row = session.execute(select(*counts)).one()._mapping
    found = {
        entry.table: TableCount(entry.table, int(row[f"r{i}"]), int(row[f"s{i}"]))
        for i, entry in enumerate(entries)
    }
    return {
        category: CategoryCount(
            category,
            tuple(found[m.table] for m in members),
            sum(found[m.table].records for m in members),
            int(row[f"c{j}"]),
        )
        for j, (category, members) in enumerate(by_category.items())
    }


def _subject_column(entry: PersonalTable) -> ColumnElement[str]:
    return Base.metadata.tables[entry.table].columns[entry.subject_column]
