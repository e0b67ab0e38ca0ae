"""What goes wrong with a policy file, or with a question asked of a policy."""

from __future__ import annotations

from privault.errors import Conflict, NotFound, PrivaultError


class PolicyError(PrivaultError):
    """The policy file cannot be read, parsed or trusted.

    ``detail`` is one line: the file, the dotted key path and the reason.
    """

    code = "invalid_policy"


class UnknownPolicyEntry(PolicyError):
    """A category, purpose, recipient, location or cookie the policy does not declare."""

    code = "unknown_policy_entry"


class PolicyVersionNotFound(NotFound):
    """No stored policy version has that number."""

    code = "policy_version_not_found"


class PublishRefused(Conflict):
    """A policy file that may not become the next version: unchanged, or effective before
    the latest version."""

    code = "publish_refused"
