"""Request and response shapes of the purchases API (P2.8, P7.3).

Only shapes and lengths here; the rules (ISO 4217, E.164, expiry, no card number) are the
service's. Every message a failed check produces names the field, never the value.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from privault.service.phones import MAX_RAW
from privault.service.purchases import (
    MAX_ADDRESS,
    MAX_AMOUNT,
    MAX_ITEM,
    MAX_NAME,
    MAX_TOKEN,
    PurchaseKind,
)
from privault.service.schemas import Strict


class PurchaseIn(Strict):
    """A purchase or donation. The card is given only as the processor's token, its brand,
    last four digits and expiry: a request holding anything like a full card number, in any
    field, is refused with ``card_number_refused``."""

    kind: PurchaseKind = Field(description="purchase or donation")
    item: str = Field(min_length=1, max_length=MAX_ITEM, description="What was bought.")
    amount_minor: int = Field(
        strict=True, gt=0, le=MAX_AMOUNT, description="In minor units: 1250 is EUR 12.50."
    )
    currency: str = Field(min_length=3, max_length=3, description="ISO 4217, e.g. EUR.")
    billing_name: str = Field(min_length=1, max_length=MAX_NAME)
    billing_address: str | None = Field(default=None, max_length=MAX_ADDRESS)
    phone: str | None = Field(
        default=None, max_length=MAX_RAW, description="International format, e.g. +44 20 7946 0958."
    )
    email: str | None = Field(default=None, max_length=254)
    payment_token: str = Field(
        min_length=1, max_length=MAX_TOKEN, description="The payment processor's token."
    )
    card_brand: str | None = Field(default=None, max_length=20, description="e.g. visa.")
    card_last4: str | None = Field(
        default=None, min_length=4, max_length=4, description="The last four digits."
    )
    card_expiry: str | None = Field(default=None, max_length=7, description="MM/YY or YYYY-MM.")


class BillingPatch(Strict):
    """Correct the billing details (Art. 16): the fields present change; ``null`` clears an
    optional one. The same card-number refusal as when recording applies."""

    billing_name: str | None = Field(default=None, min_length=1, max_length=MAX_NAME)
    billing_address: str | None = Field(default=None, max_length=MAX_ADDRESS)
    phone: str | None = Field(default=None, max_length=MAX_RAW)
    email: str | None = Field(default=None, max_length=254)


class PurchaseOut(BaseModel):
    id: str
    kind: PurchaseKind
    item: str
    amount_minor: int
    currency: str
    billing_name: str
    billing_address: str | None
    phone: str | None = Field(description="E.164.")
    email: str | None
    payment_token: str
    card_brand: str | None
    card_last4: str | None
    card_expiry: str | None = Field(description="YYYY-MM.")
    created_at: datetime


class PurchasesOut(BaseModel):
    purchases: list[PurchaseOut]
