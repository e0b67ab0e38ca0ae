"""A person's public page: only what their settings allow, to whom they allow it (P0.3, P3.15).

Anonymous visitors see what is public; members (anyone logged in, the owner included, so
that the owner's view of their own page is an honest preview) see what is public or for
members. Private fields and posts are not even decrypted. A username that is unknown,
belongs to a closed account, or whose owner shows nothing to this viewer gets the same
``PersonNotFound``, so the page does not reveal that an account exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from privault.clock import aware
from privault.errors import InvalidInput
from privault.service.errors import PersonNotFound
from privault.service.models import Account, Post, Username
from privault.service.posts import PURPOSE, body_field, normalise_username
from privault.service.profile import ProfileService, Visibility
from privault.vault import Vault

#: The newest posts shown on a page.
MAX_POSTS = 50
NOT_FOUND = "no public page under this username"


@dataclass(frozen=True)
class PublicPost:
    id: str
    body: str
    created_at: datetime


@dataclass(frozen=True)
class PublicPage:
    username: str
    fields: dict[str, Any]
    posts: list[PublicPost]


def audience_of(viewer_id: str | None) -> frozenset[Visibility]:
    """What a viewer may see: public only for a visitor, members too for anyone logged in."""
    if viewer_id is None:
        return frozenset({Visibility.PUBLIC})
    return frozenset({Visibility.PUBLIC, Visibility.MEMBERS})


class PublicationService:
    """Reads for the publication purpose: a page, decrypted server-side under its rules."""

    def __init__(self, session: Session, vault: Vault, profiles: ProfileService) -> None:
        self.session = session
        self.vault = vault
        self.profiles = profiles

    def page(self, username: str, viewer_id: str | None) -> PublicPage:
        """The page of ``username`` as ``viewer_id`` (``None``: an anonymous visitor) may see it.

        Raises ``PersonNotFound`` for an unknown username, a closed account, and a person
        who shows this viewer nothing, alike.
        """
        try:
            name = normalise_username(username)
        except InvalidInput:
            raise PersonNotFound(NOT_FOUND) from None
        owner = self.session.scalar(
            select(Username.subject_id)
            .join(Account, Account.subject_id == Username.subject_id)
            .where(
                Username.username_index == self.vault.blind_index("username", name),
                Account.closed_at.is_(None),
            )
        )
        if owner is None:
            raise PersonNotFound(NOT_FOUND)
        audience = audience_of(viewer_id)
        fields = self.profiles.published(owner, audience)
        rows = self.session.scalars(
            select(Post)
            .where(Post.subject_id == owner, Post.visibility.in_([str(v) for v in audience]))
            .order_by(Post.created_at.desc(), Post.id)
            .limit(MAX_POSTS)
        )
        posts = [
            PublicPost(
                id=row.id,
                body=self.vault.decrypt(
                    self.session, owner, body_field(row.id), row.body_ct, purpose=PURPOSE
                ),
                created_at=aware(row.created_at),
            )
            for row in rows
        ]
        if not fields and not posts:
            raise PersonNotFound(NOT_FOUND)
        return PublicPage(name, fields, posts)
