"""The country of an address, looked up in a file kept on disk: never a network call.

Only the country is ever derived (P2.1): the files read here hold nothing finer, and
the caller keeps nothing but the country code and the truncated address.
"""

from __future__ import annotations

import csv
import gzip
import ipaddress
import threading
from array import array
from bisect import bisect_right
from pathlib import Path
from typing import Protocol

#: Codes the free files use for "no country" (DB-IP: ZZ, IP2Location: -).
_UNKNOWN = frozenset({"", "-", "ZZ"})
_IPV4_MAPPED = ipaddress.ip_network("::ffff:0:0/96")


class GeoIpFileInvalid(ValueError):
    """The configured IP-ranges file cannot be read as one; the message names the line."""


class CountryResolver(Protocol):
    def country_of(self, ip: str | None) -> str | None:
        """The ISO 3166-1 alpha-2 code of the country ``ip`` is in, or None when unknown."""
        ...


class NoCountries:
    """No IP-ranges file configured: every country is unknown."""

    def country_of(self, ip: str | None) -> str | None:
        return None


class _Ranges:
    """Non-overlapping ranges of one address family, sorted by their start."""

    def __init__(self, rows: list[tuple[int, int, str]], typecode: str | None) -> None:
        rows.sort()
        self.codes = tuple(sorted({code for _, _, code in rows}))
        where = {code: i for i, code in enumerate(self.codes)}
        # IPv4 fits in machine words; IPv6 needs Python's big integers.
        self.starts: array[int] | list[int] = (
            array(typecode, (r[0] for r in rows)) if typecode else [r[0] for r in rows]
        )
        self.ends: array[int] | list[int] = (
            array(typecode, (r[1] for r in rows)) if typecode else [r[1] for r in rows]
        )
        self.code_of = array("H", (where[r[2]] for r in rows))

    def find(self, value: int) -> str | None:
        i = bisect_right(self.starts, value) - 1
        if i >= 0 and value <= self.ends[i]:
            return self.codes[self.code_of[i]]
        return None


class CsvCountries:
    """Countries from an IP-ranges CSV file, read once into sorted arrays.

    Rows are ``start_ip,end_ip,country_code`` as in the free DB-IP "IP to Country Lite"
    file (addresses written out, IPv4 and IPv6 in one file) or IP2Location LITE DB1
    (addresses as integers, IPv4 in the IPv4 file, IPv4-mapped in the IPv6 one); further
    columns, such as a country name, are ignored, and so is a header line. A name ending
    in ``.gz`` is read through gzip. The file is read on the first look-up.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._tables: tuple[_Ranges, _Ranges] | None = None

    def country_of(self, ip: str | None) -> str | None:
        if not ip:
            return None
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return None
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        v4, v6 = self.load()
        return (v4 if address.version == 4 else v6).find(int(address))

    def load(self) -> tuple[_Ranges, _Ranges]:
        """Read the file, once; raises ``GeoIpFileInvalid`` naming the first bad line."""
        if self._tables is None:
            with self._lock:
                if self._tables is None:
                    self._tables = self._read()
        return self._tables

    def _read(self) -> tuple[_Ranges, _Ranges]:
        v4: list[tuple[int, int, str]] = []
        v6: list[tuple[int, int, str]] = []
        try:
            opener = gzip.open if self.path.suffix == ".gz" else open
            with opener(self.path, "rt", encoding="utf-8", newline="") as file:
                for number, row in enumerate(csv.reader(file), start=1):
                    if not row or row[0].lstrip().startswith("#"):
                        continue
                    parsed = _row(row)
                    if parsed is None:
                        if number == 1:
                            continue  # a header line
                        raise GeoIpFileInvalid(
                            f"{self.path}, line {number}: expected start_ip,end_ip,country_code"
                        )
                    for version, first, last, code in parsed:
                        if code not in _UNKNOWN:
                            (v4 if version == 4 else v6).append((first, last, code))
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 CSV"
            raise GeoIpFileInvalid(f"cannot read {self.path}: {reason}") from None
        return _Ranges(v4, "L"), _Ranges(v6, None)  # C unsigned long: 32 bits at least


def _row(row: list[str]) -> list[tuple[int, int, int, str]] | None:
    """The ranges of one line as (IP version, first, last, country code), or None if the
    line is not a range."""
    if len(row) < 3:
        return None
    first, last, code = row[0].strip(), row[1].strip(), row[2].strip().upper()
    if not (code in _UNKNOWN or (len(code) == 2 and code.isalpha())):
        return None
    if first.isdigit() and last.isdigit():
        return _numeric(int(first), int(last), code)
    try:
        start, end = ipaddress.ip_address(first), ipaddress.ip_address(last)
    except ValueError:
        return None
    if start.version != end.version or int(start) > int(end):
        return None
    if start.version == 6:
        return _numeric(int(start), int(end), code, v4=False)
    return [(4, int(start), int(end), code)]


def _numeric(
    first: int, last: int, code: str, *, v4: bool = True
) -> list[tuple[int, int, int, str]] | None:
    """A range of addresses written as integers (IP2Location), or of IPv6 addresses: IPv4
    when both ends fit in 32 bits (and ``v4``), else IPv6, whose part in ::ffff:0:0/96 (the
    way IP2Location's IPv6 file holds IPv4) is taken as the IPv4 addresses it maps."""
    if first > last or last >= 2**128:
        return None
    if v4 and last < 2**32:
        return [(4, first, last, code)]
    low, high = int(_IPV4_MAPPED[0]), int(_IPV4_MAPPED[-1])
    ranges: list[tuple[int, int, int, str]] = []
    if first < low:
        ranges.append((6, first, min(last, low - 1), code))
    if first <= high and last >= low:
        ranges.append((4, max(first, low) - low, min(last, high) - low, code))
    if last > high:
        ranges.append((6, max(first, high + 1), last, code))
    return ranges
