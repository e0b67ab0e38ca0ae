"""The keyring file: master keys that wrap the per-person data keys, and named secrets.

It lives beside the database, never inside it, so a copy of the database alone
decrypts nothing. The file is written atomically with mode 0600 and refused
when anyone but its owner could read it.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import stat
from datetime import UTC, datetime
from pathlib import Path

from privault.vault.errors import KeyringError, KeyringInsecure

FORMAT = 1
KEY_BYTES = 32
#: Named secrets the services need; a keyring gains any missing one on load.
SECRET_NAMES = (
    "blind_index",
    "audit",
    "session",
    "pin_pepper",
    "retention",
    "staff",
    "unsubscribe",
    "backup",
)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _unb64(text: str, what: str) -> bytes:
    """``what`` names the file and the entry, e.g. ``var/keyring.json: entry secrets.audit``."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (ValueError, TypeError) as exc:
        raise KeyringError(f"keyring {what} is not base64") from exc
    if len(raw) != KEY_BYTES:
        raise KeyringError(f"keyring {what} is not {KEY_BYTES} bytes")
    return raw


def _new_key_id() -> str:
    return f"mk-{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(4)}"


class Keyring:
    """Master keys by id (one active) and named secrets, backed by one JSON file."""

    def __init__(
        self,
        path: Path,
        master_keys: dict[str, bytes],
        active: str,
        named: dict[str, bytes],
    ) -> None:
        if active not in master_keys:
            raise KeyringError(f"keyring {path}: active master key {active} is not in the file")
        self.path = path
        self.master_keys = master_keys
        self.active = active
        self._named = named
        self._mtime = path.stat().st_mtime_ns if path.exists() else 0

    @classmethod
    def create(cls, path: Path) -> Keyring:
        """Write a new keyring; refuses to overwrite an existing one, even one made meanwhile."""
        key_id = _new_key_id()
        ring = cls(
            path,
            {key_id: secrets.token_bytes(KEY_BYTES)},
            key_id,
            {name: secrets.token_bytes(KEY_BYTES) for name in SECRET_NAMES},
        )
        ring.save(exclusive=True)
        return ring

    @classmethod
    def load(cls, path: Path) -> Keyring:
        """Read the keyring, refusing one that group or others can read or write."""
        try:
            mode = path.stat().st_mode
        except FileNotFoundError as exc:
            raise KeyringError(f"keyring {path} not found; run `privault init`") from exc
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyringInsecure(
                f"keyring {path} is accessible to other users (mode {stat.S_IMODE(mode):04o}); "
                f"run `chmod 600 {path}`"
            )
        try:
            data = json.loads(path.read_text())
            if data.get("format") != FORMAT:
                raise KeyringError(f"keyring {path} has unknown format {data.get('format')!r}")
            masters = {
                k: _unb64(v, f"{path}: entry master_keys.{k}")
                for k, v in data["master_keys"].items()
            }
            named = {k: _unb64(v, f"{path}: entry secrets.{k}") for k, v in data["secrets"].items()}
            active = str(data["active"])
        except (OSError, ValueError, KeyError, AttributeError) as exc:
            raise KeyringError(f"keyring {path} is unreadable or malformed") from exc
        ring = cls(path, masters, active, named)
        missing = [name for name in SECRET_NAMES if name not in named]
        if missing:
            for name in missing:
                named[name] = secrets.token_bytes(KEY_BYTES)
            ring.save()
        return ring

    def save(self, *, exclusive: bool = False) -> None:
        """Write atomically: a 0600 temporary file, fsync, rename.

        ``exclusive`` links instead of renaming, so the write fails rather than
        replace a keyring another process created in the meantime.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = json.dumps(
            {
                "format": FORMAT,
                "active": self.active,
                "master_keys": {k: _b64(v) for k, v in self.master_keys.items()},
                "secrets": {k: _b64(v) for k, v in self._named.items()},
            },
            indent=2,
        ).encode()
        tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, body)
            os.fsync(fd)
        finally:
            os.close(fd)
        if exclusive:
            try:
                os.link(tmp, self.path)
            except FileExistsError:
                raise KeyringError(
                    f"keyring {self.path} already exists; refusing to overwrite it"
                ) from None
            finally:
                tmp.unlink()
        else:
            os.replace(tmp, self.path)
        self._mtime = self.path.stat().st_mtime_ns

    def refresh(self) -> None:
        """Reload when another process (``privault keys rotate``) changed the file."""
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return
        if mtime != self._mtime:
            fresh = Keyring.load(self.path)
            self.master_keys, self.active, self._named = (
                fresh.master_keys,
                fresh.active,
                fresh._named,
            )
            self._mtime = fresh._mtime

    def secret(self, name: str) -> bytes:
        try:
            return self._named[name]
        except KeyError:
            raise KeyringError(f"keyring has no secret named {name!r}") from None

    def master(self, key_id: str) -> bytes:
        if key_id not in self.master_keys:
            self.refresh()
        try:
            return self.master_keys[key_id]
        except KeyError:
            raise KeyringError(f"keyring has no master key {key_id}") from None

    def add_master_key(self) -> str:
        """Create a master key, make it active and save; older keys stay for unwrapping."""
        key_id = _new_key_id()
        while key_id in self.master_keys:
            key_id = _new_key_id()
        self.master_keys[key_id] = secrets.token_bytes(KEY_BYTES)
        self.active = key_id
        self.save()
        return key_id

    def retire(self, key_id: str) -> None:
        """Forget a master key that no longer wraps anything."""
        if key_id == self.active:
            raise KeyringError("the active master key cannot be retired")
        self.master_keys.pop(key_id, None)
        self.save()
