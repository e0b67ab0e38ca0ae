"""What can go wrong with a backup or a restore."""

from __future__ import annotations

from privault.errors import PrivaultError


class BackupError(PrivaultError):
    code = "backup_error"


class BackupUnreadable(BackupError):
    """Not a backup, damaged, altered or cut short."""

    code = "backup_unreadable"


class BackupWrongKeyring(BackupError):
    """The backup was sealed with another keyring's backup secret."""

    code = "backup_wrong_keyring"


class BackupMismatch(BackupError):
    """The backup does not fit this database: another schema revision, another kind of
    database, or a file of the other kind (data for keys, keys for data)."""

    code = "backup_mismatch"


class RestoreRefused(BackupError):
    """The target database holds people, and replacing them was not asked for."""

    code = "restore_refused"
