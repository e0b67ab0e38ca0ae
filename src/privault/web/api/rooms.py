"""The caller's room (Room ID, PIN, dial-in numbers) and number lists (P2.6, P7.5)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from privault.service.numbers import ListedNumber, NewNumber, NumberListView
from privault.service.room_schemas import (
    DialInOut,
    NumberIn,
    NumberListIn,
    NumberListOut,
    NumberListPatch,
    NumberListsOut,
    NumberListSummaryOut,
    NumberOut,
    PinIn,
    RoomIdOut,
    RoomOut,
)
from privault.web.deps import DB, CallerDep, RuntimeDep

router = APIRouter(tags=["rooms"])


def _number(item: NumberIn) -> NewNumber:
    return NewNumber(item.number, item.label, item.region)


def _number_out(entry: ListedNumber) -> NumberOut:
    return NumberOut(
        id=entry.id,
        number=entry.number,
        country=entry.country,
        label=entry.label,
        created_at=entry.created_at,
    )


def _list_out(view: NumberListView) -> NumberListOut:
    return NumberListOut(
        id=view.id,
        name=view.name,
        created_at=view.created_at,
        numbers=[_number_out(n) for n in view.numbers],
    )


@router.get("/me/room", response_model=RoomOut)
def read_room(caller: CallerDep, runtime: RuntimeDep, db: DB) -> RoomOut:
    """The caller's Room ID, whether a PIN is set (never the PIN), and the dial-in numbers."""
    room = runtime.rooms(db).overview(caller.subject_id)
    return RoomOut(
        room_id=room.room_id,
        pin_set=room.pin_set,
        pin_changed_at=room.pin_changed_at,
        dial_in=[
            DialInOut(country=d.country, number=d.number, display=d.display, city=d.city)
            for d in room.dial_in
        ],
    )


@router.put("/me/room/pin", status_code=204)
def set_pin(body: PinIn, caller: CallerDep, runtime: RuntimeDep, db: DB) -> Response:
    """Set or change the room's PIN: 4 to 8 digits, not among the first guesses."""
    runtime.pins(db).set_pin(caller.subject_id, body.pin)
    return Response(status_code=204)


@router.post("/me/room/rotate", response_model=RoomIdOut)
def rotate_room_id(caller: CallerDep, runtime: RuntimeDep, db: DB) -> RoomIdOut:
    """A new Room ID for the room; the old one stops working at once. The PIN stays."""
    return RoomIdOut(room_id=runtime.rooms(db).rotate_room_id(caller.subject_id))


@router.get("/me/number-lists", response_model=NumberListsOut)
def number_lists(caller: CallerDep, runtime: RuntimeDep, db: DB) -> NumberListsOut:
    return NumberListsOut(
        lists=[
            NumberListSummaryOut(id=s.id, name=s.name, size=s.size, created_at=s.created_at)
            for s in runtime.number_lists(db).lists(caller.subject_id)
        ]
    )


@router.post("/me/number-lists", status_code=201, response_model=NumberListOut)
def create_number_list(
    body: NumberListIn, caller: CallerDep, runtime: RuntimeDep, db: DB
) -> NumberListOut:
    """A new list, optionally with numbers: all are added or, if one is refused, none."""
    view = runtime.number_lists(db).create(
        caller.subject_id, body.name, [_number(n) for n in body.numbers]
    )
    return _list_out(view)


@router.get("/me/number-lists/{list_id}", response_model=NumberListOut)
def read_number_list(list_id: str, caller: CallerDep, runtime: RuntimeDep, db: DB) -> NumberListOut:
    return _list_out(runtime.number_lists(db).get(caller.subject_id, list_id))


@router.patch("/me/number-lists/{list_id}", response_model=NumberListOut)
def rename_number_list(
    list_id: str, body: NumberListPatch, caller: CallerDep, runtime: RuntimeDep, db: DB
) -> NumberListOut:
    return _list_out(runtime.number_lists(db).rename(caller.subject_id, list_id, body.name))


@router.delete("/me/number-lists/{list_id}", status_code=204)
def delete_number_list(list_id: str, caller: CallerDep, runtime: RuntimeDep, db: DB) -> Response:
    runtime.number_lists(db).delete(caller.subject_id, list_id)
    return Response(status_code=204)


@router.post("/me/number-lists/{list_id}/numbers", status_code=201, response_model=NumberOut)
def add_number(
    list_id: str, body: NumberIn, caller: CallerDep, runtime: RuntimeDep, db: DB
) -> NumberOut:
    """Add a number, normalised to E.164; a national one needs its ``region``."""
    return _number_out(
        runtime.number_lists(db).add_number(caller.subject_id, list_id, _number(body))
    )


@router.delete("/me/number-lists/{list_id}/numbers/{entry_id}", status_code=204)
def remove_number(
    list_id: str, entry_id: str, caller: CallerDep, runtime: RuntimeDep, db: DB
) -> Response:
    runtime.number_lists(db).remove_number(caller.subject_id, list_id, entry_id)
    return Response(status_code=204)
