"""What can go wrong with accounts and sessions."""

from __future__ import annotations

from privault.errors import Conflict, InvalidInput, NotAuthenticated, NotFound


class EmailTaken(Conflict):
    code = "email_taken"


class InvalidDisplayName(InvalidInput):
    code = "invalid_display_name"


class WeakPassword(InvalidInput):
    code = "weak_password"


class InvalidCredentials(NotAuthenticated):
    code = "invalid_credentials"
    keeps_changes = True


class SessionInvalid(NotAuthenticated):
    code = "not_authenticated"


class VerificationInvalid(InvalidInput):
    code = "verification_invalid"


class ResetLinkInvalid(InvalidInput):
    code = "reset_link_invalid"


class UnknownProfileField(InvalidInput):
    code = "unknown_profile_field"


class AccountNotFound(NotFound):
    code = "account_not_found"


class ReauthenticationRequired(NotAuthenticated):
    code = "reauthentication_required"


class RoomNotFound(NotFound):
    code = "room_not_found"


class PinInvalid(InvalidInput):
    code = "invalid_pin"


class WeakPin(InvalidInput):
    code = "weak_pin"


class InvalidPhoneNumber(InvalidInput):
    code = "invalid_phone_number"


class InvalidRegion(InvalidInput):
    code = "invalid_region"


class DialInExists(Conflict):
    code = "dial_in_exists"


class DialInNotFound(NotFound):
    code = "dial_in_not_found"


class NumberListNotFound(NotFound):
    code = "number_list_not_found"


class NumberListEntryNotFound(NotFound):
    code = "number_list_entry_not_found"


class NumberAlreadyListed(Conflict):
    code = "number_already_listed"


class NumberListLimit(Conflict):
    code = "number_list_limit"


class CdrBatchInvalid(InvalidInput):
    code = "invalid_cdr_batch"


class CdrBatchTooLarge(InvalidInput):
    code = "cdr_batch_too_large"


class InvalidTimezone(InvalidInput):
    code = "invalid_timezone"


class CardNumberRefused(InvalidInput):
    code = "card_number_refused"


class InvalidCurrency(InvalidInput):
    code = "invalid_currency"


class InvalidCardDetails(InvalidInput):
    code = "invalid_card_details"


class PurchaseNotFound(NotFound):
    code = "purchase_not_found"


class InvalidUsername(InvalidInput):
    code = "invalid_username"


class UsernameTaken(Conflict):
    code = "username_taken"


class PostNotFound(NotFound):
    code = "post_not_found"


class PersonNotFound(NotFound):
    """No public page: the username is unknown, or its owner has made nothing visible."""

    code = "person_not_found"


class MessageNotFound(NotFound):
    code = "message_not_found"
