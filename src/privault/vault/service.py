"""The vault: subjects, their data keys, field encryption and blind indexes."""

from __future__ import annotations

import json
import secrets
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import NamedTuple, Protocol

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from privault.clock import Clock, SystemClock
from privault.db import new_id
from privault.vault import crypto
from privault.vault.errors import SubjectKeyMissing
from privault.vault.keyring import KEY_BYTES, Keyring
from privault.vault.models import Subject, SubjectKey


class Field(NamedTuple):
    """Where a value lives: its associated data, and the name errors use.

    A named tuple, not a dataclass: the batch path builds one per value.
    """

    table: str
    column: str
    row: str

    @property
    def aad(self) -> bytes:
        return crypto.aad(self.table, self.column, self.row)

    def __str__(self) -> str:
        return f"{self.table}.{self.column}[{self.row}]"


class PurposeCheck(Protocol):
    """Whether a purpose may read a table's personal data (``access.purposes.Purposes``)."""

    def require(
        self, session: Session, subject_id: str | None, table: str, purpose: str
    ) -> None: ...


def _wrap_aad(subject_id: str) -> bytes:
    return f"privault:data-key\x1f{subject_id}".encode()


class Vault:
    """Per-subject envelope encryption.

    Each subject's 256-bit data key is wrapped with the keyring's active master
    key and stored in ``subject_keys``; unwrapped keys are cached in memory for
    the life of the process (bounded).

    Every method that opens a value takes the ``purpose`` it is read for, and ``purposes``
    checks it against the policy before any key is touched (P3.x): a refusal raises
    ``PurposeNotAllowed`` and is in the access log.
    """

    def __init__(
        self,
        keyring: Keyring,
        purposes: PurposeCheck,
        clock: Clock | None = None,
        cache_size: int = 50_000,
    ):
        self.keyring = keyring
        self.purposes = purposes
        self.clock = clock or SystemClock()
        self._cache: OrderedDict[str, AESGCM] = OrderedDict()
        self._cache_size = cache_size
        self._index_key = keyring.secret("blind_index")
        self._indexes: dict[tuple[str, str], bytes] = {}
        self._indexes_size = cache_size

    # -- subjects and keys -------------------------------------------------

    def create_subject(self, session: Session, kind: str = "person") -> str:
        """Create a subject with a fresh data key; returns its id."""
        return self.create_subjects(session, 1, kind)[0]

    def create_subjects(self, session: Session, count: int, kind: str = "person") -> list[str]:
        """Create ``count`` subjects at once (the batch path used by imports)."""
        now = self.clock.now()
        self.keyring.refresh()
        master_id = self.keyring.active
        master = AESGCM(self.keyring.master(master_id))
        ids, subjects, keys = [], [], []
        for _ in range(count):
            subject_id = new_id()
            data_key = secrets.token_bytes(KEY_BYTES)
            ids.append(subject_id)
            subjects.append({"id": subject_id, "kind": kind, "created_at": now})
            keys.append(
                {
                    "subject_id": subject_id,
                    "master_key_id": master_id,
                    "wrapped": crypto.seal(master, data_key, _wrap_aad(subject_id)),
                }
            )
            self._remember(subject_id, AESGCM(data_key))
        session.execute(insert(Subject), subjects)
        session.execute(insert(SubjectKey), keys)
        return ids

    def shred(self, session: Session, subject_id: str) -> None:
        """Destroy a subject's data key: everything sealed under it becomes unreadable."""
        session.execute(delete(SubjectKey).where(SubjectKey.subject_id == subject_id))
        self._cache.pop(subject_id, None)
        # The remembered blind indexes are keyed by values, some of them the subject's.
        self._indexes.clear()

    def forget_cached_keys(self) -> None:
        """Drop the data keys and blind indexes held in memory."""
        self._cache.clear()
        self._indexes.clear()

    def _remember(self, subject_id: str, cipher: AESGCM) -> None:
        self._cache[subject_id] = cipher
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def _unwrap(self, subject_id: str, master_key_id: str, wrapped: bytes) -> AESGCM:
        master = AESGCM(self.keyring.master(master_key_id))
        raw = crypto.open_sealed(
            master, wrapped, _wrap_aad(subject_id), f"subject_keys[{subject_id}]"
        )
        return AESGCM(raw)

    def _cipher(self, session: Session, subject_id: str) -> AESGCM:
        cipher = self._cache.get(subject_id)
        if cipher is not None:
            return cipher
        row = session.execute(
            select(SubjectKey.master_key_id, SubjectKey.wrapped).where(
                SubjectKey.subject_id == subject_id
            )
        ).first()
        if row is None:
            raise SubjectKeyMissing(f"subject {subject_id} has no data key (erased or unknown)")
        cipher = self._unwrap(subject_id, row.master_key_id, row.wrapped)
        self._remember(subject_id, cipher)
        return cipher

    def _ciphers(self, session: Session, subject_ids: Iterable[str]) -> dict[str, AESGCM]:
        """Data keys for many subjects, fetching the uncached ones in few queries."""
        wanted = set(subject_ids)
        found = {s: c for s in wanted if (c := self._cache.get(s)) is not None}
        missing = sorted(wanted - found.keys())
        for start in range(0, len(missing), 500):
            chunk = missing[start : start + 500]
            rows = session.execute(
                select(SubjectKey.subject_id, SubjectKey.master_key_id, SubjectKey.wrapped).where(
                    SubjectKey.subject_id.in_(chunk)
                )
            )
            for row in rows:
                cipher = self._unwrap(row.subject_id, row.master_key_id, row.wrapped)
                self._remember(row.subject_id, cipher)
                found[row.subject_id] = cipher
        absent = wanted - found.keys()
        if absent:
            raise SubjectKeyMissing(
                f"{len(absent)} subject(s) have no data key (erased or unknown)"
            )
        return found

    # -- fields ------------------------------------------------------------

    def encrypt(self, session: Session, subject_id: str, field: Field, value: str) -> bytes:
        return crypto.seal(self._cipher(session, subject_id), value.encode(), field.aad)

    def decrypt(
        self, session: Session, subject_id: str, field: Field, blob: bytes, *, purpose: str
    ) -> str:
        """Authenticate and decrypt a value read for ``purpose``; raises ``PurposeNotAllowed``,
        ``TamperedCiphertext`` or ``SubjectKeyMissing``."""
        self.purposes.require(session, subject_id, field.table, purpose)
        return crypto.open_sealed(
            self._cipher(session, subject_id), blob, field.aad, str(field)
        ).decode()

    def encrypt_bytes(self, session: Session, subject_id: str, field: Field, raw: bytes) -> bytes:
        return crypto.seal(self._cipher(session, subject_id), raw, field.aad)

    def decrypt_bytes(
        self, session: Session, subject_id: str, field: Field, blob: bytes, *, purpose: str
    ) -> bytes:
        """As ``decrypt``, for a value that is not text."""
        self.purposes.require(session, subject_id, field.table, purpose)
        return crypto.open_sealed(self._cipher(session, subject_id), blob, field.aad, str(field))

    def seal_retained(self, field: Field, value: object) -> bytes:
        """Seal ``value`` (as JSON) under the keyring's retention key: for what the law makes
        us keep after its person's own key is destroyed."""
        raw = json.dumps(value, separators=(",", ":")).encode()
        return crypto.seal(AESGCM(self.keyring.secret("retention")), raw, field.aad)

    def open_retained(self, session: Session, field: Field, blob: bytes, *, purpose: str) -> object:
        """Open what ``seal_retained`` sealed, read for ``purpose``. Its category is its source
        table's, which the row names (``<table>/<row>``); raises as ``decrypt``."""
        self.purposes.require(session, None, field.row.partition("/")[0], purpose)
        cipher = AESGCM(self.keyring.secret("retention"))
        return json.loads(crypto.open_sealed(cipher, blob, field.aad, str(field)))

    def encrypt_json(self, session: Session, subject_id: str, field: Field, value: object) -> bytes:
        return self.encrypt(session, subject_id, field, json.dumps(value, separators=(",", ":")))

    def decrypt_json(
        self, session: Session, subject_id: str, field: Field, blob: bytes, *, purpose: str
    ) -> object:
        return json.loads(self.decrypt(session, subject_id, field, blob, purpose=purpose))

    def encrypt_many(
        self, session: Session, items: Sequence[tuple[str, Field, str]]
    ) -> list[bytes]:
        """Encrypt ``(subject_id, field, value)`` items in one pass (the batch path)."""
        ciphers = self._ciphers(session, (subject for subject, _, _ in items))
        return crypto.seal_many(
            [ciphers[subject] for subject, _, _ in items],
            [value.encode() for _, _, value in items],
            [field.aad for _, field, _ in items],
        )

    def decrypt_many(
        self,
        session: Session,
        subject_id: str,
        items: Sequence[tuple[Field, bytes]],
        *,
        purpose: str,
    ) -> list[str]:
        """Open many of one subject's values (the export path), read for ``purpose``: checked
        once for each table among them, not for each value; raises as ``decrypt``."""
        for table in {field.table for field, _ in items}:
            self.purposes.require(session, subject_id, table, purpose)
        cipher = self._cipher(session, subject_id)
        return [
            crypto.open_sealed(cipher, blob, field.aad, str(field)).decode()
            for field, blob in items
        ]

    def decrypt_across(
        self, session: Session, items: Sequence[tuple[str, Field, bytes]], *, purpose: str
    ) -> list[str]:
        """Open ``(subject_id, field, blob)`` values of many people (the statistics path),
        read for ``purpose``: checked once for each table, keys fetched in few queries;
        raises as ``decrypt``."""
        for table in {field.table for _, field, _ in items}:
            self.purposes.require(session, None, table, purpose)
        ciphers = self._ciphers(session, (subject for subject, _, _ in items))
        return [
            crypto.open_sealed(ciphers[subject], blob, field.aad, str(field)).decode()
            for subject, field, blob in items
        ]

    # -- blind indexes -----------------------------------------------------

    def blind_index(self, kind: str, value: str) -> bytes:
        """A keyed digest for equality look-ups (``kind`` separates emails from phones).

        Digests are remembered (bounded, like the data keys): CDR ingest looks up the same
        Room IDs and callers batch after batch.
        """
        found = self._indexes.get((kind, value))
        if found is None:
            if len(self._indexes) >= self._indexes_size:
                self._indexes.clear()
            found = self._indexes[kind, value] = crypto.keyed_digest(self._index_key, kind, value)
        return found

    # -- master key rotation ----------------------------------------------

    def rotate_master_key(
        self, factory: sessionmaker[Session], *, purge: bool = False, batch: int = 1000
    ) -> int:
        """Re-wrap every data key under a new master key; the data itself is untouched.

        The new key is saved to the keyring before any re-wrap, so a crash at any
        point leaves every wrapped key readable and a rerun finishes the job.
        The previous master key stays in the keyring until the next rotation, in
        case a running server wrapped a new subject's key with it meanwhile (it
        rereads the keyring when the file changes); older keys are dropped once
        nothing refers to them. ``purge`` drops the previous key now too, for an
        operator who knows no other process is running. Returns keys re-wrapped.
        """
        previous = self.keyring.active
        new_id = self.keyring.add_master_key()
        master = AESGCM(self.keyring.master(new_id))
        done = 0
        while True:
            with factory() as session, session.begin():
                rows = session.execute(
                    select(SubjectKey.subject_id, SubjectKey.master_key_id, SubjectKey.wrapped)
                    .where(SubjectKey.master_key_id != new_id)
                    .limit(batch)
                ).all()
                if not rows:
                    break
                for row in rows:
                    old = AESGCM(self.keyring.master(row.master_key_id))
                    raw = crypto.open_sealed(
                        old,
                        row.wrapped,
                        _wrap_aad(row.subject_id),
                        f"subject_keys[{row.subject_id}]",
                    )
                    session.execute(
                        update(SubjectKey)
                        .where(SubjectKey.subject_id == row.subject_id)
                        .values(
                            master_key_id=new_id,
                            wrapped=crypto.seal(master, raw, _wrap_aad(row.subject_id)),
                        )
                    )
                done += len(rows)
        with factory() as session:
            in_use = set(session.scalars(select(SubjectKey.master_key_id).distinct()))
        for key_id in list(self.keyring.master_keys):
            if key_id != new_id and key_id not in in_use and (purge or key_id != previous):
                self.keyring.retire(key_id)
        return done
