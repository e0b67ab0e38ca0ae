"""The privacy centre's channel consents (P3.8, P3.16) and newsletter sign-up (P2.5)."""

from __future__ import annotations

from fastapi import APIRouter

from privault.consent.channel_schemas import ChannelsIn, ChannelsOut, SubscribeIn, SubscribeOut
from privault.web.deps import DB, OpenCallerDep, RuntimeDep

router = APIRouter(tags=["consents"])


@router.get("/me/consents", response_model=ChannelsOut)
def read_consents(caller: OpenCallerDep, runtime: RuntimeDep, db: DB) -> ChannelsOut:
    """Every channel and whether the caller's consent to it is live: post marketing is on
    until objected to, the others off until given. Open before the policy's current
    version is accepted, as withdrawing is (P8.3, GDPR Art. 7(3))."""
    return ChannelsOut(channels=runtime.channel_consents(db).state(caller.subject_id))


@router.put("/me/consents", response_model=ChannelsOut)
def change_consents(
    body: ChannelsIn, caller: OpenCallerDep, runtime: RuntimeDep, db: DB
) -> ChannelsOut:
    """Give or withdraw the channels named, each change one proof row; an unknown channel
    is refused (422, nothing changed). ``newsletter: true`` needs a verified account
    address, which counts as the newsletter's confirmation (409 ``email_unverified``
    before that). Withdrawing is open before the policy's current version is accepted
    (withdrawing must be as easy as giving, GDPR Art. 7(3)); giving is not (403
    ``policy_acceptance_required``): it would be consent under terms not yet accepted."""
    if any(body.channels.values()):
        runtime.acceptances(db).require(caller.subject_id)
    return ChannelsOut(channels=runtime.newsletter(db).choose(caller.subject_id, body.channels))


@router.post("/newsletter", response_model=SubscribeOut, status_code=202)
def subscribe(body: SubscribeIn, runtime: RuntimeDep, db: DB) -> SubscribeOut:
    """Ask for the newsletter, with or without an account: a confirmation link is mailed
    to the address (double opt-in). Always the same answer, known address or not."""
    runtime.newsletter(db).subscribe(str(body.email), body.name)
    return SubscribeOut()
