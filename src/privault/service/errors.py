"""What can go wrong with accounts and sessions."""

from __future__ import annotations

from privault.errors import Conflict, InvalidInput, NotAuthenticated, NotFound


class EmailTaken(Conflict):
    code = "email_taken"


class WeakPassword(InvalidInput):
    code = "weak_password"


class InvalidCredentials(NotAuthenticated):
    code = "invalid_credentials"
    keeps_changes = True


class SessionInvalid(NotAuthenticated):
    code = "not_authenticated"


class VerificationInvalid(InvalidInput):
    code = "verification_invalid"


class UnknownProfileField(InvalidInput):
    code = "unknown_profile_field"


class AccountNotFound(NotFound):
    code = "account_not_found"


class ReauthenticationRequired(NotAuthenticated):
    code = "reauthentication_required"
