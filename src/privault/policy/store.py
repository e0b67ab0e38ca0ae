"""Policy versions as rows: the text of each version loaded, and which one is current."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import DateTime, Integer, String, Text, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from privault.clock import Clock, aware
from privault.db import Base
from privault.policy.errors import UnknownPolicyVersion
from privault.policy.loader import load_policy, parse_policy
from privault.policy.model import Policy


class PolicyVersion(Base):
    __tablename__ = "policy_versions"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    sha256: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(300))
    text: Mapped[str] = mapped_column(Text)
    loaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


#: The highest version number a query may ask for (PostgreSQL's INTEGER).
_MAX_VERSION = 2**31 - 1


@dataclass(frozen=True)
class StoredPolicy:
    version: int
    policy: Policy
    loaded_at: datetime


class PolicyStore:
    def __init__(self, session: Session, clock: Clock) -> None:
        self.session = session
        self.clock = clock

    def current(self) -> tuple[int, Policy] | None:
        row = self.session.scalar(
            select(PolicyVersion).order_by(PolicyVersion.version.desc()).limit(1)
        )
        if row is None:
            return None
        return row.version, parse_policy(row.text, f"policy version {row.version}")

    def version(self, number: int) -> StoredPolicy:
        """Stored version ``number``, parsed; raises ``UnknownPolicyVersion``."""
        row = self.session.get(PolicyVersion, number) if 0 < number <= _MAX_VERSION else None
        if row is None:
            raise UnknownPolicyVersion(f"no policy version {number} is stored")
        policy = parse_policy(row.text, f"policy version {row.version}")
        return StoredPolicy(row.version, policy, aware(row.loaded_at))

    def versions(self) -> list[tuple[int, datetime]]:
        """Every stored version's number and when it was stored, oldest first."""
        rows = self.session.execute(
            select(PolicyVersion.version, PolicyVersion.loaded_at).order_by(PolicyVersion.version)
        )
        return [(row.version, aware(row.loaded_at)) for row in rows]

    def load_file(self, path: Path) -> int:
        """Validate a policy file and store it as the next version (unchanged text is kept once).

        Raises ``PolicyError`` naming the key and the reason.
        """
        load_policy(path)
        text = path.read_text(encoding="utf-8")
        digest = hashlib.sha256(text.encode()).hexdigest()
        latest = self.session.scalar(
            select(PolicyVersion).order_by(PolicyVersion.version.desc()).limit(1)
        )
        if latest is not None and latest.sha256 == digest:
            return latest.version
        version = (self.session.scalar(select(func.max(PolicyVersion.version))) or 0) + 1
        self.session.add(
            PolicyVersion(
                version=version,
                sha256=digest,
                source=path.name,
                text=text,
                loaded_at=self.clock.now(),
            )
        )
        self.session.flush()
        return version
