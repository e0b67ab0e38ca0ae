"""Which code keeps which promise: for each promise ID of the table, the mechanisms that
enforce it, as dotted paths to real code (``code``) or keys of the policy file (``policy``).

`privault promises` imports every path and looks every key up in the loaded policy, and
``--strict`` fails on one that is gone, so this map cannot silently rot. The policy adds
its own links on top: a category's ``promise`` and a security measure's ``promises``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    CODE = "code"
    POLICY = "policy"


@dataclass(frozen=True)
class Mechanism:
    what: str
    kind: Kind
    #: A dotted path (``privault.vault.service.Vault.encrypt``) or a policy key
    #: (``categories.other.retention``; an entry of a list by its id or name).
    ref: str


def code(what: str, path: str) -> Mechanism:
    return Mechanism(what, Kind.CODE, path)


def policy(what: str, key: str) -> Mechanism:
    return Mechanism(what, Kind.POLICY, key)


MECHANISMS: dict[str, tuple[Mechanism, ...]] = {
    "P0.1": (
        code(
            "a disclosure whose purpose is a sale is refused and logged",
            "privault.disclosure.service.is_sale",
        ),
        code("the refusal", "privault.disclosure.errors.SaleRefused"),
        code("no recipient kind is a buyer", "privault.policy.model.RecipientKind"),
    ),
    "P0.2": (
        code(
            "marketing mail only with a live consent, under the monthly cap",
            "privault.consent.marketing.MarketingService.audience",
        ),
        policy("the per-person monthly cap", "marketing.max_per_month"),
        code("one-click unsubscribe (RFC 8058)", "privault.consent.unsubscribe.Unsubscriber"),
        code(
            "unsubscribe headers on every marketing mail",
            "privault.notify.outbox.MailTemplate.unsubscribable",
        ),
    ),
    "P0.3": (
        code(
            "a public page shows only what privacy settings allow",
            "privault.service.publication.PublicationService.page",
        ),
        code("profile fields as published", "privault.service.profile.ProfileService.published"),
    ),
    "P0.4": (
        code(
            "closing an account files an erasure", "privault.service.accounts.AccountService.close"
        ),
        code("the erasure: crypto-shredding, then the rows", "privault.rights.erasure.Eraser"),
        policy("the rights deadline", "rights.deadline_days"),
    ),
    "P1.2": (
        code(
            "a cookie choice stored with its proof",
            "privault.consent.cookies.CookieConsents.record",
        ),
        code(
            "a choice is live until it expires or the versions change",
            "privault.consent.cookies.CookieConsents.current",
        ),
        code(
            "the cookie list and policy versions a choice was made under",
            "privault.consent.cookies.CookieVersions",
        ),
        policy("how long a choice lasts", "consent.lifetime"),
    ),
    "P2.1": (
        code("browser and OS parsed from the user agent", "privault.consent.analytics.device_of"),
        code("IP truncated to /24 or /48", "privault.service.messages.truncate_ip"),
        code("country, never the place", "privault.consent.geo.CsvCountries.country_of"),
    ),
    "P2.2": (
        code(
            "page views per visit, only with analytics consent",
            "privault.consent.analytics.Analytics.record",
        ),
        code("the stored page view", "privault.consent.models.PageView"),
    ),
    "P2.3": (
        code(
            "registration with email verification",
            "privault.service.accounts.AccountService.register",
        ),
        code("email found by blind index", "privault.vault.service.Vault.blind_index"),
    ),
    "P2.4": (
        code(
            "optional profile fields, each with its visibility",
            "privault.service.profile.ProfileService.update",
        ),
        code("the visibility of a field", "privault.service.profile.Visibility"),
    ),
    "P2.5": (
        code("double opt-in, for anyone", "privault.consent.newsletter.Newsletter.subscribe"),
        code("the confirmation", "privault.consent.newsletter.Newsletter.confirm"),
    ),
    "P2.6": (
        code("rooms", "privault.service.rooms.RoomService"),
        code("number lists and contacts", "privault.service.numbers.NumberListService"),
    ),
    "P2.7": (
        code("CDRs ingested from the PBX", "privault.service.cdrs.CdrService.ingest"),
        code("caller numbers in E.164", "privault.service.phones.parse_phone"),
    ),
    "P2.8": (
        code(
            "a purchase keeps a token, brand, last four and expiry",
            "privault.service.purchases.PurchaseService.record",
        ),
        code("card numbers refused everywhere else", "privault.service.cards.refuse_card_numbers"),
    ),
    "P2.9": (code("posts and their publication state", "privault.service.posts.PostService"),),
    "P2.10": (
        code(
            "inbound mail stored as its sender's data",
            "privault.service.messages.MessageService.receive_mail",
        ),
        code(
            "messages through the API and the web form",
            "privault.service.messages.MessageService.send",
        ),
    ),
    "P2.11": (
        code(
            "what a mail encloses is kept as category other, sealed",
            "privault.service.other.OtherItemService.keep",
        ),
        code(
            "the table, in the data map (swept by its retention)",
            "privault.service.models.OtherItem",
        ),
        code("attachments read from mail", "privault.mail.reading.Attachment"),
        policy("its retention", "categories.other.retention"),
    ),
    "P3.x": (
        code(
            "every read names a purpose the policy allows",
            "privault.access.purposes.Purposes.require",
        ),
        code("the policy's purpose table", "privault.policy.model.Policy.purpose_allows"),
    ),
    "P3.8": (
        code(
            "channel consents: post opt-out, email opt-in",
            "privault.consent.channels.ChannelConsents",
        ),
        policy("opt modes per channel", "marketing.channels"),
    ),
    "P3.10": (
        code(
            "statistics recipients get aggregates only", "privault.disclosure.errors.AggregatesOnly"
        ),
        code(
            "every release is a logged disclosure",
            "privault.disclosure.service.DisclosureService.disclose",
        ),
    ),
    "P3.15": (
        code("per-field visibility", "privault.service.profile.Visibility"),
        code("per-post visibility", "privault.service.posts.PostService.update"),
        code("who sees what", "privault.service.publication.audience_of"),
    ),
    "P3.16": (
        code(
            "no marketing recipient without the separate consent",
            "privault.consent.channels.ChannelConsents.may_share_with",
        ),
        code("the refusal", "privault.disclosure.errors.ThirdPartyConsentMissing"),
    ),
    "P4.1": (
        code(
            "a staff read checks the role's purposes and is logged",
            "privault.staff.service.StaffService.read",
        ),
        policy("roles and their purposes", "roles"),
    ),
    "P4.2\u2013P4.5": (  # an en dash, as in the table
        code("the disclosure register", "privault.disclosure.service.DisclosureService.disclose"),
        code("the legal bases", "privault.disclosure.service.DisclosureBasis"),
        code("recipients in the access export", "privault.disclosure.service.recipients_of"),
    ),
    "P4.6": (
        code(
            "a recipient the policy does not name is refused",
            "privault.disclosure.errors.UnknownRecipient",
        ),
        policy("the recipients", "recipients"),
    ),
    "P5.1": (
        policy("storage locations, each with a country", "locations"),
        code("a location's country", "privault.policy.model.Location"),
    ),
    "P5.2": (
        code("adequacy check", "privault.policy.model.Policy.is_adequate"),
        code("the refusal", "privault.disclosure.errors.TransferRefused"),
        policy("the adequacy list", "transfers.adequacy"),
    ),
    "P6.2": (
        code("the retention sweep", "privault.retention.sweep.RetentionSweep.run"),
        policy("a retention period for every category", "categories"),
    ),
    "P6.3": (
        code("legal holds", "privault.retention.holds.HoldService.place"),
        code("what a hold covers", "privault.retention.holds.holds_covering"),
    ),
    "P7.1": (
        code("envelope encryption with per-person keys", "privault.vault.service.Vault.encrypt"),
        code("the hash-chained access log", "privault.access.audit.AuditLog.verify"),
        code("the keyring", "privault.vault.keyring.Keyring"),
        code("encrypted, consistent backups", "privault.backup.service.write_backup"),
        code("restoring them", "privault.backup.service.restore_backup"),
    ),
    "P7.2": (
        code("personal-data endpoints need a login", "privault.web.deps.get_caller"),
        code("Argon2id passwords", "privault.service.passwords.Passwords.hash"),
        code("serves on localhost unless told otherwise", "privault.cli.serve"),
    ),
    "P7.3": (
        code(
            "payment data only as processor tokens",
            "privault.service.purchases.PurchaseService.record",
        ),
        code("nothing card-like kept or logged", "privault.service.cards.redact"),
    ),
    "P7.5": (
        code(
            "PINs as Argon2id hashes, guessing locked out", "privault.service.pins.PinService.check"
        ),
        code("passwords as Argon2id hashes", "privault.service.passwords.Passwords"),
        code(
            "logs name a request by its id and route template, never its path or values",
            "privault.web.request_log.RequestLog",
        ),
        code("exceptions logged without their message", "privault.logs.without_message"),
        code("database errors without their parameters", "privault.db.make_engine"),
    ),
    "P8.1": (
        code("versioned policies", "privault.policy.store.PolicyStore"),
        code("a stored version", "privault.policy.store.PolicyVersion"),
        code("published with its effective date", "privault.policy.store.PolicyStore.publish"),
        code("each version rendered as a page", "privault.policy.render.PolicyPages"),
        code("what changed, in plain words", "privault.policy.diff.diff"),
    ),
    "P8.2": (
        code(
            "publishing mails every active account, once",
            "privault.notify.policy_mailing.PolicyMailingService.run",
        ),
    ),
    "P8.3": (
        code(
            "service calls refused until the current version is accepted",
            "privault.web.deps.get_caller",
        ),
        code("acceptance recorded with proof", "privault.consent.acceptance.PolicyAcceptances"),
        policy("the PIN check's grace during a change", "amendments.pbx_grace"),
    ),
    "P9.1": (
        code("export as JSON, CSV and HTML", "privault.rights.export.Exporter.build"),
        code("requests of every kind", "privault.rights.service.RightsService.file"),
        code("self-service correction", "privault.service.accounts.AccountService.correct"),
    ),
    "P9.2": (
        code(
            "a mail read as a request, or told what it lacks", "privault.mail.reading.read_request"
        ),
        code("the intake", "privault.mail.intake.MailIntake.receive"),
        policy("the subject line", "meta.request_subject"),
    ),
    "P9.3": (
        code("sender alignment and DKIM/DMARC", "privault.mail.auth.proof"),
        code("otherwise a confirmation link", "privault.mail.intake.MailIntake.confirm"),
    ),
    "P9.4": (
        code("due dates", "privault.policy.model.Rights.due_at"),
        code(
            "extensions with a reason, told to the person",
            "privault.rights.service.RightsService.extend",
        ),
        code("overdue requests stand out", "privault.rights.service.RequestView.overdue"),
        policy("the deadline", "rights.deadline_days"),
    ),
    "P10.1": (
        code(
            "links to other sites open without referrer or window handle",
            "privault.policy.wording.linked",
        ),
    ),
    "P11.1": (
        code("the cookie declaration", "privault.web.consent_pages.cookie_declaration"),
        policy("the cookies", "cookies"),
    ),
    "P11.2": (
        code(
            "the declaration rendered from the policy",
            "privault.web.consent_pages.cookie_declaration",
        ),
    ),
    "P11.3": (
        code("the banner's categories", "privault.consent.cookies.banner"),
        policy("GPC refuses advertising", "consent.categories.advertising.gpc_refuses"),
    ),
    "P11.4": (
        policy(
            "strictly necessary cookies need no consent",
            "consent.categories.strictly_necessary.always_on",
        ),
        policy("the session cookie", "cookies.privault_session"),
    ),
}
