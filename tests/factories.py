"""Synthetic people for tests. Addresses are on example.com; nobody real."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from privault.runtime import Runtime


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
