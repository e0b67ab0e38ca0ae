"""The room pages: the Room ID, the PIN, the dial-in numbers and the number lists (issue 10).

The same services as ``/api/v1/me/room`` and ``/api/v1/me/number-lists``. Every form is
checked for its origin and the session's form token; a PIN is never sent back in a page.
After a change the page says what happened, by a fixed word in the address (``?done=``),
never by text the address carries.
"""

from __future__ import annotations

from itertools import groupby
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from privault.errors import InvalidInput, PrivaultError
from privault.policy.wording import country_name
from privault.service.errors import (
    InvalidPhoneNumber,
    InvalidRegion,
    NumberAlreadyListed,
    NumberListEntryNotFound,
    NumberListLimit,
    NumberListNotFound,
)
from privault.service.numbers import DialIn, NewNumber
from privault.web.deps import DB, Caller, PageCallerDep, RuntimeDep
from privault.web.errors import status_of
from privault.web.guards import check_csrf, csrf_token, require_same_origin
from privault.web.pages import templates

router = APIRouter(include_in_schema=False)

NO_STORE = {"Cache-Control": "no-store"}
SAME_ORIGIN = [Depends(require_same_origin)]
FormText = Annotated[str, Form()]
ROOM = "/room"
NOTICES = {
    "welcome": "Welcome! Check your mail to verify your address: we sent you a link.",
    "pin": "PIN set. Give it only to the people you invite.",
    "rotated": "Your room has a new Room ID. The old one no longer works.",
    "list_deleted": "The number list is deleted.",
    "renamed": "The list is renamed.",
    "added": "The number is added.",
    "removed": "The number is removed.",
}


def grouped(room_id: str) -> str:
    """The Room ID in groups of three digits, the last group taking up to four: easier to
    read out and type on a keypad (``123 456 7890``)."""
    groups = [room_id[i : i + 3] for i in range(0, len(room_id), 3)]
    if len(groups) > 1 and len(groups[-1]) == 1:
        groups[-2:] = [groups[-2] + groups[-1]]
    return " ".join(groups)


def by_country(numbers: list[DialIn]) -> list[tuple[str, list[DialIn]]]:
    """The dial-in numbers under their country's name (they come sorted by country)."""
    return [
        (country_name(code), list(group)) for code, group in groupby(numbers, lambda d: d.country)
    ]


def _see(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303)


def _room_page(
    request: Request,
    runtime: RuntimeDep,
    db: DB,
    caller: Caller,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    room = runtime.rooms(db).overview(caller.subject_id)
    context.setdefault("values", {})
    context.setdefault("errors", {})
    context.update(
        room=room,
        room_id=grouped(room.room_id),
        dial_in=by_country(room.dial_in),
        lists=runtime.number_lists(db).lists(caller.subject_id),
        csrf=csrf_token(runtime, caller.token),
        notice=NOTICES.get(request.query_params.get("done", "")),
    )
    return templates.TemplateResponse(
        request, "room.html", context, status_code=status, headers=NO_STORE
    )


@router.get(ROOM, response_class=HTMLResponse)
def room(request: Request, caller: PageCallerDep, runtime: RuntimeDep, db: DB) -> Response:
    return _room_page(request, runtime, db, caller)


@router.post(f"{ROOM}/pin", response_class=HTMLResponse, dependencies=SAME_ORIGIN)
def set_pin(
    request: Request,
    caller: PageCallerDep,
    runtime: RuntimeDep,
    db: DB,
    pin: FormText = "",
    csrf: FormText = "",
) -> Response:
    """Set or change the PIN by the PBX's rules; a refused PIN is not shown again."""
    try:
        check_csrf(runtime, caller.token, csrf)
        runtime.pins(db, source="web").set_pin(caller.subject_id, pin.strip())
    except PrivaultError as exc:
        field = "pin" if isinstance(exc, InvalidInput) else "form"
        return _room_page(request, runtime, db, caller, status_of(exc), errors={field: exc.detail})
    return _see(f"{ROOM}?done=pin")


@router.post(f"{ROOM}/rotate", response_class=HTMLResponse, dependencies=SAME_ORIGIN)
def rotate(
    request: Request, caller: PageCallerDep, runtime: RuntimeDep, db: DB, csrf: FormText = ""
) -> Response:
    """A new Room ID; the old one stops working at once, the PIN stays."""
    try:
        check_csrf(runtime, caller.token, csrf)
        runtime.rooms(db).rotate_room_id(caller.subject_id)
    except PrivaultError as exc:
        return _room_page(request, runtime, db, caller, status_of(exc), errors={"form": exc.detail})
    return _see(f"{ROOM}?done=rotated")


@router.post(f"{ROOM}/lists", response_class=HTMLResponse, dependencies=SAME_ORIGIN)
def create_list(
    request: Request,
    caller: PageCallerDep,
    runtime: RuntimeDep,
    db: DB,
    list_name: FormText = "",
    csrf: FormText = "",
) -> Response:
    """A new, empty number list; its page adds the numbers."""
    try:
        check_csrf(runtime, caller.token, csrf)
        made = runtime.number_lists(db).create(caller.subject_id, list_name, [])
    except PrivaultError as exc:
        field = "list_name" if isinstance(exc, InvalidInput | NumberListLimit) else "form"
        return _room_page(
            request,
            runtime,
            db,
            caller,
            status_of(exc),
            values={"list_name": list_name},
            errors={field: exc.detail},
        )
    return _see(f"{ROOM}/lists/{made.id}")


# -- one number list -----------------------------------------------------------------------


def _missing(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(
        request, "number_list_missing.html", {}, status_code=404, headers=NO_STORE
    )


def _list_page(
    request: Request,
    runtime: RuntimeDep,
    db: DB,
    caller: Caller,
    list_id: str,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    try:
        view = runtime.number_lists(db).get(caller.subject_id, list_id)
    except NumberListNotFound:
        return _missing(request)
    context.setdefault("values", {})
    context.setdefault("errors", {})
    context["values"].setdefault("name", view.name)
    context.update(
        numbers_list=view,
        country_name=country_name,
        csrf=csrf_token(runtime, caller.token),
        notice=NOTICES.get(request.query_params.get("done", "")),
    )
    return templates.TemplateResponse(
        request, "number_list.html", context, status_code=status, headers=NO_STORE
    )


@router.get(f"{ROOM}/lists/{{list_id}}", response_class=HTMLResponse)
def number_list(
    list_id: str, request: Request, caller: PageCallerDep, runtime: RuntimeDep, db: DB
) -> Response:
    """One of the caller's lists; someone else's answers the same 404 as a list that does
    not exist."""
    return _list_page(request, runtime, db, caller, list_id)


def _list_action_failed(
    exc: PrivaultError,
    request: Request,
    runtime: RuntimeDep,
    db: DB,
    caller: Caller,
    list_id: str,
    field: str,
    values: dict[str, str],
) -> HTMLResponse:
    if isinstance(exc, NumberListNotFound):
        return _missing(request)
    return _list_page(
        request,
        runtime,
        db,
        caller,
        list_id,
        status_of(exc),
        values=values,
        errors={field: exc.detail},
    )


@router.post(
    f"{ROOM}/lists/{{list_id}}/name", response_class=HTMLResponse, dependencies=SAME_ORIGIN
)
def rename_list(
    list_id: str,
    request: Request,
    caller: PageCallerDep,
    runtime: RuntimeDep,
    db: DB,
    name: FormText = "",
    csrf: FormText = "",
) -> Response:
    try:
        check_csrf(runtime, caller.token, csrf)
        runtime.number_lists(db).rename(caller.subject_id, list_id, name)
    except PrivaultError as exc:
        field = "name" if isinstance(exc, InvalidInput) else "form"
        return _list_action_failed(
            exc, request, runtime, db, caller, list_id, field, {"name": name}
        )
    return _see(f"{ROOM}/lists/{list_id}?done=renamed")


@router.post(
    f"{ROOM}/lists/{{list_id}}/numbers", response_class=HTMLResponse, dependencies=SAME_ORIGIN
)
def add_number(
    list_id: str,
    request: Request,
    caller: PageCallerDep,
    runtime: RuntimeDep,
    db: DB,
    number: FormText = "",
    label: FormText = "",
    region: FormText = "",
    csrf: FormText = "",
) -> Response:
    """Add a number, international or national to ``region``; the error names the field."""
    values = {"number": number, "label": label, "region": region}
    try:
        check_csrf(runtime, caller.token, csrf)
        runtime.number_lists(db).add_number(
            caller.subject_id,
            list_id,
            NewNumber(number, label or None, region.strip().upper() or None),
        )
    except PrivaultError as exc:
        if isinstance(exc, InvalidRegion):
            field = "region"
        elif isinstance(exc, InvalidPhoneNumber | NumberAlreadyListed | NumberListLimit):
            field = "number"
        else:
            field = "label" if isinstance(exc, InvalidInput) else "form"
        return _list_action_failed(exc, request, runtime, db, caller, list_id, field, values)
    return _see(f"{ROOM}/lists/{list_id}?done=added")


@router.post(
    f"{ROOM}/lists/{{list_id}}/numbers/{{entry_id}}/remove",
    response_class=HTMLResponse,
    dependencies=SAME_ORIGIN,
)
def remove_number(
    list_id: str,
    entry_id: str,
    request: Request,
    caller: PageCallerDep,
    runtime: RuntimeDep,
    db: DB,
    csrf: FormText = "",
) -> Response:
    try:
        check_csrf(runtime, caller.token, csrf)
        runtime.number_lists(db).remove_number(caller.subject_id, list_id, entry_id)
    except NumberListEntryNotFound:
        return _missing(request)
    except PrivaultError as exc:
        return _list_action_failed(exc, request, runtime, db, caller, list_id, "form", {})
    return _see(f"{ROOM}/lists/{list_id}?done=removed")


@router.post(
    f"{ROOM}/lists/{{list_id}}/delete", response_class=HTMLResponse, dependencies=SAME_ORIGIN
)
def delete_list(
    list_id: str,
    request: Request,
    caller: PageCallerDep,
    runtime: RuntimeDep,
    db: DB,
    csrf: FormText = "",
) -> Response:
    try:
        check_csrf(runtime, caller.token, csrf)
        runtime.number_lists(db).delete(caller.subject_id, list_id)
    except PrivaultError as exc:
        return _list_action_failed(exc, request, runtime, db, caller, list_id, "form", {})
    return _see(f"{ROOM}?done=list_deleted")
