"""Password hashing (Argon2id) and the strength rule."""

from __future__ import annotations

from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from privault.service.errors import WeakPassword

MIN_LENGTH = 10
MAX_LENGTH = 256
# The most common passwords of leaked lists that pass the length rule.
COMMON = frozenset(
    {
        "1234567890",
        "0123456789",
        "1111111111",
        "0000000000",
        "qwertyuiop",
        "password1",
        "password12",
        "password123",
        "password1234",
        "iloveyou12",
        "qwerty1234",
        "1q2w3e4r5t",
        "1qaz2wsx3edc",
        "abcdefghij",
        "abc1234567",
        "letmein123",
        "welcome123",
        "passw0rd12",
        "administrator",
        "qwertyuiop1",
        "1234qwerty",
        "qwerty123456",
        "football12",
        "baseball12",
        "monkey1234",
        "dragon1234",
        "sunshine12",
        "princess12",
        "superman12",
        "trustno1234",
    }
)


def check_strength(password: str, *, email: str = "") -> None:
    """Raise ``WeakPassword`` saying why the password is refused."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"password must be at least {MIN_LENGTH} characters long")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"password must be at most {MAX_LENGTH} characters long")
    if len(set(password)) < 4:
        raise WeakPassword("password repeats too few different characters")
    if password.lower() in COMMON:
        raise WeakPassword("password is one of the most common passwords")
    local = email.split("@", 1)[0].lower()
    if len(local) >= 4 and local in password.lower():
        raise WeakPassword("password must not contain the email address")


@dataclass(frozen=True)
class PasswordCheck:
    """A password verified against ``stored``, the hash an account had then (``None``: there
    was no account)."""

    stored: str | None
    ok: bool


class Passwords:
    """Argon2id hashing; the cost comes from the settings (defaults: RFC 9106's second choice)."""

    def __init__(self, time_cost: int = 3, memory_kib: int = 65536) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=4)
        # Verified against when an account does not exist, so timing does not tell.
        self._dummy = self._hasher.hash("privault-dummy-password")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        """Constant-effort check: an unknown account still costs one Argon2 verification."""
        try:
            return self._hasher.verify(stored or self._dummy, password) and stored is not None
        except (VerificationError, InvalidHashError):
            return False

    def check(self, stored: str | None, password: str) -> PasswordCheck:
        """``verify``, remembering the hash it was checked against."""
        return PasswordCheck(stored, self.verify(stored, password))

    def needs_rehash(self, stored: str) -> bool:
        return self._hasher.check_needs_rehash(stored)
