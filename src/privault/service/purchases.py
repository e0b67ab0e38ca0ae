"""Purchases and donations (P2.8): the card only as the processor's token, never its number (P7.3).

Billing name, address, phone, email, the payment token, the last four digits and the expiry
are sealed under the buyer's key. The kind, item, amount, currency and card brand stay in
clear: they say what was bought, not who bought it, and billing reports need them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import pycountry
from sqlalchemy import select
from sqlalchemy.orm import Session

from privault.access.audit import AuditLog, Event
from privault.clock import Clock, aware
from privault.db import new_id
from privault.errors import InvalidInput
from privault.service.cards import refuse_card_numbers
from privault.service.emails import check_email
from privault.service.errors import InvalidCardDetails, InvalidCurrency, PurchaseNotFound
from privault.service.models import Purchase
from privault.service.phones import parse_phone
from privault.vault import Field, Vault

#: A person's purchases, their statements and billing details, are read for billing.
PURPOSE = "billing"
MAX_ITEM = 120
MAX_NAME = 200
MAX_ADDRESS = 1000
MAX_TOKEN = 200
#: The largest amount accepted, in minor units (ten billion units of any currency).
MAX_AMOUNT = 10**12
CARD_BRANDS = frozenset(
    {
        "amex",
        "cartes_bancaires",
        "diners",
        "discover",
        "jcb",
        "maestro",
        "mastercard",
        "unionpay",
        "visa",
        "other",
    }
)
_TOKEN = re.compile(r"[A-Za-z0-9_\-.:]+")
_EXPIRY_SHORT = re.compile(r"(\d{2})/(\d{2})")
_EXPIRY_ISO = re.compile(r"(\d{4})-(\d{2})")
_SEALED = (
    "billing_name",
    "billing_address",
    "phone",
    "email",
    "payment_token",
    "card_last4",
    "card_expiry",
)


class PurchaseKind(StrEnum):
    PURCHASE = "purchase"
    DONATION = "donation"


@dataclass(frozen=True)
class NewPurchase:
    """What the person sends. ``card_expiry`` is ``MM/YY`` or ``YYYY-MM``; ``phone`` may be
    national to nothing, so give it in international format (``+44 20 7946 0958``)."""

    kind: PurchaseKind
    item: str
    amount_minor: int
    currency: str
    billing_name: str
    payment_token: str
    billing_address: str | None = None
    phone: str | None = None
    email: str | None = None
    card_brand: str | None = None
    card_last4: str | None = None
    card_expiry: str | None = None


@dataclass(frozen=True)
class PurchaseView:
    id: str
    kind: PurchaseKind
    item: str
    amount_minor: int
    currency: str
    billing_name: str
    billing_address: str | None
    phone: str | None
    email: str | None
    payment_token: str
    card_brand: str | None
    card_last4: str | None
    card_expiry: str | None
    created_at: datetime


def _text(value: str, what: str, limit: int) -> str:
    clean = value.strip()
    if not clean:
        raise InvalidInput(f"{what} must not be empty")
    if len(clean) > limit:
        raise InvalidInput(f"{what} must be at most {limit} characters long")
    return clean


def check_currency(code: str) -> str:
    """The ISO 4217 alphabetic code, upper-cased; raises ``InvalidCurrency``."""
    upper = code.strip().upper()
    if len(upper) != 3 or not upper.isascii() or pycountry.currencies.get(alpha_3=upper) is None:
        raise InvalidCurrency("currency must be an ISO 4217 code such as EUR, GBP or JPY")
    return upper


def check_expiry(raw: str) -> str:
    """``MM/YY`` or ``YYYY-MM`` as ``YYYY-MM``; raises ``InvalidCardDetails``."""
    text = raw.strip()
    short, iso = _EXPIRY_SHORT.fullmatch(text), _EXPIRY_ISO.fullmatch(text)
    if short:
        month, year = int(short[1]), 2000 + int(short[2])
    elif iso:
        year, month = int(iso[1]), int(iso[2])
    else:
        raise InvalidCardDetails("card_expiry must be written MM/YY or YYYY-MM")
    if not 1 <= month <= 12 or not 2000 <= year <= 2099:
        raise InvalidCardDetails("card_expiry must be a month from 2000-01 to 2099-12")
    return f"{year:04d}-{month:02d}"


def _field(purchase_id: str, name: str) -> Field:
    return Field("purchases", f"{name}_ct", purchase_id)


_KEEP: Any = object()


@dataclass(frozen=True)
class BillingChanges:
    """What a person may correct in a purchase themselves; ``_KEEP`` leaves a field as is."""

    billing_name: str | None = _KEEP
    billing_address: str | None = _KEEP
    phone: str | None = _KEEP
    email: str | None = _KEEP


class PurchaseService:
    """Purchases and donations, sealed under the buyer's key."""

    def __init__(self, session: Session, vault: Vault, audit: AuditLog, clock: Clock) -> None:
        self.session = session
        self.vault = vault
        self.audit = audit
        self.clock = clock

    def _valid(self, new: NewPurchase) -> dict[str, str | None]:
        """The sealed fields as stored. Raises ``CardNumberRefused`` first, before anything
        else is looked at, then ``InvalidInput`` (or a subclass) naming the field."""
        refuse_card_numbers(
            [
                new.item,
                new.currency,
                new.billing_name,
                new.payment_token,
                new.billing_address,
                new.phone,
                new.email,
                new.card_brand,
                new.card_last4,
                new.card_expiry,
                str(new.amount_minor),
            ]
        )
        token = _text(new.payment_token, "payment_token", MAX_TOKEN)
        if not _TOKEN.fullmatch(token):
            raise InvalidCardDetails(
                "payment_token must be the processor's token: letters, digits and _ - . : only"
            )
        if new.card_last4 is not None and not re.fullmatch(r"[0-9]{4}", new.card_last4):
            raise InvalidCardDetails("card_last4 must be exactly four digits")
        return {
            "billing_name": _text(new.billing_name, "billing_name", MAX_NAME),
            "billing_address": (
                None
                if new.billing_address is None
                else _text(new.billing_address, "billing_address", MAX_ADDRESS)
            ),
            "phone": (None if new.phone is None else parse_phone(new.phone, what="the phone").e164),
            "email": None if new.email is None else check_email(new.email, what="the email"),
            "payment_token": token,
            "card_last4": new.card_last4,
            "card_expiry": None if new.card_expiry is None else check_expiry(new.card_expiry),
        }

    def record(self, subject_id: str, new: NewPurchase) -> PurchaseView:
        """Record a purchase or donation of the subject.

        Raises ``CardNumberRefused`` when any field holds something like a full card number,
        ``InvalidCurrency``, ``InvalidCardDetails``, ``InvalidPhoneNumber`` or ``InvalidInput``
        saying which field is wrong (never quoting it).
        """
        sealed = self._valid(new)
        item = _text(new.item, "item", MAX_ITEM)
        currency = check_currency(new.currency)
        if not 0 < new.amount_minor <= MAX_AMOUNT:
            raise InvalidInput(f"amount_minor must be a whole number from 1 to {MAX_AMOUNT}")
        brand = None if new.card_brand is None else new.card_brand.strip().lower()
        if brand is not None and brand not in CARD_BRANDS:
            raise InvalidCardDetails(f"card_brand must be one of {', '.join(sorted(CARD_BRANDS))}")
        purchase_id = new_id()
        row = Purchase(
            id=purchase_id,
            subject_id=subject_id,
            kind=str(new.kind),
            item=item,
            amount_minor=new.amount_minor,
            currency=currency,
            card_brand=brand,
            created_at=self.clock.now(),
        )
        for name, value in sealed.items():
            setattr(
                row,
                f"{name}_ct",
                None
                if value is None
                else self.vault.encrypt(self.session, subject_id, _field(purchase_id, name), value),
            )
        self.session.add(row)
        self.session.flush()
        self.audit.record(
            self.session,
            "api",
            Event.PURCHASE_RECORDED,
            actor=f"subject:{subject_id}",
            subject_id=subject_id,
            categories=["transactions"],
            detail={"purchase": purchase_id, "kind": str(new.kind)},
        )
        return self._view(row)

    def correct(self, subject_id: str, purchase_id: str, changes: BillingChanges) -> PurchaseView:
        """Rectify the billing details of one of the subject's purchases (Art. 16): the
        fields present change, ``None`` clears an optional one. Raises as ``record`` does,
        and ``PurchaseNotFound`` for another person's purchase."""
        row = self._mine(subject_id, purchase_id)
        given = {k: v for k, v in vars(changes).items() if v is not _KEEP}
        refuse_card_numbers([v for v in given.values() if isinstance(v, str)])
        if "billing_name" in given and given["billing_name"] is None:
            raise InvalidInput("billing_name cannot be cleared, only corrected")
        checks = {
            "billing_name": lambda v: _text(v, "billing_name", MAX_NAME),
            "billing_address": lambda v: _text(v, "billing_address", MAX_ADDRESS),
            "phone": lambda v: parse_phone(v, what="the phone").e164,
            "email": lambda v: check_email(v, what="the email"),
        }
        for name, value in given.items():
            clean = None if value is None else checks[name](value)
            sealed = (
                None
                if clean is None
                else self.vault.encrypt(self.session, subject_id, _field(purchase_id, name), clean)
            )
            setattr(row, f"{name}_ct", sealed)
        self.audit.record(
            self.session,
            "api",
            Event.PURCHASE_CORRECTED,
            actor=f"subject:{subject_id}",
            subject_id=subject_id,
            categories=["transactions"],
            detail={"purchase": purchase_id, "fields": sorted(given)},
        )
        return self._view(row)

    def _view(self, row: Purchase) -> PurchaseView:
        opened: dict[str, str | None] = {}
        for name in _SEALED:
            blob = getattr(row, f"{name}_ct")
            opened[name] = (
                None
                if blob is None
                else self.vault.decrypt(
                    self.session, row.subject_id, _field(row.id, name), blob, purpose=PURPOSE
                )
            )
        assert opened["billing_name"] is not None and opened["payment_token"] is not None
        return PurchaseView(
            id=row.id,
            kind=PurchaseKind(row.kind),
            item=row.item,
            amount_minor=row.amount_minor,
            currency=row.currency,
            billing_name=opened["billing_name"],
            billing_address=opened["billing_address"],
            phone=opened["phone"],
            email=opened["email"],
            payment_token=opened["payment_token"],
            card_brand=row.card_brand,
            card_last4=opened["card_last4"],
            card_expiry=opened["card_expiry"],
            created_at=aware(row.created_at),
        )

    def list_purchases(self, subject_id: str) -> list[PurchaseView]:
        """The subject's own purchases and donations, newest first, decrypted for them."""
        rows = self.session.scalars(
            select(Purchase)
            .where(Purchase.subject_id == subject_id)
            .order_by(Purchase.created_at.desc(), Purchase.id)
        )
        return [self._view(row) for row in rows]

    def read(self, subject_id: str, purchase_id: str) -> PurchaseView:
        """One of the subject's purchases; ``PurchaseNotFound`` for anyone else's or none."""
        return self._view(self._mine(subject_id, purchase_id))

    def _mine(self, subject_id: str, purchase_id: str) -> Purchase:
        row = self.session.get(Purchase, purchase_id)
        if row is None or row.subject_id != subject_id:
            raise PurchaseNotFound("no such purchase")
        return row
