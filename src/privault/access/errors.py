"""What the purpose checks refuse."""

from __future__ import annotations

from privault.errors import Forbidden


class PurposeNotAllowed(Forbidden):
    """The policy does not let this purpose use this category of personal data (P3.x).

    The refusal is in the access log; the transaction that holds it commits anyway.
    """

    code = "purpose_not_allowed"
    keeps_changes = True
