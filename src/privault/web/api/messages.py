"""Messages from the caller to support (P2.10)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from privault.service.message_schemas import MessageIn, MessageOut, MessagesOut
from privault.service.messages import Channel, Draft
from privault.web.deps import DB, CallerDep, RuntimeDep
from privault.web.guards import refuse_card_numbers

router = APIRouter(tags=["messages"], dependencies=[Depends(refuse_card_numbers)])


@router.post("/me/messages", status_code=201, response_model=MessageOut)
def send_message(
    body: MessageIn, request: Request, caller: CallerDep, runtime: RuntimeDep, db: DB
) -> MessageOut:
    """Send support a message; it is kept encrypted as the caller's data."""
    host = request.client.host if request.client else None
    view = runtime.messages(db).send(
        caller.subject_id, Draft(body.subject, body.body), Channel.API, host
    )
    return MessageOut(**vars(view))


@router.get("/me/messages", response_model=MessagesOut)
def list_messages(caller: CallerDep, runtime: RuntimeDep, db: DB) -> MessagesOut:
    """The caller's own messages, newest first."""
    views = runtime.messages(db).list_messages(caller.subject_id)
    return MessagesOut(messages=[MessageOut(**vars(v)) for v in views])


@router.get("/me/messages/{message_id}", response_model=MessageOut)
def read_message(message_id: str, caller: CallerDep, runtime: RuntimeDep, db: DB) -> MessageOut:
    return MessageOut(**vars(runtime.messages(db).read(caller.subject_id, message_id)))
