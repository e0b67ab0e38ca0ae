"""What the PBX reports: call detail records, as JSON or as Asterisk's Master.csv (P2.7)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from privault.service.cdr_csv import read_master_csv
from privault.service.cdr_schemas import CdrBatchIn, CdrBatchOut, answer_json, rows_from_json
from privault.service.cdrs import CdrIn, RowResult, time_zone
from privault.web.deps import DB, PbxDep, RuntimeDep

router = APIRouter(tags=["pbx"])

PATH = "/pbx/cdrs"
JSON = "application/json"
CSV = "text/csv"
#: Media types the API's JSON-only middleware lets through for this route.
MEDIA_TYPES = (JSON, CSV)

CSV_EXAMPLE = (
    '"","+447700900123","+33170369000","conference","""Ann"" <+447700900123>",'
    '"PJSIP/trunk-00000001","","ConfBridge","4817305926","2024-05-01 09:30:00",'
    '"2024-05-01 09:30:04","2024-05-01 09:42:10",730,726,"ANSWERED","DOCUMENTATION",'
    '"1714555800.1","4817305926"\n'
)


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its ``$defs`` written in place, for an OpenAPI request body."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return walk(defs[ref.removeprefix("#/$defs/")])
            return {key: walk(value) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(value) for value in node]
        return node

    inlined: dict[str, Any] = walk(schema)
    return inlined


REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            JSON: {"schema": _inline(CdrBatchIn.model_json_schema())},
            CSV: {
                "schema": {
                    "type": "string",
                    "description": "Lines of Asterisk's cdr_csv Master.csv with loguniqueid "
                    "and loguserfield on (18 fields, or 21 with newcdrcolumns); the Room ID is "
                    "in userfield.",
                },
                "example": CSV_EXAMPLE,
            },
        },
    }
}


async def cdr_batch(request: Request, pbx: PbxDep) -> list[CdrIn | RowResult]:
    """The intake adapter: the body read by its media type, rows of the wrong shape refused
    one by one (off the event loop: a big batch takes milliseconds). Malformed JSON is 400;
    a body that is neither JSON nor CSV is 415."""
    kind = request.headers.get("content-type", JSON).split(";")[0].strip().lower()
    if kind not in MEDIA_TYPES:
        raise HTTPException(415, "send the CDRs as application/json or text/csv")
    return await run_in_threadpool(_rows, kind, await request.body())


def _rows(kind: str, raw: bytes) -> list[CdrIn | RowResult]:
    if kind == CSV:
        return read_master_csv(raw.decode("utf-8", errors="replace"))
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise RequestValidationError(
            [{"type": "json_invalid", "loc": ("body",), "msg": "JSON decode error", "input": {}}]
        ) from None
    return rows_from_json(body)


CdrBatch = Annotated[list[CdrIn | RowResult], Depends(cdr_batch)]


@router.post(PATH, response_model=CdrBatchOut, openapi_extra=REQUEST_BODY)
def ingest_cdrs(
    pbx: PbxDep,
    batch: CdrBatch,
    runtime: RuntimeDep,
    db: DB,
    timezone: Annotated[
        str | None,
        Query(
            max_length=64,
            description="IANA zone of timestamps without an offset (Asterisk without "
            "usegmtime writes local time); UTC when absent.",
        ),
    ] = None,
) -> Response:
    """Store a batch of CDRs: each owned by its room's owner, the caller's number encrypted.

    The body is `{"cdrs": [...]}` as JSON, or Master.csv lines as `text/csv`. Answers per row,
    in order: accepted, duplicate (call id stored already: re-sending adds nothing) or
    rejected with a reason; a bad row never costs the others. Needs the PBX's service token.
    """
    report = runtime.cdrs(db).ingest(batch, actor=f"pbx:{pbx.name}", zone=time_zone(timezone))
    return Response(answer_json(report), media_type=JSON)
