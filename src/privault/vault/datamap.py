"""The data map: every table that holds personal data declares its category and subject column.

Export, erasure, retention and the at-rest checks walk this registry instead of
knowing tables one by one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T", bound=type)


@dataclass(frozen=True)
class PersonalTable:
    table: str
    category: str
    subject_column: str
    encrypted: tuple[str, ...]
    indexed: tuple[str, ...]


REGISTRY: dict[str, PersonalTable] = {}


def personal_data(
    category: str,
    *,
    subject_column: str = "subject_id",
    encrypted: tuple[str, ...] = (),
    indexed: tuple[str, ...] = (),
) -> Callable[[T], T]:
    """Class decorator for an ORM model holding personal data of ``category``."""

    def register(model: T) -> T:
        table = model.__tablename__  # type: ignore[attr-defined]
        columns = model.__table__.columns  # type: ignore[attr-defined]
        for name in (subject_column, *encrypted, *indexed):
            if name not in columns:
                raise LookupError(f"data map: {table} has no column {name!r}")
        REGISTRY[table] = PersonalTable(table, category, subject_column, encrypted, indexed)
        return model

    return register


def tables() -> list[PersonalTable]:
    return sorted(REGISTRY.values(), key=lambda t: t.table)
