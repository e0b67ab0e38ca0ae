"""Asterisk's ``cdr_csv`` log (``/var/log/asterisk/cdr-csv/Master.csv``) read as CDRs.

cdr_csv writes one line per call, without a header, in this order (cdr/cdr_csv.c):

    accountcode, src, dst, dcontext, clid, channel, dstchannel, lastapp, lastdata,
    start, answer, end, duration, billsec, disposition, amaflags,
    [uniqueid], [userfield], [peeraccount, linkedid, sequence]

Text fields are quoted (a quote inside doubled); ``duration`` and ``billsec`` are bare
integers; a timestamp that never happened (``answer`` of an unanswered call) is empty
and unquoted. ``uniqueid`` is written with ``loguniqueid = yes``, ``userfield`` with
``loguserfield = yes`` and the last three with ``newcdrcolumns = yes`` (``[csv]`` of
cdr.conf). Privault needs the first two: a record has 18 fields, or 21 with
``newcdrcolumns``; any other count is rejected as ``unexpected_columns``.

The mapping:

- ``uniqueid`` -> call id (ingest is idempotent on it);
- ``userfield`` -> Room ID. The conference dialplan sets it once the caller typed a Room
  ID and its PIN passed: ``Set(CDR(userfield)=${ROOM_ID})``. Not ``accountcode``: cdr_csv
  also writes a file per account code (``accountlogs``), which would put Room IDs in file
  names on the PBX (P7.5), and account codes belong to billing accounts;
- ``src`` -> caller number (Caller*ID number; empty or ``anonymous`` when withheld);
- ``dst`` -> dial-in number: the number the carrier delivered (DID), kept when it reads
  as a number (international, or without its ``+``);
- ``start``, ``answer``, ``end`` -> ``YYYY-MM-DD HH:MM:SS``, the PBX's local time unless
  ``usegmtime = yes``: set that, or tell the import the PBX's zone (UTC by default);
- ``duration``, ``billsec``, ``disposition`` as written.

``clid`` (the caller's name), ``accountcode``, ``dcontext``, ``channel``, ``dstchannel``,
``lastapp``, ``lastdata``, ``amaflags``, ``peeraccount``, ``linkedid`` and ``sequence`` are
not kept: nothing here needs them, and the caller's name is personal data.
"""

from __future__ import annotations

import csv
import io

from privault.service.cdrs import CdrIn, Reason, RowResult, rejected

FIELDS = (
    "accountcode",
    "src",
    "dst",
    "dcontext",
    "clid",
    "channel",
    "dstchannel",
    "lastapp",
    "lastdata",
    "start",
    "answer",
    "end",
    "duration",
    "billsec",
    "disposition",
    "amaflags",
    "uniqueid",
    "userfield",
    "peeraccount",
    "linkedid",
    "sequence",
)
#: Field counts Privault reads: loguniqueid and loguserfield on, newcdrcolumns off or on.
WIDTHS = (18, 21)
_AT = {name: i for i, name in enumerate(FIELDS)}
SRC, DST, START, ANSWER, END = _AT["src"], _AT["dst"], _AT["start"], _AT["answer"], _AT["end"]
DURATION, BILLSEC, DISPOSITION = _AT["duration"], _AT["billsec"], _AT["disposition"]
UNIQUEID, USERFIELD = _AT["uniqueid"], _AT["userfield"]


def read_master_csv(text: str) -> list[CdrIn | RowResult]:
    """The records of a Master.csv text, each numbered by the line it ends on.

    A record of the wrong width or that the csv module cannot read is a rejected
    ``RowResult``; blank lines and a header line (starting ``accountcode``) are skipped.
    Raises nothing.
    """
    out: list[CdrIn | RowResult] = []
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), strict=True)
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return out
        except csv.Error:
            out.append(
                rejected(
                    reader.line_num,
                    None,
                    Reason.INVALID_ROW,
                    "the line is not CSV as cdr_csv writes it (quotes not closed or stray)",
                )
            )
            continue
        if not record or (len(record) == 1 and not record[0].strip()):
            continue
        if not out and record[0].strip().lower() == "accountcode":
            continue
        if len(record) not in WIDTHS:
            out.append(
                rejected(
                    reader.line_num,
                    None,
                    Reason.UNEXPECTED_COLUMNS,
                    f"a Master.csv record needs 18 fields (loguniqueid and loguserfield on) or "
                    f"21 (newcdrcolumns too); this one has {len(record)}",
                )
            )
            continue
        out.append(
            CdrIn(
                row=reader.line_num,
                call_id=record[UNIQUEID],
                room_id=record[USERFIELD],
                caller=record[SRC],
                dial_in=record[DST],
                start=record[START],
                answer=record[ANSWER],
                end=record[END],
                duration=record[DURATION],
                billsec=record[BILLSEC],
                disposition=record[DISPOSITION],
            )
        )
