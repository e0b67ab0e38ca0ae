"""The privacy centre: one page where a person sees what we hold about them and why, takes
it away, corrects it, changes every privacy choice, follows their requests and closes the
account.

Plain HTML forms (post, then redirect), each checked for its origin and the session's form
token; a refused form comes back with the message next to its field and what was typed
(never a secret). Every page is ``no-store``: it shows the person's own data.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from privault.consent.channels import ConsentChannel
from privault.consent.cookies import banner, consent_id_from_cookie
from privault.consent.errors import EmailUnverified
from privault.errors import PrivaultError
from privault.policy.model import CONSENT_COOKIE, RequestKind
from privault.policy.wording import day
from privault.rights.errors import ReasonRequired, RequestClosed, RequestNotFound
from privault.rights.export import RIGHTS
from privault.rights.holdings import shortened
from privault.rights.service import Channel, RequestView, State
from privault.runtime import Runtime
from privault.service.accounts import MAX_DISPLAY_NAME
from privault.service.errors import InvalidDisplayName, ReauthenticationRequired
from privault.service.profile import Change, Visibility
from privault.web.deps import DB, SESSION_COOKIE, Caller, PageCallerDep, RuntimeDep
from privault.web.errors import status_of
from privault.web.guards import check_csrf, csrf_token, require_same_origin
from privault.web.pages import templates
from privault.web.public import FIELD_LABELS

router = APIRouter(include_in_schema=False)

CENTRE = "/me/privacy"
PROFILE = f"{CENTRE}/profile"
CLOSE = f"{CENTRE}/close"
NO_STORE = {"Cache-Control": "no-store"}
SAME_ORIGIN = [Depends(require_same_origin)]
#: A person reading and correcting their own account (as ``GET /api/v1/me`` does).
PURPOSE = "administration"
FormText = Annotated[str, Form()]

CHANNELS = {
    ConsentChannel.NEWSLETTER: "Our newsletter, by email",
    ConsentChannel.MARKETING_EMAIL: "Offers and news by email",
    ConsentChannel.MARKETING_POST: "Offers by post (on until you say no)",
    ConsentChannel.THIRD_PARTY: "Sharing your contact details with partners for their offers",
}
STATES = {
    State.RECEIVED: "received: we wait for you to confirm it is you",
    State.VERIFIED: "waiting to be handled",
    State.IN_PROGRESS: "being handled",
    State.COMPLETED: "done",
    State.REFUSED: "refused",
    State.WITHDRAWN: "withdrawn by you",
}
VISIBILITIES = {
    Visibility.PRIVATE: "Only you",
    Visibility.MEMBERS: "Members who are logged in",
    Visibility.PUBLIC: "Everyone",
}
#: The profile fields typed as one line of text; interests are a list, pictures files.
TEXT_FIELDS = ("name", "gender", "birthday", "relationship_status", "education", "employment")
PICTURE_TYPES = ("image/png", "image/jpeg", "image/webp")


def _when(moment: datetime, now: datetime) -> str:
    """A due date in words, as a distance from now."""
    days = (moment.date() - now.date()).days
    if days == 0:
        return "today"
    if days > 0:
        return "tomorrow" if days == 1 else f"in {days} days"
    return "yesterday" if days == -1 else f"{-days} days ago"


def _fresh(runtime: Runtime, db: Session, caller: Caller) -> bool:
    """Whether the login is recent enough to export or close (the step-up of the API)."""
    try:
        runtime.accounts(db).require_recent_login(caller.subject_id, caller.token, "continue")
    except ReauthenticationRequired:
        return False
    return True


def _request_row(view: RequestView, now: datetime) -> dict[str, Any]:
    deadline = view.deadline
    return {
        "id": view.id,
        "kind": view.kind,
        "state": STATES.get(State(view.state), view.state),
        "open": State(view.state) in (State.RECEIVED, State.VERIFIED),
        "received": day(view.received_at),
        "due": day(deadline) if deadline else None,
        "due_words": _when(deadline, now) if deadline else None,
        "overdue": view.overdue(now),
        "extension_reason": view.extension_reason,
        "outcome": view.outcome,
    }


def _cookie_choice(request: Request, runtime: Runtime, db: Session, caller: Caller) -> Any:
    consent_id = consent_id_from_cookie(request.cookies.get(CONSENT_COOKIE))
    choice = runtime.cookie_consents(db).current(consent_id, subject_id=caller.subject_id)
    if choice is None:
        return None
    titles = {c.id: c.title for c in banner(runtime.policy)}
    return {
        "accepted": [titles.get(c, c) for c, on in choice.choices.items() if on],
        "refused": [titles.get(c, c) for c, on in choice.choices.items() if not on],
        "since": day(choice.given_at),
    }


def _centre(
    request: Request,
    runtime: Runtime,
    db: Session,
    caller: Caller,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    subject = caller.subject_id
    account = runtime.accounts(db, source="web").summary(subject, purpose=PURPOSE)
    posts = runtime.posts(db)
    username = posts.username_of(subject)
    mine = posts.list_posts(subject)
    channels = runtime.channel_consents(db, source="web").state(subject)
    now = runtime.clock.now()
    shown: dict[str, Any] = {
        "email": account.email,
        "display_name": account.display_name or "",
        "username": username or "",
        "channels": [c for c, on in channels.items() if on],
        **{f"post-{p.id}": str(p.visibility) for p in mine},
        **(values or {}),
    }
    context = {
        "held": runtime.holdings(db).of(subject),
        "account": account,
        "username": username,
        "posts": [(p.id, shortened(p.body)) for p in mine],
        "visibilities": VISIBILITIES,
        "channels": CHANNELS,
        "cookies": _cookie_choice(request, runtime, db, caller),
        "requests": [_request_row(v, now) for v in runtime.rights(db).of(subject)],
        "kinds": {k.value: RIGHTS[k.value] for k in runtime.policy.rights.kinds},
        "fresh": _fresh(runtime, db, caller),
        "deadline_days": runtime.policy.rights.deadline_days,
        "max_display_name": MAX_DISPLAY_NAME,
        "values": shown,
        "errors": errors or {},
        "csrf": csrf_token(runtime, caller.token),
    }
    return templates.TemplateResponse(
        request, "centre/centre.html", context, status_code=status, headers=NO_STORE
    )


@router.get(CENTRE, response_class=HTMLResponse)
def centre(request: Request, caller: PageCallerDep, runtime: RuntimeDep, db: DB) -> Response:
    return _centre(request, runtime, db, caller)


def _refused(
    request: Request,
    runtime: Runtime,
    db: Session,
    caller: Caller,
    exc: PrivaultError,
    field: str,
    values: dict[str, Any],
) -> Response:
    """The centre again with ``exc``'s sentence next to ``field``, and what was typed."""
    status = status_of(exc)
    return _centre(
        request, runtime, db, caller, values=values, errors={field: exc.detail}, status=status
    )


def _done(anchor: str) -> Response:
    return RedirectResponse(f"{CENTRE}?saved={anchor}#{anchor}", status_code=303)


@router.post(f"{CENTRE}/account", response_class=HTMLResponse, dependencies=SAME_ORIGIN)
def correct_account(
    request: Request,
    caller: PageCallerDep,
    runtime: RuntimeDep,
    db: DB,
    csrf: FormText = "",
    email: FormText = "",
    display_name: FormText = "",
) -> Response:
    """Correct the email address (a new one is verified again) and the display name (empty
    clears it), as ``PATCH /api/v1/me``."""
    typed = {"email": email, "display_name": display_name}
    try:
        check_csrf(runtime, caller.token, csrf)
    except PrivaultError as exc:
        return _refused(request, runtime, db, caller, exc, "form", typed)
    try:
        runtime.accounts(db, source="web").correct(
            caller.subject_id, email=email, display_name=display_name.strip() or None
        )
    except InvalidDisplayName as exc:
        return _refused(request, runtime, db, caller, exc, "display_name", typed)
    except PrivaultError as exc:
        return _refused(request, runtime, db, caller, exc, "email", typed)
    return _done("account")


@router.post(f"{CENTRE}/username", response_class=HTMLResponse, dependencies=SAME_ORIGIN)
def choose_username(
    request: Request,
    caller: PageCallerDep,
    runtime: RuntimeDep,
    db: DB,
    csrf: FormText = "",
    username: FormText = "",
) -> Response:
    """Choose the public page's name; an empty one gives it up (the page is gone at once)."""
    typed = {"username": username}
    posts = runtime.posts(db)
    try:
        check_csrf(runtime, caller.token, csrf)
        if username.strip():
            posts.choose_username(caller.subject_id, username)
        else:
            posts.drop_username(caller.subject_id)
    except PrivaultError as exc:
        field = "form" if exc.code == "csrf_token_invalid" else "username"
        typed = {} if exc.code == "card_number_refused" else typed
        return _refused(request, runtime, db, caller, exc, field, typed)
    return _done("public")


@router.post(f"{CENTRE}/posts/{{post_id}}", response_class=HTMLResponse, dependencies=SAME_ORIGIN)
def post_visibility(
    post_id: str,
    request: Request,
    caller: PageCallerDep,
    runtime: RuntimeDep,
    db: DB,
    csrf: FormText = "",
    visibility: FormText = "",
) -> Response:
    """Who sees one of one's posts (P3.15); someone else's post answers as missing."""
    field = f"post-{post_id}"
    try:
        check_csrf(runtime, caller.token, csrf)
    except PrivaultError as exc:
        return _refused(request, runtime, db, caller, exc, "form", {})
    chosen = _visibility(visibility)
    if chosen is None:
        message = "choose who sees it: private, members or public"
        errors = {field: message}
        return _centre(
            request, runtime, db, caller, values={field: visibility}, errors=errors, status=422
        )
    try:
        runtime.posts(db).update(caller.subject_id, post_id, visibility=chosen)
    except PrivaultError as exc:
        return _refused(request, runtime, db, caller, exc, "posts", {})
    return _done("posts")


@router.post(f"{CENTRE}/consents", response_class=HTMLResponse, dependencies=SAME_ORIGIN)
def change_consents(
    request: Request,
    caller: PageCallerDep,
    runtime: RuntimeDep,
    db: DB,
    csrf: FormText = "",
    channels: Annotated[list[str], Form()] = [],  # noqa: B006 - FastAPI copies it
) -> Response:
    """Every channel at once: a box ticked gives the consent, one left empty withdraws it."""
    typed = {"channels": channels}
    try:
        check_csrf(runtime, caller.token, csrf)
        wanted = {c.value: c.value in channels for c in ConsentChannel}
        runtime.newsletter(db, source="web").choose(caller.subject_id, wanted)
    except EmailUnverified as exc:
        return _refused(request, runtime, db, caller, exc, "channels", typed)
    except PrivaultError as exc:
        return _refused(request, runtime, db, caller, exc, "form", typed)
    return _done("choices")


@router.post(f"{CENTRE}/requests", response_class=HTMLResponse, dependencies=SAME_ORIGIN)
def file_request(
    request: Request,
    caller: PageCallerDep,
    runtime: RuntimeDep,
    db: DB,
    csrf: FormText = "",
    kind: FormText = "",
    details: FormText = "",
) -> Response:
    """File a request, verified at once (the person is logged in). An erasure closes the
    account, so it goes to the page that says what that means first."""
    typed = {"kind": kind, "details": details}
    try:
        check_csrf(runtime, caller.token, csrf)
    except PrivaultError as exc:
        return _refused(request, runtime, db, caller, exc, "form", typed)
    if kind == RequestKind.ERASURE:
        return RedirectResponse(CLOSE, status_code=303)
    try:
        runtime.rights(db).file(
            caller.subject_id,
            kind,
            Channel.WEB,
            actor=f"subject:{caller.subject_id}",
            verified=True,
            details=details,
        )
    except ReasonRequired as exc:
        return _refused(request, runtime, db, caller, exc, "details", typed)
    except PrivaultError as exc:
        return _refused(request, runtime, db, caller, exc, "kind", typed)
    return _done("requests")


@router.post(
    f"{CENTRE}/requests/{{request_id}}/withdraw",
    response_class=HTMLResponse,
    dependencies=SAME_ORIGIN,
)
def withdraw_request(
    request_id: str,
    request: Request,
    caller: PageCallerDep,
    runtime: RuntimeDep,
    db: DB,
    csrf: FormText = "",
) -> Response:
    """Withdraw one's own request that is not under way yet; another's answers as missing."""
    try:
        check_csrf(runtime, caller.token, csrf)
        runtime.rights(db).withdraw(request_id, caller.subject_id)
    except (RequestNotFound, RequestClosed) as exc:
        return _refused(request, runtime, db, caller, exc, "requests", {})
    except PrivaultError as exc:
        return _refused(request, runtime, db, caller, exc, "form", {})
    return _done("requests")


# -- the profile (P2.4) with a visibility per field (P3.15) ----------------------------------


def _profile(
    request: Request,
    runtime: Runtime,
    db: Session,
    caller: Caller,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    entries = runtime.profiles(db).read(caller.subject_id)
    shown: dict[str, Any] = {}
    for name, entry in entries.items():
        value = entry.value
        if name == "interests":
            value = ", ".join(value or [])
        shown[name] = "" if value is None or name == "pictures" else value
        shown[f"{name}_visibility"] = str(entry.visibility)
    context = {
        "entries": entries,
        "labels": FIELD_LABELS,
        "text_fields": TEXT_FIELDS,
        "visibilities": VISIBILITIES,
        "values": {**shown, **(values or {})},
        "errors": errors or {},
        "csrf": csrf_token(runtime, caller.token),
    }
    return templates.TemplateResponse(
        request, "centre/profile.html", context, status_code=status, headers=NO_STORE
    )


@router.get(PROFILE, response_class=HTMLResponse)
def profile(request: Request, caller: PageCallerDep, runtime: RuntimeDep, db: DB) -> Response:
    return _profile(request, runtime, db, caller)


def _visibility(raw: str) -> Visibility | None:
    try:
        return Visibility(raw)
    except ValueError:
        return None


def _picture(upload: UploadFile) -> str:
    """An uploaded file as the data URL the profile keeps (the service checks its bytes)."""
    kind = upload.content_type if upload.content_type in PICTURE_TYPES else "image/unknown"
    return f"data:{kind};base64,{base64.b64encode(upload.file.read()).decode()}"


@router.post(PROFILE, response_class=HTMLResponse, dependencies=SAME_ORIGIN)
async def update_profile(
    request: Request, caller: PageCallerDep, runtime: RuntimeDep, db: DB
) -> Response:
    """Every field at once: what is typed is kept (empty clears the field), each with who
    sees it; pictures are added from files and removed by their boxes. Nothing changes
    when one field is refused."""
    async with request.form() as form:
        uploads = [f for f in form.getlist("pictures") if isinstance(f, UploadFile) and f.filename]
        typed = {k: v for k, v in form.multi_items() if isinstance(v, str) and k != "csrf"}
        pictures = [_picture(upload) for upload in uploads]
        removed = {v for v in form.getlist("pictures_remove") if isinstance(v, str)}
        csrf = form.get("csrf")
    sent = csrf if isinstance(csrf, str) else ""
    return await run_in_threadpool(
        _save_profile, request, runtime, db, caller, sent, typed, (pictures, removed)
    )


def _save_profile(
    request: Request,
    runtime: Runtime,
    db: Session,
    caller: Caller,
    csrf: str,
    typed: dict[str, str],
    pictures: tuple[list[str], set[str]],
) -> Response:
    """``update_profile``'s database work, on a worker thread. ``pictures``: the data URLs
    added and the positions of the pictures removed."""
    try:
        check_csrf(runtime, caller.token, csrf)
    except PrivaultError as exc:
        refused = {"form": exc.detail}
        return _profile(request, runtime, db, caller, values=typed, errors=refused, status=403)
    added, removed = pictures
    service = runtime.profiles(db)
    entries = service.read(caller.subject_id)
    changes: dict[str, Change] = {}
    errors: dict[str, str] = {}
    for name in entries:
        visibility = _visibility(typed.get(f"{name}_visibility", Visibility.PRIVATE))
        if visibility is None:
            errors[name] = "choose who sees it: private, members or public"
            continue
        if name == "pictures":
            kept = [p for i, p in enumerate(entries[name].value or []) if str(i) not in removed]
            value: Any = kept + added or None
        elif name == "interests":
            parts = [p.strip() for p in typed.get(name, "").split(",") if p.strip()]
            value = parts or None
        else:
            value = typed.get(name, "").strip() or None
        if value is None and visibility is not Visibility.PRIVATE:
            errors[name] = "add a value before choosing who sees it, or leave it private"
        changes[name] = Change(
            visibility=visibility if value is not None else None, value=value, has_value=True
        )
    errors = {**service.problems(changes), **errors}
    if errors:
        return _profile(request, runtime, db, caller, values=typed, errors=errors, status=422)
    service.update(caller.subject_id, changes)
    return RedirectResponse(f"{PROFILE}?saved=1", status_code=303)


# -- closing the account (P0.4) ---------------------------------------------------------------


def _close_page(
    request: Request,
    runtime: Runtime,
    db: Session,
    caller: Caller,
    *,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    policy = runtime.policy
    now = runtime.clock.now()
    held = runtime.holdings(db).of(caller.subject_id, samples=0)
    context = {
        "held": held,
        "kept": [h for h in held if h.obligation],
        "due": day(policy.rights.due_at(now)),
        "fresh": _fresh(runtime, db, caller),
        "errors": errors or {},
        "values": {},
        "csrf": csrf_token(runtime, caller.token),
    }
    return templates.TemplateResponse(
        request, "centre/close.html", context, status_code=status, headers=NO_STORE
    )


@router.get(CLOSE, response_class=HTMLResponse)
def close_form(request: Request, caller: PageCallerDep, runtime: RuntimeDep, db: DB) -> Response:
    return _close_page(request, runtime, db, caller)


@router.post(CLOSE, response_class=HTMLResponse, dependencies=SAME_ORIGIN)
def close_account(
    request: Request,
    caller: PageCallerDep,
    runtime: RuntimeDep,
    db: DB,
    csrf: FormText = "",
    confirm: FormText = "",
) -> Response:
    """Close the account and file the erasure of its data, as ``DELETE /api/v1/me``; the
    session ends with it."""
    try:
        check_csrf(runtime, caller.token, csrf)
    except PrivaultError as exc:
        return _close_page(request, runtime, db, caller, errors={"form": exc.detail}, status=403)
    if confirm != "yes":
        message = "tick the box to confirm that you want to close your account"
        return _close_page(request, runtime, db, caller, errors={"confirm": message}, status=422)
    try:
        closed = runtime.accounts(db, source="web").close(
            caller.subject_id, caller.token, runtime.rights(db)
        )
    except PrivaultError as exc:
        status = status_of(exc)
        return _close_page(request, runtime, db, caller, errors={"form": exc.detail}, status=status)
    page = templates.TemplateResponse(
        request, "policy_closed.html", {"due": closed.due_at}, headers=NO_STORE
    )
    page.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    return page
