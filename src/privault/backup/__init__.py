"""Backups: encrypted, consistent snapshots of the database, and their restore."""
