"""Request and response shapes of usernames, posts and public pages (P2.9, P3.15)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from privault.service.posts import MAX_BODY
from privault.service.profile import Visibility
from privault.service.schemas import Strict


class UsernameIn(Strict):
    username: str = Field(
        min_length=1,
        max_length=100,
        description="3 to 30 of a-z, 0-9, _ . -; unique whatever the letter case.",
    )


class UsernameOut(BaseModel):
    username: str | None


class PostIn(Strict):
    body: str = Field(min_length=1, max_length=MAX_BODY)
    visibility: Visibility = Field(
        default=Visibility.PRIVATE,
        description="Who sees it: private (the default), members, public.",
    )


class PostPatch(Strict):
    """Only the fields present change."""

    body: str | None = Field(default=None, min_length=1, max_length=MAX_BODY)
    visibility: Visibility | None = None


class PostOut(BaseModel):
    id: str
    body: str
    visibility: Visibility
    created_at: datetime
    updated_at: datetime


class PostsOut(BaseModel):
    posts: list[PostOut]


class PublicPostOut(BaseModel):
    id: str
    body: str
    created_at: datetime


class PublicPageOut(BaseModel):
    username: str
    fields: dict[str, Any] = Field(description="Only the profile fields this viewer may see.")
    posts: list[PublicPostOut] = Field(
        description="Only the posts this viewer may see, newest first."
    )
