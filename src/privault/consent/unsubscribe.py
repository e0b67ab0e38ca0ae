"""One-click unsubscribe links (RFC 8058, P0.2) that need no login and no table.

A link names the person and the channel and carries an HMAC of both under the keyring's
``unsubscribe`` secret: ``<subject_id>.<channel>.<HMAC-SHA256 base64url>``. The signature is
the authorisation, so a mail client may post to it from nowhere, without cookies; a link
altered in any part fails the check and changes nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from privault.consent.channels import ChannelConsents, ConsentChannel, Source
from privault.consent.errors import UnsubscribeLinkInvalid

_SUBJECT = re.compile(r"[0-9a-f]{32}")
_INVALID = "this unsubscribe link is not one of ours: check that it was copied whole"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class UnsubscribeLinks:
    """Makes and checks unsubscribe tokens; ``base_url`` is where the links point."""

    def __init__(self, secret: bytes, base_url: str) -> None:
        self._secret = secret
        self.base_url = base_url.rstrip("/")

    def _signature(self, subject_id: str, channel: str) -> bytes:
        return hmac.new(self._secret, f"{subject_id}|{channel}".encode(), hashlib.sha256).digest()

    def token(self, subject_id: str, channel: ConsentChannel) -> str:
        return f"{subject_id}.{channel.value}.{_b64(self._signature(subject_id, channel.value))}"

    def url(self, subject_id: str, channel: ConsentChannel) -> str:
        """The link a mail or letter carries to withdraw ``channel`` with one click."""
        return f"{self.base_url}/unsubscribe/{self.token(subject_id, channel)}"

    def read(self, token: str) -> tuple[str, ConsentChannel]:
        """The subject id and channel a token names; raises ``UnsubscribeLinkInvalid`` for
        a token that is malformed or whose signature does not check (compared in constant
        time)."""
        parts = token.split(".")
        if len(parts) != 3 or len(token) > 200:
            raise UnsubscribeLinkInvalid(_INVALID)
        subject_id, channel, signature = parts
        expected = _b64(self._signature(subject_id, channel)).encode()
        if not hmac.compare_digest(expected, signature.encode("ascii", "replace")):
            raise UnsubscribeLinkInvalid(_INVALID)
        if not _SUBJECT.fullmatch(subject_id) or channel not in set(ConsentChannel):
            raise UnsubscribeLinkInvalid(_INVALID)
        return subject_id, ConsentChannel(channel)


class Unsubscriber:
    """Withdraws the consent an unsubscribe link names."""

    def __init__(self, links: UnsubscribeLinks, consents: ChannelConsents) -> None:
        self.links = links
        self.consents = consents

    def check(self, token: str) -> ConsentChannel:
        """The channel a genuine link withdraws, changing nothing (the page before the
        button). Raises ``UnsubscribeLinkInvalid``."""
        return self.links.read(token)[1]

    def unsubscribe(self, token: str) -> ConsentChannel:
        """Withdraw the channel the link names (source ``unsubscribe``); the same answer
        when it was already withdrawn or the person is erased. Returns the channel.
        Raises ``UnsubscribeLinkInvalid``, having changed nothing."""
        subject_id, channel = self.links.read(token)
        self.consents.withdraw(subject_id, channel, Source.UNSUBSCRIBE)
        return channel
