"""The backup file: a header in clear, then a compressed body encrypted in chunks.

Layout: ``MAGIC`` (8 bytes), the header's length (4 bytes, big-endian), the header (JSON),
then chunks, each ``flag (1) || length (4) || AES-256-GCM ciphertext``. The body's key is
random, made for this one file, and stored in the header sealed under the keyring's
``backup`` secret; so a chunk's nonce can be its index. A chunk's associated data is the
SHA-256 of everything before the first chunk, its index and its flag (1 on the last chunk
only): a changed header, chunks dropped, repeated or reordered, or a file cut short fail
authentication or end without their last chunk, and the reader says so.

The body is JSON lines, zlib-compressed as one stream: ``{"table": name, "columns": [...]}``
starts a table, and each following list is one of its rows. Bytes and datetimes are
tagged objects (``{"b": base64}``, ``{"t": isoformat}``), and so is a JSON column's object
(``{"o": ...}``). Writer and reader hold one
chunk at a time, whatever the size of the database.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import struct
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from privault.backup.errors import BackupUnreadable, BackupWrongKeyring
from privault.vault import crypto
from privault.vault.errors import TamperedCiphertext
from privault.vault.keyring import KEY_BYTES, Keyring

MAGIC = b"PVBK\x00\x01\r\n"
FORMAT = 1
#: The keyring secret that seals each file's own key. A named secret, not a master key:
#: rotating master keys leaves it alone, so a rotation never makes a backup unopenable.
SECRET = "backup"  # noqa: S105 - the secret's name in the keyring
CHUNK = 1 << 20
MAX_HEADER = 1 << 20
_LAST = b"\x01"
_MORE = b"\x00"


def fingerprint(keyring: Keyring) -> str:
    """Names the keyring's backup secret without revealing it (a wrong keyring is told
    apart from a damaged file)."""
    return crypto.keyed_digest(keyring.secret(SECRET), "backup-fingerprint", "").hex()[:16]


def _key_aad(backup_id: str) -> bytes:
    return f"privault:backup-key\x1f{backup_id}".encode()


def _chunk_aad(digest: bytes, index: int, flag: bytes) -> bytes:
    return digest + index.to_bytes(8, "big") + flag


def _nonce(index: int) -> bytes:
    return index.to_bytes(crypto.NONCE, "big")


def _encode(value: Any) -> Any:
    if isinstance(value, bytes | memoryview):
        return {"b": base64.b64encode(value).decode()}
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    if isinstance(value, dict):  # a JSON column's object
        return {"o": value}
    return value


def _line(item: object) -> bytes:
    return json.dumps(item, separators=(",", ":")).encode() + b"\n"


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if "b" in value:
            return base64.b64decode(value["b"])
        if "t" in value:
            return datetime.fromisoformat(value["t"])
        return value["o"]
    return value


@dataclass(frozen=True)
class TableStart:
    """Where a table's rows begin in the body."""

    table: str
    columns: list[str]


class Writer:
    """Writes one backup file to ``stream``: the header at once, then lines as they come."""

    def __init__(self, stream: BinaryIO, keyring: Keyring, header: dict[str, Any]) -> None:
        self._stream = stream
        key = secrets.token_bytes(KEY_BYTES)
        backup_id = secrets.token_hex(8)
        sealed = crypto.seal(AESGCM(keyring.secret(SECRET)), key, _key_aad(backup_id))
        self.header = header | {
            "format": FORMAT,
            "id": backup_id,
            "key": {
                "secret": SECRET,
                "keyring": fingerprint(keyring),
                "sealed": base64.b64encode(sealed).decode(),
            },
        }
        text = json.dumps(self.header, sort_keys=True).encode()
        start = MAGIC + struct.pack(">I", len(text)) + text
        stream.write(start)
        self._digest = hashlib.sha256(start).digest()
        self._cipher = AESGCM(key)
        self._zip = zlib.compressobj(6)
        self._pending = bytearray()
        self._index = 0

    def table(self, name: str, columns: list[str]) -> None:
        self._add(_line({"table": name, "columns": columns}))

    def rows(self, rows: Iterable[Sequence[Any]]) -> None:
        self._add(b"".join(_line([_encode(v) for v in row]) for row in rows))

    def _add(self, lines: bytes) -> None:
        self._pending += self._zip.compress(lines)
        while len(self._pending) >= CHUNK:
            self._chunk(bytes(self._pending[:CHUNK]), _MORE)
            del self._pending[:CHUNK]

    def close(self) -> None:
        """Write the last chunk (the file is incomplete without it)."""
        self._pending += self._zip.flush()
        self._chunk(bytes(self._pending), _LAST)
        self._pending.clear()

    def _chunk(self, plain: bytes, flag: bytes) -> None:
        sealed = self._cipher.encrypt(
            _nonce(self._index), plain, _chunk_aad(self._digest, self._index, flag)
        )
        self._stream.write(flag + struct.pack(">I", len(sealed)) + sealed)
        self._index += 1


class Reader:
    """Reads a backup file: ``header`` at once (checked against the keyring), then
    ``items()`` yields each ``TableStart`` and row tuples as the body is decrypted."""

    def __init__(self, stream: BinaryIO, keyring: Keyring, name: str) -> None:
        self._stream = stream
        self.name = name
        magic = stream.read(len(MAGIC))
        if magic != MAGIC:
            raise BackupUnreadable(f"{name} is not a Privault backup")
        size = stream.read(4)
        if len(size) < 4 or struct.unpack(">I", size)[0] > MAX_HEADER:
            raise BackupUnreadable(f"{name}: the header is damaged")
        text = stream.read(struct.unpack(">I", size)[0])
        try:
            self.header: dict[str, Any] = json.loads(text)
            sealed = base64.b64decode(self.header["key"]["sealed"], validate=True)
            made_with = str(self.header["key"]["keyring"])
            backup_id = str(self.header["id"])
            fmt = self.header["format"]
        except (ValueError, KeyError, TypeError) as exc:
            raise BackupUnreadable(f"{name}: the header is damaged") from exc
        if fmt != FORMAT:
            raise BackupUnreadable(f"{name} is of backup format {fmt!r}, not {FORMAT}")
        if made_with != fingerprint(keyring):
            raise BackupWrongKeyring(
                f"{name} was made with another keyring (backup secret {made_with}); "
                "restore that keyring first"
            )
        try:
            key = crypto.open_sealed(
                AESGCM(keyring.secret(SECRET)), sealed, _key_aad(backup_id), f"{name} header"
            )
        except TamperedCiphertext as exc:
            raise BackupUnreadable(f"{name}: the header was altered") from exc
        self._digest = hashlib.sha256(MAGIC + size + text).digest()
        self._cipher = AESGCM(key)

    def _plain(self) -> Iterator[bytes]:
        index = 0
        while True:
            head = self._stream.read(5)
            if len(head) < 5:
                raise BackupUnreadable(f"{self.name} is cut short (after {index} chunk(s))")
            flag, size = head[:1], struct.unpack(">I", head[1:])[0]
            if size > CHUNK + 16:
                raise BackupUnreadable(f"{self.name} is damaged at chunk {index}")
            sealed = self._stream.read(size)
            if len(sealed) < size or flag not in (_LAST, _MORE):
                raise BackupUnreadable(f"{self.name} is cut short or damaged at chunk {index}")
            try:
                yield self._cipher.decrypt(
                    _nonce(index), sealed, _chunk_aad(self._digest, index, flag)
                )
            except InvalidTag:
                raise BackupUnreadable(
                    f"{self.name}: chunk {index} failed authentication (altered or reordered)"
                ) from None
            index += 1
            if flag == _LAST:
                if self._stream.read(1):
                    raise BackupUnreadable(f"{self.name} has data after its last chunk")
                return

    def items(self) -> Iterator[TableStart | tuple[Any, ...]]:
        """A ``TableStart``, then that table's rows as tuples, table after table."""
        unzip = zlib.decompressobj()
        rest = b""
        try:
            for plain in self._plain():
                # At most one chunk's size unpacked at a time, however well it compressed.
                while plain:
                    lines = (rest + unzip.decompress(plain, CHUNK)).split(b"\n")
                    plain = unzip.unconsumed_tail
                    rest = lines.pop()
                    yield from map(_item, lines)
            lines = (rest + unzip.flush()).split(b"\n")
            if lines.pop() or not unzip.eof:
                raise BackupUnreadable(f"{self.name}: the body ends mid-way")
            yield from map(_item, lines)
        except (zlib.error, ValueError, KeyError, TypeError) as exc:
            raise BackupUnreadable(f"{self.name}: the body is damaged") from exc


def _item(line: bytes) -> TableStart | tuple[Any, ...]:
    item = json.loads(line)
    if isinstance(item, dict):
        return TableStart(str(item["table"]), [str(c) for c in item["columns"]])
    return tuple(_decode(v) for v in item)
