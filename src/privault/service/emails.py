"""Email addresses people give us outside registration (billing, the contact form)."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

from privault.errors import InvalidInput

MAX_EMAIL = 254


def check_email(raw: str, *, what: str = "the email address", field: str = "email") -> str:
    """The address, trimmed; ``InvalidInput`` naming ``what`` (and the input ``field``) when
    it is not a valid address.

    The sentence never quotes the address: ``email_validator``'s own reasons may echo parts
    of it, so they are not passed on.
    """
    text = raw.strip()
    if not text or len(text) > MAX_EMAIL:
        raise InvalidInput(
            f"{what} must be an email address of at most {MAX_EMAIL} characters", field=field
        )
    try:
        validate_email(text, check_deliverability=False)
    except EmailNotValidError:
        raise InvalidInput(f"{what} is not a valid email address", field=field) from None
    return text
