"""Production records: one page at a time with a keyset cursor, or all of them in
pages (the CSV export)."""

from __future__ import annotations

import base64
import binascii
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.queries.model import (
    MAX_PAGE,
    Filters,
    InvalidQuery,
    Order,
    Record,
    RecordsPage,
    _where,
    _where_sql,
)
from core.queries.readers import _read

# --- records ---------------------------------------------------------------------------

_RECORD_SELECT = (
    "SELECT r.record_id, r.work_date, r.shift, r.line_code, l.line_name, r.item_code,"
    " i.item_name, r.work_order, r.lot_no, r.plan_qty, r.good_qty, r.defect_qty,"
    " r.run_minutes, r.downtime_minutes, r.updated_at"
    " FROM production_records r"
    " LEFT JOIN items i ON i.item_code = r.item_code"
    " LEFT JOIN lines l ON l.line_code = r.line_code"
)


def encode_cursor(work_date: str, record_id: int, order: Order) -> str:
    raw = json.dumps([work_date, record_id, order], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, order: Order) -> tuple[str, int]:
    """The (work_date, record_id) a cursor continues after; InvalidQuery if it is not ours."""
    bad = InvalidQuery("cursor", "not a cursor returned by this API (use next_cursor as given)")
    if len(cursor) > 200:
        raise bad
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        work_date, record_id, cur_order = json.loads(raw)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise bad from None
    if (
        not isinstance(work_date, str) or len(work_date) > 32
        or not isinstance(record_id, int) or isinstance(record_id, bool)
        or not -(2**63) <= record_id < 2**63
    ):
        raise bad
    if cur_order != order:
        raise InvalidQuery("cursor", f"this cursor is for order={cur_order}, not order={order}")
    return work_date, record_id


def _records_sql(
    filters: Filters, after: tuple[str, int] | None, order: Order, limit: int | None
) -> tuple[str, list[Any]]:
    params: list[Any] = []
    conds = _where(filters, params)
    if after is not None:
        op = ">" if order == "asc" else "<"
        # The plain bound lets SQLite start the index range at the cursor, not scan to it.
        conds.append(f"r.work_date {op}= ?")
        conds.append(f"(r.work_date {op} ? OR r.record_id {op} ?)")
        params.extend([after[0], after[0], after[1]])
    direction = "ASC" if order == "asc" else "DESC"
    sql = (f"{_RECORD_SELECT} {_where_sql(conds)}"
           f" ORDER BY r.work_date {direction}, r.record_id {direction}")
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return sql, params


def record_rows(
    path: Path,
    filters: Filters | None = None,
    limit: int = 100,
    cursor: str | None = None,
    order: Order = "asc",
) -> tuple[list[tuple[Any, ...]], str | None]:
    """:func:`records` as plain rows in :data:`RECORD_FIELDS` order (for serializers
    that need no objects), and the next page's cursor."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidQuery("limit", f"must be 1..{MAX_PAGE}, got {limit}")
    if order not in ("asc", "desc"):
        raise InvalidQuery("order", f"must be asc or desc, got {order!r}")
    after = decode_cursor(cursor, order) if cursor else None
    sql, params = _records_sql(filters or Filters(), after, order, limit + 1)

    def run(c: sqlite3.Connection) -> tuple[list[tuple[Any, ...]], str | None]:
        rows = c.execute(sql, params).fetchall()
        nxt = None
        if len(rows) > limit:
            del rows[limit:]
            nxt = encode_cursor(rows[-1][1], rows[-1][0], order)
        return rows, nxt

    return _read(path, run)


def records(
    path: Path,
    filters: Filters | None = None,
    limit: int = 100,
    cursor: str | None = None,
    order: Order = "asc",
) -> RecordsPage:
    """One page of production records in (work_date, record_id) order.

    ``cursor`` is a previous page's ``next_cursor`` (keyset: no duplicates, no gaps);
    ``next_cursor`` is None on the last page.
    """
    rows, nxt = record_rows(path, filters, limit, cursor, order)
    return RecordsPage([Record(*row) for row in rows], nxt)


def iter_records(
    path: Path,
    filters: Filters | None = None,
    *,
    page_size: int = 5000,
    order: Order = "asc",
) -> Iterator[list[Record]]:
    """All matching records in pages (keyset), for exports of any size."""
    after: tuple[str, int] | None = None
    while True:
        sql, params = _records_sql(filters or Filters(), after, order, page_size)
        page = _read(path, lambda c, sql=sql, params=params: [  # type: ignore[misc]
            Record(*row) for row in c.execute(sql, params)
        ])
        if page:
            yield page
        if len(page) < page_size:
            return
        after = (page[-1].work_date, page[-1].record_id)


