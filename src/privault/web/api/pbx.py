"""What the PBX asks: may this caller enter this room with this PIN (P7.5)."""

from __future__ import annotations

from fastapi import APIRouter

from privault.service.room_schemas import PinCheckIn, PinCheckOut
from privault.web.deps import DB, PbxDep, RuntimeDep

router = APIRouter(tags=["pbx"])


@router.post("/pbx/pin-check", response_model=PinCheckOut, response_model_exclude_none=True)
def pin_check(body: PinCheckIn, pbx: PbxDep, runtime: RuntimeDep, db: DB) -> PinCheckOut:
    """``allowed`` is false alike for an unknown Room ID, a room without a PIN, a closed
    account, a wrong PIN and a lockout: the answer never tells whether a room exists.
    ``reason`` is ``policy_acceptance_required`` only for the right PIN of a room whose
    owner has not accepted the privacy policy's current version once the policy's PBX
    grace is over (P8.3). Needs the PBX's service token as a bearer token."""
    verdict = runtime.pins(db).verdict(body.room_id, body.pin, body.caller, pbx=pbx.name)
    return PinCheckOut(allowed=verdict.allowed, reason=verdict.reason)
