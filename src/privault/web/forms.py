"""What a page's form shows when the domain refuses it: each message next to its field."""

from __future__ import annotations

from collections.abc import Mapping

from privault.errors import PrivaultError

#: The key of a message about the whole form (``_forms.html``: ``form_error()``).
WHOLE_FORM = "form"


def form_errors(exc: PrivaultError, fields: Mapping[str, str] | None = None) -> dict[str, str]:
    """``{field: message}`` for ``exc``: the field the error names (raised with
    ``field=...``), else the one ``fields`` gives for its code, else the whole form."""
    return {exc.field or (fields or {}).get(exc.code) or WHOLE_FORM: exc.detail}
