"""Newsletter subscriptions with double opt-in (P2.5), with or without an account.

Anyone may give an address; it is kept sealed under a subject of its own (or the
account's, when the address is an account's) and found by a blind index. Nothing is sent
to it but a confirmation link until that link is followed: only then is the newsletter
consent given, with source ``double_opt_in``.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from privault.clock import Clock, aware
from privault.consent.channels import ChannelConsents, ConsentChannel, Source, channel_of
from privault.consent.errors import EmailUnverified, OptInLinkGone, OptInLinkInvalid
from privault.consent.models import OptInLink, Subscriber
from privault.db import new_id
from privault.errors import InvalidInput
from privault.notify.outbox import Outbox
from privault.service.accounts import AccountService, normalise_email
from privault.service.emails import check_email
from privault.vault import Field, Vault
from privault.vault.crypto import token_digest

#: The blind-index kind of subscribers' addresses (accounts use "email").
INDEX_KIND = "newsletter_email"
#: The policy's purpose for everything here.
NEWSLETTERS = "newsletters"
LINK_DAYS = 7
#: A new confirmation link goes to an address at most this often, however often it is given.
LINK_INTERVAL = timedelta(minutes=10)
MAX_NAME = 100


def _name(raw: str | None) -> str | None:
    name = " ".join((raw or "").split())
    if len(name) > MAX_NAME:
        raise InvalidInput(f"the name must be at most {MAX_NAME} characters long")
    return name or None


def _field(subscriber_id: str, column: str) -> Field:
    return Field("subscribers", column, subscriber_id)


class Newsletter:
    """Subscriptions, their confirmation, and the privacy centre's channel choices."""

    def __init__(
        self,
        session: Session,
        vault: Vault,
        outbox: Outbox,
        clock: Clock,
        consents: ChannelConsents,
        accounts: AccountService,
        *,
        base_url: str,
    ) -> None:
        self.session = session
        self.vault = vault
        self.outbox = outbox
        self.clock = clock
        self.consents = consents
        self.accounts = accounts
        self.base_url = base_url.rstrip("/")

    def index_of(self, email: str) -> bytes:
        return self.vault.blind_index(INDEX_KIND, normalise_email(email))

    def subscribe(self, email: str, name: str | None) -> None:
        """Ask for the newsletter at ``email``: a confirmation link (seven days) goes there;
        giving the address again sends a new one (at most one every ten minutes), never a
        second subscriber. An account's address subscribes that account. Says nothing of
        whether the address was known. Raises ``InvalidInput`` for the address or name."""
        address = check_email(email, what="the email address")
        clean_name = _name(name)
        index = self.index_of(address)
        owner = self.accounts.subject_of(address)
        subscriber = self._by_index(index)
        if subscriber is None:
            subscriber = self._create(owner, index, address, clean_name)
        else:
            if owner is not None and subscriber.subject_id != owner:
                self._adopt(subscriber, owner)
            if clean_name and subscriber.confirmed_at is None:
                # Until confirmed it is all unproven; after, a stranger may not rename them.
                subscriber.name_ct = self._seal(subscriber, "name_ct", clean_name)
        if not self._link_sent_lately(subscriber.id):
            self._send_link(subscriber, address)

    def confirm(self, token: str) -> str:
        """Follow a confirmation link: the newsletter consent is given (source
        ``double_opt_in``) and the address counts as confirmed. Returns the subject id.
        Raises ``OptInLinkInvalid`` for an unknown link, ``OptInLinkGone`` for a used or
        expired one."""
        digest = token_digest(token)
        link = self.session.get(OptInLink, digest)
        if link is None:
            raise OptInLinkInvalid("this confirmation link is not one of ours")
        now = self.clock.now()
        if link.used_at is not None:
            raise OptInLinkGone("this confirmation link was already used")
        if aware(link.expires_at) <= now:
            raise OptInLinkGone("this confirmation link has expired: subscribe again for a new one")
        claimed = self.session.execute(
            update(OptInLink)
            .where(OptInLink.token_hash == digest, OptInLink.used_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        if cast(CursorResult[Any], claimed).rowcount != 1:
            raise OptInLinkGone("this confirmation link was already used")
        subscriber = self.session.get(Subscriber, link.subscriber_id)
        assert subscriber is not None  # the link goes with its subscriber (ON DELETE CASCADE)
        subscriber.confirmed_at = now
        subscriber.last_activity_at = now
        self.consents.give(subscriber.subject_id, ConsentChannel.NEWSLETTER, Source.DOUBLE_OPT_IN)
        return subscriber.subject_id

    def choose(
        self, subject_id: str, wanted: dict[str, bool], source: Source = Source.API
    ) -> dict[str, bool]:
        """The privacy centre's choices for the account ``subject_id``: each channel named
        is set, each change one proof row; returns every channel's state. The newsletter
        asked for here needs no link: the account's address is already proven by its
        verification, so the consent's source is ``verified_account``. Raises
        ``UnknownChannel`` (nothing changed), ``EmailUnverified`` for a newsletter asked
        for before the account's address is verified."""
        channels = {channel_of(name): given for name, given in wanted.items()}
        newsletter = channels.pop(ConsentChannel.NEWSLETTER, None)
        if newsletter and not self.consents.is_given(subject_id, ConsentChannel.NEWSLETTER):
            self._subscribe_account(subject_id)
            self.consents.give(subject_id, ConsentChannel.NEWSLETTER, Source.VERIFIED_ACCOUNT)
        elif newsletter is False:
            self.consents.withdraw(subject_id, ConsentChannel.NEWSLETTER, source)
        self.consents.change(subject_id, {c.value: v for c, v in channels.items()}, source)
        return self.consents.state(subject_id)

    # -- the rows ------------------------------------------------------------------------

    def _by_index(self, index: bytes) -> Subscriber | None:
        return self.session.scalar(select(Subscriber).where(Subscriber.email_index == index))

    def _seal(self, subscriber: Subscriber, column: str, value: str) -> bytes:
        return self.vault.encrypt(
            self.session, subscriber.subject_id, _field(subscriber.id, column), value
        )

    def _create(
        self, owner: str | None, index: bytes, address: str, name: str | None
    ) -> Subscriber:
        now = self.clock.now()
        try:
            with self.session.begin_nested():
                subject_id = owner or self.vault.create_subject(self.session)
                subscriber = Subscriber(
                    id=new_id(),
                    subject_id=subject_id,
                    email_index=index,
                    created_at=now,
                    last_activity_at=now,
                )
                subscriber.email_ct = self._seal(subscriber, "email_ct", address)
                subscriber.name_ct = self._seal(subscriber, "name_ct", name) if name else None
                self.session.add(subscriber)
                self.session.flush()
        except IntegrityError:
            # The same address given twice at once: the other request made the subscriber.
            existing = self._by_index(index)
            if existing is None:
                raise
            return existing
        return subscriber

    def _adopt(self, subscriber: Subscriber, owner: str) -> None:
        """Move a subscription made before its address became an account's to the account:
        the sealed values are opened under the old subject and sealed under the account's."""
        opened = {
            column: self.vault.decrypt(
                self.session,
                subscriber.subject_id,
                _field(subscriber.id, column),
                blob,
                purpose=NEWSLETTERS,
            )
            for column in ("email_ct", "name_ct")
            if (blob := getattr(subscriber, column)) is not None
        }
        subscriber.subject_id = owner
        for column, value in opened.items():
            setattr(subscriber, column, self._seal(subscriber, column, value))
        self.session.flush()

    def _subscribe_account(self, subject_id: str) -> None:
        account = self.accounts.summary(subject_id, purpose=NEWSLETTERS)
        if not account.email_verified:
            raise EmailUnverified(
                "confirm your email address first: newsletters go only to a proven address"
            )
        index = self.index_of(account.email)
        # The account's address replaces any it subscribed with before.
        self.session.execute(
            delete(Subscriber).where(
                Subscriber.subject_id == subject_id, Subscriber.email_index != index
            )
        )
        subscriber = self._by_index(index) or self._create(subject_id, index, account.email, None)
        if subscriber.subject_id != subject_id:
            self._adopt(subscriber, subject_id)
        now = self.clock.now()
        subscriber.confirmed_at = now
        subscriber.last_activity_at = now

    def _link_sent_lately(self, subscriber_id: str) -> bool:
        # A link's issue time is its expiry less its lifetime.
        lately = self.clock.now() + timedelta(days=LINK_DAYS) - LINK_INTERVAL
        return (
            self.session.scalar(
                select(OptInLink.token_hash).where(
                    OptInLink.subscriber_id == subscriber_id, OptInLink.expires_at > lately
                )
            )
            is not None
        )

    def _send_link(self, subscriber: Subscriber, address: str) -> None:
        token = secrets.token_urlsafe(32)
        self.session.add(
            OptInLink(
                token_hash=token_digest(token),
                subscriber_id=subscriber.id,
                channel=ConsentChannel.NEWSLETTER.value,
                expires_at=self.clock.now() + timedelta(days=LINK_DAYS),
            )
        )
        # The mail quotes nothing the requester typed: whoever gave the address is not
        # necessarily its owner, and must not be able to write to them through us.
        self.outbox.enqueue(
            self.session,
            subscriber.subject_id,
            address,
            "newsletter_confirm",
            {"link": f"{self.base_url}/newsletter/confirm/{token}", "days": LINK_DAYS},
        )
