"""The root of every domain error: each carries a stable code and a human sentence."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class PrivaultError(Exception):
    """A failure the caller can act on. ``code`` is stable; ``detail`` is for people.

    Details never carry personal data, PINs or passwords.
    """

    code = "error"
    #: The caller's transaction commits anyway: the failure itself is on record (a refused login).
    keeps_changes = False

    def __init__(self, detail: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        #: The input the error is about, for a page to show it next to that field (not
        #: part of the API's answer, whose detail names it in words).
        self.field = field
        #: More keys of the error's JSON body, beside ``error`` and ``detail`` (the policy
        #: version to accept, say): values a client acts on, never personal data.
        self.extra: Mapping[str, Any] = extra


def keeps_changes(exc: BaseException) -> bool:
    """Whether a transaction that failed with ``exc`` still commits: a domain error rolls
    it back, unless it says its record must stay (a refused login, a refused disclosure)."""
    return isinstance(exc, PrivaultError) and exc.keeps_changes


class NotFound(PrivaultError):
    code = "not_found"


class Conflict(PrivaultError):
    code = "conflict"


class Gone(PrivaultError):
    """What was there once is not any more: a used or expired link."""

    code = "gone"


class InvalidInput(PrivaultError):
    code = "invalid_input"


class NotAuthenticated(PrivaultError):
    code = "not_authenticated"


class Forbidden(PrivaultError):
    code = "forbidden"
