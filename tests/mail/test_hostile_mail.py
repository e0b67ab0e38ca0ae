"""Hostile and broken mail never crashes the intake, and never costs the next message."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from factories import Person, register
from mailkit import Dns, Signer, message, request_body
from privault.mail.intake import Outcome
from privault.mail.reading import parse, read_request
from privault.policy.model import RequestKind
from privault.runtime import Runtime

HEADER_NAMES = st.sampled_from(
    [
        "From",
        "Subject",
        "Message-ID",
        "Content-Type",
        "Content-Transfer-Encoding",
        "MIME-Version",
        "Authentication-Results",
        "DKIM-Signature",
        "To",
        "X-Junk",
    ]
)
HEADER_VALUES = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.sampled_from(
        [
            b"=?utf-8?q?My_Personal_Data?=",
            b"=?x-unknown?b?!!!?=",
            b"=?utf-8?b?////?=",
            b"multipart/mixed; boundary=",
            b'multipart/mixed; boundary="b"',
            b"text/plain; charset=x-no-such-charset",
            b"base64",
            b"quoted-printable",
            b"<>",
            b"a@b, c@d",
            b"\xff\xfe\xc3@example.com",
            b'"unterminated <ann@example.com',
            b"v=1; a=rsa-sha256; d=example.com; s=s1; b=;",
            b"mx.kallu.cc; dmarc=pass header.from=",
        ]
    ),
)
HEADER = st.tuples(HEADER_NAMES, HEADER_VALUES).map(lambda p: p[0].encode() + b": " + p[1])
BODY_PARTS = st.one_of(
    st.binary(max_size=300),
    st.sampled_from(
        [
            b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nDelete my data\r\n",
            b"--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\n--c\r\n",
            b"--b\r\nContent-Transfer-Encoding: base64\r\n\r\n@@@not base64@@@\r\n",
            b"--b\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=ZZ=\r\n=\r\n",
            b"--b\r\nContent-Type: text/html\r\n\r\n<p><script>x</p></style>\r\n",
            b"--b--\r\n",
            b"\xff\xfe\x00\x00" * 20,
        ]
    ),
)


@st.composite
def hostile(draw: st.DrawFn) -> bytes:
    """A message as junk arrives: random headers, maybe one enormous, broken multiparts,
    nested boundaries, bad encodings, or nothing but binary noise."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=2000))
    headers = draw(st.lists(HEADER, max_size=12))
    if draw(st.integers(0, 9)) == 0:
        headers.append(b"X-Huge: " + b"a" * draw(st.integers(10_000, 200_000)))
    if draw(st.integers(0, 4)) == 0:  # parts nested deeper than anyone writes
        depth = draw(st.integers(2, 60))
        nested = b"".join(
            b"--n%d\r\nContent-Type: multipart/mixed; boundary=n%d\r\n\r\n" % (i, i + 1)
            for i in range(depth)
        )
        headers.append(b"Content-Type: multipart/mixed; boundary=n0")
        body = nested
    else:
        body = b"".join(draw(st.lists(BODY_PARTS, max_size=6)))
    separator = draw(st.sampled_from([b"\r\n", b"\n", b"\r"]))
    return separator.join(headers) + separator + separator + body


@settings(max_examples=400, deadline=None)
@given(raw=hostile())
def test_reading_never_raises(raw: bytes) -> None:
    mail = parse(raw)
    read_request(mail, tuple(RequestKind))


@pytest.fixture
def signed(at: Runtime) -> Iterator[tuple[Person, Signer, Dns]]:
    dns = Dns()
    yield register(at, "alice"), Signer.make("example.com", dns), dns


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(junk=st.lists(hostile(), min_size=1, max_size=3))
def test_p9_2_hostile_mail_never_crashes_the_intake_nor_loses_the_next_message(
    at: Runtime, signed: tuple[Person, Signer, Dns], junk: list[bytes]
) -> None:
    alice, signer, dns = signed
    for raw in junk:
        with at.transaction() as session:
            got = at.mail_intake(session, dns).receive(raw, trust_auth_results=True)
        assert got.outcome in set(Outcome)
    good = signer.sign(message(alice.email, request_body("Delete my data.", alice.room_id)))
    with at.transaction() as session:
        got = at.mail_intake(session, dns).receive(good)
    assert got.outcome is Outcome.FILED and len(got.requests) == 1
