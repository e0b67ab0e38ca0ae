"""Reading a message to the privacy address: its parts, and the request it makes (P9.2).

The policy asks for the subject "My Personal Data", the reason, the name and the Room ID.
People write as they write: the subject comes with ``Re:`` or ``Fwd:``, in any case,
encoded (RFC 2047); the reason is a sentence ("please delete my account and send me a
copy first"); the Room ID is written with spaces. This module reads all that and says
exactly what is missing. It never raises on a message, however broken: the worst is a
message with no readable sender or text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.headerregistry import Address
from email.message import EmailMessage, Message
from email.utils import getaddresses
from html.parser import HTMLParser

from privault.policy.model import RequestKind

#: Text read from a message at most (characters); a request fits in far less.
MAX_TEXT = 100_000
#: Digits of a Room ID (``service.rooms.ROOM_ID_DIGITS``, kept here so that reading mail
#: does not import the service).
ROOM_ID_DIGITS = 10

_PREFIX = re.compile(
    r"^\s*(?:\[[^\]]{0,40}\]\s*)?(?:re|fw|fwd|aw|sv|vs|tr|wg|antw|rif|r)\s*(?:\[\d+\])?\s*[:\uff1a]\s*",
    re.IGNORECASE,
)
_SPACE = re.compile(r"\s+")
_TAG = re.compile(r"^\s*\[[^\]]{0,40}\]\s*")
_QUOTE_HEADER = re.compile(
    r"^(?:on .{0,200} wrote:|-{2,}\s*original message\s*-{2,}|-{2,}\s*forwarded message\s*-{2,}"
    r"|from: .+)$",
    re.IGNORECASE,
)
#: A negation up to three words before a kind's word: "do not delete", "don't want you to
#: erase".
_NEGATION = re.compile(
    r"\b(?:not|don'?t|doesn'?t|never|no need to|without|instead of)\b(?:\W+\w+){0,3}\W*$",
    re.IGNORECASE,
)

#: Words that name each kind of request (matched as whole words, any case).
KIND_WORDS: dict[RequestKind, tuple[str, ...]] = {
    RequestKind.ACCESS: (
        r"access",
        r"copy",
        r"send me (?:my|the|all|everything)",
        r"what (?:personal )?(?:data|information)",
        r"which (?:personal )?(?:data|information)",
        r"see (?:my|the) (?:personal )?(?:data|information)",
        r"subject access",
        r"sar",
    ),
    RequestKind.RECTIFICATION: (
        r"correct(?:ion|ed|ing)?",
        r"rectif(?:y|ied|ication)",
        r"amend(?:ment|ed|ing)?",
        r"updat(?:e|ed|ing)",
        r"inaccurate",
        r"incorrect",
        r"wrong",
    ),
    RequestKind.ERASURE: (
        r"delet(?:e|ed|ing|ion)",
        r"eras(?:e|ed|ing|ure)",
        r"remov(?:e|ed|al|ing)",
        r"forget",
        r"forgotten",
        r"close my account",
    ),
    RequestKind.PORTABILITY: (
        r"portab(?:le|ility)",
        r"port my",
        r"machine[- ]readable",
        r"transfer (?:my|the) (?:personal )?(?:data|information)",
        r"export(?:ed|ing)?",
        r"move (?:my|the) (?:personal )?(?:data|information)",
    ),
    RequestKind.RESTRICTION: (r"restrict(?:ion|ed|ing)?", r"stop (?:using|processing)", r"suspend"),
    RequestKind.OBJECTION: (r"object(?:ion)?", r"opt[- ]out"),
}
_KIND_RE = {
    kind: re.compile(r"\b(?:" + "|".join(words) + r")\b", re.IGNORECASE)
    for kind, words in KIND_WORDS.items()
}
_ROOM_LABEL = re.compile(
    r"\broom(?:[ -]?id| number| no\.?| code)?\s*(?:is|:|#|=)?\s*((?:\d[ .-]?){9}\d)(?!\d)",
    re.IGNORECASE,
)
_ROOM_BARE = re.compile(rf"(?<![\d+])\b(\d{{{ROOM_ID_DIGITS}}})\b(?!\d)")
_NAME_LABEL = re.compile(r"^\s*(?:full )?name\s*[:=]\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)
_NAME_SAID = re.compile(
    r"\bmy name is\s+([^\W\d_][^\n,.;:!?()<>@]{0,78}?)\s*(?:[,.;:!?()\n]|$)",
    re.IGNORECASE,
)
_SIGN_OFF = re.compile(
    r"^\s*(?:kind |best |warm )?(?:regards|thanks|thank you|sincerely|yours(?: sincerely)?"
    r"|cheers|best|br)\s*[,.!]?\s*$",
    re.IGNORECASE,
)
_PERSON_NAME = re.compile(r"^[^\W\d_][^\W\d_ .'-]*(?:[ .'-]+[^\W\d_][^\W\d_.'-]*){0,5}\.?$")


@dataclass(frozen=True)
class Attachment:
    """A file a message encloses: its name and type as the sender gave them, and its bytes."""

    name: str
    content_type: str
    data: bytes


#: Enclosures kept of one message; the intake's size limit bounds their bytes.
MAX_ATTACHMENTS = 20


@dataclass(frozen=True)
class Mail:
    """What the intake needs of a message: all text, decoded; ``None`` where unreadable."""

    sender: str | None
    sender_domain: str | None
    subject: str
    message_id: str | None
    text: str
    #: Authentication-Results headers, topmost first.
    auth_results: tuple[str, ...] = ()
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True)
class Reading:
    """The request a message makes, and what it lacks."""

    kinds: tuple[RequestKind, ...]
    room_id: str | None
    name: str | None
    missing: tuple[str, ...] = field(default=())

    @property
    def complete(self) -> bool:
        return not self.missing


def parse(raw: bytes) -> Mail:
    """The parts of an RFC 5322 message. Broken headers, MIME or encodings give what could
    be read, never an exception."""
    try:
        message = message_from_bytes(raw, policy=policy.default)
    except Exception:
        return Mail(None, None, "", None, "")
    sender, domain = _sender(message)
    return Mail(
        _valid(sender) if sender else None,
        _valid(domain) if domain else None,
        subject=_valid(_header(message, "subject")),
        message_id=_valid(_header(message, "message-id").strip()) or None,
        text=_valid(_text(message)),
        auth_results=tuple(_valid(h) for h in _headers(message, "authentication-results")),
        attachments=_attachments(message),
    )


def _valid(text: str) -> str:
    """``text`` as valid Unicode: the parser keeps undecodable bytes as lone surrogates,
    which nothing downstream (JSON, UTF-8, the database) would take."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _header(message: Message, name: str) -> str:
    try:
        value = message.get(name)
        return " ".join(str(value).split()) if value is not None else ""
    except Exception:
        return ""


def _headers(message: Message, name: str) -> list[str]:
    try:
        return [" ".join(str(v).split()) for v in message.get_all(name) or []]
    except Exception:
        return []


def _sender(message: Message) -> tuple[str | None, str | None]:
    """The one From address, lower-cased; none when there are several or none."""
    try:
        found = message.get_all("from") or []
        if len(found) != 1:
            return None, None
        value = found[0]
        addresses = getattr(value, "addresses", None)
        if addresses is not None:
            if len(addresses) != 1 or not isinstance(addresses[0], Address):
                return None, None
            address = addresses[0].addr_spec
        else:
            pairs = getaddresses([str(value)])
            if len(pairs) != 1:
                return None, None
            address = pairs[0][1]
    except Exception:
        return None, None
    local, at, domain = address.strip().rpartition("@")
    if not at or not local or "." not in domain or any(c.isspace() for c in address):
        return None, None
    return f"{local}@{domain.lower()}".lower(), domain.lower().rstrip(".")


class _Words(HTMLParser):
    """The text of an HTML part, script and style left out."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in ("br", "p", "div", "tr", "li", "h1", "h2", "h3"):
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def _text(message: Message) -> str:
    """The message's own words: the first text/plain part that is not an attachment, else
    the first text/html part's text; quoted replies left out."""
    try:
        plain = html = None
        for part in message.walk():
            if part.is_multipart() or part.get_content_disposition() == "attachment":
                continue
            kind = part.get_content_type()
            if kind == "text/plain" and plain is None:
                plain = _decoded(part)
            elif kind == "text/html" and html is None:
                html = _decoded(part)
            if plain is not None:
                break
        if plain is None and html is not None:
            words = _Words()
            words.feed(html[:MAX_TEXT])
            plain = "".join(words.parts)
    except Exception:
        return ""
    return _unquoted((plain or "")[:MAX_TEXT])


def _attachments(message: Message) -> tuple[Attachment, ...]:
    """The parts sent as attachments (P2.11), at most ``MAX_ATTACHMENTS``; a part whose
    content cannot be decoded is left out."""
    found: list[Attachment] = []
    try:
        for part in message.walk():
            if part.is_multipart() or part.get_content_disposition() != "attachment":
                continue
            data = part.get_payload(decode=True)
            if isinstance(data, bytes):
                name = _valid(part.get_filename() or "") or "(no name)"
                found.append(Attachment(name[:200], part.get_content_type(), data))
            if len(found) == MAX_ATTACHMENTS:
                break
    except Exception:  # a broken MIME tree gives what could be read, as the text does
        return tuple(found)
    return tuple(found)


def _decoded(part: Message) -> str:
    if isinstance(part, EmailMessage):
        try:
            content = part.get_content()
            return content if isinstance(content, str) else ""
        except (LookupError, ValueError, AssertionError):
            pass
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    return payload.decode("utf-8", errors="replace")


def _unquoted(text: str) -> str:
    """The text without quoted lines (``>``) and without what follows an "On ... wrote:"
    or "Original message" line: a reply quotes our own words, which name every kind."""
    lines: list[str] = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        stripped = line.strip()
        if stripped.startswith(">"):
            continue
        if _QUOTE_HEADER.match(stripped) and lines:
            break
        lines.append(line)
    return "\n".join(lines).strip()


def is_request_subject(subject: str, expected: str) -> bool:
    """Whether ``subject`` is the policy's request subject: any case and spacing, behind
    reply and forward prefixes and ``[tags]``, maybe followed by more words ("My Personal
    Data - erasure", "my personal data request")."""
    text = _SPACE.sub(" ", subject).strip()
    while (stripped := _TAG.sub("", _PREFIX.sub("", text, count=1), count=1)) != text:
        text = stripped
    text = text.casefold().strip(" \"'\u00ab\u00bb\u201c\u201d")
    want = _SPACE.sub(" ", expected).strip().casefold()
    return text.startswith(want) and not text[len(want) : len(want) + 1].isalnum()


def kinds_in(text: str, offered: tuple[RequestKind, ...]) -> tuple[RequestKind, ...]:
    """The kinds of request the text asks for, among those the policy offers, in the
    policy's order. A word right after a negation ("do not delete") does not count."""
    found = []
    clauses = re.split(r"[.;!?\n]+|\b(?:but|however)\b", text, flags=re.IGNORECASE)
    for kind in offered:
        pattern = _KIND_RE.get(kind)
        if pattern is None:
            continue
        for clause in clauses:
            before = (clause[: m.start()][-40:] for m in pattern.finditer(clause))
            if any(not _NEGATION.search(lead) for lead in before):
                found.append(kind)
                break
    return tuple(found)


def room_id_in(text: str) -> tuple[str | None, bool]:
    """The Room ID the text gives and whether it gives several different ones. A labelled
    one ("Room ID: 123 456 7890") wins; else a bare run of exactly ten digits."""
    labelled = {re.sub(r"\D", "", m) for m in _ROOM_LABEL.findall(text)}
    labelled = {r for r in labelled if len(r) == ROOM_ID_DIGITS}
    found = labelled or set(_ROOM_BARE.findall(text))
    if len(found) > 1:
        return None, True
    return (found.pop() if found else None), False


def name_in(text: str) -> str | None:
    """The writer's name: a "Name:" line, "my name is ...", or the line after a sign-off."""
    for pattern in (_NAME_LABEL, _NAME_SAID):
        match = pattern.search(text)
        if match:
            name = " ".join(match.group(1).split()).strip(" ,.")
            if 1 < len(name) <= 80 and not any(c.isdigit() for c in name):
                return name
    lines = [line.strip() for line in text.split("\n")]
    for at, line in enumerate(lines):
        if _SIGN_OFF.match(line):
            rest = [candidate for candidate in lines[at + 1 :] if candidate]
            if rest and len(rest[0]) <= 80 and _PERSON_NAME.match(rest[0]):
                return rest[0].rstrip(".")
    return None


def read_request(mail: Mail, offered: tuple[RequestKind, ...]) -> Reading:
    """The request in a message whose subject is the request subject, and what it lacks,
    each worded for the reply."""
    kinds = kinds_in(mail.text, offered)
    room_id, several = room_id_in(mail.text)
    name = name_in(mail.text)
    missing = []
    if not kinds:
        missing.append(
            "what you ask us to do: to see your data (access), correct it (rectification), "
            "delete it (erasure) or receive it to take elsewhere (portability)"
        )
    if several:
        missing.append("one Room ID only: your message gives more than one")
    elif room_id is None:
        missing.append(f"your Room ID: the {ROOM_ID_DIGITS} digits shown on your room page")
    if name is None:
        missing.append('your name, on a line of its own such as "Name: Alex Example"')
    return Reading(kinds, room_id, name, tuple(missing))
