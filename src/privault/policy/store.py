"""Policy versions as rows: the text of each version, when it was published and from when
it is in force. The current version is the latest whose effective date has come; one
published with a later date is stored but not current yet."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import DateTime, Integer, String, Text, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from privault.clock import Clock, aware
from privault.db import Base
from privault.policy.diff import PolicyDiff, diff, unreadable
from privault.policy.errors import PolicyError, PolicyVersionNotFound, PublishRefused
from privault.policy.loader import load_policy, parse_policy
from privault.policy.model import Policy


class PolicyVersion(Base):
    __tablename__ = "policy_versions"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    sha256: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(300))
    text: Mapped[str] = mapped_column(Text)
    loaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: From when the version is in force (and people are held to it).
    effective_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


@dataclass(frozen=True)
class Published:
    version: int
    effective_at: datetime
    #: What changed since the version before (None for the first version).
    diff: PolicyDiff | None


#: The highest version number a query may ask for (PostgreSQL's INTEGER).
_MAX_VERSION = 2**31 - 1


class PolicyStore:
    def __init__(self, session: Session, clock: Clock) -> None:
        self.session = session
        self.clock = clock

    def current(self) -> tuple[int, Policy] | None:
        """The version in force now, parsed (``PolicyError`` when it no longer parses); on
        a clock before the first version's date, the first. None when none is stored."""
        version = self.effective_version() or self.session.scalar(
            select(func.min(PolicyVersion.version))
        )
        if version is None:
            return None
        return version, self.policy_of(version)

    def effective_version(self) -> int | None:
        """The number of the version in force now: one indexed look-up, nothing parsed."""
        return self.session.scalar(
            select(func.max(PolicyVersion.version)).where(
                PolicyVersion.effective_at <= self.clock.now()
            )
        )

    def latest(self) -> PolicyVersion | None:
        """The last version stored, in force or not yet."""
        return self.session.scalar(
            select(PolicyVersion).order_by(PolicyVersion.version.desc()).limit(1)
        )

    def get(self, version: int) -> PolicyVersion:
        """Stored version ``version``; raises ``PolicyVersionNotFound``."""
        row = self.session.get(PolicyVersion, version) if 0 < version <= _MAX_VERSION else None
        if row is None:
            raise PolicyVersionNotFound(f"there is no policy version {version}")
        return row

    def policy_of(self, version: int) -> Policy:
        """Version ``version`` parsed; ``PolicyVersionNotFound``, or ``PolicyError`` when it
        no longer parses under this Privault's model."""
        return parse_policy(self.get(version).text, f"policy version {version}")

    def diff(self, old: int, new: Policy) -> PolicyDiff:
        """What changed from stored version ``old`` to ``new``; a version that no longer
        parses gives a diff that says so."""
        try:
            before = self.policy_of(old)
        except PolicyError as exc:
            return unreadable(old, exc.detail)
        return diff(before, new)

    def compare(self, old: int, new: int) -> PolicyDiff:
        """What changed from stored version ``old`` to stored version ``new``. Raises
        ``PolicyVersionNotFound``, ``PolicyError`` when ``new`` no longer parses."""
        self.get(old)
        return self.diff(old, self.policy_of(new))

    def effective_at(self, version: int) -> datetime | None:
        """When ``version`` takes or took effect (None for no such version)."""
        at = self.session.scalar(
            select(PolicyVersion.effective_at).where(PolicyVersion.version == version)
        )
        return None if at is None else aware(at)

    def versions(self) -> list[tuple[int, datetime]]:
        """Every stored version's number and when it takes or took effect, oldest first."""
        rows = self.session.execute(
            select(PolicyVersion.version, PolicyVersion.effective_at).order_by(
                PolicyVersion.version
            )
        )
        return [(row.version, aware(row.effective_at)) for row in rows]

    def load_file(self, path: Path) -> int:
        """Validate a policy file and store it as the next version, in force at once
        (unchanged text is kept once). Raises ``PolicyError`` naming the key and the reason.
        """
        load_policy(path)
        text = path.read_text(encoding="utf-8")
        latest = self.latest()
        if latest is not None and latest.sha256 == _digest(text):
            return latest.version
        return self._store(text, path.name, self.clock.now())

    def publish(self, path: Path, effective_at: datetime | None = None) -> Published:
        """Validate a policy file and store it as the next version, in force from
        ``effective_at`` (now when None; a time earlier today counts as now). The version
        before it need not parse: its diff then says it cannot be read.

        Raises ``PolicyError`` (one line: the key and the reason), ``PublishRefused`` when
        the file is the latest version unchanged or the date is in the past or before the
        latest version's."""
        policy = load_policy(path)
        text = path.read_text(encoding="utf-8")
        now = self.clock.now()
        effective_at = now if effective_at is None else aware(effective_at)
        if effective_at < now:
            if effective_at.date() != now.date():
                raise PublishRefused(f"the effective date {effective_at:%Y-%m-%d} is in the past")
            effective_at = now
        latest = self.latest()
        if latest is not None:
            if latest.sha256 == _digest(text):
                raise PublishRefused(
                    f"{path.name} is version {latest.version} unchanged: nothing to publish"
                )
            if effective_at < aware(latest.effective_at):
                raise PublishRefused(
                    f"the effective date {effective_at:%Y-%m-%d %H:%M} is before version "
                    f"{latest.version}'s ({aware(latest.effective_at):%Y-%m-%d %H:%M} UTC)"
                )
        changes = None if latest is None else self.diff(latest.version, policy)
        version = self._store(text, path.name, effective_at)
        return Published(version, effective_at, changes)

    def _store(self, text: str, source: str, effective_at: datetime) -> int:
        version = (self.session.scalar(select(func.max(PolicyVersion.version))) or 0) + 1
        now = self.clock.now()
        self.session.add(
            PolicyVersion(
                version=version,
                sha256=_digest(text),
                source=source,
                text=text,
                loaded_at=now,
                published_at=now,
                effective_at=effective_at,
            )
        )
        self.session.flush()
        return version


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
