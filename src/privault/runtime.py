"""Builds the collaborators from settings: engine, keyring, vault and services."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property, partial
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, inspect, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Session, sessionmaker

from privault.access.audit import AuditLog, Event
from privault.access.models import AccessLogEntry
from privault.access.purposes import Purposes
from privault.clock import Clock, SystemClock
from privault.config import Settings
from privault.consent.acceptance import PolicyAcceptances
from privault.consent.analytics import Analytics
from privault.consent.channels import ChannelConsents
from privault.consent.cookies import CookieConsents, CookieVersions
from privault.consent.geo import CountryResolver, CsvCountries, NoCountries
from privault.consent.marketing import MarketingService
from privault.consent.newsletter import Newsletter
from privault.consent.unsubscribe import UnsubscribeLinks, Unsubscriber
from privault.db import make_async_engine, make_engine, make_sessionmaker, migrate
from privault.disclosure.service import DisclosureService
from privault.errors import PrivaultError, keeps_changes
from privault.mail.auth import DNS, Resolver
from privault.mail.intake import MailIntake
from privault.notify.outbox import Mailer, Outbox
from privault.notify.policy_mailing import PolicyMailingService
from privault.notify.transport import MaildirTransport, SmtpTransport
from privault.policy.errors import PolicyError
from privault.policy.model import Policy
from privault.policy.store import PolicyStore, Published
from privault.retention.holds import HoldService
from privault.retention.partitions import Partitions
from privault.retention.sweep import RetentionSweep
from privault.rights.engine import RightsEngine
from privault.rights.erasure import Eraser
from privault.rights.holdings import Holdings
from privault.rights.service import RightsService
from privault.service.accounts import AccountService, Login
from privault.service.cdrs import CdrService
from privault.service.messages import MessageService
from privault.service.numbers import DialInService, NumberListService
from privault.service.other import OtherItemService
from privault.service.passwords import Passwords
from privault.service.pins import PinService
from privault.service.posts import PostService
from privault.service.profile import ProfileService
from privault.service.publication import PublicationService
from privault.service.purchases import PurchaseService
from privault.service.rooms import RoomService
from privault.staff.service import StaffService
from privault.statistics.service import StatisticsService
from privault.vault import Keyring, KeyringError, Vault
from privault.vault.models import SubjectKey

log = logging.getLogger("privault.runtime")


class NotInitialised(PrivaultError):
    code = "not_initialised"


#: A page view's commit does not wait for the WAL to reach the disk (see ``page_views``).
_PAGE_VIEW_SETTINGS = ("SET synchronous_commit TO off",)
#: The pools of the hot paths' own engines (page views, the event loop's writes).
_SMALL_POOL: dict[str, Any] = {"isolation_level": "AUTOCOMMIT", "pool_size": 3, "max_overflow": 5}


@dataclass
class Runtime:
    settings: Settings
    factory: sessionmaker[Session]
    keyring: Keyring
    policy_version: int
    policy: Policy
    clock: Clock

    def __post_init__(self) -> None:
        self.audit = AuditLog(self.keyring.secret("audit"), self.clock)
        self.purposes = Purposes(self.policy, self.audit)
        self.vault = Vault(self.keyring, self.purposes, self.clock)
        self.outbox = Outbox(self.vault, self.clock)
        self.passwords = Passwords(self.settings.argon2_time_cost, self.settings.argon2_memory_kib)
        self._policy_checked = self.clock.now()
        self._policy_lock = threading.Lock()

    def policy_check_due(self) -> bool:
        """Whether PRIVAULT_POLICY_CHECK_INTERVAL has passed since the last look at which
        policy version is in force (no I/O)."""
        waited = self.clock.now() - self._policy_checked
        return waited.total_seconds() >= self.settings.policy_check_interval

    def follow_policy(self) -> bool:
        """When the check is due, switch to the version in force now if it is another
        (one published for a date that has come); returns whether it switched. A version
        this Privault cannot parse is logged and the current one kept."""
        with self._policy_lock:
            if not self.policy_check_due():
                return False
            self._policy_checked = self.clock.now()
            with self.factory() as session:
                store = PolicyStore(session, self.clock)
                version = store.effective_version()
                if version is None or version == self.policy_version:
                    return False
                try:
                    policy = store.policy_of(version)
                except PolicyError as exc:
                    log.warning("policy version %d not used: %s", version, exc.detail)
                    return False
            self.use_policy(version, policy)
            log.info("policy version %d in force", version)
            return True

    def use_policy(self, version: int, policy: Policy) -> None:
        """Serve ``policy`` (stored as ``version``) from now on, and drop what was derived
        from the one before. A request under way keeps the objects it already holds."""
        self.purposes = Purposes(policy, self.audit)
        self.vault.purposes = self.purposes
        self.policy, self.policy_version = policy, version
        self.__dict__.pop("cookie_versions", None)

    @contextmanager
    def transaction(self, factory: sessionmaker[Session] | None = None) -> Iterator[Session]:
        """A transaction committed at the end; a domain error rolls it back, unless it
        says its record must stay (``keeps_changes``: a refusal and its access-log entry).
        ``factory``: another than the runtime's own (``page_views``)."""
        with (factory or self.factory)() as session:
            transaction = session.begin()
            try:
                yield session
            except BaseException as exc:
                if keeps_changes(exc):
                    transaction.commit()
                else:
                    transaction.rollback()
                raise
            transaction.commit()

    def accounts(self, session: Session, source: str = "api") -> AccountService:
        return AccountService(
            session,
            self.vault,
            self.audit,
            self.outbox,
            self.clock,
            self.passwords,
            self.acceptances(session, source),
            base_url=self.settings.base_url,
            session_lifetime=timedelta(days=self.settings.session_days),
            source=source,
        )

    def log_in(self, email: str, password: str, source: str = "api") -> Login:
        """``AccountService.login`` with the Argon2id verification between two short
        transactions rather than inside one: a transaction holds SQLite's one write lock from
        its first statement (on PostgreSQL, a pooled connection), and a verification takes a
        tenth of a second of a core, during which every other write would wait. Raises as
        ``login`` does; a refusal stays on record."""
        with self.transaction() as session:
            stored = self.accounts(session, source).password_hash_of(email)
        checked = self.passwords.check(stored, password)
        with self.transaction() as session:
            return self.accounts(session, source).login(email, password, checked)

    def acceptances(self, session: Session, source: str = "api") -> PolicyAcceptances:
        """Answers to the policy's versions, measured against this runtime's current one."""
        return PolicyAcceptances(
            session,
            self.policy_version,
            self.clock,
            self.audit,
            pbx_grace=self.policy.amendments.pbx_grace,
            source=source,
        )

    def profiles(self, session: Session) -> ProfileService:
        return ProfileService(
            session, self.vault, self.audit, self.clock, self.policy.categories["profile"].fields
        )

    @cached_property
    def partitions(self) -> Partitions:
        """The monthly partitions known to exist (PostgreSQL), remembered for this process."""
        return Partitions()

    def retention_sweep(self) -> RetentionSweep:
        return RetentionSweep(self.factory, self.policy, self.clock, self.partitions)

    @cached_property
    def cookie_versions(self) -> CookieVersions:
        """The banner text, cookie list and policy versions a cookie choice is given under."""
        return CookieVersions.of(self.policy, self.policy_version)

    def cookie_consents(self, session: Session) -> CookieConsents:
        return CookieConsents(session, self.policy, self.cookie_versions, self.clock)

    @cached_property
    def countries(self) -> CountryResolver:
        """The country of an address, from PRIVAULT_GEOIP_CSV (read once); else unknown."""
        path = self.settings.geoip_csv
        return NoCountries() if path is None else CsvCountries(path)

    def analytics(self, session: Session) -> Analytics:
        return Analytics(
            session, self.cookie_consents(session), self.countries, self.clock, self.partitions
        )

    def channel_consents(self, session: Session, source: str = "api") -> ChannelConsents:
        return ChannelConsents(
            session, self.policy, self.policy_version, self.clock, self.audit, source=source
        )

    def newsletter(self, session: Session, source: str = "api") -> Newsletter:
        return Newsletter(
            session,
            self.vault,
            self.outbox,
            self.clock,
            self.channel_consents(session, source),
            self.accounts(session, source),
            base_url=self.settings.base_url,
        )

    def unsubscribe_links(self) -> UnsubscribeLinks:
        return UnsubscribeLinks(self.keyring.secret("unsubscribe"), self.settings.base_url)

    def unsubscriber(self, session: Session) -> Unsubscriber:
        return Unsubscriber(self.unsubscribe_links(), self.channel_consents(session, "web"))

    def marketing(self, session: Session) -> MarketingService:
        return MarketingService(
            session,
            self.vault,
            self.policy,
            self.clock,
            self.outbox,
            self.channel_consents(session, "cli"),
            self.unsubscribe_links(),
            self.audit,
        )

    def policy_mailing(self, source: str = "cli") -> PolicyMailingService:
        """The mailing that tells every active account about a policy version (P8.2)."""
        return PolicyMailingService(
            self.factory,
            self.outbox,
            lambda session, subject_id: self.accounts(session, source).address_of(
                subject_id, purpose="notices"
            ),
            self.audit,
            self.clock,
            self.settings.base_url,
            source=source,
        )

    def rooms(self, session: Session) -> RoomService:
        return RoomService(session, self.vault, self.audit, self.clock)

    def pins(self, session: Session, source: str = "api") -> PinService:
        return PinService(
            session,
            self.vault,
            self.audit,
            self.clock,
            self.keyring.secret("pin_pepper"),
            self.acceptances(session, source),
            source=source,
        )

    def number_lists(self, session: Session) -> NumberListService:
        return NumberListService(session, self.vault, self.audit, self.clock)

    def cdrs(self, session: Session, source: str = "api") -> CdrService:
        return CdrService(
            session, self.vault, self.audit, self.clock, self.partitions, source=source
        )

    def dial_ins(self, session: Session) -> DialInService:
        return DialInService(session, self.audit, self.clock)

    def purchases(self, session: Session) -> PurchaseService:
        return PurchaseService(session, self.vault, self.audit, self.clock)

    def posts(self, session: Session) -> PostService:
        return PostService(session, self.vault, self.audit, self.clock)

    def publication(self, session: Session) -> PublicationService:
        return PublicationService(session, self.vault, self.profiles(session))

    def messages(self, session: Session) -> MessageService:
        return MessageService(session, self.vault, self.audit, self.clock)

    def other_items(self, session: Session) -> OtherItemService:
        return OtherItemService(session, self.vault, self.clock)

    def rights(self, session: Session) -> RightsService:
        # To tell the person about their request: a legal obligation.
        address_of = partial(self.accounts(session).address_of, purpose="legal")
        return RightsService(session, self.vault, self.policy, self.clock, self.outbox, address_of)

    def holdings(self, session: Session) -> Holdings:
        return Holdings(session, self.vault, self.policy, self.clock)

    def mail_intake(self, session: Session, resolver: Resolver = DNS) -> MailIntake:
        """The intake of the privacy address; ``resolver`` answers DKIM key look-ups."""
        return MailIntake(
            session,
            self.vault,
            self.policy,
            self.clock,
            self.outbox,
            self.rights(session),
            self.accounts(session, source="mail"),
            self.rooms(session),
            self.messages(session),
            self.other_items(session),
            base_url=self.settings.base_url,
            trusted_authserv_ids=self.settings.trusted_authserv_ids,
            resolver=resolver,
        )

    def holds(self, session: Session) -> HoldService:
        return HoldService(session, self.policy, self.clock, self.audit)

    def staff(self, session: Session) -> StaffService:
        return StaffService(
            session,
            self.policy,
            self.keyring.secret("staff"),
            self.passwords,
            self.audit,
            self.clock,
        )

    def disclosures(self, session: Session, source: str = "cli") -> DisclosureService:
        return DisclosureService(
            session,
            self.policy,
            self.clock,
            self.audit,
            self.vault,
            self.staff(session),
            self.channel_consents(session, source),
            source=source,
        )

    def statistics(self, session: Session, source: str = "cli") -> StatisticsService:
        return StatisticsService(
            session,
            self.policy,
            self.clock,
            self.vault,
            self.audit,
            self.staff(session),
            source=source,
        )

    def rights_engine(self) -> RightsEngine:
        eraser = Eraser(
            self.factory,
            self.vault,
            self.policy,
            self.clock,
            self.outbox,
            self.transport(),
            self.rights,
        )
        return RightsEngine(
            self.factory,
            self.vault,
            self.policy,
            self.clock,
            self.outbox,
            eraser,
            self.rights,
            self.settings.base_url,
            lambda session, subject_id: self.channel_consents(session, "objection").stop_marketing(
                subject_id
            ),
        )

    @cached_property
    def autocommit(self) -> sessionmaker[Session]:
        """Sessions in which each statement commits on its own: for a hot request that
        reads, or writes one row as its last step (a cookie choice), so that it takes one
        round trip a statement instead of BEGIN and COMMIT around them as well. Commits
        still wait for the disk. On PostgreSQL when this runtime opened the database
        itself (the same pool as its own sessions); otherwise its own sessions."""
        bind = self._own_postgresql()
        if bind is None:
            return self.factory
        return make_sessionmaker(bind.execution_options(isolation_level="AUTOCOMMIT"))

    @cached_property
    def page_views(self) -> sessionmaker[Session]:
        """Sessions for recording page views. On PostgreSQL, when this runtime opened the
        database itself: a small pool of its own, in autocommit, whose commits do not wait
        for the WAL to reach the disk. A page view is worth less than that wait: a crash of
        the database server may lose the last few (never half of one), while consents and
        everything else stay synchronous. Each statement commits alone (a view of a known
        visit is one statement). Otherwise (SQLite, or a factory given by the caller, as
        tests do): the runtime's own sessions."""
        if self._own_postgresql() is None:
            return self.factory
        return make_sessionmaker(
            make_engine(self.settings.db_url, on_connect=_PAGE_VIEW_SETTINGS, **_SMALL_POOL)
        )

    def on_loop(self, *, page_views: bool = False) -> AsyncEngine | None:
        """A new engine for the event loop that calls this (the caller disposes of it in
        that loop), in autocommit: for the hot writes of visitors that take one statement
        (a first cookie choice, a page view of a visit already made), so that they need no
        worker thread. With ``page_views`` its commits do not wait for the WAL, as
        ``page_views``; without, they do. None where the runtime did not open a PostgreSQL
        database itself (SQLite, or a factory given)."""
        if self._own_postgresql() is None:
            return None
        settings = _PAGE_VIEW_SETTINGS if page_views else ()
        return make_async_engine(self.settings.db_url, on_connect=settings, **_SMALL_POOL)

    def _own_postgresql(self) -> Engine | None:
        """The engine of the runtime's sessions when it opened a PostgreSQL database itself
        (not SQLite, not a factory bound to a caller's connection)."""
        bind = self.factory.kw.get("bind")
        if isinstance(bind, Engine) and bind.dialect.name == "postgresql":
            return bind
        return None

    def close(self) -> None:
        """Release the database connections this runtime opened."""
        factories = [self.factory]
        if "page_views" in self.__dict__:
            factories.append(self.page_views)
        for factory in factories:
            bind = factory.kw.get("bind")
            if isinstance(bind, Engine):
                bind.dispose()

    def transport(self) -> MaildirTransport | SmtpTransport:
        """The relay at PRIVAULT_SMTP_HOST when set, else the maildir in the data folder."""
        settings = self.settings
        if not settings.smtp_host:
            return MaildirTransport(settings.maildir)
        password = settings.smtp_password
        return SmtpTransport(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_security,
            settings.smtp_username,
            password.get_secret_value() if password is not None else None,
            settings.smtp_timeout,
        )

    def mailer(self) -> Mailer:
        return Mailer(
            self.factory,
            self.vault,
            self.transport(),
            self.settings.mail_from,
            self.clock,
            lease=timedelta(seconds=self.settings.outbox_lease),
        )


def prepare(settings: Settings, engine: Engine | None = None) -> Engine:
    """Create the data folder, keyring and schema if missing; migrate an existing one.
    An engine made here is disposed of when that fails (no connection left open)."""
    if engine is not None:
        return _prepare(settings, engine)
    made = make_engine(settings.db_url)
    try:
        return _prepare(settings, made)
    except BaseException:
        made.dispose()
        raise


def _prepare(settings: Settings, engine: Engine) -> Engine:
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    MaildirTransport(settings.maildir)
    headless = not inspect(engine).has_table("access_log_head")
    migrate(engine)
    if not settings.keyring_path.exists():
        with engine.connect() as conn:
            # Wrapped data keys or an access log chained with the old keyring's key:
            # a new keyring would make them unreadable, so it must be restored instead.
            if any(
                conn.scalar(select(func.count()).select_from(table))
                for table in (SubjectKey, AccessLogEntry)
            ):
                raise KeyringError(
                    f"the database holds data sealed with a keyring, but {settings.keyring_path} "
                    "is missing; restore it from its backup"
                )
        Keyring.create(settings.keyring_path)
    factory = make_sessionmaker(engine)
    with factory() as session, session.begin():
        if headless:
            # The log was written before it had a head (migration 0017): its end is
            # trusted once, now; from here on a log cut short no longer matches its head.
            _audit_log(settings).anchor(session)
        store = PolicyStore(session, SystemClock())
        if store.latest() is None:
            version = store.load_file(settings.policy_file)
            _audit_log(settings).record(
                session, "cli", Event.POLICY_LOADED, actor="system", detail={"version": version}
            )
    return engine


def _audit_log(settings: Settings) -> AuditLog:
    return AuditLog(Keyring.load(settings.keyring_path).secret("audit"))


def open_database(settings: Settings) -> sessionmaker[Session]:
    """Sessions of an initialised database, whatever its policy versions hold."""
    engine = make_engine(settings.db_url)
    if not inspect(engine).has_table("policy_versions"):
        engine.dispose()
        where = settings.db_url.split("@")[-1]
        raise NotInitialised(f"no database at {where}; run `privault init`")
    return make_sessionmaker(engine)


def publish_policy(
    settings: Settings, path: Path, effective_at: datetime | None = None
) -> Published:
    """Migrate the data folder if needed, then store the policy file at ``path`` as the next
    version, in force from ``effective_at`` (``PolicyStore.publish``), on record in the
    access log. Needs no version stored before to parse: older data folders whose policy
    today's model refuses publish their way out of it."""
    prepare(settings).dispose()
    factory = open_database(settings)
    try:
        with factory() as session, session.begin():
            published = PolicyStore(session, SystemClock()).publish(path, effective_at)
            _audit_log(settings).record(
                session,
                "cli",
                Event.POLICY_PUBLISHED,
                actor="operator",
                detail={
                    "version": published.version,
                    "effective_at": published.effective_at.isoformat(),
                },
            )
    finally:
        bind = factory.kw.get("bind")
        if isinstance(bind, Engine):
            bind.dispose()
    return published


def open_runtime(
    settings: Settings,
    *,
    factory: sessionmaker[Session] | None = None,
    clock: Clock | None = None,
    version: int | None = None,
) -> Runtime:
    """Open an initialised data folder on the policy version in force at ``clock``'s now
    (or on stored ``version``); refuses an exposed keyring or a missing schema.
    ``PolicyError`` when the version no longer parses."""
    clock = clock or SystemClock()
    own = factory is None
    factory = factory or open_database(settings)
    try:
        keyring = Keyring.load(settings.keyring_path)
        with factory() as session:
            store = PolicyStore(session, clock)
            current = store.current() if version is None else (version, store.policy_of(version))
        if current is None:
            raise NotInitialised("the database holds no policy; run `privault init`")
    except BaseException:
        bind = factory.kw.get("bind")
        if own and isinstance(bind, Engine):
            bind.dispose()
        raise
    return Runtime(settings, factory, keyring, current[0], current[1], clock)
