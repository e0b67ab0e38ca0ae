"""Every table, imported in one place so migrations and the data map see them all."""

from privault.access.models import AccessLogEntry
from privault.notify.models import OutboxMessage
from privault.policy.store import PolicyVersion
from privault.service.models import Account, EmailVerification, LoginSession, ProfileField, Room
from privault.vault.models import Subject, SubjectKey

__all__ = [
    "AccessLogEntry",
    "Account",
    "EmailVerification",
    "LoginSession",
    "OutboxMessage",
    "PolicyVersion",
    "ProfileField",
    "Room",
    "Subject",
    "SubjectKey",
]
