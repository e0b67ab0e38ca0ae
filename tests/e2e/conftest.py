"""Browser tests: headless Chromium (Debian's package) driven by Playwright, against
`privault serve` as a real process.

`make test` installs Chromium when it is missing (as root). Without it, or without the
playwright package, the browser tests fail in CI (``CI`` set) and are skipped elsewhere,
with the reason.
"""

from __future__ import annotations

import base64
import email
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest

from conftest import Database
from logscan import child_output
from privault.config import Settings
from privault.runtime import open_runtime
from privault.staff import totp
from privault.staff.service import NewStaff

CHROMIUM = os.environ.get("PRIVAULT_TEST_CHROMIUM", "/usr/bin/chromium")
STARTUP_SECONDS = 60
MAIL_SECONDS = 30
PAGES = Path(__file__).parent / "pages"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must run the browser tests (see `make browser`)")
    pytest.skip(f"{reason}; `make browser` installs it (as root)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium per module; tests open contexts of their own."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    if not (os.access(CHROMIUM, os.X_OK) or shutil.which(CHROMIUM)):
        _unavailable(f"no Chromium at {CHROMIUM}")
    with sync_playwright() as playwright:
        # No sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Site:
    """`privault serve` on 127.0.0.1 with a data folder of its own; ``env`` adds settings
    (PRIVAULT_POLICY_FILE, ...)."""

    def __init__(
        self,
        settings: Settings,
        folder: Path,
        env: Mapping[str, str] = {},
        *,
        worker: bool = False,
    ) -> None:
        port = self.port = free_port()
        self.settings = settings
        self.url = f"http://127.0.0.1:{port}"
        self.output = folder / f"serve-{port}.log"
        environment = {k: v for k, v in os.environ.items() if not k.startswith("PRIVAULT_")}
        environment.update(
            PRIVAULT_DATA_DIR=str(settings.data_dir),
            PRIVAULT_DATABASE_URL=settings.db_url,
            PRIVAULT_BASE_URL=self.url,
            PRIVAULT_ARGON2_TIME_COST=str(settings.argon2_time_cost),
            PRIVAULT_ARGON2_MEMORY_KIB=str(settings.argon2_memory_kib),
            **env,
        )
        command = Path(sys.executable).with_name("privault")
        with self.output.open("wb") as log:
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


class Visits:
    """What a browser context asked for: the site's own requests are served (the test
    pages under /e2e/ from tests/e2e/pages), anything else is refused and remembered."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.elsewhere: list[str] = []
        self.paths: list[str] = []

    def handle(self, route: Any) -> None:
        url = urlsplit(route.request.url)
        if f"{url.scheme}://{url.netloc}" != self.site.url:
            self.elsewhere.append(route.request.url)
            route.abort()
            return
        self.paths.append(url.path)
        if url.path.startswith("/e2e/"):
            file = PAGES / url.path.removeprefix("/e2e/")
            kind = "text/html" if file.suffix == ".html" else "text/javascript"
            route.fulfill(status=200, content_type=kind, body=file.read_bytes())
        else:
            route.continue_()


@pytest.fixture(scope="module")
def data(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A data folder and database for the module's server."""
    folder = tmp_path_factory.mktemp("site") / "var"
    database = Database(backend, folder)
    yield database.settings(folder)
    database.drop()


@pytest.fixture(scope="module")
def site(data: Settings) -> Iterator[Site]:
    """One server for the module: each test's browser context has cookies of its own."""
    running = Site(data, data.data_dir.parent)
    yield running
    running.stop()


@pytest.fixture
def serve() -> Iterator[Callable[..., Site]]:
    """Starts servers of the test's own (``serve(settings, folder, worker=False, **env)``);
    all stopped after the test."""
    started: list[Site] = []

    def start(settings: Settings, folder: Path, *, worker: bool = False, **env: str) -> Site:
        started.append(Site(settings, folder, env, worker=worker))
        return started[-1]

    yield start
    for running in started:
        running.stop()


@pytest.fixture
def open_context(browser: Any) -> Iterator[Callable[..., tuple[Any, Visits]]]:
    """Opens a browser context for a site (keyword arguments go to new_context); closed
    after the test."""
    opened: list[Any] = []

    def open_(site: Site, **options: Any) -> tuple[Any, Visits]:
        context = browser.new_context(**options)
        context.set_default_timeout(10_000)
        visits = Visits(site)
        context.route("**/*", visits.handle)
        opened.append(context)
        return context, visits

    yield open_
    for context in opened:
        context.close()


# -- a person's steps through the pages, shared by the browser tests -------------------------

SCREENSHOTS = Path(__file__).parent / "screenshots"
BANNER = "Your cookie choice"


class PersonSteps:
    """What a person does on the site, one step a function taking the Playwright ``page``
    (its cookies are the person's) and the running ``site``. The fixture ``person_steps``
    gives this class to a test (test modules cannot import this conftest)."""

    @staticmethod
    def screenshot(page: Any, name: str) -> None:
        """The whole page under tests/e2e/screenshots/NAME.png (ignored by git)."""
        SCREENSHOTS.mkdir(exist_ok=True)
        page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)

    @staticmethod
    def register_by_api(page: Any, site: Site, who: str) -> dict[str, str]:
        """An account made and logged in through the page's own request context (the
        session cookie lands in the browser); returns its email, password and name."""
        person = {
            "email": f"{who}.{secrets.token_hex(4)}@example.com",
            "password": f"{who}-long-enough-password",
        }
        made = page.request.post(
            f"{site.url}/api/v1/accounts", data={**person, "display_name": who.title()}
        )
        assert made.status == 201, made.text()
        login = page.request.post(f"{site.url}/api/v1/session", data=person)
        assert login.status == 200, login.text()
        return {**person, "display_name": who.title()}

    @staticmethod
    def reject_optional_cookies(page: Any) -> None:
        """On a page showing the cookie banner: "Reject all" (analytics and advertising
        declined), and wait until the choice is stored."""
        page.locator("html[data-consent-state='ask']").wait_for(state="attached")
        page.get_by_role("dialog", name=BANNER).get_by_role("button", name="Reject all").click()
        page.locator("html[data-consent-state='given']").wait_for(state="attached")

    @staticmethod
    def open_privacy_centre(page: Any, site: Site) -> None:
        page.goto(f"{site.url}/me/privacy")
        page.get_by_role("heading", level=1, name="Your privacy centre").wait_for()

    @staticmethod
    def set_profile_field(page: Any, site: Site, name: str, value: str, seen_by: str) -> None:
        """On the profile page: type ``value`` into the field labelled ``name`` and choose
        who sees it (``seen_by``: "Only you", "Members who are logged in", "Everyone")."""
        page.goto(f"{site.url}/me/privacy/profile")
        page.get_by_label(name, exact=True).fill(value)
        page.get_by_label(f"Who sees your {name.lower()}").select_option(label=seen_by)
        page.get_by_role("button", name="Save your profile").click()
        page.get_by_text("Your profile is saved.").wait_for()

    @staticmethod
    def download_export(page: Any, site: Site, kind: str = "access") -> dict[str, Any]:
        """From the privacy centre, download the export (``access`` or ``portability``)
        and return its data.json."""
        PersonSteps.open_privacy_centre(page, site)
        link = "Download all your data" if kind == "access" else "Download your data to take"
        with page.expect_download() as started:
            page.get_by_role("link", name=link).click()
        download = started.value
        assert download.suggested_filename == f"{kind}-export.zip"
        with zipfile.ZipFile(download.path()) as archive:
            document: dict[str, Any] = json.loads(archive.read("data.json"))
        return document

    @staticmethod
    def file_erasure(page: Any, site: Site, shots: str | None = None) -> str:
        """From the privacy centre, ask for erasure, read the warning and close the account;
        returns the page's sentence with the erasure's due date. With ``shots``, screenshots
        of the warning and of the result are saved under that prefix."""
        PersonSteps.open_privacy_centre(page, site)
        page.get_by_label("What do you ask for?").select_option("erasure")
        page.get_by_role("button", name="Send the request").click()
        page.get_by_role("heading", level=1, name="Close your account").wait_for()
        if shots:
            PersonSteps.screenshot(page, f"{shots}-close")
        page.get_by_label("I understand that closing my account").check()
        page.get_by_role("button", name="Close my account").click()
        page.get_by_role("heading", level=1, name="Your account is closed").wait_for()
        if shots:
            PersonSteps.screenshot(page, f"{shots}-closed")
        sentence: str = page.get_by_text("We will erase your data by").inner_text()
        return sentence


@pytest.fixture
def person_steps() -> type[PersonSteps]:
    return PersonSteps


# -- steps the browser tests share -----------------------------------------------------------


def signing_up(page: Any, site: Site, who: str, password: str | None = None) -> dict[str, str]:
    """A newcomer signs up through /signup (address, password, display name) and lands on
    their room, logged in; returns the ``email`` and ``password`` used."""
    person = {
        "email": f"{who}.{secrets.token_hex(4)}@example.com",
        "password": password or f"{who}-{secrets.token_hex(4)}-lantern",
    }
    page.goto(f"{site.url}/signup")
    page.get_by_label("Email address").fill(person["email"])
    page.get_by_label("Password", exact=True).fill(person["password"])
    page.get_by_label("Display name (optional)").fill(who.title())
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url(f"{site.url}/room?done=welcome")
    return person


def mailed_link(site: Site, to: str, pattern: str, seconds: float = MAIL_SECONDS) -> str:
    """The first link matching the regular expression ``pattern`` in the newest mail to
    ``to`` in the site's maildir, waiting (polling) for the worker to deliver it; the site
    must run with its worker (``serve(..., worker=True, PRIVAULT_WORKER_INTERVAL="0.2")``)."""
    maildir = site.settings.maildir
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        files = sorted(
            (f for sub in ("new", "cur") for f in (maildir / sub).glob("*.eml")),
            key=lambda f: f.stat().st_mtime,
            reverse=True,
        )
        for file in files:
            message = email.message_from_bytes(file.read_bytes(), policy=default_policy)
            assert isinstance(message, EmailMessage)
            body = message.get_body(("plain",))
            if message["To"] != to or body is None:
                continue
            found = re.search(pattern, body.get_content())
            if found:
                return found.group(0)
        if site.process.poll() is not None:
            pytest.fail(f"serve exited with {site.process.returncode} while waiting for mail")
        time.sleep(0.05)
    pytest.fail(f"no mail to {to} with {pattern!r} within {seconds}s; log:\n{site.log()}")


@pytest.fixture
def sign_up() -> Callable[..., dict[str, str]]:
    """``sign_up(page, site, who, password=None)``: see ``signing_up`` (test modules import
    the top conftest as ``conftest``, so this one's steps come as fixtures)."""
    return signing_up


@pytest.fixture
def newest_link() -> Callable[..., str]:
    """``newest_link(site, to, pattern, seconds=30)``: see ``mailed_link``."""
    return mailed_link


def add_staff_member(settings: Settings, name: str, role: str) -> NewStaff:
    """A staff member in the site's database, as `privault staff add` makes one: their
    password and TOTP secret come back once."""
    runtime = open_runtime(settings)
    try:
        with runtime.transaction() as session:
            return runtime.staff(session).add(name, role)
    finally:
        runtime.close()


def totp_code(made: NewStaff) -> str:
    """The code the member's authenticator app shows now, from the secret in their URI."""
    key = parse_qs(urlsplit(made.totp_uri).query)["secret"][0]
    secret = base64.b32decode(key + "=" * (-len(key) % 8))
    return totp.code_at(secret, totp.step_of(datetime.now(UTC)))


def staff_logs_in(page: Any, site: Site, made: NewStaff, then: str = "/staff") -> None:
    """A staff member logs in to the console through its login page with a TOTP code
    computed from their secret (a code works once: one login per member and 30 seconds),
    and lands on ``then`` (by default the first console page their role may see)."""
    page.goto(f"{site.url}/staff/login?next={then}")
    page.get_by_label("Staff name").fill(made.name)
    page.get_by_label("Password", exact=True).fill(made.password)
    page.get_by_label("Code from your authenticator app").fill(totp_code(made))
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(re.escape(site.url) + r"/staff/(?!login)"))


@pytest.fixture
def staff_member() -> Callable[[Settings, str, str], NewStaff]:
    """``staff_member(settings, name, role)``: ``add_staff_member`` for a test (this
    folder's conftest is not importable by name: the top one is ``conftest``)."""
    return add_staff_member


@pytest.fixture
def staff_login() -> Callable[..., None]:
    """``staff_login(page, site, made, then="/staff")``: ``staff_logs_in`` for a test."""
    return staff_logs_in
