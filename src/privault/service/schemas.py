"""Request and response shapes of the account and profile API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from privault.service.profile import Visibility


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class RegisterIn(Strict):
    email: EmailStr = Field(max_length=254)
    password: str = Field(min_length=1, max_length=1024)
    display_name: str | None = Field(default=None, min_length=1, max_length=100)


class RegisterOut(BaseModel):
    subject_id: str
    room_id: str


class VerifyIn(Strict):
    token: str = Field(min_length=1, max_length=200)


class VerifyOut(BaseModel):
    verified: bool


class LoginIn(Strict):
    email: EmailStr = Field(max_length=254)
    password: str = Field(min_length=1, max_length=1024)


class LoginOut(BaseModel):
    token: str
    expires_in: int = Field(description="Seconds until the session expires.")


class ClosedOut(BaseModel):
    erasure_request_id: str
    erasure_due_at: datetime = Field(description="When the erasure will be complete at the latest.")


class PasswordIn(Strict):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


class MePatch(Strict):
    """Correct your contact details: the fields present change. A new email address must
    be confirmed again through the link sent to it."""

    email: EmailStr | None = Field(default=None, max_length=254)
    display_name: str | None = Field(default=None, min_length=1, max_length=100)


class MeOut(BaseModel):
    subject_id: str
    email: str
    display_name: str | None
    room_id: str | None
    email_verified: bool


class ProfileFieldOut(BaseModel):
    value: Any
    visibility: Visibility


class ProfileOut(BaseModel):
    fields: dict[str, ProfileFieldOut]


class ProfileFieldIn(Strict):
    """Send ``value`` to set it (``null`` clears it), ``visibility`` to change who sees it."""

    value: Any = None
    visibility: Visibility | None = None


class ProfilePatch(Strict):
    """Only the fields present change."""

    name: ProfileFieldIn | None = None
    pictures: ProfileFieldIn | None = None
    gender: ProfileFieldIn | None = None
    birthday: ProfileFieldIn | None = None
    relationship_status: ProfileFieldIn | None = None
    interests: ProfileFieldIn | None = None
    education: ProfileFieldIn | None = None
    employment: ProfileFieldIn | None = None


class ErrorOut(BaseModel):
    """Some errors carry more keys for the client to act on: ``policy_acceptance_required``
    has the ``version`` to accept."""

    model_config = ConfigDict(extra="allow")

    error: str = Field(description="A stable code.")
    detail: str = Field(description="A sentence for people.")
