"""The pages behind links in our mail: newsletter confirmation (P2.5) and one-click
unsubscribe (RFC 8058, P0.2).

Opening a link changes nothing: mail scanners open every link they see. The change is a
POST, from the page's button or, for unsubscribing, straight from the mail client
(``List-Unsubscribe=One-Click``), which posts without cookies and without an ``Origin`` of
ours: the link's signature is its authorisation, so that form has no same-origin check.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from privault.consent.channels import ConsentChannel
from privault.consent.errors import OptInLinkGone, OptInLinkInvalid, UnsubscribeLinkInvalid
from privault.web.deps import DB, RuntimeDep
from privault.web.guards import require_same_origin
from privault.web.pages import templates

router = APIRouter(include_in_schema=False)

#: The token in these pages' address goes to no other site (the site's Referrer-Policy is
#: same-origin); not ``no-referrer``, under which the confirm button's post would carry
#: ``Origin: null`` and be refused as coming from another site.
NO_STORE = {"Cache-Control": "no-store"}
#: What a channel's mail or letters are, as the page says "stop ..." and "no more ...".
WHAT = {
    ConsentChannel.NEWSLETTER: ("our newsletter", "newsletters"),
    ConsentChannel.MARKETING_EMAIL: ("news and offers by email", "marketing mail"),
    ConsentChannel.MARKETING_POST: ("news and offers by post", "marketing letters"),
    ConsentChannel.THIRD_PARTY: (
        "sharing your data with other companies for their marketing",
        "data to other companies for their marketing",
    ),
}


def _unsubscribe_page(
    request: Request, token: str, state: str, channel: ConsentChannel | None = None
) -> Response:
    what, what_short = WHAT[channel] if channel else ("", "")
    return templates.TemplateResponse(
        request,
        "unsubscribe.html",
        {"token": token, "state": state, "what": what, "what_short": what_short},
        status_code=404 if state == "invalid" else 200,
        headers=NO_STORE,
    )


@router.get("/unsubscribe/{token}", response_class=HTMLResponse)
def unsubscribe_form(token: str, request: Request, runtime: RuntimeDep, db: DB) -> Response:
    try:
        channel = runtime.unsubscriber(db).check(token)
    except UnsubscribeLinkInvalid:
        return _unsubscribe_page(request, token, "invalid")
    return _unsubscribe_page(request, token, "ask", channel)


@router.post("/unsubscribe/{token}", response_class=HTMLResponse)
def unsubscribe(token: str, request: Request, runtime: RuntimeDep, db: DB) -> Response:
    """Withdraw the consent the link names: 200 also when it was withdrawn already, 404
    (nothing changed) for a link that is not ours. Open to posts from anywhere: a mail
    client's one-click unsubscribe (RFC 8058) posts from its own servers; the link's token,
    which only the person's mail holds, is what makes it theirs."""
    try:
        channel = runtime.unsubscriber(db).unsubscribe(token)
    except UnsubscribeLinkInvalid:
        return _unsubscribe_page(request, token, "invalid")
    return _unsubscribe_page(request, token, "done", channel)


def _confirm_page(
    request: Request, token: str, done: bool | None, error: str = "", status: int = 200
) -> Response:
    return templates.TemplateResponse(
        request,
        "newsletter_confirm.html",
        {"token": token, "done": done, "error": error},
        status_code=status,
        headers=NO_STORE,
    )


@router.get("/newsletter/confirm/{token}", response_class=HTMLResponse)
def newsletter_confirm_form(token: str, request: Request) -> Response:
    return _confirm_page(request, token, None)


@router.post(
    "/newsletter/confirm/{token}",
    response_class=HTMLResponse,
    dependencies=[Depends(require_same_origin)],
)
def newsletter_confirm(token: str, request: Request, runtime: RuntimeDep, db: DB) -> Response:
    try:
        runtime.newsletter(db, source="web").confirm(token)
    except (OptInLinkInvalid, OptInLinkGone) as exc:
        status = 404 if isinstance(exc, OptInLinkInvalid) else 410
        return _confirm_page(request, token, False, exc.detail, status)
    return _confirm_page(request, token, True)
