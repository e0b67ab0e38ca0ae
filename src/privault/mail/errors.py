"""What can go wrong with a confirmation link."""

from __future__ import annotations

from privault.errors import Gone, NotFound


class ConfirmationNotFound(NotFound):
    code = "confirmation_not_found"


class ConfirmationGone(Gone):
    """The link was followed already or has expired."""

    code = "confirmation_gone"
