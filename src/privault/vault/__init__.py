"""Subjects, keyring, envelope encryption, blind indexes and the data map."""

from privault.vault.datamap import personal_data
from privault.vault.errors import (
    KeyringError,
    KeyringInsecure,
    SubjectKeyMissing,
    TamperedCiphertext,
    VaultError,
)
from privault.vault.keyring import Keyring
from privault.vault.service import Field, Vault

__all__ = [
    "Field",
    "Keyring",
    "KeyringError",
    "KeyringInsecure",
    "SubjectKeyMissing",
    "TamperedCiphertext",
    "Vault",
    "VaultError",
    "personal_data",
]
