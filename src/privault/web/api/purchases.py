"""The caller's purchases and donations (P2.8); card numbers never get in (P7.3)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from privault.service.purchase_schemas import BillingPatch, PurchaseIn, PurchaseOut, PurchasesOut
from privault.service.purchases import BillingChanges, NewPurchase, PurchaseView
from privault.web.deps import DB, CallerDep, RuntimeDep
from privault.web.guards import refuse_card_numbers

router = APIRouter(tags=["purchases"], dependencies=[Depends(refuse_card_numbers)])


def _out(view: PurchaseView) -> PurchaseOut:
    return PurchaseOut(**vars(view))


@router.post("/me/purchases", status_code=201, response_model=PurchaseOut)
def record_purchase(
    body: PurchaseIn, caller: CallerDep, runtime: RuntimeDep, db: DB
) -> PurchaseOut:
    """Record a purchase or donation. A body holding anything like a full card number, in
    any field, is refused with 422 ``card_number_refused`` before it is read."""
    new = NewPurchase(**body.model_dump())
    return _out(runtime.purchases(db).record(caller.subject_id, new))


@router.get("/me/purchases", response_model=PurchasesOut)
def list_purchases(caller: CallerDep, runtime: RuntimeDep, db: DB) -> PurchasesOut:
    """The caller's own purchases and donations, newest first."""
    return PurchasesOut(
        purchases=[_out(v) for v in runtime.purchases(db).list_purchases(caller.subject_id)]
    )


@router.get("/me/purchases/{purchase_id}", response_model=PurchaseOut)
def read_purchase(purchase_id: str, caller: CallerDep, runtime: RuntimeDep, db: DB) -> PurchaseOut:
    return _out(runtime.purchases(db).read(caller.subject_id, purchase_id))


@router.patch("/me/purchases/{purchase_id}", response_model=PurchaseOut)
def correct_purchase(
    purchase_id: str, body: BillingPatch, caller: CallerDep, runtime: RuntimeDep, db: DB
) -> PurchaseOut:
    """Correct the billing name, address, phone or email of one of your purchases."""
    changes = BillingChanges(**body.model_dump(exclude_unset=True))
    return _out(runtime.purchases(db).correct(caller.subject_id, purchase_id, changes))
