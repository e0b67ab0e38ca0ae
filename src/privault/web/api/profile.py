"""The caller's profile (P2.4) with a visibility per field (P3.15)."""

from __future__ import annotations

from fastapi import APIRouter

from privault.service.profile import Change, ProfileEntry
from privault.service.schemas import ProfileFieldOut, ProfileOut, ProfilePatch
from privault.web.deps import DB, CallerDep, RuntimeDep

router = APIRouter(tags=["profile"])


def _out(entries: dict[str, ProfileEntry]) -> ProfileOut:
    return ProfileOut(
        fields={
            k: ProfileFieldOut(value=e.value, visibility=e.visibility) for k, e in entries.items()
        }
    )


@router.get("/me/profile", response_model=ProfileOut)
def read_profile(caller: CallerDep, runtime: RuntimeDep, db: DB) -> ProfileOut:
    return _out(runtime.profiles(db).read(caller.subject_id))


@router.patch("/me/profile", response_model=ProfileOut)
def update_profile(
    body: ProfilePatch, caller: CallerDep, runtime: RuntimeDep, db: DB
) -> ProfileOut:
    """Fields present change: ``value`` sets (``null`` clears), ``visibility`` who sees it."""
    changes = {
        name: Change(
            visibility=item.visibility,
            value=item.value,
            has_value="value" in item.model_fields_set,
        )
        for name in body.model_fields_set
        if (item := getattr(body, name)) is not None
    }
    return _out(runtime.profiles(db).update(caller.subject_id, changes))
