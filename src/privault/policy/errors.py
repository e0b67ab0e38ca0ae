"""What goes wrong with a policy file, or with a question asked of a policy."""

from __future__ import annotations

from privault.errors import NotFound, PrivaultError


class PolicyError(PrivaultError):
    """The policy file cannot be read, parsed or trusted.

    ``detail`` is one line: the file, the dotted key path and the reason.
    """

    code = "invalid_policy"


class UnknownPolicyEntry(PolicyError):
    """A category, purpose, recipient, location or cookie the policy does not declare."""

    code = "unknown_policy_entry"


class UnknownPolicyVersion(NotFound):
    """No policy version of that number is stored."""

    code = "unknown_policy_version"
