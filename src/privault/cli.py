"""The `privault` command line. Each command calls the same services as the HTTP API."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from privault import demo as demo_data
from privault.access.audit import Event
from privault.config import Settings
from privault.errors import PrivaultError
from privault.logs import configure
from privault.policy.loader import load_policy
from privault.runtime import Runtime, open_runtime, prepare
from privault.service.pbx import PbxTokenService

app = typer.Typer(
    help="Privault: the personal-data platform of the conference-call service.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
policy_app = typer.Typer(help="Check and inspect policy files.", no_args_is_help=True)
keys_app = typer.Typer(help="Manage the keyring's master keys.", no_args_is_help=True)
audit_app = typer.Typer(help="Inspect the access log.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")
pbx_app = typer.Typer(help="The PBX that checks PINs and sends call records.", no_args_is_help=True)
pbx_token_app = typer.Typer(help="Service tokens of the PBX.", no_args_is_help=True)
pbx_app.add_typer(pbx_token_app, name="token")
app.add_typer(pbx_app, name="pbx")
out = Console()


class Failed(Exception):
    """A command failed for a reason already worded for the operator."""


def settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        key = "PRIVAULT_" + "__".join(str(p) for p in first["loc"]).upper()
        raise Failed(f"setting {key}: {first['msg']}") from None


def runtime() -> Runtime:
    return open_runtime(settings())


@app.command()
def init() -> None:
    """Create (or migrate) the data folder: database schema, keyring (0600), maildir, policy."""
    config = settings()
    prepare(config)
    rt = open_runtime(config)
    out.print(f"data folder ready: {config.data_dir}")
    out.print(f"policy version {rt.policy_version} loaded; keyring at {config.keyring_path}")


def _serve(rt: Runtime, host: str, port: int, worker: bool) -> None:
    # Imported here: the web stack is half of the start-up time of every other command.
    import uvicorn

    from privault.web.app import create_app
    from privault.worker import Worker

    @asynccontextmanager
    async def lifespan(_: object) -> AsyncIterator[None]:
        sweeper = Worker(rt, rt.settings.worker_interval) if worker else None
        if sweeper:
            sweeper.start()
        yield
        if sweeper:
            sweeper.stop()

    configure(rt.settings.log_json)
    web = create_app(rt)
    web.router.lifespan_context = lifespan
    out.print(f"Privault serving on http://{host}:{port}  (data: {rt.settings.data_dir})")
    uvicorn.run(web, host=host, port=port, log_config=None, access_log=False, proxy_headers=True)


@app.command()
def serve(
    host: Annotated[
        str, typer.Option(help="Address to bind; other than localhost only behind a firewall.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
    worker: Annotated[
        bool, typer.Option(help="Run the sweeps (outbox, ...) inside the server.")
    ] = True,
) -> None:
    """Serve the web pages and the API; initialises or migrates the data folder first."""
    config = settings()
    prepare(config)
    _serve(open_runtime(config), host, port, worker)


@app.command()
def demo(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
    no_serve: Annotated[
        bool, typer.Option("--no-serve", help="Only create the demo data.")
    ] = False,
) -> None:
    """Initialise, create synthetic demo people, print their logins and serve."""
    config = settings()
    prepare(config)
    rt = open_runtime(config)
    people = demo_data.seed(rt)
    out.print(f"Open http://{host}:{port}")
    out.print("Demo logins (synthetic people):")
    for person in people:
        out.print(f"  {person.email:28} password {person.password}  room {person.room_id}")
    if not no_serve:
        _serve(rt, host, port, True)


@policy_app.command("check")
def policy_check(
    file: Annotated[Path, typer.Argument(help="The policy file (TOML) to validate.")],
) -> None:
    """Validate a policy file; one line naming the key and the reason when it is broken."""
    policy = load_policy(file)
    out.print(
        f"{file}: valid: {len(policy.categories)} categories, {len(policy.purposes)} purposes, "
        f"{len(policy.recipients)} recipients, {len(policy.cookies)} cookies"
    )


@keys_app.command("rotate")
def keys_rotate(
    purge: Annotated[
        bool, typer.Option(help="Drop the previous master key now (no other process running).")
    ] = False,
) -> None:
    """Re-wrap every subject's data key under a new master key; the data is not touched."""
    rt = runtime()
    count = rt.vault.rotate_master_key(rt.factory, purge=purge)
    with rt.transaction() as session:
        rt.audit.record(
            session, "cli", Event.KEYS_ROTATED, actor="operator", detail={"rewrapped": count}
        )
    out.print(f"master key {rt.keyring.active} is active; {count} data keys re-wrapped")


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the access log's hash chain; exits 1 naming the first broken entry."""
    rt = runtime()
    with rt.factory() as session:
        result = rt.audit.verify(session)
    if not result.ok:
        raise Failed(f"access log broken after {result.entries} good entries: {result.problem}")
    out.print(f"access log intact: {result.entries} entries, head {result.head.hex()[:16]}")


@pbx_token_app.command("create")
def pbx_token_create(name: Annotated[str, typer.Argument(help="A name for the PBX.")]) -> None:
    """Create a service token and print it once; only its digest is stored."""
    rt = runtime()
    with rt.transaction() as session:
        token = PbxTokenService(session, rt.clock).create(name)
    print(token)


@pbx_token_app.command("revoke")
def pbx_token_revoke(name: Annotated[str, typer.Argument(help="The PBX's name.")]) -> None:
    """Revoke a PBX's token at once."""
    rt = runtime()
    with rt.transaction() as session:
        PbxTokenService(session, rt.clock).revoke(name)
    out.print(f"token of {name} revoked")


@pbx_token_app.command("list")
def pbx_token_list() -> None:
    """List PBX tokens by name (never the tokens themselves)."""
    rt = runtime()
    with rt.factory() as session:
        for info in PbxTokenService(session, rt.clock).list():
            state = f"revoked {info.revoked_at:%Y-%m-%d}" if info.revoked_at else "active"
            out.print(f"{info.name}\tcreated {info.created_at:%Y-%m-%d}\t{state}")


def main() -> None:
    """Entry point: domain errors become one line on stderr and exit status 1."""
    try:
        app()
    except (PrivaultError, Failed) as exc:
        detail = exc.detail if isinstance(exc, PrivaultError) else str(exc)
        print(f"privault: {detail}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
