"""Production records as CSV, the one writer behind the API's ``records.csv`` and the
dashboard's download: UTF-8 with a BOM (so Excel opens Hangul right), RFC 4180 (CRLF line
ends, quotes where needed), columns in :data:`~core.queries.RECORD_FIELDS` order, and
``None`` as an empty field.

The API streams it (:func:`csv_header`, then :func:`csv_rows` per page); the dashboard
builds the whole file (:func:`csv_document`). The bytes are the same either way.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from core.queries import RECORD_FIELDS, Record

__all__ = ["BOM", "csv_document", "csv_header", "csv_rows"]

BOM = "\ufeff"


def _encode(rows: Iterable[Sequence[object]]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    return buf.getvalue().encode("utf-8")


def csv_header() -> bytes:
    """The BOM and the header line."""
    return BOM.encode() + _encode([RECORD_FIELDS])


def csv_rows(records: Iterable[Record]) -> bytes:
    """The lines of ``records`` (no header)."""
    return _encode([getattr(r, name) for name in RECORD_FIELDS] for r in records)


def csv_document(pages: Iterable[Iterable[Record]]) -> bytes:
    """A whole CSV file: the header, then every page's records."""
    return csv_header() + b"".join(csv_rows(page) for page in pages)
