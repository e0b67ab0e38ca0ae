"""What can go wrong with staff accounts and their sessions."""

from __future__ import annotations

from privault.errors import Conflict, Forbidden, InvalidInput, NotAuthenticated, NotFound


class StaffLoginFailed(NotAuthenticated):
    code = "invalid_credentials"
    keeps_changes = True


class StaffSessionInvalid(NotAuthenticated):
    code = "not_authenticated"


class PurposeRefused(Forbidden):
    """The staff member's role may not use personal data for this purpose (P4.1)."""

    code = "purpose_refused"
    keeps_changes = True


class StaffNotFound(NotFound):
    code = "staff_not_found"


class StaffNameTaken(Conflict):
    code = "staff_name_taken"


class InvalidStaffName(InvalidInput):
    code = "invalid_staff_name"
