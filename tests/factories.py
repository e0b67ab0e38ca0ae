"""Synthetic people for tests. Addresses are on example.com; nobody real."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from httpx2 import Response

from privault.config import Settings
from privault.runtime import Runtime
from privault.service.models import Room
from privault.vault import Field


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


def marker(kind: str) -> str:
    """A unique text to look for in rows and logs. It starts and ends with a letter and
    holds at most 12 digits, so no text built around it can look like a card number."""
    return f"mk{kind}{secrets.token_hex(6)}x"


def unique_email(name: str) -> str:
    return f"{name}.{secrets.token_hex(4)}@example.com"


def register(runtime: Runtime, name: str, password: str | None = None) -> Person:
    """Register and log in a synthetic person through the account service."""
    email = unique_email(name)
    password = password or f"{name}-{secrets.token_hex(6)}-pass"
    with runtime.transaction() as session:
        accounts = runtime.accounts(session)
        done = accounts.register(email, password, name.title())
        login = accounts.login(email, password)
    return Person(done.subject_id, email, password, done.room_id, login.token)


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


def give_room_id(runtime: Runtime, subject_id: str, room_id: str) -> None:
    """Give the subject's room a Room ID of the test's choosing (fixtures name fixed ones)."""
    with runtime.transaction() as session:
        room = session.get(Room, subject_id)
        assert room is not None
        room.room_id_index = runtime.vault.blind_index("room_id", room_id)
        room.room_id_ct = runtime.vault.encrypt(
            session, subject_id, Field("rooms", "room_id_ct", subject_id), room_id
        )


def run_cli(settings: Settings, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`privault ARGS` as a real process on the data folder and database of ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRIVAULT_")}
    env |= {
        "COLUMNS": "200",
        "PRIVAULT_DATA_DIR": str(settings.data_dir),
        "PRIVAULT_DATABASE_URL": settings.db_url,
    }
    return subprocess.run(
        [sys.executable, "-m", "privault.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


#: A caller's number from the range Ofcom keeps for drama.
UK_MOBILE = "+447700900123"


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
