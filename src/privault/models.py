"""Every table, imported in one place so migrations and the data map see them all."""

from privault.access.models import AccessLogEntry, AccessLogHead
from privault.consent.models import (
    ChannelConsent,
    CookieConsent,
    MarketingSend,
    OptInLink,
    PageView,
    Subscriber,
    Visit,
)
from privault.disclosure.models import Disclosure, DisclosureSubject
from privault.mail.models import InboundMail, RequestConfirmation
from privault.notify.models import OutboxMessage, PolicyMailing
from privault.policy.store import PolicyVersion
from privault.retention.models import LegalHold, LegalHoldSubject, SweepErased, SweepRun
from privault.rights.models import (
    ExportDownload,
    RetainedRecord,
    RightsRequest,
    RightsRequestEvent,
)
from privault.service.models import (
    Account,
    CallRecord,
    DialInNumber,
    EmailVerification,
    LoginSession,
    Message,
    NumberList,
    NumberListEntry,
    PasswordReset,
    PbxToken,
    PinFailure,
    PinLockout,
    Post,
    ProfileField,
    Purchase,
    Room,
    Username,
)
from privault.staff.models import StaffMember, StaffSession
from privault.statistics.budget import PrivacyBudgetSpend
from privault.vault.models import Subject, SubjectKey

__all__ = [
    "AccessLogEntry",
    "AccessLogHead",
    "Account",
    "CallRecord",
    "ChannelConsent",
    "CookieConsent",
    "DialInNumber",
    "Disclosure",
    "DisclosureSubject",
    "EmailVerification",
    "ExportDownload",
    "InboundMail",
    "LegalHold",
    "LegalHoldSubject",
    "LoginSession",
    "MarketingSend",
    "Message",
    "NumberList",
    "NumberListEntry",
    "OptInLink",
    "OutboxMessage",
    "PageView",
    "PasswordReset",
    "PbxToken",
    "PinFailure",
    "PinLockout",
    "PolicyMailing",
    "PolicyVersion",
    "Post",
    "PrivacyBudgetSpend",
    "ProfileField",
    "Purchase",
    "RequestConfirmation",
    "RetainedRecord",
    "RightsRequest",
    "RightsRequestEvent",
    "Room",
    "StaffMember",
    "StaffSession",
    "Subject",
    "SubjectKey",
    "Subscriber",
    "SweepErased",
    "SweepRun",
    "Username",
    "Visit",
]
