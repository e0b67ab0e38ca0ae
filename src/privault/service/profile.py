"""The profile of P2.4: every field optional, each with its own visibility (P3.15)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from privault.access.audit import AuditLog, Event
from privault.clock import Clock
from privault.db import bind_value, insert_rows
from privault.errors import InvalidInput
from privault.service.errors import UnknownProfileField
from privault.service.models import ProfileField
from privault.vault import Field, Vault

MAX_PICTURE_BYTES = 256 * 1024
# Data URL prefix -> (offset, bytes) signatures; WebP is a RIFF container tagged WEBP.
PICTURE_TYPES: dict[str, tuple[tuple[int, bytes], ...]] = {
    "data:image/png": ((0, b"\x89PNG\r\n\x1a\n"),),
    "data:image/jpeg": ((0, b"\xff\xd8\xff"),),
    "data:image/webp": ((0, b"RIFF"), (8, b"WEBP")),
}


class Visibility(StrEnum):
    PRIVATE = "private"
    MEMBERS = "members"
    PUBLIC = "public"


def _text(limit: int) -> Callable[[str, Any], Any]:
    def check(name: str, value: Any) -> Any:
        if not isinstance(value, str) or not value.strip():
            raise InvalidInput(f"profile field {name} must be non-empty text")
        if len(value) > limit:
            raise InvalidInput(f"profile field {name} is longer than {limit} characters")
        return value.strip()

    return check


def _birthday(name: str, value: Any) -> Any:
    try:
        day = date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        day = None
    if day is None:
        raise InvalidInput(f"profile field {name} must be a date like 1990-04-30")
    if day < date(1900, 1, 1):
        raise InvalidInput(f"profile field {name} must be 1900-01-01 or later")
    return day.isoformat()


def _interests(name: str, value: Any) -> Any:
    if not isinstance(value, list) or len(value) > 50:
        raise InvalidInput(f"profile field {name} must be a list of at most 50 entries")
    return [_text(100)(name, item) for item in value]


def _pictures(name: str, value: Any) -> Any:
    if not isinstance(value, list) or len(value) > 3:
        raise InvalidInput(f"profile field {name} must be a list of at most 3 images")
    for item in value:
        kind, _, data = item.partition(";base64,") if isinstance(item, str) else ("", "", "")
        signature = PICTURE_TYPES.get(kind)
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if signature is None or any(raw[at : at + len(m)] != m for at, m in signature):
            raise InvalidInput(f"profile field {name} takes PNG, JPEG or WebP data URLs")
        if len(raw) > MAX_PICTURE_BYTES:
            raise InvalidInput(f"each of {name} must be at most {MAX_PICTURE_BYTES // 1024} KiB")
    return value


VALIDATORS: dict[str, Callable[[str, Any], Any]] = {
    "name": _text(200),
    "pictures": _pictures,
    "gender": _text(60),
    "birthday": _birthday,
    "relationship_status": _text(60),
    "interests": _interests,
    "education": _text(1000),
    "employment": _text(1000),
}


@dataclass(frozen=True)
class ProfileEntry:
    value: Any
    visibility: Visibility


@dataclass(frozen=True)
class Change:
    """``value`` absent means keep the value; ``clear`` removes it."""

    visibility: Visibility | None = None
    value: Any = None
    has_value: bool = False


def _field(subject_id: str, name: str) -> Field:
    return Field("profile_fields", "value_ct", f"{subject_id}/{name}")


class ProfileService:
    def __init__(
        self, session: Session, vault: Vault, audit: AuditLog, clock: Clock, fields: Sequence[str]
    ) -> None:
        self.session = session
        self.vault = vault
        self.audit = audit
        self.clock = clock
        self.fields = tuple(fields)  # from the policy's "profile" category

    def _valid(self, name: str, value: Any) -> Any:
        """The value as stored, or ``InvalidInput`` saying what is wrong with it."""
        clean = VALIDATORS[name](name, value)
        if name == "birthday" and clean > self.clock.now().date().isoformat():
            raise InvalidInput(f"profile field {name} must not be in the future")
        return clean

    def problems(self, changes: dict[str, Change]) -> dict[str, str]:
        """What ``update`` would refuse in ``changes``, field by field (a form shows each
        sentence next to its field); empty when every value is acceptable."""
        found = {}
        for name, change in changes.items():
            if name not in self.fields:
                found[name] = f"unknown profile field; known: {', '.join(self.fields)}"
            elif change.has_value and change.value is not None:
                try:
                    self._valid(name, change.value)
                except InvalidInput as exc:
                    found[name] = exc.detail
        return found

    def read(self, subject_id: str) -> dict[str, ProfileEntry]:
        """Every profile field of the subject: unset ones as ``None`` and private. For the
        person's own settings (the purpose personalisation)."""
        out = {name: ProfileEntry(None, Visibility.PRIVATE) for name in self.fields}
        for row in self.session.scalars(
            select(ProfileField).where(ProfileField.subject_id == subject_id)
        ):
            value = json.loads(
                self.vault.decrypt(
                    self.session,
                    subject_id,
                    _field(subject_id, row.field),
                    row.value_ct,
                    purpose="personalisation",
                )
            )
            out[row.field] = ProfileEntry(value, Visibility(row.visibility))
        return out

    def published(self, subject_id: str, audience: Collection[Visibility]) -> dict[str, Any]:
        """The values of the fields whose visibility is in ``audience``, in the policy's order.

        The publication path (P0.3, P3.15): only the fields shown are decrypted.
        """
        rows = self.session.scalars(
            select(ProfileField).where(
                ProfileField.subject_id == subject_id,
                ProfileField.visibility.in_([str(v) for v in audience]),
            )
        )
        found = {
            row.field: json.loads(
                self.vault.decrypt(
                    self.session,
                    subject_id,
                    _field(subject_id, row.field),
                    row.value_ct,
                    purpose="publication",
                )
            )
            for row in rows
        }
        return {name: found[name] for name in self.fields if name in found}

    def update(self, subject_id: str, changes: dict[str, Change]) -> dict[str, ProfileEntry]:
        """Apply changes; a ``None`` value clears the field. Raises ``InvalidInput`` saying why."""
        unknown = sorted(set(changes) - set(self.fields))
        if unknown:
            raise UnknownProfileField(
                f"unknown profile field {unknown[0]!r}; known: {', '.join(self.fields)}"
            )
        now = self.clock.now()
        for name, change in changes.items():
            row = self.session.get(ProfileField, (subject_id, name))
            if change.has_value and change.value is None:
                if row is not None:
                    self.session.delete(row)
                continue
            if change.has_value:
                sealed = self.vault.encrypt(
                    self.session,
                    subject_id,
                    _field(subject_id, name),
                    json.dumps(self._valid(name, change.value), separators=(",", ":")),
                )
                if row is None:
                    row = ProfileField(
                        subject_id=subject_id, field=name, visibility=Visibility.PRIVATE
                    )
                    self.session.add(row)
                row.value_ct = sealed
            elif row is None:
                raise InvalidInput(f"profile field {name} has no value to set the visibility of")
            if change.visibility is not None:
                row.visibility = change.visibility
            row.updated_at = now
        self.session.flush()
        self.audit.record(
            self.session,
            "api",
            Event.PROFILE_UPDATED,
            actor=f"subject:{subject_id}",
            subject_id=subject_id,
            categories=["profile"],
            detail={"fields": sorted(changes)},
        )
        return self.read(subject_id)

    def import_values(self, rows: Sequence[tuple[str, str, Any, Visibility]]) -> int:
        """The batch path: insert ``(subject_id, field, value, visibility)`` rows for unset fields.

        Values are validated, sealed in one pass and written with one executemany.
        """
        stamp = bind_value(self.session, ProfileField, "updated_at", self.clock.now())
        items = []
        for subject_id, name, value, _ in rows:
            if name not in self.fields:
                raise UnknownProfileField(f"unknown profile field {name!r}")
            items.append(
                (subject_id, _field(subject_id, name), json.dumps(self._valid(name, value)))
            )
        sealed = self.vault.encrypt_many(self.session, items)
        insert_rows(
            self.session,
            ProfileField,
            ("subject_id", "field", "value_ct", "visibility", "updated_at"),
            [(s, n, ct, str(v), stamp) for (s, n, _, v), ct in zip(rows, sealed, strict=True)],
        )
        return len(rows)
