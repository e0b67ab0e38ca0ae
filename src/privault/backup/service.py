"""Backups of the database, and restoring them.

A data backup holds every table's rows except the people's data keys (``subject_keys``);
a key backup holds those keys alone, still wrapped by the keyring's master keys. A restore
keeps the live database's keys by default, so whoever was erased after the backup was made
has no key in the restored database: their rows can never be opened, and the restore
finishes their erasure. The key backup is for a database lost, and belongs with the
keyring's own backups, which must expire within the erasure deadline (docs/backups.md).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, delete, exists, func, insert, select, text
from sqlalchemy.orm import Session, sessionmaker

import privault.models  # noqa: F401  (registers every table on Base.metadata)
from privault.access.audit import AuditLog, Event
from privault.backup.archive import Reader, TableStart, Writer
from privault.backup.errors import BackupError, BackupMismatch, BackupUnreadable, RestoreRefused
from privault.clock import Clock
from privault.db import Base, is_postgres, snapshot
from privault.retention.partitions import PARTITIONED, Partitions
from privault.vault import Keyring
from privault.vault.models import Subject, SubjectKey

KEYS = "subject_keys"
BATCH = 1000
#: Called with a table's name and the rows just written or restored (a progress bar).
Progress = Callable[[str, int], None]


class Kind(StrEnum):
    DATA = "data"
    KEYS = "keys"


@dataclass(frozen=True)
class Written:
    path: Path
    id: str
    rows: dict[str, int]


@dataclass(frozen=True)
class Restored:
    id: str
    rows: dict[str, int]
    #: Where the data keys came from: ``live`` (kept from this database) or ``file``.
    keys_from: str
    #: People in the backup without a data key here: erased since it was made; their
    #: remaining rows were deleted.
    keyless: list[str] = field(default_factory=list)


def tables(kind: Kind) -> list[Table]:
    """The tables of a backup of ``kind``, parents before children."""
    ordered = Base.metadata.sorted_tables
    if kind is Kind.KEYS:
        return [t for t in ordered if t.name == KEYS]
    return [t for t in ordered if t.name != KEYS]


def revision(conn: Connection) -> str:
    return str(conn.scalar(text("SELECT version_num FROM alembic_version")))


def _nothing(_table: str, _rows: int) -> None:
    return None


def write_backup(
    engine: Engine,
    keyring: Keyring,
    path: Path,
    clock: Clock,
    kind: Kind = Kind.DATA,
    progress: Progress = _nothing,
) -> Written:
    """Write a backup of ``kind`` to ``path`` (mode 0600; never over an existing file) from
    one snapshot of the database, while it serves. Memory stays flat: rows are streamed.
    Raises ``BackupError`` when ``path`` exists or a table's rows do not match their count
    in the same snapshot."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as stream, snapshot(engine) as conn:
            chosen = tables(kind)
            counts = {t.name: conn.scalar(select(func.count()).select_from(t)) or 0 for t in chosen}
            header = {
                "kind": kind.value,
                "created_at": clock.now().isoformat(),
                "revision": revision(conn),
                "database": conn.dialect.name,
                "rows": counts,
            }
            writer = Writer(stream, keyring, header)
            for table in chosen:
                writer.table(table.name, list(table.c.keys()))
                seen = 0
                result = conn.execute(select(table).execution_options(yield_per=BATCH))
                for batch in result.partitions():
                    writer.rows(batch)
                    seen += len(batch)
                    progress(table.name, len(batch))
                if seen != counts[table.name]:
                    raise BackupError(
                        f"table {table.name} changed during the backup; it was not one snapshot"
                    )
            writer.close()
            stream.flush()
            os.fsync(stream.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise BackupError(f"{path} already exists; not overwritten") from None
    finally:
        tmp.unlink(missing_ok=True)
    return Written(path, str(writer.header["id"]), counts)


def _open(stack: ExitStack, path: Path, keyring: Keyring, kind: Kind) -> Reader:
    try:
        stream = stack.enter_context(path.open("rb"))
    except OSError as exc:
        raise BackupUnreadable(f"{path} cannot be read ({exc.strerror})") from None
    reader = Reader(stream, keyring, path.name)
    if reader.header.get("kind") != kind.value:
        raise BackupMismatch(f"{path.name} is not a {kind.value} backup")
    return reader


def restore_backup(
    factory: sessionmaker[Session],
    keyring: Keyring,
    path: Path,
    audit: AuditLog,
    erase: Callable[[Session, str], object],
    *,
    keys: Path | None = None,
    replace: bool = False,
    progress: Progress = _nothing,
) -> Restored:
    """Replace every table's rows with the data backup at ``path``, in one transaction:
    anything wrong (a damaged or cut file, another keyring, another schema revision) raises
    and leaves the database as it was. The data keys stay the live ones, or come from the
    key backup ``keys`` (for a database lost); either way only people the backup holds
    keep theirs. People left without a key were erased after the backup: ``erase`` deletes
    what is left of them. Raises ``RestoreRefused`` when the database holds people and
    ``replace`` is not set, or ``keys`` is; ``BackupMismatch``, ``BackupWrongKeyring``,
    ``BackupUnreadable``."""
    with ExitStack() as stack:
        data = _open(stack, path, keyring, Kind.DATA)
        key_file = _open(stack, keys, keyring, Kind.KEYS) if keys is not None else None
        with factory() as session, session.begin():
            conn = session.connection()
            _fits(data, conn)
            people = session.scalar(select(func.count()).select_from(Subject)) or 0
            if people and key_file is not None:
                raise RestoreRefused(
                    f"the database holds {people} person(s); a key backup is restored only "
                    "into a database that was lost (it would undo erasures made since)"
                )
            if people and not replace:
                raise RestoreRefused(
                    f"the database holds {people} person(s); pass --replace to replace "
                    "everything in it with the backup"
                )
            # Live keys wait aside while every table is emptied (deleting a subject deletes
            # its key), then go back for the people the backup holds.
            if key_file is None:
                conn.exec_driver_sql(
                    f"CREATE TEMPORARY TABLE restore_keys AS SELECT * FROM {KEYS}"  # noqa: S608
                )
            for table in reversed(Base.metadata.sorted_tables):
                session.execute(delete(table))
            rows = _load(session, data, tables(Kind.DATA), progress)
            if key_file is not None:
                _load(session, key_file, tables(Kind.KEYS), progress)
            else:
                conn.exec_driver_sql(
                    f"INSERT INTO {KEYS} SELECT k.* FROM restore_keys k "  # noqa: S608
                    "JOIN subjects s ON s.id = k.subject_id"
                )
                conn.exec_driver_sql("DROP TABLE restore_keys")
            keyless = list(
                session.scalars(
                    select(Subject.id).where(~exists().where(SubjectKey.subject_id == Subject.id))
                )
            )
            for subject_id in keyless:
                erase(session, subject_id)
            if is_postgres(session):
                _renumber(session)
            backup_id = str(data.header["id"])
            audit.record(
                session,
                "cli",
                Event.BACKUP_RESTORED,
                actor="operator",
                detail={
                    "backup": backup_id,
                    "rows": sum(rows.values()),
                    "keys": "file" if key_file else "live",
                    "erased": len(keyless),
                },
            )
    return Restored(backup_id, rows, "file" if key_file else "live", keyless)


def _fits(reader: Reader, conn: Connection) -> None:
    found, here = reader.header.get("revision"), revision(conn)
    if found != here:
        raise BackupMismatch(
            f"{reader.name} is of schema revision {found}, this database of {here}; "
            "restore it with the Privault version that made it, then upgrade"
        )
    if reader.header.get("database") != conn.dialect.name:
        raise BackupMismatch(
            f"{reader.name} is a {reader.header.get('database')} backup; "
            f"this database is {conn.dialect.name}"
        )


def _load(
    session: Session, reader: Reader, expected: list[Table], progress: Progress
) -> dict[str, int]:
    """Insert the backup's rows, batch by batch; returns the rows read per table, checked
    against the header's counts and the tables this schema has. Keys (of a key backup) go
    in only for people the database holds."""
    known = {t.name: t for t in expected}
    declared: dict[str, int] = reader.header.get("rows", {})
    counts: dict[str, int] = {}
    partitions = Partitions()
    for name, columns, batch in _batches(reader):
        table = known.get(name)
        if table is None or not set(columns) <= set(table.c.keys()):
            raise BackupMismatch(f"{reader.name} holds a table {name} this schema does not have")
        counts[name] = counts.get(name, 0) + len(batch)
        progress(name, len(batch))
        if name == KEYS:
            batch = _of_present(session, columns, batch)
        if name in PARTITIONED:
            at = columns.index(PARTITIONED[name])
            partitions.ensure(session, name, [row[at] for row in batch])
        if batch:
            session.execute(insert(table), [dict(zip(columns, row, strict=True)) for row in batch])
    wanted = {t.name: declared.get(t.name, 0) for t in expected}
    got = {name: counts.get(name, 0) for name in wanted}
    if got != wanted or set(declared) != set(wanted):
        raise BackupUnreadable(f"{reader.name}: the rows read do not match its header's counts")
    return got


def _batches(reader: Reader) -> Iterator[tuple[str, list[str], list[tuple[Any, ...]]]]:
    """The body's rows in batches of one table: ``(table, columns, rows)``."""
    start: TableStart | None = None
    batch: list[tuple[Any, ...]] = []
    for item in reader.items():
        if isinstance(item, TableStart):
            if start is not None and batch:
                yield start.table, start.columns, batch
            start, batch = item, []
            continue
        if start is None:
            raise BackupUnreadable(f"{reader.name}: rows before any table")
        batch.append(item)
        if len(batch) >= BATCH:
            yield start.table, start.columns, batch
            batch = []
    if start is not None and batch:
        yield start.table, start.columns, batch


def _of_present(
    session: Session, columns: list[str], rows: list[tuple[Any, ...]]
) -> list[tuple[Any, ...]]:
    at = columns.index("subject_id")
    wanted = [row[at] for row in rows]
    present = set(session.scalars(select(Subject.id).where(Subject.id.in_(wanted))))
    return [row for row in rows if row[at] in present]


def _renumber(session: Session) -> None:
    """Move PostgreSQL's sequences past the ids restored, so new rows do not collide."""
    for table in Base.metadata.sorted_tables:
        column = table.autoincrement_column
        if column is None:
            continue
        session.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', '{column.name}'), "  # noqa: S608
                f"COALESCE(MAX({column.name}), 1), MAX({column.name}) IS NOT NULL) "
                f"FROM {table.name}"
            )
        )
