"""The disclosure register (P4.2-P4.5): one row per disclosure, and the people it covered.

A register entry is the controller's record of what it did (Art. 5(2)): it outlives the
people it names. So ``disclosures`` holds no subject column, only a count; the link to
each person is ``disclosure_subjects``, in the data map, gone with the person. The
requester ("Tribunal judiciaire de Paris, case 24/123", or an officer by name) may name
someone, and is nobody's own data here: it is sealed under the keyring's retention key,
which outlives every person's key, with the row's id in its associated data.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Float, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from privault.db import Base
from privault.vault.datamap import outside_the_map, personal_data
from privault.vault.models import SUBJECT_ID


# Who asked (a court, an officer) may name someone: read as communications, by purpose.
@outside_the_map("communications")
class Disclosure(Base):
    __tablename__ = "disclosures"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    #: The recipient as the policy declared it when the data went out.
    recipient_id: Mapped[str] = mapped_column(String(60), index=True)
    recipient_name: Mapped[str] = mapped_column(Text)
    recipient_kind: Mapped[str] = mapped_column(String(16))
    recipient_country: Mapped[str] = mapped_column(String(2))
    #: Who asked, sealed under the retention key (``vault.seal_retained``).
    requester_ct: Mapped[bytes] = mapped_column(LargeBinary)
    legal_basis: Mapped[str] = mapped_column(String(24))
    purpose: Mapped[str] = mapped_column(String(60))
    #: The categories disclosed, comma-separated policy ids.
    categories: Mapped[str] = mapped_column(String(400))
    #: How many people it covered (their links go with them; the count stays).
    subjects: Mapped[int] = mapped_column(Integer)
    #: A legal gag: the people it covers are not told (not in their access export).
    confidential: Mapped[bool] = mapped_column(Boolean, default=False)
    #: The approving staff member as the access log names them (``staff:<name>``).
    approved_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


@personal_data("registration", exported=("disclosure_id",), in_export=False)
class DisclosureSubject(Base):
    """A person a disclosure covered. In the data map, so erasure deletes it; left out of
    the data-map part of the export, which lists disclosures on its own (without the
    gagged ones). Filed under registration: it lasts as long as the person's account."""

    __tablename__ = "disclosure_subjects"

    disclosure_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("disclosures.id", ondelete="CASCADE"), primary_key=True
    )
    subject_id: Mapped[str] = mapped_column(
        SUBJECT_ID, ForeignKey("subjects.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class StatisticsRelease(Base):
    """A release of anonymous statistics to a recipient of kind statistics (P3.10): part of
    the register, with no person in it. ``parameters`` is the JSON the output's header
    states; ``output_sha256`` the hash of exactly what was handed over."""

    __tablename__ = "statistics_releases"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    recipient_id: Mapped[str] = mapped_column(String(60), index=True)
    recipient_name: Mapped[str] = mapped_column(Text)
    release: Mapped[str] = mapped_column(String(60))
    version: Mapped[int] = mapped_column(Integer)
    parameters: Mapped[str] = mapped_column(Text)
    #: The privacy budget the release spent (0 without differential privacy).
    epsilon: Mapped[float] = mapped_column(Float)
    delta: Mapped[float] = mapped_column(Float)
    output_format: Mapped[str] = mapped_column(String(8))
    output_sha256: Mapped[str] = mapped_column(String(64))
    #: The approving staff member (``staff:<name>``), or the operator on the server.
    approved_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
