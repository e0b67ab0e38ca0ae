"""What can go wrong with consents."""

from __future__ import annotations

from privault.errors import Conflict, Forbidden, Gone, InvalidInput, NotFound


class CookieChoiceInvalid(InvalidInput):
    """A cookie choice that does not fit the banner: an unknown or missing category, or
    strictly necessary cookies refused."""

    code = "invalid_cookie_choice"


class ConsentNotYours(Forbidden):
    """The consent cookie names a choice made by another logged-in person."""

    code = "consent_not_yours"


# -- channel consents, newsletters, unsubscribe links, marketing sends ------------------------


class UnknownChannel(InvalidInput):
    """A consent channel that does not exist (the sentence names it and the known ones)."""

    code = "unknown_channel"


class OptInLinkInvalid(NotFound):
    """A newsletter confirmation link that was never issued."""

    code = "opt_in_link_invalid"


class OptInLinkGone(Gone):
    """A newsletter confirmation link already used, or past its seven days."""

    code = "opt_in_link_gone"


class UnsubscribeLinkInvalid(NotFound):
    """An unsubscribe link whose signature does not check: forged, altered or cut."""

    code = "unsubscribe_link_invalid"


class EmailUnverified(Conflict):
    """A newsletter asked for from the privacy centre before the account's address is proven."""

    code = "email_unverified"


class MarketingRefused(Forbidden):
    """A marketing send the policy does not allow (a category its purpose may not use)."""

    code = "marketing_refused"


class MarketingSendInvalid(InvalidInput):
    """A marketing send asked for with a template, segment or campaign that does not fit."""

    code = "marketing_send_invalid"


# -- acceptance of the policy's current version (P8.3) -------------------------------------


class PolicyAcceptanceRequired(Forbidden):
    """A person who has not accepted the policy's current version asked for something
    other than the policy, acceptance, export or erasure; the body names the version."""

    code = "policy_acceptance_required"

    def __init__(self, version: int) -> None:
        super().__init__(
            f"accept version {version} of the privacy policy to continue: read it at "
            f"/privacy/v/{version}, then POST /api/v1/me/policy/accept; until then you may "
            "export your data or close your account",
            version=version,
        )


class PolicyVersionNotCurrent(Conflict):
    """An acceptance or refusal of a version other than the current one."""

    code = "policy_version_not_current"
