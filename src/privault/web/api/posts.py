"""The caller's username and posts, and anyone's public page as JSON (P2.9, P3.15, P0.3)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from privault.service.post_schemas import (
    PostIn,
    PostOut,
    PostPatch,
    PostsOut,
    PublicPageOut,
    PublicPostOut,
    UsernameIn,
    UsernameOut,
)
from privault.service.posts import PostView
from privault.web.deps import DB, CallerDep, RuntimeDep, ViewerDep
from privault.web.guards import refuse_card_numbers

router = APIRouter(tags=["posts"], dependencies=[Depends(refuse_card_numbers)])


def _out(view: PostView) -> PostOut:
    return PostOut(**vars(view))


@router.get("/me/username", response_model=UsernameOut)
def read_username(caller: CallerDep, runtime: RuntimeDep, db: DB) -> UsernameOut:
    return UsernameOut(username=runtime.posts(db).username_of(caller.subject_id))


@router.put("/me/username", response_model=UsernameOut)
def choose_username(
    body: UsernameIn, caller: CallerDep, runtime: RuntimeDep, db: DB
) -> UsernameOut:
    """Choose the name of the public page; 409 ``username_taken`` when someone has it."""
    return UsernameOut(username=runtime.posts(db).choose_username(caller.subject_id, body.username))


@router.delete("/me/username", status_code=204)
def drop_username(caller: CallerDep, runtime: RuntimeDep, db: DB) -> Response:
    """Give up the username: the public page is gone at once."""
    runtime.posts(db).drop_username(caller.subject_id)
    return Response(status_code=204)


@router.post("/me/posts", status_code=201, response_model=PostOut)
def create_post(body: PostIn, caller: CallerDep, runtime: RuntimeDep, db: DB) -> PostOut:
    """A new post, private unless ``visibility`` says otherwise."""
    return _out(runtime.posts(db).create(caller.subject_id, body.body, body.visibility))


@router.get("/me/posts", response_model=PostsOut)
def list_posts(caller: CallerDep, runtime: RuntimeDep, db: DB) -> PostsOut:
    return PostsOut(posts=[_out(v) for v in runtime.posts(db).list_posts(caller.subject_id)])


@router.get("/me/posts/{post_id}", response_model=PostOut)
def read_post(post_id: str, caller: CallerDep, runtime: RuntimeDep, db: DB) -> PostOut:
    return _out(runtime.posts(db).read(caller.subject_id, post_id))


@router.patch("/me/posts/{post_id}", response_model=PostOut)
def update_post(
    post_id: str, body: PostPatch, caller: CallerDep, runtime: RuntimeDep, db: DB
) -> PostOut:
    return _out(
        runtime.posts(db).update(
            caller.subject_id, post_id, body=body.body, visibility=body.visibility
        )
    )


@router.delete("/me/posts/{post_id}", status_code=204)
def delete_post(post_id: str, caller: CallerDep, runtime: RuntimeDep, db: DB) -> Response:
    runtime.posts(db).delete(caller.subject_id, post_id)
    return Response(status_code=204)


@router.get("/people/{username}", response_model=PublicPageOut)
def public_page(
    username: str, viewer: ViewerDep, response: Response, runtime: RuntimeDep, db: DB
) -> PublicPageOut:
    """What ``username`` shows this caller: public things to anyone, members' things to a
    logged-in member. 404 ``person_not_found`` alike for an unknown name and for a person
    who shows nothing. Never cached, so a change of settings holds at once."""
    response.headers["Cache-Control"] = "no-store"
    page = runtime.publication(db).page(username, viewer.subject_id if viewer else None)
    return PublicPageOut(
        username=page.username,
        fields=page.fields,
        posts=[PublicPostOut(**vars(p)) for p in page.posts],
    )
