"""The privacy budget's ledger: one row per differentially private release to a recipient.

A spend names the recipient, the release and the privacy loss the release's mechanism
reported; it holds no personal data (aggregates only), so it is outside the data map.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from privault.db import Base


class PrivacyBudgetSpend(Base):
    __tablename__ = "privacy_budget_spends"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    #: The recipient's policy id.
    recipient: Mapped[str] = mapped_column(String(60), index=True)
    #: The release's policy id and the version of it that was released.
    release: Mapped[str] = mapped_column(String(60))
    release_version: Mapped[int] = mapped_column(Integer)
    #: The privacy loss the mechanism's privacy map reported for this release.
    epsilon: Mapped[float] = mapped_column(Float)
    delta: Mapped[float] = mapped_column(Float)
    spent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
