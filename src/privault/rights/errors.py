"""What can go wrong with data-subject requests."""

from __future__ import annotations

from privault.errors import Conflict, Gone, InvalidInput, NotFound


class RequestNotFound(NotFound):
    code = "request_not_found"


class UnknownRequestKind(InvalidInput):
    code = "unknown_request_kind"


class RequestClosed(Conflict):
    """The request is completed, refused or withdrawn, or not in a state for this step."""

    code = "request_state"


class ExtensionRefused(InvalidInput):
    code = "extension_refused"


class ReasonRequired(InvalidInput):
    code = "reason_required"


class DownloadNotFound(NotFound):
    code = "download_not_found"


class DownloadGone(Gone):
    """The link was used already or has expired."""

    code = "download_gone"
