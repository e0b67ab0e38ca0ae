"""Shapes of the rights API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from privault.rights.service import MAX_TEXT, HistoryEntry, Refusal, RequestView


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


class HistoryOut(BaseModel):
    at: datetime
    actor: str
    state: str
    note: str

    @classmethod
    def of(cls, entry: HistoryEntry) -> HistoryOut:
        return cls(at=entry.at, actor=entry.actor, state=entry.state, note=entry.note)


class StaffRequestOut(RequestOut):
    overdue: bool


class StaffRequestsOut(BaseModel):
    requests: list[StaffRequestOut]


class StaffRequestDetailOut(StaffRequestOut):
    details: str | None = Field(description="What the person wrote with the request.")
    history: list[HistoryOut]


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(min_length=1, max_length=MAX_TEXT)


class ExtendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=MAX_TEXT, description="The person is told.")
    to: datetime | None = Field(
        default=None, description="The new deadline; by default as far as the policy allows."
    )


class CompleteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: str = Field(min_length=1, max_length=MAX_TEXT, description="The person is told.")


class RefuseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grounds: Refusal
    reason: str = Field(min_length=1, max_length=MAX_TEXT, description="The person is told.")


class StaffLoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=60)
    password: str = Field(min_length=1, max_length=1024)
    code: str = Field(min_length=6, max_length=6, description="From the authenticator app.")


class StaffLoginOut(BaseModel):
    token: str
    role: str
