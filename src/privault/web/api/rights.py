"""A person's data-subject requests, their export and its download (P9.1, P9.4)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from privault.policy.model import RequestKind
from privault.rights.export import ExportKind
from privault.rights.schemas import RequestIn, RequestOut, RequestsOut
from privault.rights.service import Channel
from privault.service.schemas import ErrorOut
from privault.web.deps import DB, CallerDep, OpenCallerDep, RuntimeDep

router = APIRouter(tags=["rights"])

#: The requests open before the policy's current version is accepted (P8.3): export and
#: erasure, as the policy implies for someone who refuses it.
OPEN_KINDS = frozenset({RequestKind.ACCESS, RequestKind.PORTABILITY, RequestKind.ERASURE})

ZIP = "application/zip"


def _zip(raw: bytes, name: str) -> Response:
    return Response(
        raw,
        media_type=ZIP,
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


@router.post("/me/requests", status_code=201, response_model=RequestOut)
def file_request(body: RequestIn, caller: OpenCallerDep, runtime: RuntimeDep, db: DB) -> RequestOut:
    """File a request about your data. You are logged in, so it is verified at once and due
    within the policy's deadline. An erasure closes the account, as `DELETE /me` does, and
    needs a login from the last 15 minutes. Access, portability and erasure are open also
    before the policy's current version is accepted (P8.3); the others are not."""
    if body.kind not in OPEN_KINDS:
        runtime.acceptances(db).require(caller.subject_id)
    rights = runtime.rights(db)
    if body.kind == "erasure":
        request = runtime.accounts(db).close(caller.subject_id, caller.token, rights)
        return RequestOut.of(rights.get(request.id))
    request = rights.file(
        caller.subject_id,
        body.kind,
        Channel.API,
        actor=f"subject:{caller.subject_id}",
        verified=True,
        details=body.details,
    )
    return RequestOut.of(rights.get(request.id))


@router.get("/me/requests", response_model=RequestsOut)
def list_requests(caller: OpenCallerDep, runtime: RuntimeDep, db: DB) -> RequestsOut:
    """Your requests, newest first, with their state and due date."""
    return RequestsOut(
        requests=[RequestOut.of(v) for v in runtime.rights(db).of(caller.subject_id)]
    )


@router.post("/me/requests/{request_id}/withdraw", response_model=RequestOut)
def withdraw_request(request_id: str, caller: CallerDep, runtime: RuntimeDep, db: DB) -> RequestOut:
    """Withdraw a request that is not under way yet."""
    return RequestOut.of(runtime.rights(db).withdraw(request_id, caller.subject_id))


@router.get(
    "/me/export",
    response_class=Response,
    responses={200: {"content": {ZIP: {}}, "description": "The export as a zip."}},
)
def export_now(
    caller: OpenCallerDep,
    runtime: RuntimeDep,
    db: DB,
    kind: Annotated[ExportKind, Query(description="access (everything) or portability.")] = (
        ExportKind.ACCESS
    ),
) -> Response:
    """Your data at once, as a zip of data.json, one CSV per category and index.html;
    recorded as a completed request. Needs a login from the last 15 minutes."""
    runtime.accounts(db).require_recent_login(caller.subject_id, caller.token, "export your data")
    raw = runtime.rights(db).export_now(caller.subject_id, kind)
    return _zip(raw, f"{kind.value}-export.zip")


@router.get(
    "/me/exports/{token}",
    response_class=Response,
    responses={
        200: {"content": {ZIP: {}}, "description": "The export as a zip."},
        410: {"model": ErrorOut, "description": "The link was used or has expired."},
    },
)
def download_export(
    token: Annotated[str, Path(max_length=100)], caller: OpenCallerDep, runtime: RuntimeDep, db: DB
) -> Response:
    """The export a request produced, from the link mailed to you: once, within 7 days,
    with your own session. A used or expired link answers 410."""
    return _zip(runtime.rights(db).download(token, caller.subject_id), "export.zip")
