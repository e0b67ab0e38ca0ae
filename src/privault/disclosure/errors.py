"""Why a disclosure is refused. Each refusal is logged in the access log and keeps that
entry (``keeps_changes``); nothing else of the disclosure is stored."""

from __future__ import annotations

from privault.errors import Forbidden, InvalidInput


class DisclosureRefused(Forbidden):
    code = "disclosure_refused"
    keeps_changes = True


class SaleRefused(DisclosureRefused):
    """P0.1: we won't sell personal data, whatever a policy file says."""

    code = "sale_refused"


class UnknownRecipient(DisclosureRefused):
    """P4.6: no third party other than the policy's recipients."""

    code = "unknown_recipient"


class RecipientPurposeRefused(DisclosureRefused):
    """The policy does not declare the recipient for this purpose."""

    code = "recipient_purpose_refused"


class CategoryRefused(DisclosureRefused):
    """The purpose may not use a category (P3.x)."""

    code = "category_refused"


class AggregatesOnly(DisclosureRefused):
    """P3.10: statistics recipients receive anonymous aggregates, never personal data."""

    code = "statistics_recipient_refused"


class TransferRefused(DisclosureRefused):
    """P5.2: the recipient's country is outside the EEA and the adequacy list."""

    code = "transfer_refused"


class ThirdPartyConsentMissing(DisclosureRefused):
    """P3.16: a marketing recipient needs each person's express consent."""

    code = "third_party_consent_missing"


class InvalidDisclosure(InvalidInput):
    code = "invalid_disclosure"
    keeps_changes = True


class UnknownPurpose(InvalidDisclosure):
    code = "unknown_purpose"


class UnknownCategory(InvalidDisclosure):
    code = "unknown_category"


class UnknownSubject(InvalidDisclosure):
    code = "unknown_subject"
