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
    """Fields present change: ``value`` sets, ``visibility`` says who sees it; ``null`` clears."""
    changes = {}
    for name in body.model_fields_set:
        item = getattr(body, name)
        if item is None:  # "name": null clears the field, as in a JSON merge patch
            changes[name] = Change(value=None, has_value=True)
        else:
            changes[name] = Change(
                visibility=item.visibility,
                value=item.value,
                has_value="value" in item.model_fields_set,
            )
    return _out(runtime.profiles(db).update(caller.subject_id, changes))
