"""The `privault` command line. Each command calls the same services as the HTTP API."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from jinja2 import TemplateError
from pydantic import ValidationError
from rich.console import Console
from rich.progress import Progress, TaskID
from rich.table import Table
from rich.text import Text
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from privault import demo as demo_data
from privault.access.audit import Event
from privault.backup.service import Kind, restore_backup, write_backup
from privault.clock import SystemClock
from privault.config import Settings
from privault.consent.analytics import load_device_rules
from privault.consent.geo import CsvCountries, GeoIpFileInvalid
from privault.consent.marketing import Letter
from privault.disclosure.service import DisclosureBasis, Entry
from privault.errors import PrivaultError
from privault.logs import configure, hide_exception_messages
from privault.notify.models import OutboxMessage
from privault.notify.outbox import STATES as MAIL_STATES
from privault.notify.transport import MaildirTransport
from privault.policy.diff import PolicyDiff, diff, unreadable
from privault.policy.errors import PolicyError
from privault.policy.loader import load_policy
from privault.policy.model import Policy
from privault.policy.render import PolicyPages
from privault.policy.render import render as render_policy
from privault.policy.ropa import build_record, render
from privault.policy.store import PolicyStore
from privault.policy.wording import Format
from privault.promises.evidence import CollectionFailed, named_tests
from privault.promises.report import Report, short
from privault.promises.report import build as build_promises
from privault.promises.report import markdown as promises_markdown
from privault.promises.table import REPO_TABLE, PromiseTableInvalid, load_table
from privault.rights.service import Refusal, RequestView, State
from privault.runtime import Runtime, open_database, open_runtime, prepare, publish_policy
from privault.service.cdr_csv import read_master_csv
from privault.service.cdr_schemas import rows_from_json
from privault.service.cdrs import MAX_BATCH, RowResult, Status, time_zone
from privault.service.pbx import PbxTokenService
from privault.statistics.releases import RELEASES
from privault.statistics.service import ReleaseEntry
from privault.vault import Keyring

if TYPE_CHECKING:
    from fastapi import FastAPI

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
dialin_app = typer.Typer(help="The service's dial-in numbers, per country.", no_args_is_help=True)
app.add_typer(dialin_app, name="dialin")
cdr_app = typer.Typer(help="Call detail records from the PBX.", no_args_is_help=True)
app.add_typer(cdr_app, name="cdr")
staff_app = typer.Typer(
    help="Staff accounts: roles from the policy, TOTP logins.", no_args_is_help=True
)
app.add_typer(staff_app, name="staff")
hold_app = typer.Typer(
    help="Legal holds: data kept even from erasure (P6.3).", no_args_is_help=True
)
app.add_typer(hold_app, name="hold")
dsr_app = typer.Typer(
    help="Data-subject requests: the queue, identity checks, extensions, answers, refusals.",
    no_args_is_help=True,
)
app.add_typer(dsr_app, name="dsr")
mail_app = typer.Typer(
    help="Mail: the outbox, and the intake of the privacy address.", no_args_is_help=True
)
app.add_typer(mail_app, name="mail")
out = Console()
err = Console(stderr=True)


class Failed(Exception):
    """A command failed for a reason already worded for the operator."""


def settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        reason = str(first.get("ctx", {}).get("error", first["msg"]))
        if not first["loc"]:  # a check across settings names its own key
            raise Failed(f"setting PRIVAULT_{reason}") from None
        key = "PRIVAULT_" + "__".join(str(p) for p in first["loc"]).upper()
        raise Failed(f"setting {key}: {reason}") from None


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


def _served_at(config: Settings, host: str, port: int) -> Settings:
    """Without PRIVAULT_BASE_URL, links in pages and mail point where this serves."""
    if "base_url" in config.model_fields_set:
        return config
    return config.model_copy(update={"base_url": f"http://{host}:{port}"})


def _serve(rt: Runtime, host: str, port: int, worker: bool) -> None:
    # Imported here: the web stack is half of the start-up time of every other command.
    import uvicorn

    from privault.mail.server import IntakeServer
    from privault.web.app import create_app
    from privault.worker import Worker

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        sweeper = Worker(rt, rt.settings.worker_interval) if worker else None
        intake = None
        if rt.settings.intake_port is not None:
            intake = IntakeServer(rt, rt.settings.intake_host, rt.settings.intake_port)
        async with app_lifespan(app):
            if sweeper:
                sweeper.start()
            if intake:
                intake.start()
            yield
            if intake:
                intake.stop()
            if sweeper:
                sweeper.stop()

    configure(rt.settings.log_json)
    if isinstance(rt.countries, CsvCountries):
        try:  # a broken file is found at start, not at the first page view
            rt.countries.load()
        except GeoIpFileInvalid as exc:
            raise Failed(f"setting PRIVAULT_GEOIP_CSV: {exc}") from None
    load_device_rules()
    web = create_app(rt)
    app_lifespan = web.router.lifespan_context
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
    config = _served_at(settings(), host, port)
    prepare(config)
    _serve(open_runtime(config), host, port, worker)


@app.command()
def worker(
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit.")] = False,
) -> None:
    """Run the sweeps in the foreground: data-subject requests (exports, erasures), then the
    outbox; every PRIVAULT_WORKER_INTERVAL seconds until stopped (SIGTERM or Ctrl-C). Safe to
    stop at any moment and to run beside `serve` or other workers."""
    import signal

    from privault.worker import Worker

    config = settings()
    prepare(config)
    rt = open_runtime(config)
    configure(rt.settings.log_json)
    sweeper = Worker(rt, rt.settings.worker_interval)
    if once:
        sent = sweeper.sweep_once()
        out.print(f"one pass done; {sent} mail(s) sent")
        return
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: sweeper.stop())
    out.print(f"Privault worker running every {rt.settings.worker_interval:g} s")
    sweeper.run()


@app.command()
def sweep() -> None:
    """Erase what has outlived its retention period (P6.2), except what a legal hold keeps,
    in batches; prints the rows erased per category (counts, never content). The worker
    does this once a day; safe to stop and to run again."""
    rt = runtime()
    retention = rt.retention_sweep()
    expected = retention.expired()
    with Progress(console=out, transient=True, disable=not out.is_terminal) as progress:
        bars = {
            table: progress.add_task(f"{table}", total=count or None)
            for table, count in expected.items()
            if count
        }
        report = retention.run(
            by=OPERATOR,
            progress=lambda table, rows: (
                progress.advance(bars[table], rows) if table in bars else None
            ),
        )
    for category in report.held:
        out.print(f"{category}: kept by a legal hold on everyone's data")
    counts = Table("category", "table", "rows erased", "months dropped", box=None)
    for swept in report.swept:
        counts.add_row(swept.category, swept.table, f"{swept.rows:,}", str(swept.partitions))
    out.print(counts)
    out.print(f"{report.rows:,} row(s) erased (run {report.run_id})")


@app.command()
def demo(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
    no_serve: Annotated[
        bool, typer.Option("--no-serve", help="Only create the demo data.")
    ] = False,
    totp_of: Annotated[
        str | None,
        typer.Option(
            "--totp",
            metavar="NAME",
            help="Only print a TOTP code of the demo staff member NAME, valid now.",
        ),
    ] = None,
) -> None:
    """Initialise, fill with synthetic people, calls, consents and requests, print their
    logins and the staff's, and serve."""
    if totp_of is not None:
        member = next((m for m in demo_data.STAFF if m.name == totp_of), None)
        if member is None:
            names = ", ".join(m.name for m in demo_data.STAFF)
            raise Failed(f"the demo has no staff member {totp_of}: it has {names}")
        out.print(member.code(SystemClock().now()))
        return
    config = _served_at(settings(), host, port)
    prepare(config)
    rt = open_runtime(config)
    seeded = demo_data.seed(rt)
    out.print(f"Open http://{host}:{port}")
    out.print("Demo logins (synthetic people):", markup=False)
    for person in seeded.people:
        line = f"  {person.email:30} password {person.password:28} room {person.room_id}"
        out.print(f"{line}  {person.note}".rstrip(), markup=False, highlight=False, soft_wrap=True)
    out.print(
        f"Staff logins (the console: http://{host}:{port}/staff/login; a code works once: "
        "a fresh one from the secret, or `privault demo --totp NAME`):",
        markup=False,
        soft_wrap=True,
    )
    for member in seeded.staff:
        out.print(f"  {member.login(rt.clock.now())}", markup=False, soft_wrap=True)
    intake = rt.settings.intake_port
    where = f"smtp://{rt.settings.intake_host}:{intake}" if intake else "`privault mail ingest`"
    address = rt.policy.meta.privacy_address
    out.print(
        f"Mail to {address}: {where}; mail sent: `privault mail outbox`",
        markup=False,
        soft_wrap=True,
    )
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
        f"{len(policy.recipients)} recipients, {len(policy.cookies)} cookies",
        soft_wrap=True,
    )


def _print_diff(changes: PolicyDiff | None) -> None:
    for line in changes.summary() if changes else ["The first version: nothing to compare."]:
        out.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)


def _policy_of(ref: str, factory: sessionmaker[Session] | None) -> tuple[str, Policy]:
    """A policy by stored version number or file path, with how to name it."""
    if factory is not None and ref.isdigit():
        with factory() as session:
            return f"version {ref}", PolicyStore(session, SystemClock()).policy_of(int(ref))
    return ref, load_policy(Path(ref))


@policy_app.command("diff")
def policy_diff(
    old: Annotated[str, typer.Argument(help="A stored version number, or a policy file.")],
    new: Annotated[str, typer.Argument(help="A stored version number, or a policy file.")],
) -> None:
    """Say in plain words what changed from OLD to NEW, and whether people must agree again
    (fresh consent) or only be told (notice)."""
    factory = open_database(settings()) if old.isdigit() or new.isdigit() else None
    try:
        new_name, after = _policy_of(new, factory)
        try:
            old_name, before = _policy_of(old, factory)
            changes = diff(before, after)
        except PolicyError as exc:
            if not old.isdigit():
                raise
            old_name, changes = f"version {old}", unreadable(int(old), exc.detail)
    finally:
        bind = factory.kw.get("bind") if factory is not None else None
        if isinstance(bind, Engine):
            bind.dispose()
    out.print(f"From {old_name} to {new_name}:", markup=False, highlight=False)
    _print_diff(changes)


def _effective(value: str) -> datetime | None:
    return None if value == "now" else _date(value, "--effective")


@policy_app.command("publish")
def policy_publish(
    file: Annotated[Path, typer.Argument(help="The policy file (TOML) of the new version.")],
    effective: Annotated[
        str, typer.Option(help="When it comes into force: YYYY-MM-DD (00:00 UTC) or now.")
    ] = "now",
    mail: Annotated[
        bool, typer.Option(help="Queue the mail to every active account (P8.2) now.")
    ] = True,
    batch_size: Annotated[int, typer.Option(min=1, max=5000, help="Mails a transaction.")] = 500,
) -> None:
    """Validate FILE and store it as the next policy version, in force from --effective;
    print what changed, then tell every active account by mail (`policy notify` finishes a
    mailing cut short)."""
    config = settings()
    published = publish_policy(config, file, _effective(effective))
    when = f"{published.effective_at:%Y-%m-%d %H:%M} UTC"
    out.print(f"policy version {published.version} published, in force from {when}")
    _print_diff(published.diff)
    if mail:
        _notify(open_runtime(config, version=published.version), published.version, batch_size)


@policy_app.command("notify")
def policy_notify(
    version: Annotated[int, typer.Argument(help="The stored policy version to tell people of.")],
    batch_size: Annotated[int, typer.Option(min=1, max=5000, help="Mails a transaction.")] = 500,
) -> None:
    """Queue the mail about policy VERSION to every active account that has not had it:
    run it again to finish a mailing cut short; nobody gets it twice."""
    _notify(open_runtime(settings(), version=version), version, batch_size)


def _notify(rt: Runtime, version: int, batch_size: int) -> None:
    mailing = rt.policy_mailing()
    with Progress(console=out, transient=True, disable=not out.is_terminal) as progress:
        total = mailing.remaining(version)
        task = progress.add_task(f"mailing policy version {version}", total=total)
        report = mailing.run(version, batch_size, lambda n: progress.advance(task, n))
    out.print(
        f"policy version {version}: {report.queued} mail(s) queued now, {report.total} in all; "
        f"{report.skipped} account(s) without an address",
        markup=False,
        highlight=False,
    )


@policy_app.command("render")
def policy_render(
    version: Annotated[
        str | None, typer.Option("--version", help="A stored version; by default the one in force.")
    ] = None,
    output_format: Annotated[
        str, typer.Option("--format", help="html (a fragment of the site's page) or md.")
    ] = Format.HTML,
    file: Annotated[
        Path | None,
        typer.Option("--file", help="Render this policy file, not stored yet, to review it."),
    ] = None,
) -> None:
    """The privacy policy as the site shows it (/privacy): the eleven sections, from the
    policy's prose and the data the code enforces."""
    try:
        fmt = Format(output_format)
    except ValueError:
        raise Failed(f"--format must be html or md, not {output_format!r}") from None
    if file is not None:
        if version is not None:
            raise Failed("give --version or --file, not both")
        draft = load_policy(file)
        sys.stdout.write(render_policy(draft, None, draft.meta.effective_date, fmt))
        return
    if version is not None and not (version.isascii() and version.isdigit()):
        raise Failed(f"--version must be a version number, not {version!r}")
    rt = runtime()
    with rt.factory() as session:
        pages = PolicyPages(PolicyStore(session, rt.clock), rt.policy, rt.policy_version)
        text = pages.current(fmt) if version is None else pages.stored(int(version), fmt)
    sys.stdout.write(text)


@app.command()
def ropa(
    output_format: Annotated[
        Format, typer.Option("--format", help="md (Markdown) or html (a standalone page).")
    ] = Format.MARKDOWN,
    output: Annotated[
        Path | None, typer.Option(help="Write it to this file instead of standard output.")
    ] = None,
) -> None:
    """The record of processing activities (GDPR Art. 30): purposes, legal bases, data
    subjects, categories, recipients, transfers, retention and security measures from the
    policy, and the people and records the database holds now per category."""
    rt = runtime()
    with rt.factory() as session:
        record = build_record(session, rt.policy, rt.policy_version, rt.clock.now())
    _write_out(render(record, output_format), output, "record of processing activities")


def _write_out(text: str, output: Path | None, what: str) -> None:
    """``text`` on stdout, or in the file ``output`` (saying so on the console)."""
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise Failed(f"cannot write {output}: {exc.strerror}") from None
    out.print(f"{what} written to {output}", markup=False)


class PromisesFormat(StrEnum):
    TABLE = "table"
    MARKDOWN = "md"
    JSON = "json"


@app.command()
def promises(
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="Fail when a promise has no test or no mechanism, or a mechanism is gone.",
        ),
    ] = False,
    output_format: Annotated[
        PromisesFormat, typer.Option("--format", help="table, md (Markdown) or json.")
    ] = PromisesFormat.TABLE,
    tests: Annotated[Path, typer.Option(help="The test suite to collect.")] = REPO_TABLE.parents[1]
    / "tests",
    policy_file: Annotated[
        Path | None,
        typer.Option("--policy", help="The policy file; PRIVAULT_POLICY_FILE by default."),
    ] = None,
) -> None:
    """The promise table (docs/promises.md) as the code sees it: for each promise, the
    mechanisms that keep it (the registry and the policy file, each checked to exist) and
    the tests that name its ID, found by collecting the test suite."""
    try:
        table = load_table()
        named = named_tests(tests)
    except (PromiseTableInvalid, CollectionFailed) as exc:
        raise Failed(str(exc)) from None
    loaded = load_policy(policy_file or settings().policy_file)
    report = build_promises(table, named, loaded)
    if output_format is PromisesFormat.JSON:
        sys.stdout.write(json.dumps(report.as_json(), indent=2, ensure_ascii=False) + "\n")
    elif output_format is PromisesFormat.MARKDOWN:
        sys.stdout.write(promises_markdown(report))
    else:
        _promises_table(report)
    problems = report.problems()
    if strict and problems:
        for problem in problems:
            print(f"privault promises: {problem}", file=sys.stderr)
        raise typer.Exit(1)


def _promises_table(report: Report) -> None:
    grid = Table("ID", "The system must", "Mechanisms", "Tests", show_lines=True)
    for line in report.lines:
        refs = Text()
        for checked in line.mechanisms:
            refs.append(checked.mechanism.ref + "\n", style="red" if checked.problem else "")
        refs.rstrip()
        names = "\n".join(short(t) for t in line.tests[:3])
        count = Text(str(len(line.tests)), style="" if line.tests else "bold red")
        grid.add_row(
            line.promise.id,
            line.promise.must,
            refs or Text("none", style="bold red"),
            count + Text("\n" + names if names else ""),
        )
    out.print(grid)
    for pid, nodes in report.unknown.items():
        out.print(f"unknown promise {pid} named by {', '.join(nodes)}", style="red", markup=False)


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


def _backup(rt: Runtime, output: Path, kind: Kind) -> None:
    engine = rt.factory.kw.get("bind")
    assert isinstance(engine, Engine), "the CLI's runtime opens its own database"
    with Progress(console=out, transient=True, disable=not out.is_terminal) as progress:
        task = progress.add_task(f"{kind.value} backup", total=None)
        written = write_backup(
            engine, rt.keyring, output, rt.clock, kind, lambda _, rows: progress.advance(task, rows)
        )
    with rt.transaction() as session:
        rt.audit.record(
            session,
            "cli",
            Event.BACKUP_WRITTEN,
            actor="operator",
            detail={"backup": written.id, "kind": kind.value, "rows": sum(written.rows.values())},
        )
    out.print(
        f"{written.path}: {sum(written.rows.values()):,} row(s) of {len(written.rows)} table(s)",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


@app.command()
def backup(
    output: Annotated[
        Path | None,
        typer.Option(help="The file to write; by default <data dir>/backups/<UTC time>.pvbk."),
    ] = None,
) -> None:
    """Write an encrypted snapshot of the database while it serves: every table but the
    people's data keys (see `keys backup`), so a person erased later stays erased in it.
    Opens only with this keyring; see docs/backups.md."""
    rt = runtime()
    try:
        stamp = f"{rt.clock.now():%Y%m%dT%H%M%SZ}"
        _backup(rt, output or rt.settings.data_dir / "backups" / f"{stamp}.pvbk", Kind.DATA)
    finally:
        rt.close()


@keys_app.command("backup")
def keys_backup(
    output: Annotated[
        Path,
        typer.Option(help="The file to write: keep it with the keyring's backups, not the data's."),
    ],
) -> None:
    """Write the people's data keys (wrapped by the master keys) to an encrypted file, for a
    database lost (`restore --keys`). It holds the keys of people erased after it was made:
    keep it apart from the data backups and delete it within the erasure deadline (30
    days); see docs/backups.md."""
    rt = runtime()
    try:
        _backup(rt, output, Kind.KEYS)
    finally:
        rt.close()


@app.command()
def restore(
    file: Annotated[Path, typer.Argument(help="A backup written by `privault backup`.")],
    keys: Annotated[
        Path | None,
        typer.Option(help="A file of `keys backup`: only when the database itself was lost."),
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace a database that holds people.")
    ] = False,
) -> None:
    """Replace every table's rows with a backup's, in one transaction; the data keys stay
    this database's own (or come from --keys), so people erased since the backup stay
    erased: what is left of them is deleted. Needs the keyring the backup was made with."""
    config = settings()
    if not config.keyring_path.exists():
        raise Failed(
            f"keyring {config.keyring_path} not found; put the keyring's backup there first "
            "(a backup opens only with its keyring)"
        )
    Keyring.load(config.keyring_path)  # refuses an exposed one before anything is made
    prepare(config).dispose()
    rt = open_runtime(config)
    try:
        eraser = rt.rights_engine().eraser
        with Progress(console=out, transient=True, disable=not out.is_terminal) as progress:
            bars: dict[str, TaskID] = {}

            def advance(table: str, rows: int) -> None:
                if table not in bars:
                    bars[table] = progress.add_task(table, total=None)
                progress.advance(bars[table], rows)

            done = restore_backup(
                rt.factory,
                rt.keyring,
                file,
                rt.audit,
                eraser.erase_keyless,
                keys=keys,
                replace=replace,
                progress=advance,
            )
        if done.keyless:
            eraser.settle()
    finally:
        rt.close()
    source = "the key backup" if done.keys_from == "file" else "this database"
    out.print(
        f"restored backup {done.id}: {sum(done.rows.values()):,} row(s) in "
        f"{len(done.rows)} table(s); data keys from {source}; {len(done.keyless)} person(s) "
        "of the backup had no key (erased since it was made): what was left of them deleted",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


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


@dialin_app.command("add")
def dialin_add(
    number: Annotated[str, typer.Argument(help="The number in international format, +CC ...")],
    city: Annotated[str | None, typer.Option(help="The city the number is local to.")] = None,
) -> None:
    """Add a dial-in number; its country is the number's own."""
    rt = runtime()
    with rt.transaction() as session:
        added = rt.dial_ins(session).add(number, city)
    out.print(f"dial-in {added.number} added for {added.country}")


@dialin_app.command("list")
def dialin_list() -> None:
    """List the dial-in numbers by country."""
    rt = runtime()
    with rt.factory() as session:
        for item in rt.dial_ins(session).list():
            print(f"{item.country}\t{item.number}\t{item.city or '-'}")


@dialin_app.command("remove")
def dialin_remove(
    number: Annotated[str, typer.Argument(help="The number, in any format that reads as it.")],
) -> None:
    """Remove a dial-in number at once."""
    rt = runtime()
    with rt.transaction() as session:
        removed = rt.dial_ins(session).remove(number)
    out.print(f"dial-in {removed.number} removed")


@cdr_app.command("import")
def cdr_import(
    file: Annotated[
        Path, typer.Argument(help='Asterisk\'s Master.csv, or JSON {"cdrs": [...]} like the API.')
    ],
    file_format: Annotated[
        str | None,
        typer.Option("--format", help="csv or json; by default .json files are JSON, others CSV."),
    ] = None,
    timezone: Annotated[
        str, typer.Option(help="Zone of timestamps without an offset (Asterisk's local time).")
    ] = "UTC",
    batch_size: Annotated[
        int, typer.Option(min=1, max=MAX_BATCH, help="CDRs per transaction.")
    ] = 1000,
) -> None:
    """Import CDRs as the PBX would post them; re-importing a file adds nothing."""
    kind = (file_format or ("json" if file.suffix.lower() == ".json" else "csv")).lower()
    if kind not in {"csv", "json"}:
        raise Failed(f"--format must be csv or json, not {kind!r}")
    zone = time_zone(timezone)
    try:
        text = file.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise Failed(f"cannot read {file}: {exc.strerror}") from None
    if kind == "csv":
        rows = read_master_csv(text)
    else:
        try:
            body = json.loads(text)
        except ValueError:
            raise Failed(f"{file} is not JSON") from None
        rows = rows_from_json(body, limit=None)
    rt = runtime()
    results: list[RowResult] = []
    with Progress(console=out, transient=True, disable=not out.is_terminal) as progress:
        task = progress.add_task(f"importing {file.name}", total=len(rows))
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            with rt.transaction() as session:
                report = rt.cdrs(session, source="cli").ingest(chunk, actor="operator", zone=zone)
            results += report.results
            progress.advance(task, len(chunk))
    counts = {status: sum(r.status == status for r in results) for status in Status}
    out.print(
        f"{file}: {counts[Status.ACCEPTED]} accepted, {counts[Status.DUPLICATE]} duplicate, "
        f"{counts[Status.REJECTED]} rejected",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    where = "line" if kind == "csv" else "cdr"
    noted = [r for r in results if r.reason is not None]
    for result in noted[:50]:
        out.print(
            f"{where} {result.row}: {result.status}: {result.reason}: {result.detail}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    if len(noted) > 50:
        out.print(f"... and {len(noted) - 50} more")


# -- staff ----------------------------------------------------------------------------------


@staff_app.command("add")
def staff_add(
    name: Annotated[str, typer.Argument(help="The login name, e.g. ann.")],
    role: Annotated[str, typer.Option(help="A role of the policy file, e.g. privacy_officer.")],
) -> None:
    """Add a staff member; prints their password and TOTP secret once (give them both)."""
    rt = runtime()
    with rt.transaction() as session:
        made = rt.staff(session).add(name, role)
    out.print(f"staff {made.name} added with role {made.role}", markup=False)
    out.print(f"password: {made.password}", markup=False)
    out.print(f"authenticator (TOTP): {made.totp_uri}", markup=False, soft_wrap=True)


@staff_app.command("role")
def staff_role(
    name: Annotated[str, typer.Argument(help="The login name.")],
    role: Annotated[str, typer.Argument(help="The new role.")],
) -> None:
    """Change a staff member's role; their sessions end."""
    rt = runtime()
    with rt.transaction() as session:
        rt.staff(session).set_role(name, role)
    out.print(f"staff {name} now has role {role}", markup=False)


@staff_app.command("disable")
def staff_disable(name: Annotated[str, typer.Argument(help="The login name.")]) -> None:
    """Stop a staff member logging in; their sessions end."""
    rt = runtime()
    with rt.transaction() as session:
        rt.staff(session).disable(name)
    out.print(f"staff {name} disabled", markup=False)


@staff_app.command("list")
def staff_list() -> None:
    """The staff members, their roles and whether they are disabled."""
    rt = runtime()
    with rt.factory() as session:
        for member in rt.staff(session).members():
            state = "disabled" if member.disabled_at else "active"
            print(f"{member.name}\t{member.role}\t{state}")


# -- legal holds ----------------------------------------------------------------------------

#: Who the history names for a step taken on the command line.
OPERATOR = "operator"


def _date(value: str, option: str) -> datetime:
    """A YYYY-MM-DD option as the start of that day, UTC."""
    try:
        day = datetime.strptime(value, "%Y-%m-%d")
    except ValueError:
        raise Failed(f"{option} must be a date YYYY-MM-DD, not {value!r}") from None
    return day.replace(tzinfo=UTC)


def _people(
    rt: Runtime, session: Session, subjects: list[str] | None, emails: list[str] | None
) -> list[str]:
    """The subject ids given, then those of the registered addresses given."""
    people = list(subjects or [])
    for address in emails or []:
        found = rt.accounts(session).subject_of(address)
        if found is None:
            raise Failed("no account has that email address")
        people.append(found)
    return people


@hold_app.command("place")
def hold_place(
    kind: Annotated[str, typer.Option(help="law, proceedings or legal_rights.")],
    reason: Annotated[str, typer.Option(help="Why (a case reference, the law); may be shown.")],
    email: Annotated[
        list[str] | None, typer.Option(help="A person, by their registered address; repeatable.")
    ] = None,
    subject: Annotated[
        list[str] | None, typer.Option(help="A person, by subject id; repeatable.")
    ] = None,
    category: Annotated[
        str | None, typer.Option(help="Only this category (alone: for everyone).")
    ] = None,
    until: Annotated[
        str | None, typer.Option(metavar="YYYY-MM-DD", help="When it ends (00:00 UTC).")
    ] = None,
    review: Annotated[
        str | None, typer.Option(metavar="YYYY-MM-DD", help="When to look at it again.")
    ] = None,
    confidential: Annotated[
        bool, typer.Option(help="Do not tell the people it covers (a gag order).")
    ] = False,
) -> None:
    """Place a hold on some people's data (all of it, or one category), or on a category
    for everyone. Erasure waits for what it covers."""
    rt = runtime()
    with rt.transaction() as session:
        people = _people(rt, session, subject, email)
        hold = rt.holds(session).place(
            subject_ids=people,
            category=category,
            kind=kind,
            reason=reason,
            placed_by=OPERATOR,
            ends_at=_date(until, "--until") if until else None,
            review_at=_date(review, "--review") if review else None,
            confidential=confidential,
        )
    out.print(
        f"hold {hold.id} placed on {hold.subjects} person(s), category {hold.category or 'all'}"
    )


@hold_app.command("release")
def hold_release(hold_id: Annotated[str, typer.Argument(help="The hold's id.")]) -> None:
    """End a hold now; erasures it held back go on at the next sweep."""
    rt = runtime()
    with rt.transaction() as session:
        rt.holds(session).release(hold_id, by=OPERATOR)
    out.print(f"hold {hold_id} released")


@hold_app.command("list")
def hold_list(
    show_all: Annotated[bool, typer.Option("--all", help="Released and ended ones too.")] = False,
) -> None:
    """The holds: id, category, kind, people, until, reason."""
    rt = runtime()
    with rt.factory() as session:
        for h in rt.holds(session).all(active_only=not show_all):
            ends = f"{h.ends_at:%Y-%m-%d}" if h.ends_at else "-"
            state = "released" if h.released_at else "active"
            cells = [h.id, h.category or "all", h.kind, str(h.subjects), ends, state, h.reason]
            print("\t".join(cells))


# -- the disclosure register ---------------------------------------------------------------

disclose_app = typer.Typer(
    help="The disclosure register: data given to a recipient of the policy (P4.2-P4.6).",
    no_args_is_help=True,
)
app.add_typer(disclose_app, name="disclose")
BASES = ", ".join(b.value for b in DisclosureBasis)


@disclose_app.command("record")
def disclose_record(
    recipient: Annotated[
        str, typer.Option(help="A recipient of the policy file, e.g. courts_and_authorities.")
    ],
    category: Annotated[list[str], typer.Option(help="A category disclosed; repeatable.")],
    purpose: Annotated[str, typer.Option(help="A purpose of the policy, e.g. legal.")],
    basis: Annotated[str, typer.Option(help=f"The legal basis: {BASES}.")],
    requester: Annotated[
        str, typer.Option(help="Who asked (an authority, a case); kept sealed, shown to staff.")
    ],
    staff: Annotated[str, typer.Option(help="The approving staff member, by name.")],
    subject: Annotated[
        list[str] | None, typer.Option(help="A person, by subject id; repeatable.")
    ] = None,
    email: Annotated[
        list[str] | None, typer.Option(help="A person, by their registered address; repeatable.")
    ] = None,
    confidential: Annotated[
        bool, typer.Option(help="A legal gag: not in the people's access exports.")
    ] = False,
) -> None:
    """Record a disclosure approved by a staff member whose role allows its purpose and
    the legal purpose; refused (and logged) when the policy does not allow it."""
    rt = runtime()
    with rt.transaction() as session:
        approver = rt.staff(session).on_server(staff)
        people = _people(rt, session, subject, email)
        entry = rt.disclosures(session).disclose(
            recipient,
            people,
            category,
            purpose,
            basis,
            requester,
            approver,
            confidential=confidential,
        )
    out.print(
        f"disclosure {entry.id} recorded: {entry.subjects} person(s), "
        f"{', '.join(entry.categories)} to {entry.recipient_id}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


@disclose_app.command("list")
def disclose_list(
    recipient: Annotated[str | None, typer.Option(help="Only those to this recipient.")] = None,
    subject: Annotated[
        str | None, typer.Option(help="Only those covering this person (subject id).")
    ] = None,
) -> None:
    """The register, oldest first: when, to whom, why, on what basis, which categories, how
    many people, who approved and who asked; gagged ones marked CONFIDENTIAL. Then the
    statistics releases (P3.10), which name no one (so none with --subject)."""
    rt = runtime()
    with rt.factory() as session:
        entries = rt.disclosures(session).register(recipient=recipient, subject=subject)
        releases = [] if subject else rt.statistics(session).releases(recipient)
    if not entries and not releases:
        out.print("no disclosures", markup=False)
        return
    if entries:
        _print_wide(_disclosures(entries))
    if releases:
        _print_wide(_releases(releases))


def _disclosures(entries: list[Entry]) -> Table:
    table = Table(
        "id",
        "when (UTC)",
        "recipient",
        "kind",
        "country",
        "purpose",
        "basis",
        "categories",
        "people",
        "approved by",
        "requester",
        "",
    )
    table.columns[0].no_wrap = True
    for e in entries:
        cells = [e.id, _when(e.created_at), e.recipient_id, e.recipient_kind, e.recipient_country]
        cells += [e.purpose, e.legal_basis, ", ".join(e.categories), str(e.subjects)]
        cells += [e.approved_by, e.requester, "CONFIDENTIAL" if e.confidential else ""]
        table.add_row(*(Text(cell) for cell in cells))
    return table


def _releases(releases: list[ReleaseEntry]) -> Table:
    table = Table(
        "id",
        "when (UTC)",
        "recipient",
        "statistics release",
        "epsilon",
        "delta",
        "format",
        "sha-256 of the output",
        "approved by",
        title="statistics releases",
    )
    table.columns[0].no_wrap = True
    for r in releases:
        cells = [r.id, _when(r.created_at), r.recipient_id, f"{r.release} v{r.version}"]
        cells += [f"{r.epsilon:g}", f"{r.delta:g}", r.output_format, r.output_sha256]
        cells += [r.approved_by]
        table.add_row(*(Text(cell) for cell in cells))
    return table


def _print_wide(table: Table) -> None:
    """A table at its full width even in a narrow terminal or a pipe: one line a row,
    nothing cut (ids and hashes are copied from it)."""
    width = out.measure(table, options=out.options.update_width(10_000)).maximum
    Console(width=max(width, out.width)).print(table)


# -- statistics for third parties -------------------------------------------------------------

stats_app = typer.Typer(
    help="Statistics for recipients of kind statistics, identifying no one (P3.10).",
    no_args_is_help=True,
)
app.add_typer(stats_app, name="stats")


@stats_app.command("release")
def stats_release(
    name: Annotated[str, typer.Argument(help=f"The release: {', '.join(RELEASES)}.")],
    recipient: Annotated[str, typer.Option(help="A recipient of kind statistics.")],
    staff: Annotated[
        str | None, typer.Option(help="The approving staff member, by name (else the operator).")
    ] = None,
    output_format: Annotated[str, typer.Option("--format", help="csv or json.")] = "csv",
    output: Annotated[Path | None, typer.Option("--out", help="Write to this file.")] = None,
) -> None:
    """Run a release: aggregates with small cells suppressed (and noise, where the policy
    asks for it), recorded in the disclosure register with the hash of the output."""
    rt = runtime()
    with rt.transaction() as session:
        approver = rt.staff(session).on_server(staff) if staff is not None else None
        published = rt.statistics(session).release(
            name, recipient, approver=approver, output_format=output_format
        )
    _write_out(published.text, output, f"release {published.release} v{published.version}")
    summary = f"{published.cells} cells, {published.suppressed} suppressed"
    err.print(f"release {published.id} recorded: {summary}, sha256 {published.sha256}")


@stats_app.command("budget")
def stats_budget(
    recipient: Annotated[str, typer.Argument(help="A recipient of kind statistics.")],
) -> None:
    """The recipient's privacy budget per period: what is spent and what is left now."""
    rt = runtime()
    with rt.factory() as session:
        budget = rt.statistics(session).budget(recipient)
    out.print(
        f"{budget.recipient}: epsilon {budget.remaining_epsilon:g} of {budget.epsilon:g} left "
        f"({budget.spent_epsilon:g} spent), delta {budget.remaining_delta:g} of "
        f"{budget.delta:g} left ({budget.spent_delta:g} spent), per {budget.period}",
        markup=False,
        highlight=False,
    )


# -- data-subject requests ------------------------------------------------------------------


def _when(value: datetime | None) -> str:
    return f"{value.astimezone(UTC):%Y-%m-%d %H:%M}" if value is not None else "-"


@dsr_app.command("list")
def dsr_list(
    show_all: Annotated[
        bool, typer.Option("--all", help="Include completed, refused and withdrawn requests.")
    ] = False,
    due_before: Annotated[
        str | None,
        typer.Option(
            "--due-before", metavar="YYYY-MM-DD", help="Only requests due before that day (UTC)."
        ),
    ] = None,
) -> None:
    """The open requests by deadline, overdue ones first (in red); never what a person wrote."""
    before = _date(due_before, "--due-before") if due_before is not None else None
    rt = runtime()
    now = rt.clock.now()
    with rt.factory() as session:
        views = rt.rights(session).queue(states=list(State) if show_all else (), due_before=before)
    views.sort(key=lambda v: not v.overdue(now))  # stable: by deadline within each group
    if not views:
        found = "no requests" if show_all else "no open requests"
        out.print(found + (f" due before {due_before}" if due_before else ""), markup=False)
        return
    table = Table("id", "kind", "channel", "state", "received (UTC)", "due (UTC)", "")
    table.columns[0].no_wrap = True
    for view in views:
        late = view.overdue(now)
        cells = [view.id, view.kind, view.channel, view.state]
        cells += [_when(view.received_at), _when(view.deadline), "OVERDUE" if late else ""]
        table.add_row(*(Text(cell) for cell in cells), style="red" if late else None)
    _print_wide(table)  # one line a request, nothing cut, even in a pipe


@dsr_app.command("show")
def dsr_show(request_id: Annotated[str, typer.Argument(help="The request's id.")]) -> None:
    """A request's dates, state and outcome, then its history: who took which step, when."""
    rt = runtime()
    with rt.factory() as session:
        rights = rt.rights(session)
        view = rights.get(request_id)
        history = rights.history(request_id)
    fields = [
        ("id", view.id),
        ("kind", view.kind),
        ("channel", view.channel),
        ("state", view.state + (" (OVERDUE)" if view.overdue(rt.clock.now()) else "")),
        ("received", _when(view.received_at)),
        ("verified", _when(view.verified_at)),
        ("due", _when(view.due_at)),
        ("extended to", _when(view.extended_to)),
        ("extension reason", view.extension_reason or "-"),
        ("closed", _when(view.closed_at)),
        ("outcome", view.outcome or "-"),
    ]
    for name, value in fields:
        out.print(f"{name + ':':18}{value}", markup=False, highlight=False, soft_wrap=True)
    table = Table("at (UTC)", "actor", "state", "note", title="history", title_justify="left")
    for entry in history:
        table.add_row(*(Text(c) for c in (_when(entry.at), entry.actor, entry.state, entry.note)))
    out.print(table)


def _done(view: RequestView, what: str) -> None:
    out.print(f"request {view.id} {what}", markup=False, highlight=False, soft_wrap=True)


@dsr_app.command("verify")
def dsr_verify(
    request_id: Annotated[str, typer.Argument(help="The request's id.")],
    note: Annotated[
        str | None, typer.Option(help="Required: how the person's identity was confirmed.")
    ] = None,
) -> None:
    """Record that the person's identity is confirmed; the due date runs from now."""
    rt = runtime()
    with rt.transaction() as session:
        view = rt.rights(session).verify(request_id, actor=OPERATOR, note=note or "")
    _done(view, f"verified; due {_when(view.due_at)} UTC")


@dsr_app.command("extend")
def dsr_extend(
    request_id: Annotated[str, typer.Argument(help="The request's id.")],
    reason: Annotated[
        str | None, typer.Option(help="Required: why it needs longer; the person is told.")
    ] = None,
    to: Annotated[
        str | None,
        typer.Option(
            metavar="YYYY-MM-DD",
            help="The new deadline (00:00 UTC that day); by default as far as the policy allows.",
        ),
    ] = None,
) -> None:
    """Extend a complex request's deadline (Art. 12(3)); the person is mailed the reason."""
    target = _date(to, "--to") if to is not None else None
    rt = runtime()
    with rt.transaction() as session:
        view = rt.rights(session).extend(request_id, reason=reason or "", actor=OPERATOR, to=target)
    _done(view, f"extended to {_when(view.extended_to)} UTC")


@dsr_app.command("complete")
def dsr_complete(
    request_id: Annotated[str, typer.Argument(help="The request's id.")],
    outcome: Annotated[
        str | None, typer.Option(help="Required: what was done; the person is told.")
    ] = None,
) -> None:
    """Record that the request was answered and close it; the person is mailed the outcome."""
    rt = runtime()
    with rt.transaction() as session:
        view = rt.rights(session).complete(request_id, actor=OPERATOR, outcome=outcome or "")
    _done(view, "completed")


GROUNDS = ", ".join(g.value for g in Refusal)


@dsr_app.command("refuse")
def dsr_refuse(
    request_id: Annotated[str, typer.Argument(help="The request's id.")],
    grounds: Annotated[str | None, typer.Option(help=f"Required: one of {GROUNDS}.")] = None,
    reason: Annotated[
        str | None, typer.Option(help="Required: why; the person is told, with where to complain.")
    ] = None,
) -> None:
    """Refuse a request (Art. 12(2), 12(5)); the person is mailed the grounds and the reason."""
    try:
        refusal = Refusal(grounds or "")
    except ValueError:
        raise Failed(f"--grounds must be one of {GROUNDS}") from None
    rt = runtime()
    with rt.transaction() as session:
        view = rt.rights(session).refuse(
            request_id, grounds=refusal, reason=reason or "", actor=OPERATOR
        )
    _done(view, f"refused: {refusal.value}")


# -- mail: the outbox ---------------------------------------------------------------------


@mail_app.command("outbox")
def mail_outbox(
    state: Annotated[
        str | None, typer.Option(help=f"Only mails in this state: {', '.join(MAIL_STATES)}.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many.")] = 50,
) -> None:
    """The outbox, newest first: id, template, state, attempts, when created and sent, the
    last error. Never an address or what a mail says: those are sealed."""
    if state is not None and state not in MAIL_STATES:
        raise Failed(f"--state must be one of {', '.join(MAIL_STATES)}")
    rt = runtime()
    with rt.factory() as session:
        entries = rt.outbox.recent(session, state=state, limit=limit)
    if not entries:
        out.print("no mail" + (f" {state}" if state else " in the outbox"), markup=False)
        return
    table = Table(
        "id", "template", "state", "attempts", "created (UTC)", "sent (UTC)", "last error"
    )
    table.columns[0].no_wrap = True
    for entry in entries:
        cells = [entry.id, entry.template, entry.state, str(entry.attempts)]
        cells += [_when(entry.created_at), _when(entry.sent_at), entry.last_error or ""]
        table.add_row(*(Text(cell) for cell in cells))
    _print_wide(table)


#: The headers `mail show` prints before the plain text, in this order.
SHOWN_HEADERS = (
    "Message-ID",
    "Date",
    "From",
    "To",
    "Subject",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
)


@mail_app.command("show")
def mail_show(
    mail_id: Annotated[str, typer.Argument(help="The mail's id, as `mail outbox` lists it.")],
) -> None:
    """Print the copy of a sent mail kept in the maildir (its headers and plain text); there
    is none when mail goes to an SMTP relay, or once its person is erased."""
    rt = runtime()
    transport = rt.transport()
    if not isinstance(transport, MaildirTransport):
        raise Failed(f"mail goes to the relay {rt.settings.smtp_host}; no copy is kept here")
    raw = transport.copy_of(mail_id)
    if raw is None:
        raise Failed(f"no copy of mail {mail_id!r} in the maildir")
    with rt.transaction() as session:
        row = session.get(OutboxMessage, mail_id)
        rt.audit.record(
            session,
            "cli",
            Event.MAIL_COPY_READ,
            actor=OPERATOR,
            subject_id=row.subject_id if row else None,
            categories=["registration"],
            purpose="support",  # what became of a mail: the person's inquiry, usually
            detail={"mail": mail_id},
        )
    message = message_from_bytes(raw, _class=EmailMessage, policy=default_policy)
    for name in SHOWN_HEADERS:
        if name in message:
            print(f"{name}: {message[name]}")
    body = message.get_body(("plain",))
    text = body.get_content() if isinstance(body, EmailMessage) else "(no plain text part)\n"
    print()
    print(text, end="" if text.endswith("\n") else "\n")


# -- mail: the intake of the privacy address ----------------------------------------------


@mail_app.command("ingest")
def mail_ingest() -> None:
    """Take one RFC 5322 message on stdin, as an MTA's pipe delivers it to the privacy
    address. Prints what came of it. The MTA's own Authentication-Results header (its
    authserv-id in PRIVAULT_TRUSTED_AUTHSERV_IDS) is believed. Exit 75 (try again) when
    the database cannot take it, 1 for a message over the size limit."""
    rt = runtime()
    limit = rt.settings.intake_max_bytes
    raw = sys.stdin.buffer.read(limit + 1)
    if len(raw) > limit:
        raise Failed(f"the message is over the intake's limit of {limit} bytes")
    try:
        with rt.transaction() as session:
            received = rt.mail_intake(session).receive(raw, trust_auth_results=True)
    except SQLAlchemyError as exc:
        print(
            f"privault: the database cannot take mail now ({type(exc).__name__})", file=sys.stderr
        )
        raise typer.Exit(75) from None
    filed = f", {len(received.requests)} request(s) filed" if received.requests else ""
    out.print(f"{received.outcome}{filed}")


@mail_app.command("serve")
def mail_serve(
    host: Annotated[
        str | None, typer.Option(help="Address to bind (PRIVAULT_INTAKE_HOST).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port to bind (PRIVAULT_INTAKE_PORT, else 2525).")
    ] = None,
) -> None:
    """Run the SMTP intake of the privacy address in the foreground until Ctrl-C."""
    from privault.mail.server import IntakeServer

    rt = runtime()
    configure(rt.settings.log_json)
    bind = host or rt.settings.intake_host
    server = IntakeServer(rt, bind, port or rt.settings.intake_port or 2525)
    server.start()
    out.print(f"intake for {rt.policy.meta.privacy_address} on {bind}:{server.controller.port}")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


# -- marketing ------------------------------------------------------------------------------

marketing_app = typer.Typer(
    help="Marketing sends: only with a live consent, within the monthly cap (P0.2, P3.8).",
    no_args_is_help=True,
)
app.add_typer(marketing_app, name="marketing")
LETTER_COLUMNS = ("name", "address", "unsubscribe_url")


def _letters_file(path: Path) -> tuple[io.TextIOWrapper, csv.DictWriter[str]]:
    """The print shop's CSV, appended to (a resumed send adds the rest); readable by the
    owner only, since it holds names and addresses."""
    try:
        handle = os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "a")
    except OSError as exc:
        raise Failed(f"cannot write {path}: {exc.strerror}") from None
    writer = csv.DictWriter(handle, LETTER_COLUMNS)
    if handle.tell() == 0:
        writer.writeheader()
    return handle, writer


@marketing_app.command("send")
def marketing_send(
    template: Annotated[
        str,
        typer.Argument(
            help="The mail template (marketing; newsletter for --segment newsletter), "
            "or for --channel post a name for the letter."
        ),
    ],
    channel: Annotated[str, typer.Option(help="email or post.")] = "email",
    segment: Annotated[
        str, typer.Option(help="all (marketing consent) or newsletter (subscribers, by email).")
    ] = "all",
    title: Annotated[str | None, typer.Option(help="The mail's heading.")] = None,
    body_file: Annotated[
        Path | None, typer.Option(help="A UTF-8 text file holding the mail's words.")
    ] = None,
    campaign: Annotated[
        str | None,
        typer.Option(
            help="Names the send; run again with the same name (or the same words) to finish "
            "a send cut short. By default a digest of the template and the words."
        ),
    ] = None,
    out_file: Annotated[
        Path | None,
        typer.Option("--out", help="For --channel post: the print shop's CSV (appended to)."),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=500, help="People per transaction.")] = 200,
) -> None:
    """Queue a marketing mail (or write letters' addresses) for everyone with a live consent
    for the channel who is under the monthly cap; each person gets a campaign once."""
    context: dict[str, str] = {}
    if title is not None:
        context["title"] = title
    if body_file is not None:
        try:
            context["body"] = body_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise Failed(f"cannot read {body_file}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise Failed(f"cannot read {body_file}: it is not UTF-8 text") from None
    if channel == "post" and out_file is None:
        raise Failed("--channel post writes the letters' addresses to a CSV file: give --out")
    if channel != "post" and out_file is not None:
        raise Failed("--out is for --channel post: mail goes to the outbox")
    rt = runtime()
    with rt.transaction() as session:
        service = rt.marketing(session)
        plan = service.campaign(template, channel, segment, key=campaign, context=context)
        audience = service.audience(plan)
    if plan.channel == "email":
        preview = plan.context | {"unsubscribe_url": f"{rt.settings.base_url}/unsubscribe/x"}
        try:
            rt.mailer().render("preview", plan.template, "preview@example.invalid", preview)
        except TemplateError as exc:
            raise Failed(f"the template {plan.template!r} cannot be filled: {exc}") from None
    letters = _letters_file(out_file) if plan.channel == "post" and out_file else None
    counts = audience.counts
    ids = audience.subject_ids
    try:
        with Progress(console=out, transient=True, disable=not out.is_terminal) as progress:
            task = progress.add_task(f"sending {plan.stored}", total=len(ids))
            for start in range(0, len(ids), batch_size):
                batch = ids[start : start + batch_size]
                with rt.transaction() as session:
                    service = rt.marketing(session)
                    lines: list[Letter] = []
                    if letters is None:
                        counts.add(service.send(plan, batch))
                    else:
                        lines, done = service.letters(plan, batch)
                        counts.add(done)
                # Written once the sends are on record: a crash here loses letters, but a
                # resumed send never prints one twice.
                if letters is not None:
                    letters[1].writerows(vars(line) for line in lines)
                    letters[0].flush()
                    os.fsync(letters[0].fileno())
                progress.advance(task, len(batch))
    finally:
        if letters is not None:
            letters[0].close()
    what = "letter(s) written" if letters is not None else "mail(s) queued"
    out.print(
        f"campaign {plan.stored}: {counts.queued} {what}; skipped: {counts.capped} at the "
        f"monthly cap, {counts.no_consent} without consent, {counts.already_sent} already sent, "
        f"{counts.no_address} without an address",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


def main() -> None:
    """Entry point: domain errors become one line on stderr and exit status 1; anything
    unexpected a traceback without its message."""
    hide_exception_messages()
    try:
        app()
    except (PrivaultError, Failed) as exc:
        detail = exc.detail if isinstance(exc, PrivaultError) else str(exc)
        print(f"privault: {detail}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
