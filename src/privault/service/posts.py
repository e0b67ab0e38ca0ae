"""Usernames and posts (P2.9): what a person publishes, each post with its visibility (P3.15).

A post is private until its author says otherwise (P0.3). Bodies and usernames are sealed
under the author's key; a username is found by its blind index ("username", over the
lower-cased name), so names are unique regardless of case.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from privault.access.audit import AuditLog, Event
from privault.clock import Clock, aware
from privault.db import new_id
from privault.errors import InvalidInput
from privault.service.cards import refuse_card_numbers
from privault.service.errors import InvalidUsername, PostNotFound, UsernameTaken
from privault.service.models import Post, Username
from privault.service.profile import Visibility
from privault.vault import Field, Vault

#: Usernames and posts exist to be published, as far as their settings allow.
PURPOSE = "publication"
MAX_BODY = 10_000
_USERNAME = re.compile(r"[a-z0-9][a-z0-9_.-]{2,29}")


def normalise_username(raw: str) -> str:
    """The username as stored and looked up: trimmed and lower-cased.

    Raises ``InvalidUsername``: 3 to 30 of a-z, 0-9, ``_``, ``.`` and ``-``, starting with a
    letter or digit (so no name reads as a path like ``..``).
    """
    name = raw.strip().lower()
    if not _USERNAME.fullmatch(name):
        raise InvalidUsername(
            "a username is 3 to 30 characters of a-z, 0-9, '_', '.' and '-', "
            "starting with a letter or digit"
        )
    return name


@dataclass(frozen=True)
class PostView:
    id: str
    body: str
    visibility: Visibility
    created_at: datetime
    updated_at: datetime


def body_field(post_id: str) -> Field:
    return Field("posts", "body_ct", post_id)


def _body(text: str) -> str:
    if not text.strip():
        raise InvalidInput("a post's body must not be empty")
    if len(text) > MAX_BODY:
        raise InvalidInput(f"a post's body must be at most {MAX_BODY} characters long")
    return text


class PostService:
    """A person's username and posts, for the person themselves."""

    def __init__(self, session: Session, vault: Vault, audit: AuditLog, clock: Clock) -> None:
        self.session = session
        self.vault = vault
        self.audit = audit
        self.clock = clock

    def _record(self, event: Event, subject_id: str, detail: dict[str, object]) -> None:
        self.audit.record(
            self.session,
            "api",
            event,
            actor=f"subject:{subject_id}",
            subject_id=subject_id,
            categories=["publications"],
            detail=detail,
        )

    # -- username ------------------------------------------------------------------------

    def username_of(self, subject_id: str) -> str | None:
        row = self.session.get(Username, subject_id)
        if row is None:
            return None
        return self.vault.decrypt(
            self.session,
            subject_id,
            Field("usernames", "username_ct", subject_id),
            row.username_ct,
            purpose=PURPOSE,
        )

    def choose_username(self, subject_id: str, raw: str) -> str:
        """Give the subject ``raw`` (normalised) as username, replacing any earlier one.

        Raises ``InvalidUsername``, ``CardNumberRefused``, or ``UsernameTaken`` when another
        person holds the name in any letter case.
        """
        refuse_card_numbers([raw])
        name = normalise_username(raw)
        index = self.vault.blind_index("username", name)
        holder = self.session.scalar(
            select(Username.subject_id).where(Username.username_index == index)
        )
        if holder == subject_id:
            return name
        if holder is not None:
            raise UsernameTaken("this username is taken; choose another")
        sealed = self.vault.encrypt(
            self.session, subject_id, Field("usernames", "username_ct", subject_id), name
        )
        row = self.session.get(Username, subject_id)
        try:
            with self.session.begin_nested():
                if row is None:
                    row = Username(subject_id=subject_id, created_at=self.clock.now())
                    self.session.add(row)
                row.username_index = index
                row.username_ct = sealed
        except IntegrityError:
            # Someone else took the name between our check and our write.
            raise UsernameTaken("this username is taken; choose another") from None
        self._record(Event.USERNAME_CHOSEN, subject_id, {})
        return name

    def drop_username(self, subject_id: str) -> None:
        """Remove the subject's username: their public page is gone at once."""
        row = self.session.get(Username, subject_id)
        if row is not None:
            self.session.delete(row)
            self.session.flush()
            self._record(Event.USERNAME_DROPPED, subject_id, {})

    # -- posts ---------------------------------------------------------------------------

    def _view(self, row: Post) -> PostView:
        return PostView(
            id=row.id,
            body=self.vault.decrypt(
                self.session, row.subject_id, body_field(row.id), row.body_ct, purpose=PURPOSE
            ),
            visibility=Visibility(row.visibility),
            created_at=aware(row.created_at),
            updated_at=aware(row.updated_at),
        )

    def _own(self, subject_id: str, post_id: str) -> Post:
        row = self.session.get(Post, post_id)
        if row is None or row.subject_id != subject_id:
            raise PostNotFound("no such post")
        return row

    def create(
        self, subject_id: str, body: str, visibility: Visibility = Visibility.PRIVATE
    ) -> PostView:
        """A new post, private unless ``visibility`` says otherwise (P0.3).

        Raises ``InvalidInput`` for an empty or over-long body, ``CardNumberRefused``.
        """
        refuse_card_numbers([body])
        post_id = new_id()
        now = self.clock.now()
        row = Post(
            id=post_id,
            subject_id=subject_id,
            body_ct=self.vault.encrypt(self.session, subject_id, body_field(post_id), _body(body)),
            visibility=str(visibility),
            created_at=now,
            updated_at=now,
        )
        self.session.add(row)
        self.session.flush()
        self._record(Event.POST_CREATED, subject_id, {"post": post_id, "visibility": visibility})
        return self._view(row)

    def list_posts(self, subject_id: str) -> list[PostView]:
        """Every post of the subject, whatever its visibility, newest first."""
        rows = self.session.scalars(
            select(Post).where(Post.subject_id == subject_id).order_by(Post.created_at.desc())
        )
        return [self._view(row) for row in rows]

    def read(self, subject_id: str, post_id: str) -> PostView:
        """One of the subject's posts; ``PostNotFound`` for anyone else's or none."""
        return self._view(self._own(subject_id, post_id))

    def update(
        self,
        subject_id: str,
        post_id: str,
        *,
        body: str | None = None,
        visibility: Visibility | None = None,
    ) -> PostView:
        """Change the body, the visibility or both; ``None`` keeps it.

        Raises ``PostNotFound`` (also for someone else's post), ``InvalidInput``,
        ``CardNumberRefused``.
        """
        refuse_card_numbers([body])
        row = self._own(subject_id, post_id)
        if body is not None:
            row.body_ct = self.vault.encrypt(
                self.session, subject_id, body_field(post_id), _body(body)
            )
        if visibility is not None:
            row.visibility = str(visibility)
        row.updated_at = self.clock.now()
        self.session.flush()
        self._record(
            Event.POST_UPDATED,
            subject_id,
            {"post": post_id, "body": body is not None, "visibility": row.visibility},
        )
        return self._view(row)

    def delete(self, subject_id: str, post_id: str) -> None:
        """Delete one of the subject's posts; ``PostNotFound`` for anyone else's or none."""
        self.session.delete(self._own(subject_id, post_id))
        self.session.flush()
        self._record(Event.POST_DELETED, subject_id, {"post": post_id})
