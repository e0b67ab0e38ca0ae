"""Whether a message really comes from the domain in its From line (P9.3).

Anyone can write any From line. Two proofs are taken:

- a valid DKIM signature whose signing domain (``d=``) is the From domain or a parent of
  it (relaxed alignment, as DMARC counts it), covering the From header and the whole body
  (a signature with ``l=`` covers only part of the body and is not taken);
- the ``Authentication-Results`` header (RFC 8601) that our own MTA put on top of the
  message, naming one of the trusted authserv-ids and saying ``dmarc=pass`` for the From
  domain. Only the topmost header counts, and only when the message came through that
  MTA: anyone can write such a header lower down, or on a message sent to us directly.

Looking up a DKIM key is a DNS query; ``Resolver`` makes it injectable (tests sign with
keys they make and answer the query themselves).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from enum import StrEnum

import dkim
from dkim.dnsplug import get_txt

#: ``dkimpy``'s DNS look-up: a TXT record's text for a name, or ``None``.
Resolver = Callable[..., bytes | None]
DNS: Resolver = get_txt

_DMARC = re.compile(r"\bdmarc\s*=\s*(\w+)(?P<props>[^;]*)", re.IGNORECASE)
_HEADER_FROM = re.compile(r"\bheader\.from\s*=\s*\"?([^\s;\"]+)", re.IGNORECASE)


class Proof(StrEnum):
    DKIM = "dkim"
    DMARC = "dmarc"
    NONE = "none"


def aligned(signer: str, domain: str) -> bool:
    """Relaxed alignment: the signer is the From domain or a parent of it with at least two
    labels (``example.org`` signs for ``mail.example.org``; ``org`` signs for no one)."""
    signer, domain = signer.lower().rstrip("."), domain.lower().rstrip(".")
    return "." in signer and (domain == signer or domain.endswith("." + signer))


def dkim_passes(raw: bytes, domain: str, resolver: Resolver = DNS) -> bool:
    """Whether some DKIM signature of ``raw`` verifies, is aligned with ``domain`` and covers
    From and the whole body. Broken signatures and messages are simply not proof."""
    try:
        signer = dkim.DKIM(raw, minkey=1024)
        count = sum(1 for name, _ in signer.headers if name.lower() == b"dkim-signature")
    except Exception:
        return False
    for index in range(min(count, 5)):
        try:
            if not signer.verify(idx=index, dnsfunc=resolver):
                continue
        except Exception:  # noqa: S112 - a bad signature proves nothing; try the next
            continue
        fields = signer.signature_fields
        covered = {h.strip().lower() for h in fields.get(b"h", b"").split(b":")}
        if b"l" in fields or b"from" not in covered:
            continue
        if aligned(fields.get(b"d", b"").decode("ascii", "replace"), domain):
            return True
    return False


def dmarc_passes(auth_results: Iterable[str], domain: str, trusted: Iterable[str]) -> bool:
    """Whether the topmost Authentication-Results header is one of ``trusted`` and says
    DMARC passed for ``domain``."""
    headers = list(auth_results)
    allowed = {t.strip().lower() for t in trusted if t.strip()}
    if not headers or not allowed:
        return False
    top = headers[0]
    authserv = top.split(";", 1)[0].strip().split()
    if not authserv or authserv[0].lower() not in allowed:
        return False
    for match in _DMARC.finditer(top):
        if match.group(1).lower() != "pass":
            continue
        said = _HEADER_FROM.search(match.group("props"))
        if said is None or said.group(1).lower().rstrip(".") == domain.lower().rstrip("."):
            return True
    return False


def proof(
    raw: bytes,
    domain: str | None,
    auth_results: Iterable[str],
    *,
    trusted: Iterable[str],
    resolver: Resolver = DNS,
) -> Proof:
    """How the sender's domain is proved, if it is: DKIM first, then our MTA's word."""
    if not domain:
        return Proof.NONE
    if dkim_passes(raw, domain, resolver):
        return Proof.DKIM
    if dmarc_passes(auth_results, domain, trusted):
        return Proof.DMARC
    return Proof.NONE
