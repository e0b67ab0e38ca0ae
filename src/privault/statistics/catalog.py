"""Which measures of each release sum what people did, so that a release with
differential privacy needs ``bounds`` for each of them in the policy file.

Kept apart from ``releases`` (which reads the database and the vault) so that the policy
can check its ``[statistics]`` section against it when it loads. A release's other
measures count its people, and are published as the (noisy) people count.
"""

from __future__ import annotations

from typing import Final

SUMS: Final[dict[str, tuple[str, ...]]] = {
    "calls_by_country": ("calls", "minutes"),
    "active_rooms": (),
    "accounts_by_age": (),
    "purchases_by_month": ("count", "amount_minor"),
}
