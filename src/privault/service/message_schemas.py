"""Request and response shapes of messages to support (P2.10)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from privault.service.messages import MAX_BODY, MAX_SUBJECT, Channel
from privault.service.schemas import Strict


class MessageIn(Strict):
    subject: str = Field(min_length=1, max_length=MAX_SUBJECT)
    body: str = Field(min_length=1, max_length=MAX_BODY)


class MessageOut(BaseModel):
    id: str
    channel: Channel
    subject: str
    body: str
    received_at: datetime
    sender_email: str | None = Field(description="Only for messages sent without an account.")
    ip_prefix: str | None = Field(description="The network it came from: IPv4 /24, IPv6 /48.")


class MessagesOut(BaseModel):
    messages: list[MessageOut]
