"""What can go wrong in the vault."""

from __future__ import annotations

from privault.errors import PrivaultError


class VaultError(PrivaultError):
    code = "vault_error"


class KeyringError(VaultError):
    """The keyring file is missing, unreadable, malformed or exposed."""

    code = "keyring_error"


class KeyringInsecure(KeyringError):
    code = "keyring_insecure"


class TamperedCiphertext(VaultError):
    """A stored value failed authentication: changed, truncated or moved to another row."""

    code = "tampered_ciphertext"


class SubjectKeyMissing(VaultError):
    """The subject has no data key: never created, or destroyed by erasure."""

    code = "subject_key_missing"
