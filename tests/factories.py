"""Synthetic people for tests. Addresses are on example.com; nobody real."""

from __future__ import annotations

import base64
import copy
import os
import secrets
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import Connection, select, text
from starlette.routing import Route

from logscan import child_output, remember
from mailkit import with_files
from privault.clock import FrozenClock
from privault.config import Settings
from privault.consent.cookies import lifetime_words
from privault.notify.models import OutboxMessage
from privault.notify.outbox import template_of
from privault.policy import CookieKind, Policy, PolicyError, build_policy
from privault.runtime import Runtime
from privault.service.errors import WeakPin
from privault.service.models import CallRecord, Room
from privault.service.pins import check_pin_strength
from privault.staff import totp
from privault.staff.service import NewStaff
from privault.vault import Field
from privault.web.app import create_app


@dataclass(frozen=True)
class Person:
    subject_id: str
    email: str
    password: str
    room_id: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def answered_call(
    call_id: str, subject_id: str, dial_in: str, started: datetime, seconds: int
) -> CallRecord:
    """A call from a UK caller to ``subject_id``'s room, answered and billed throughout."""
    return CallRecord(
        call_id=call_id,
        subject_id=subject_id,
        caller_country="GB",
        dial_in=dial_in,
        started_at=started,
        duration=seconds,
        billsec=seconds,
        disposition="ANSWERED",
        ingested_at=started,
    )


def marker(kind: str) -> str:
    """A unique text to look for in rows and logs. It starts and ends with a letter and
    holds at most 12 digits, so no text built around it can look like a card number. No
    log of the test session may hold it."""
    value = f"mk{kind}{secrets.token_hex(6)}x"
    remember(f"marker {kind!r}", value)
    return value


def unique_email(name: str) -> str:
    email = f"{name}.{secrets.token_hex(4)}@example.com"
    remember("email", email)
    return email


def register(runtime: Runtime, name: str, password: str | None = None) -> Person:
    """Register and log in a synthetic person through the account service."""
    email = unique_email(name)
    password = password or f"{name}-{secrets.token_hex(6)}-pass"
    remember("password", password)
    with runtime.transaction() as session:
        accounts = runtime.accounts(session)
        done = accounts.register(email, password, name.title())
        login = accounts.login(email, password)
    remember("Room ID", done.room_id)
    return Person(done.subject_id, email, password, done.room_id, login.token)


def verified(runtime: Runtime, name: str) -> Person:
    """A registered person who followed the link of their verification mail."""
    person = register(runtime, name)
    (mail,) = mails(runtime, person.subject_id, "verify_email")
    token = parse_qs(urlsplit(mail["context"]["link"]).query)["token"][0]
    with runtime.transaction() as session:
        runtime.accounts(session).verify_email(token)
    return person


def mails(runtime: Runtime, subject_id: str, template: str) -> list[dict[str, Any]]:
    """The payloads (``to`` and ``context``) of the outbox's mails to a person from one
    template, opened."""
    with runtime.transaction() as session:
        rows = session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.subject_id == subject_id, OutboxMessage.template == template
            )
        ).all()
        return [
            runtime.vault.decrypt_json(
                session,
                subject_id,
                Field("outbox", "payload_ct", r.id),
                r.payload_ct,
                purpose=template_of(template).purpose,
            )  # type: ignore[misc]
            for r in rows
            if r.payload_ct is not None
        ]


def api_error(response: Response, status: int, code: str | None = None) -> str:
    """Check the JSON error shape of DEVELOPERS.md (only ``error`` and ``detail``); the detail."""
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error", "detail"}, body
    assert isinstance(body["error"], str) and body["error"], body
    assert isinstance(body["detail"], str) and body["detail"], body
    if code is not None:
        assert body["error"] == code, body
    return body["detail"]


def add_staff(runtime: Runtime, name: str, role: str) -> NewStaff:
    with runtime.transaction() as session:
        return runtime.staff(session).add(name, role)


def staff_login(client: TestClient, made: NewStaff, clock: FrozenClock) -> dict[str, str]:
    """The headers of a staff session of ``made``, logged in with a code of ``clock``'s now."""
    key = parse_qs(urlsplit(made.totp_uri).query)["secret"][0]
    secret = base64.b32decode(key + "=" * (-len(key) % 8))
    code = totp.code_at(secret, totp.step_of(clock.now()))
    answer = client.post(
        "/api/v1/staff/session", json={"name": made.name, "password": made.password, "code": code}
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def give_room_id(runtime: Runtime, subject_id: str, room_id: str) -> None:
    """Give the subject's room a Room ID of the test's choosing (fixtures name fixed ones)."""
    with runtime.transaction() as session:
        room = session.get(Room, subject_id)
        assert room is not None
        room.room_id_index = runtime.vault.blind_index("room_id", room_id)
        room.room_id_ct = runtime.vault.encrypt(
            session, subject_id, Field("rooms", "room_id_ct", subject_id), room_id
        )


def run_cli(
    settings: Settings,
    cwd: Path,
    *args: str,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`privault ARGS` as a real process on the data folder and database of ``settings``,
    with ``stdin`` as its input and ``env`` added to its environment."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PRIVAULT_")}
    environ |= {
        "COLUMNS": "200",
        "PRIVAULT_DATA_DIR": str(settings.data_dir),
        "PRIVAULT_DATABASE_URL": settings.db_url,
        **(env or {}),
    }
    done = subprocess.run(
        [sys.executable, "-m", "privault.cli", *args],
        env=environ,
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    child_output(done.stderr)
    return done


#: Generous: on a loaded machine a cold start of the web stack takes a minute.
STARTUP_SECONDS = 180


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def child_environment(settings: Settings, env: Mapping[str, str] = {}) -> dict[str, str]:
    """The environment of a `privault` child process on the data folder and database of
    ``settings`` (none of this process's own PRIVAULT_ settings), with ``env`` added."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PRIVAULT_")}
    environment.update(
        PRIVAULT_DATA_DIR=str(settings.data_dir),
        PRIVAULT_DATABASE_URL=settings.db_url,
        PRIVAULT_ARGON2_TIME_COST=str(settings.argon2_time_cost),
        PRIVAULT_ARGON2_MEMORY_KIB=str(settings.argon2_memory_kib),
        **env,
    )
    return environment


class Site:
    """`privault serve` on 127.0.0.1 with a data folder of its own; ``env`` adds settings
    (PRIVAULT_POLICY_FILE, ...). ``port`` restarts a site where a stopped one served; its
    output is appended to the same log."""

    def __init__(
        self,
        settings: Settings,
        folder: Path,
        env: Mapping[str, str] = {},
        *,
        worker: bool = False,
        port: int | None = None,
    ) -> None:
        port = self.port = port or free_port()
        self.settings = settings
        self.url = f"http://127.0.0.1:{port}"
        self.output = folder / f"serve-{port}.log"
        environment = child_environment(settings, {"PRIVAULT_BASE_URL": self.url, **env})
        command = Path(sys.executable).with_name("privault")
        with self.output.open("ab") as log:
            self.process = subprocess.Popen(
                [str(command), "serve", "--port", str(port)] + ([] if worker else ["--no-worker"]),
                env=environment,
                cwd=folder,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait()

    def log(self) -> str:
        return self.output.read_text(errors="replace")

    def _wait(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"serve exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx2.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx2.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        pytest.fail(f"serve did not answer within {STARTUP_SECONDS}s:\n{self.log()}")

    def stop(self) -> int:
        """SIGTERM, as a service manager stops it; fails the test if that does not stop it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                pytest.fail(f"serve did not stop on SIGTERM; log:\n{self.log()}")
        child_output(self.log())
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL, as a power cut or the OOM killer stops it: no shutdown runs."""
        self.process.kill()
        self.process.wait()
        child_output(self.log())


#: A caller's number from the range Ofcom keeps for drama.
UK_MOBILE = "+447700900123"
remember("phone number", UK_MOBILE)


def cdr(room_id: str, call_id: str, **changes: Any) -> dict[str, Any]:
    """One CDR as the PBX posts it in JSON: an answered call of about twelve minutes."""
    return {
        "call_id": call_id,
        "room_id": room_id,
        "caller": UK_MOBILE,
        "dial_in": "+442079460000",
        "start": "2024-05-01T09:30:00Z",
        "answer": "2024-05-01T09:30:04Z",
        "end": "2024-05-01T09:42:10Z",
        "duration": 730,
        "billsec": 726,
        "disposition": "ANSWERED",
    } | changes


def fi_mobile() -> str:
    """A random valid Finnish mobile number, E.164."""
    number = f"+35840{secrets.randbelow(10**7):07d}"
    remember("phone number", number)
    return number


def pin_for(room_id: str) -> str:
    """Eight random digits the strength rules accept: long enough not to occur by chance."""
    while True:
        pin = f"{secrets.randbelow(9 * 10**7) + 10**7}"
        try:
            check_pin_strength(pin, room_id)
        except WeakPin:
            continue
        remember("PIN", pin)
        return pin


@dataclass(frozen=True)
class Filled:
    """A person with data in every table of the service, made through the API."""

    subject_id: str
    room_id: str
    auth: dict[str, str]
    #: Every personal value kept about them (an export shows each, in these words).
    kept: list[str]
    #: What they typed that is never kept readable: password, PINs, a PIN-checker's number.
    secret: list[str]
    list_id: str


def fill_person(client: TestClient, pbx: dict[str, str], *, locked: bool = False) -> Filled:
    """Register, log in, make a cookie choice (P1.2) and visit a page with analytics
    (P2.1, P2.2), fill the profile (P2.4), buy (P2.8),
    choose a username and post (P2.9), write to support (P2.10), set a PIN (P7.5), keep a
    number list (P2.6), fail PIN checks (locking the room when ``locked``), get two CDRs
    from the PBX (P2.7) and ask for a password reset link."""
    email, name, password = f"{marker('em')}@example.com", marker("nm"), marker("pw")
    made = client.post(
        "/api/v1/accounts", json={"email": email, "password": password, "display_name": name}
    )
    assert made.status_code == 201, made.text
    subject_id, room_id = made.json()["subject_id"], made.json()["room_id"]
    remember("Room ID", room_id)
    login = client.post("/api/v1/session", json={"email": email, "password": password})
    auth = {"Authorization": f"Bearer {login.json()['token']}"}
    cookie_choice = {"strictly_necessary": True, "analytics": True, "advertising": False}
    chosen = client.put("/api/v1/consent", json={"choices": cookie_choice}, headers=auth)
    assert chosen.status_code == 200, chosen.text
    page_view = {"visit": secrets.token_urlsafe(16), "page": "/", "referrer": "https://a.example/"}
    seen = client.post("/api/v1/analytics/events", json=page_view, headers=auth)
    assert seen.status_code == 204, seen.text
    # The shared client must not carry this person's consent cookie to the next person.
    client.cookies.delete("privault_consent")
    fields = {k: marker(k[:2]) for k in ("gender", "education", "employment")}
    interest = marker("in")
    patch: dict[str, Any] = {k: {"value": v, "visibility": "members"} for k, v in fields.items()}
    patch["interests"] = {"value": [interest]}
    patch["name"] = {"value": name}
    assert client.patch("/api/v1/me/profile", json=patch, headers=auth).status_code == 200
    billing_name, address, token = marker("bn"), marker("ba"), marker("tk")
    billing_email, username, post = marker("be"), marker("us"), marker("po")
    subject, message = marker("su"), marker("me")
    purchase = {
        "kind": "purchase",
        "item": "Premium room",
        "amount_minor": 4999,
        "currency": "EUR",
        "billing_name": billing_name,
        "billing_address": f"{address}\n75001 Paris",
        "phone": "+442079460958",
        "email": f"{billing_email}@example.com",
        "payment_token": f"tok_{token}",
        "card_brand": "visa",
        "card_last4": "4242",
        "card_expiry": "09/27",
    }
    note = {"subject": subject, "body": message}
    sends = [
        client.post("/api/v1/me/purchases", json=purchase, headers=auth),
        client.put("/api/v1/me/username", json={"username": username}, headers=auth),
        client.post("/api/v1/me/posts", json={"body": post, "visibility": "public"}, headers=auth),
        client.post("/api/v1/me/messages", json=note, headers=auth),
    ]
    assert [s.status_code for s in sends] == [201, 200, 201, 201], [s.text for s in sends]
    pin, wrong = pin_for(room_id), pin_for(room_id)
    assert client.put("/api/v1/me/room/pin", json={"pin": pin}, headers=auth).status_code == 204
    list_name, label, numbers = marker("ls"), marker("lb"), [fi_mobile() for _ in range(3)]
    made_list = client.post(
        "/api/v1/me/number-lists",
        json={"name": list_name, "numbers": [{"number": n, "label": label} for n in numbers]},
        headers=auth,
    )
    assert made_list.status_code == 201, made_list.text
    checker = fi_mobile()
    for _ in range(6 if locked else 1):
        check = {"room_id": room_id, "pin": wrong, "caller": checker}
        answer = client.post("/api/v1/pbx/pin-check", json=check, headers=pbx)
        assert answer.json() == {"allowed": False}
    callers = [fi_mobile(), fi_mobile()]
    cdrs = [cdr(room_id, marker("call"), caller=caller) for caller in callers]
    ingested = client.post("/api/v1/pbx/cdrs", json={"cdrs": cdrs}, headers=pbx)
    assert ingested.status_code == 200 and ingested.json()["accepted"] == 2, ingested.text
    kept = [email, name, room_id, interest, *fields.values(), billing_name, address, token]
    kept += [billing_email, username, post, subject, message, list_name, label, *numbers, *callers]
    forgot = client.post("/password/forgot", data={"email": email}, follow_redirects=False)
    assert forgot.status_code in (200, 303), forgot.text  # a reset link, unused (P7.2)
    kept.append(subscribe_everywhere(client, subject_id, email, auth))
    kept.append(enclose_a_file(client, email))
    return Filled(
        subject_id, room_id, auth, kept, [password, pin, wrong, checker], made_list.json()["id"]
    )


def enclose_a_file(client: TestClient, email: str) -> str:
    """Mail the privacy address a file (P2.11, category other); the file's words."""
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    words = marker("fi")
    raw = with_files(email, "Attached.", ("f.txt", "text/plain", words.encode()))
    with runtime.transaction() as session:
        runtime.mail_intake(session).receive(raw)
    return words


def subscribe_everywhere(
    client: TestClient, subject_id: str, email: str, auth: dict[str, str]
) -> str:
    """The newsletter by double opt-in (P2.5), email marketing and third-party sharing
    agreed, letters refused (P3.8, P3.16), and one marketing mail sent (P0.2): a subscriber,
    channel consents and a marketing send. Returns the name given for the newsletter."""
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    name = marker("sn")
    asked = client.post("/api/v1/newsletter", json={"email": email, "name": name})
    assert asked.status_code == 202, asked.text
    [confirm] = mails(runtime, subject_id, "newsletter_confirm")
    link = confirm["context"]["link"].removeprefix(runtime.settings.base_url)
    assert client.post(link).status_code == 200
    wanted = {"marketing_email": True, "marketing_post": False, "third_party": True}
    chosen = client.put("/api/v1/me/consents", json={"channels": wanted}, headers=auth)
    assert chosen.status_code == 200, chosen.text
    words = {"title": "Spring news", "body": "Rooms for more people."}
    with runtime.transaction() as session:
        marketing = runtime.marketing(session)
        campaign = marketing.campaign("marketing", "email", context=words)
        assert marketing.send(campaign, [subject_id]).queued == 1
    return name


def write_as_visitor(client: TestClient) -> list[str]:
    """A message from the contact form by someone with no account (P2.10); its values."""
    visitor, text = marker("vi"), marker("vm")
    sent = client.post(
        "/contact",
        data={"email": f"{visitor}@example.com", "subject": "Hello", "message": text},
        follow_redirects=False,
    )
    assert sent.status_code == 303
    return [visitor, text]


KALLU = Path(__file__).resolve().parents[1] / "policies" / "kallu.toml"
_KALLU_PARSED = tomllib.loads(KALLU.read_text(encoding="utf-8"))


#: A cookie a revised policy declares in addition.
EXTRA_COOKIE = """
[[cookies]]
name = "_gat_<tracker-id>"
provider = "Google Ireland Limited (Google Analytics)"
purpose = "Limits the rate of requests"
category = "analytics"
kind = "persistent"
lifetime = "PT1M"
description = "Throttles how often the browser sends statistics to Google Analytics."
"""


def revised(tmp_path: Path, label: str = "1.1.0", extra: str = EXTRA_COOKIE) -> Path:
    """The reference policy as a new version ``label``, with ``extra`` TOML appended."""
    path = tmp_path / f"kallu-{label}.toml"
    text = KALLU.read_text(encoding="utf-8").replace('version = "1.0.0"', f'version = "{label}"')
    path.write_text(text + extra, encoding="utf-8")
    return path


def kallu_data() -> dict[str, Any]:
    """The reference policy as parsed TOML, a fresh copy to change."""
    return copy.deepcopy(_KALLU_PARSED)


def policy_refusal(data: dict[str, Any]) -> str:
    """The one-line detail with which a policy built from ``data`` is refused."""
    with pytest.raises(PolicyError) as caught:
        build_policy(data, "kallu.toml")
    assert caught.value.code == "invalid_policy"
    assert "\n" not in caught.value.detail
    return caught.value.detail


def browser(runtime: Runtime, host: str = "203.0.113.77", agent: str | None = None) -> TestClient:
    """A browser on ``host`` (a documentation address) keeping its cookies, answered as a
    browser is (a server error is a 500, not an exception), with ``agent`` as User-Agent."""
    return TestClient(
        create_app(runtime),
        raise_server_exceptions=False,
        client=(host, 50123),
        headers={"User-Agent": agent} if agent else None,
    )


@dataclass
class HtmlTable:
    caption: str = ""
    rows: list[list[str]] = field(default_factory=list)


class Tables(HTMLParser):
    """Every table of a page: its caption and the text of its body rows' cells (row headers
    too; spaces collapsed), and whether a ``data-consent-open`` control is there."""

    def __init__(self, html: str = "") -> None:
        super().__init__()
        self.tables: list[HtmlTable] = []
        self.rows: list[list[str]] = []
        self.text: list[str] | None = None
        self.head = False
        self.reopen = False
        self.feed(html)

    def table(self, caption: str) -> list[list[str]]:
        """The rows of the table captioned ``caption``."""
        (found,) = [t for t in self.tables if t.caption == caption]
        return found.rows

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if any(name == "data-consent-open" for name, _ in attrs):
            self.reopen = tag in {"button", "a"}
        if tag == "table":
            self.tables.append(HtmlTable())
        elif tag == "thead":
            self.head = True
        elif tag == "tr" and not self.head:
            self.rows.append([])
            self.tables[-1].rows.append(self.rows[-1])
        elif tag in {"td", "th", "caption"} and not self.head:
            self.text = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "thead":
            self.head = False
        elif tag in {"td", "th", "caption"} and self.text is not None:
            text = " ".join("".join(self.text).split())
            if tag == "caption":
                self.tables[-1].caption = text
            else:
                self.rows[-1].append(text)
            self.text = None

    def handle_data(self, data: str) -> None:
        if self.text is not None:
            self.text.append(data)


def declared_cookies(policy: Policy) -> list[list[str]]:
    """The rows the cookie declaration must show for ``policy``, by banner category."""
    titles = {str(k): v.title for k, v in policy.consent.categories.items()}
    return [
        [
            c.name,
            c.provider,
            f"{c.purpose}. {c.description}",
            titles[c.category],
            "Session" if c.kind == CookieKind.SESSION else "Persistent",
            lifetime_words(c),
        ]
        for category in policy.consent.categories
        for c in policy.cookies
        if c.category == category
    ]


def wait_for_advisory_lock_waiter(conn: Connection, what: str) -> None:
    """Return once some PostgreSQL session waits on an advisory lock (``what`` is the one
    expected to, named in the failure if it never does within a minute)."""
    waiting = text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
    deadline = time.monotonic() + 60
    while not conn.scalar(waiting):
        assert time.monotonic() < deadline, f"{what} never reached the lock"
        time.sleep(0.01)


def route_paths(routes: Iterable[Any], method: str = "GET", prefix: str = "") -> Iterator[str]:
    """The paths of the app's routes answering ``method``, through included routers (which
    FastAPI keeps as wrappers around the router included), mounts left out."""
    for item in routes:
        if isinstance(item, Route):
            if method in (item.methods or ()):
                yield prefix + item.path
        elif hasattr(item, "original_router"):
            inner = prefix + item.include_context.prefix
            yield from route_paths(item.original_router.routes, method, inner)
