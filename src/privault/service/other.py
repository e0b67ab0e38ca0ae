"""Anything else people send us (P2.11): what fits none of the policy's other categories,
kept as category ``other``, sealed under the sender's key, and erased by that category's
retention like every table of the data map.

What arrives this way today is the files a mail to the privacy address encloses. Text is
kept as text; anything else as base64, so the person's export shows it as it came.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from privault.clock import Clock, aware
from privault.db import new_id
from privault.mail.reading import Attachment
from privault.service.cards import redact
from privault.service.models import OtherItem
from privault.vault import Field, Vault

#: What people send us is read to deal with what they sent it for.
PURPOSE = "support"


@dataclass(frozen=True)
class OtherView:
    id: str
    source: str
    name: str
    content_type: str
    #: The content: text as it came, anything else base64-encoded.
    content: str
    encoding: str
    received_at: datetime


def _field(item_id: str) -> Field:
    return Field("other_items", "content_ct", item_id)


def _content(attachment: Attachment) -> tuple[str, str]:
    if attachment.content_type.startswith("text/"):
        try:
            return redact(attachment.data.decode("utf-8")), "text"
        except UnicodeDecodeError:
            pass
    return base64.b64encode(attachment.data).decode("ascii"), "base64"


class OtherItemService:
    """Keeps and reads what people send that fits no other category."""

    def __init__(self, session: Session, vault: Vault, clock: Clock) -> None:
        self.session = session
        self.vault = vault
        self.clock = clock

    def keep(self, subject_id: str, source: str, attachment: Attachment) -> str:
        """Seal ``attachment`` (its name, type and content) as ``subject_id``'s data of
        category ``other``; returns its id. Card numbers in a text are struck out."""
        item_id = new_id()
        content, encoding = _content(attachment)
        sealed: dict[str, Any] = {
            "name": attachment.name,
            "content_type": attachment.content_type,
            "encoding": encoding,
            "content": content,
        }
        self.session.add(
            OtherItem(
                id=item_id,
                subject_id=subject_id,
                source=source,
                content_ct=self.vault.encrypt_json(
                    self.session, subject_id, _field(item_id), sealed
                ),
                created_at=self.clock.now(),
            )
        )
        self.session.flush()
        return item_id

    def items(self, subject_id: str) -> list[OtherView]:
        """The subject's items, oldest first, opened for support."""
        rows = self.session.scalars(
            select(OtherItem)
            .where(OtherItem.subject_id == subject_id)
            .order_by(OtherItem.created_at, OtherItem.id)
        )
        views = []
        for row in rows:
            opened = self.vault.decrypt_json(
                self.session, subject_id, _field(row.id), row.content_ct, purpose=PURPOSE
            )
            assert isinstance(opened, dict)
            views.append(
                OtherView(
                    row.id,
                    row.source,
                    opened["name"],
                    opened["content_type"],
                    opened["content"],
                    opened["encoding"],
                    aware(row.created_at),
                )
            )
        return views
