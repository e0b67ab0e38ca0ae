"""`privault serve` as a real process on a data folder of its own: accounts and the profile
over real HTTP, and the worker inside the server delivering the verification mail."""

from __future__ import annotations

import email
import re
import signal
import time
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any, TypeVar

import httpx2
import pytest

from privault.config import Settings

pytestmark = pytest.mark.e2e

MAIL_SECONDS = 30
T = TypeVar("T")
Site = Any  # conftest.Site: a running `privault serve`


def poll(what: str, attempt: Callable[[], T | None], seconds: float, server: Site) -> T:
    """Call ``attempt`` until it returns something, the server dies, or the deadline passes."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = attempt()
        if result is not None:
            return result
        if server.process.poll() is not None:
            pytest.fail(f"serve exited with {server.process.returncode} while waiting for {what}")
        time.sleep(0.05)
    pytest.fail(f"no {what} within {seconds}s; server log:\n{server.log()}")


@pytest.fixture
def server(serve: Callable[..., Site], fresh_settings: Settings, tmp_path: Path) -> Site:
    """`privault serve` with its worker, which sends the outbox every 0.2 s."""
    return serve(fresh_settings, tmp_path, worker=True, PRIVAULT_WORKER_INTERVAL="0.2")


def delivered(maildir: Path) -> list[Path]:
    return sorted((maildir / "new").glob("*.eml")) + sorted((maildir / "cur").glob("*.eml"))


def test_serve_registers_logs_in_updates_the_profile_and_mails_the_verification(
    server: Site, fresh_settings: Settings
) -> None:
    assert f"serving on {server.url}" in server.log()
    person = f"carol.e2e.{server.port}@example.com"
    password = "carol-e2e-lantern-pass"

    with httpx2.Client(base_url=server.url, timeout=30) as http:
        created = http.post(
            "/api/v1/accounts",
            json={"email": person, "password": password, "display_name": "Carol"},
        )
        assert created.status_code == 201, created.text
        assert created.json()["room_id"].isdigit()

        assert http.get("/api/v1/me/profile").status_code == 401

        login = http.post("/api/v1/session", json={"email": person, "password": password})
        assert login.status_code == 200, login.text
        cookie = login.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=lax" in cookie
        auth = {"Authorization": f"Bearer {login.json()['token']}"}

        patched = http.patch(
            "/api/v1/me/profile",
            headers=auth,
            json={"employment": {"value": "Lighthouse keeper", "visibility": "members"}},
        )
        assert patched.status_code == 200, patched.text
        assert patched.json()["fields"]["employment"] == {
            "value": "Lighthouse keeper",
            "visibility": "members",
        }
        read = http.get("/api/v1/me/profile", headers=auth).json()
        assert read["fields"]["employment"]["value"] == "Lighthouse keeper"
        assert read["fields"]["name"] == {"value": None, "visibility": "private"}

        mails = poll(
            "verification mail",
            lambda: delivered(fresh_settings.maildir) or None,
            MAIL_SECONDS,
            server,
        )
        assert len(mails) == 1
        message = email.message_from_bytes(mails[0].read_bytes(), policy=default_policy)
        assert isinstance(message, EmailMessage)
        assert message["To"] == person
        assert message["Subject"] == "Confirm your email address"
        body = message.get_body(preferencelist=("plain",))
        assert body is not None
        link = re.search(r"(\S+/verify-email\?token=)([\w-]+)", body.get_content())
        assert link is not None, body.get_content()
        assert link.group(1).startswith(server.url)

        assert http.get("/api/v1/me", headers=auth).json()["email_verified"] is False
        verified = http.post("/api/v1/accounts/verify", json={"token": link.group(2)})
        assert verified.status_code == 200, verified.text
        assert http.get("/api/v1/me", headers=auth).json()["email_verified"] is True

        assert http.delete("/api/v1/session", headers=auth).status_code == 204
        assert http.get("/api/v1/me/profile", headers=auth).status_code == 401

    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal on its way out.
    assert server.stop() in (0, -signal.SIGTERM), server.log()
    assert "Application shutdown complete" in server.log()
    with pytest.raises(httpx2.TransportError):
        httpx2.get(f"{server.url}/healthz", timeout=1)
    assert person not in server.log()
    assert password not in server.log()
