"""Request and response shapes of the policy and acceptance API (P8.1, P8.3)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field, StrictInt


class PolicyOut(BaseModel):
    version: int = Field(description="The current version: the one a person must accept.")
    effective_date: date = Field(description="When this version takes effect.")
    url: str = Field(description="Where the version is published, readable by anyone.")


class AnswerOut(BaseModel):
    version: int
    accepted: bool
    at: datetime


class AcceptanceOut(BaseModel):
    version: int = Field(description="The current version of the privacy policy.")
    url: str = Field(description="Where the current version is published.")
    accepted: bool = Field(description="Whether you accepted the current version.")
    answer: AnswerOut | None = Field(
        description="Your latest answer to the current version, if you gave one."
    )
    last_accepted: AnswerOut | None = Field(
        description="The latest version you accepted, and when."
    )


class VersionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: StrictInt = Field(ge=1, description="The version you answer: the current one.")


class LinkOut(BaseModel):
    what: str
    method: str
    href: str


class RefusedOut(BaseModel):
    version: int
    refused_at: datetime
    open: list[LinkOut] = Field(
        description="What stays open to you: exporting your data and closing your account."
    )
