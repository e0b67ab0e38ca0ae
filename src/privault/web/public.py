"""Pages anyone may open: a person's public page (P0.3, P3.15) and the contact form (P2.10).

Plain HTML: no script, and no cookie but the session cookie of someone logged in, so both
work without JavaScript and with every optional cookie refused (P11.4).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from privault.errors import InvalidInput
from privault.mail.errors import ConfirmationGone, ConfirmationNotFound
from privault.service.cards import redact
from privault.service.errors import CardNumberRefused, PersonNotFound
from privault.service.messages import Channel, Draft
from privault.web.deps import DB, PageViewerDep, RuntimeDep
from privault.web.forms import WHOLE_FORM, form_errors
from privault.web.guards import require_same_origin
from privault.web.pages import templates

router = APIRouter(include_in_schema=False)

NO_STORE = {"Cache-Control": "no-store"}
FIELD_LABELS = {
    "name": "Name",
    "pictures": "Pictures",
    "gender": "Gender",
    "birthday": "Birthday",
    "relationship_status": "Relationship status",
    "interests": "Interests and hobbies",
    "education": "Education",
    "employment": "Employment",
}
CARD_NOTE = (
    "Your message seems to hold a card number. We never accept card numbers, so we took it "
    "out: check your message and send it again."
)
FormText = Annotated[str, Form()]


@router.get("/u/{username}", response_class=HTMLResponse)
def person(
    username: str, request: Request, viewer: PageViewerDep, runtime: RuntimeDep, db: DB
) -> Response:
    """The public page of ``username``: only what its owner shows this viewer; the same 404
    for an unknown name and for someone who shows nothing."""
    try:
        page = runtime.publication(db).page(username, viewer.subject_id if viewer else None)
    except PersonNotFound:
        return templates.TemplateResponse(
            request, "person_missing.html", {}, status_code=404, headers=NO_STORE
        )
    return templates.TemplateResponse(
        request,
        "person.html",
        {"page": page, "labels": FIELD_LABELS, "member": viewer is not None},
        headers=NO_STORE,
    )


def _form(
    request: Request, member: bool, values: dict[str, str], errors: dict[str, str], status: int
) -> Response:
    return templates.TemplateResponse(
        request,
        "contact.html",
        {"member": member, "values": values, "errors": errors},
        status_code=status,
        headers=NO_STORE,
    )


@router.get("/contact", response_class=HTMLResponse)
def contact_form(request: Request, viewer: PageViewerDep) -> Response:
    return _form(request, viewer is not None, {}, {}, 200)


@router.post("/contact", response_class=HTMLResponse, dependencies=[Depends(require_same_origin)])
def send_contact(
    request: Request,
    viewer: PageViewerDep,
    runtime: RuntimeDep,
    db: DB,
    subject: FormText = "",
    message: FormText = "",
    email: FormText = "",
) -> Response:
    """Store the message as the sender's data; a visitor gives an email address to be answered
    at. A refused form comes back filled in, with any card number taken out."""
    draft = Draft(subject, message)
    host = request.client.host if request.client else None
    values = {"subject": subject, "message": message, "email": email}
    service = runtime.messages(db)
    try:
        if viewer is not None:
            service.send(viewer.subject_id, draft, Channel.WEB, host)
        else:
            service.send_as_visitor(email, draft, host)
    except CardNumberRefused:
        cleaned = {name: redact(value) for name, value in values.items()}
        return _form(request, viewer is not None, cleaned, {WHOLE_FORM: CARD_NOTE}, 422)
    except InvalidInput as exc:
        return _form(request, viewer is not None, values, form_errors(exc), 422)
    return RedirectResponse("/contact/sent", status_code=303)


@router.get("/contact/sent", response_class=HTMLResponse)
def contact_sent(request: Request) -> Response:
    return templates.TemplateResponse(request, "contact_sent.html", {})


# -- confirming a request made by mail (P9.3) ------------------------------------------------


@router.get("/requests/confirm/{token}", response_class=HTMLResponse)
def confirm_form(token: str, request: Request) -> Response:
    """The page behind a confirmation link: a button, so that a mail scanner that opens
    every link confirms nothing."""
    return templates.TemplateResponse(
        request, "confirm_request.html", {"token": token, "done": None}, headers=NO_STORE
    )


@router.post(
    "/requests/confirm/{token}",
    response_class=HTMLResponse,
    dependencies=[Depends(require_same_origin)],
)
def confirm(token: str, request: Request, runtime: RuntimeDep, db: DB) -> Response:
    try:
        verified = runtime.mail_intake(db).confirm(token)
    except (ConfirmationNotFound, ConfirmationGone) as exc:
        status = 404 if isinstance(exc, ConfirmationNotFound) else 410
        return templates.TemplateResponse(
            request,
            "confirm_request.html",
            {"token": token, "done": False, "error": exc.detail},
            status_code=status,
            headers=NO_STORE,
        )
    due = min((v.deadline for v in verified if v.deadline), default=None)
    return templates.TemplateResponse(
        request,
        "confirm_request.html",
        {"token": token, "done": True, "due": due, "count": len(verified)},
        headers=NO_STORE,
    )
