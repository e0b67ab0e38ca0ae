"""Shapes of the rights API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from privault.rights.service import MAX_TEXT, RequestView


class RequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str = Field(
        description="access, rectification, erasure, portability, restriction or objection."
    )
    details: str | None = Field(
        default=None,
        max_length=MAX_TEXT,
        description="What you want, in your words (for a rectification: what is wrong).",
    )


class RequestOut(BaseModel):
    id: str
    kind: str
    channel: str
    state: str
    received_at: datetime
    verified_at: datetime | None
    due_at: datetime | None = Field(description="When the answer is due, extension included.")
    extension_reason: str | None
    closed_at: datetime | None
    outcome: str | None

    @classmethod
    def of(cls, view: RequestView) -> RequestOut:
        return cls(
            id=view.id,
            kind=view.kind,
            channel=view.channel,
            state=view.state,
            received_at=view.received_at,
            verified_at=view.verified_at,
            due_at=view.deadline,
            extension_reason=view.extension_reason,
            closed_at=view.closed_at,
            outcome=view.outcome,
        )


class RequestsOut(BaseModel):
    requests: list[RequestOut]
