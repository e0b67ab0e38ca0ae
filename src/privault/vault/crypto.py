"""AES-256-GCM for stored values, each bound to its place by associated data.

A stored value is ``version (1 byte) || nonce (12) || ciphertext || tag (16)``.
The associated data names the table, column and row, so a ciphertext copied to
another row or column fails authentication instead of decrypting there.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from privault.vault.errors import TamperedCiphertext

VERSION = b"\x01"
NONCE = 12


def aad(table: str, column: str, row: str) -> bytes:
    return f"{table}\x1f{column}\x1f{row}".encode()


def seal(cipher: AESGCM, plaintext: bytes, associated: bytes) -> bytes:
    nonce = os.urandom(NONCE)
    return VERSION + nonce + cipher.encrypt(nonce, plaintext, associated)


def seal_many(
    cipher_of: list[AESGCM], plaintexts: list[bytes], associated: list[bytes]
) -> list[bytes]:
    """Seal a batch; nonces come from one read of the OS random source."""
    pool = os.urandom(NONCE * len(plaintexts))
    out = []
    for i, (cipher, plaintext, ad) in enumerate(
        zip(cipher_of, plaintexts, associated, strict=True)
    ):
        nonce = pool[i * NONCE : (i + 1) * NONCE]
        out.append(VERSION + nonce + cipher.encrypt(nonce, plaintext, ad))
    return out


def open_sealed(cipher: AESGCM, blob: bytes, associated: bytes, what: str) -> bytes:
    """Decrypt and authenticate, or raise ``TamperedCiphertext`` naming the place, not the value."""
    if len(blob) < 1 + NONCE + 16 or blob[:1] != VERSION:
        raise TamperedCiphertext(f"stored value at {what} is malformed")
    try:
        return cipher.decrypt(blob[1 : 1 + NONCE], blob[1 + NONCE :], associated)
    except InvalidTag:
        raise TamperedCiphertext(
            f"stored value at {what} failed authentication: it was altered or moved"
        ) from None


def keyed_digest(key: bytes, domain: str, value: str) -> bytes:
    """HMAC-SHA256 of a value within a domain, for blind indexes and token look-ups."""
    return hmac.new(key, f"{domain}\x1f{value}".encode(), hashlib.sha256).digest()


def token_digest(token: str) -> bytes:
    """SHA-256 of a random bearer token (session, link, service token): what is stored in
    its place. The token's own entropy makes a key unnecessary."""
    return hashlib.sha256(token.encode()).digest()
