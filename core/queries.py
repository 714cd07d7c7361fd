"""Read-only data access to the ERP's file, shared by the API and the dashboard.

Every function here reads a published snapshot (:mod:`core.store`), never the ERP's
file, and blocks (sqlite3): the API runs them with ``anyio.to_thread``, Streamlit calls
them directly. Snapshots never change, so connections are opened ``immutable=1`` and
pooled (:data:`READERS`).

All SQL is parameterized; sort names come from a whitelist; sums happen in SQL.

Exceptions::

    QueryError
    ├── DataUnavailable   the file is missing, unreadable, locked or being written (503)
    └── InvalidQuery      a bad filter, sort or cursor; ``param`` names it (422)
"""

from __future__ import annotations

import base64
import binascii
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar

from core.errors import DbBusy, DbMissing, DbReadOnly, DbUnreadable
from core.sqlite import Mode, connect, error_code, hub_error, is_time_out, time_limit

__all__ = [
    "DEFAULT_PERIOD_DAYS",
    "MAX_PAGE",
    "READERS",
    "RECORD_FIELDS",
    "REQUIRED_COLUMNS",
    "SHIFTS",
    "SORTS",
    "DailySummary",
    "DataUnavailable",
    "DateRange",
    "DefectShare",
    "Filters",
    "InvalidQuery",
    "Item",
    "ItemSummary",
    "Kpis",
    "Line",
    "LineSummary",
    "QueryError",
    "Record",
    "RecordsPage",
    "as_dicts",
    "date_range",
    "decode_cursor",
    "default_filters",
    "defects_pareto",
    "encode_cursor",
    "items",
    "iter_records",
    "kpis",
    "lines",
    "record_rows",
    "records",
    "summary_daily",
    "summary_items",
    "summary_lines",
    "work_date_span",
]

T = TypeVar("T")

SHIFTS = ("D", "N")
MAX_PAGE = 1000
DEFAULT_PERIOD_DAYS = 30
# What the queries read: an export without these cannot be served (core.snapshot.verify).
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "items": ("item_code", "item_name", "item_group", "spec", "unit"),
    "lines": ("line_code", "line_name", "plant", "process"),
    "production_records": (
        "record_id", "work_date", "shift", "line_code", "item_code", "work_order", "lot_no",
        "plan_qty", "good_qty", "defect_qty", "run_minutes", "downtime_minutes", "updated_at",
    ),
    "defect_records": ("record_id", "defect_code", "defect_name", "qty"),
}
Order = Literal["asc", "desc"]


# --- errors ----------------------------------------------------------------------------


class QueryError(Exception):
    """Base of the errors of this module."""


class DataUnavailable(QueryError):
    """The data cannot be read now; ``reason`` says why in words for a person.

    ``kind``: missing | unreadable | busy | updating.
    """

    def __init__(self, reason: str, kind: str = "unreadable") -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


class InvalidQuery(QueryError, ValueError):
    """A filter, sort or cursor that cannot be used; ``param`` names it."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = message


# --- filters ---------------------------------------------------------------------------

Codes = str | Sequence[str] | None


def _codes(param: str, value: Codes) -> tuple[str, ...]:
    if value is None:
        return ()
    values = (value,) if isinstance(value, str) else tuple(value)
    for v in values:
        if not isinstance(v, str):
            raise InvalidQuery(param, f"must be text, got {v!r}")
    return values


@dataclass(frozen=True, slots=True)
class Filters:
    """Which production records a query covers; every field optional (None: all).

    Code fields take one code or a sequence of codes (any of them). Dates are inclusive.
    """

    date_from: date | None = None
    date_to: date | None = None
    item_code: Codes = None
    line_code: Codes = None
    shift: Codes = None
    plant: Codes = None
    item_group: Codes = None

    def __post_init__(self) -> None:
        for name in ("item_code", "line_code", "shift", "plant", "item_group"):
            object.__setattr__(self, name, _codes(name, getattr(self, name)) or None)
        for name in ("date_from", "date_to"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, date):
                raise InvalidQuery(name, f"must be a date, got {value!r}")
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise InvalidQuery(
                "date_to", f"{self.date_to} is before date_from {self.date_from}"
            )
        for s in self.shift or ():
            if s not in SHIFTS:
                raise InvalidQuery("shift", f"unknown shift {s!r}; allowed: D (day), N (night)")

    def key(self) -> tuple[Any, ...]:
        """A hashable, canonical form (cache keys)."""
        return tuple(
            tuple(sorted(v)) if isinstance(v, tuple) else v
            for v in (self.date_from, self.date_to, self.item_code, self.line_code,
                      self.shift, self.plant, self.item_group)
        )

    def shifted(self, days: int) -> Filters:
        """The same filters over the period ``days`` earlier (for period comparisons)."""
        delta = timedelta(days=days)
        return Filters(
            date_from=self.date_from - delta if self.date_from else None,
            date_to=self.date_to - delta if self.date_to else None,
            item_code=self.item_code, line_code=self.line_code, shift=self.shift,
            plant=self.plant, item_group=self.item_group,
        )

    def within(self, first: date | None, last: date | None) -> Filters:
        """The same filters for a file whose work_dates run from ``first`` to ``last``: a
        date bound that covers that whole side is dropped (it selects the same records),
        so a year given by dates and "all the data" are one cache key."""
        drop_from = self.date_from is not None and first is not None and self.date_from <= first
        drop_to = self.date_to is not None and last is not None and self.date_to >= last
        if not (drop_from or drop_to):
            return self
        return Filters(
            date_from=None if drop_from else self.date_from,
            date_to=None if drop_to else self.date_to,
            item_code=self.item_code, line_code=self.line_code, shift=self.shift,
            plant=self.plant, item_group=self.item_group,
        )

    def previous_period(self) -> Filters | None:
        """The period of the same length just before this one; None without both dates."""
        if self.date_from is None or self.date_to is None:
            return None
        return self.shifted((self.date_to - self.date_from).days + 1)


def _in(column: str, values: tuple[str, ...], params: list[Any]) -> str:
    params.extend(values)
    if len(values) == 1:
        return f"{column} = ?"
    return f"{column} IN ({', '.join('?' * len(values))})"


def _where(f: Filters, params: list[Any]) -> list[str]:
    """SQL conditions on ``production_records r``; values go into ``params``."""
    out: list[str] = []
    if f.date_from is not None:
        out.append("r.work_date >= ?")
        params.append(f.date_from.isoformat())
    if f.date_to is not None:
        out.append("r.work_date <= ?")
        params.append(f.date_to.isoformat())
    if f.item_code:
        out.append(_in("r.item_code", f.item_code, params))  # type: ignore[arg-type]
    if f.line_code:
        out.append(_in("r.line_code", f.line_code, params))  # type: ignore[arg-type]
    if f.shift:
        out.append(_in("r.shift", f.shift, params))  # type: ignore[arg-type]
    if f.plant:
        sub = _in("plant", f.plant, params)  # type: ignore[arg-type]
        out.append(f"r.line_code IN (SELECT line_code FROM lines WHERE {sub})")
    if f.item_group:
        sub = _in("item_group", f.item_group, params)  # type: ignore[arg-type]
        out.append(f"r.item_code IN (SELECT item_code FROM items WHERE {sub})")
    return out


def _where_sql(conds: list[str]) -> str:
    return f"WHERE {' AND '.join(conds)}" if conds else ""


# --- results ---------------------------------------------------------------------------
# Plain (not frozen) slotted dataclasses: a frozen __init__ costs 3x on 100-row pages.


@dataclass(slots=True)
class Item:
    item_code: str
    item_name: str
    item_group: str | None
    spec: str | None
    unit: str


@dataclass(slots=True)
class Line:
    line_code: str
    line_name: str
    plant: str
    process: str | None


@dataclass(slots=True)
class DateRange:
    """First and last work_date in the file; None for an empty table."""

    date_from: date | None
    date_to: date | None
    records: int = 0


@dataclass(slots=True)
class Record:
    """One production report, with the item's and line's names."""

    record_id: int
    work_date: str
    shift: str
    line_code: str
    line_name: str | None
    item_code: str
    item_name: str | None
    work_order: str | None
    lot_no: str | None
    plan_qty: int
    good_qty: int
    defect_qty: int
    run_minutes: float | None
    downtime_minutes: float | None
    updated_at: str


RECORD_FIELDS: tuple[str, ...] = tuple(Record.__dataclass_fields__)


@dataclass(slots=True)
class RecordsPage:
    records: list[Record]
    next_cursor: str | None


def _rate(num: float, den: float) -> float | None:
    return round(num / den, 6) if den else None


@dataclass(slots=True)
class Kpis:
    """Totals of a period. defect_rate = defect/(good+defect); achievement = good/plan."""

    records: int
    plan_qty: int
    good_qty: int
    defect_qty: int
    defect_rate: float | None
    achievement: float | None
    run_minutes: float
    downtime_minutes: float


@dataclass(slots=True)
class DailySummary:
    work_date: str
    records: int
    plan_qty: int
    good_qty: int
    defect_qty: int
    defect_rate: float | None
    achievement: float | None
    run_minutes: float
    downtime_minutes: float


@dataclass(slots=True)
class ItemSummary:
    item_code: str
    item_name: str | None
    item_group: str | None
    records: int
    plan_qty: int
    good_qty: int
    defect_qty: int
    defect_rate: float | None
    achievement: float | None


@dataclass(slots=True)
class LineSummary:
    line_code: str
    line_name: str | None
    plant: str | None
    process: str | None
    records: int
    plan_qty: int
    good_qty: int
    defect_qty: int
    defect_rate: float | None
    achievement: float | None
    run_minutes: float
    downtime_minutes: float


@dataclass(slots=True)
class DefectShare:
    """One defect code of a Pareto chart; shares are of all defects under the filters."""

    defect_code: str
    defect_name: str | None
    qty: int
    share: float | None
    cumulative_share: float | None


def as_dicts(rows: Sequence[Any]) -> list[dict[str, Any]]:
    """Result dataclasses as plain dicts (e.g. for a DataFrame)."""
    return [asdict(r) for r in rows]


# --- connections -----------------------------------------------------------------------


# Every read ends after this long (a progress handler): a runaway query must not hold a
# reader thread, nor a lock against the ERP's writes.
READ_TIME_LIMIT_S = 30.0


def _describe(exc: sqlite3.Error, path: Path) -> DataUnavailable:
    """The reader's 503 for ``exc``, chosen by SQLite's result code."""
    if is_time_out(exc):
        return DataUnavailable(
            f"reading {path.name} took longer than {READ_TIME_LIMIT_S:g} s; try a narrower "
            "filter", "busy")
    if error_code(exc) == sqlite3.SQLITE_ERROR and "no such" in str(exc):
        # A schema error has no code of its own: "no such table/column".
        return DataUnavailable(
            f"{path.name} does not have the ERP's tables ({exc}); a failed export?",
            "unreadable",
        )
    error = hub_error(exc, path, "reading it")
    if isinstance(error, DbBusy):
        return DataUnavailable(f"database {path.name} is locked by another program", "busy")
    if isinstance(error, DbMissing):
        return DataUnavailable(f"database file not found: {path}", "missing")
    if isinstance(error, DbUnreadable):
        return DataUnavailable(
            f"{path.name} is not a SQLite database or is damaged (a failed export?): {exc}",
            "unreadable")
    if isinstance(error, DbReadOnly):
        return DataUnavailable(f"cannot open database file {path}", "unreadable")
    return DataUnavailable(f"cannot read {path.name}: {exc}", "unreadable")


class _Readers:
    """Read-only connections to published snapshots, kept open and shared between calls.

    A snapshot never changes once published, so connections open it ``immutable=1`` (no
    locks, no change checks) and may stay open. A connection is used by one thread at a
    time; :meth:`retire` closes the idle ones of snapshots no longer served, so old
    files can be deleted (Windows cannot delete a file that is open).
    """

    MAX_IDLE = 16  # per snapshot: about the size of the thread pools that read

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: dict[Path, list[sqlite3.Connection]] = {}
        self._serving: set[Path] | None = None

    def acquire(self, path: Path) -> sqlite3.Connection:
        with self._lock:
            idle = self._idle.get(path)
            if idle:
                return idle.pop()
        if not path.exists():
            raise DataUnavailable(f"database file not found: {path}", "missing")
        try:
            return connect(path, Mode.IMMUTABLE, check_same_thread=False)
        except sqlite3.Error as exc:
            raise _describe(exc, path) from None

    def release(self, path: Path, conn: sqlite3.Connection) -> None:
        with self._lock:
            keep = self._serving is None or path in self._serving
            idle = self._idle.setdefault(path, [])
            if keep and len(idle) < self.MAX_IDLE:
                idle.append(conn)
                return
        conn.close()

    def retire(self, serving: set[Path]) -> None:
        """Close idle connections of every snapshot not in ``serving``."""
        with self._lock:
            self._serving = set(serving)
            gone = [p for p in self._idle if p not in self._serving]
            closing_now = [c for p in gone for c in self._idle.pop(p)]
        for conn in closing_now:
            conn.close()

    def close_all(self) -> None:
        with self._lock:
            conns = [c for idle in self._idle.values() for c in idle]
            self._idle.clear()
        for conn in conns:
            conn.close()


READERS = _Readers()


def _read(path: Path, fn: Callable[[sqlite3.Connection], T]) -> T:
    """Run ``fn`` on a pooled read-only connection to the snapshot at ``path``."""
    conn = READERS.acquire(path)
    try:
        with time_limit(conn, READ_TIME_LIMIT_S):
            result = fn(conn)
    except sqlite3.Error as exc:
        conn.close()
        raise _describe(exc, path) from None
    except BaseException:
        conn.close()
        raise
    READERS.release(path, conn)
    return result


# --- master data -----------------------------------------------------------------------


def items(path: Path) -> list[Item]:
    """All items, by code."""

    def run(c: sqlite3.Connection) -> list[Item]:
        cur = c.execute(
            "SELECT item_code, item_name, item_group, spec, unit FROM items ORDER BY item_code"
        )
        return [Item(*row) for row in cur]

    return _read(path, run)


def lines(path: Path) -> list[Line]:
    """All lines, by code."""

    def run(c: sqlite3.Connection) -> list[Line]:
        cur = c.execute("SELECT line_code, line_name, plant, process FROM lines ORDER BY line_code")
        return [Line(*row) for row in cur]

    return _read(path, run)


def _day(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def date_range(path: Path) -> DateRange:
    """The first and last work_date, and the record count (uses the work_date index)."""

    def run(c: sqlite3.Connection) -> DateRange:
        lo = c.execute("SELECT MIN(work_date) FROM production_records").fetchone()[0]
        hi = c.execute("SELECT MAX(work_date) FROM production_records").fetchone()[0]
        n = c.execute("SELECT COUNT(*) FROM production_records").fetchone()[0]
        return DateRange(_day(lo), _day(hi), int(n))

    return _read(path, run)


def work_date_span(path: Path) -> tuple[date | None, date | None]:
    """The first and last work_date (two index lookups; no count)."""

    def run(c: sqlite3.Connection) -> tuple[date | None, date | None]:
        lo, hi = c.execute(
            "SELECT (SELECT MIN(work_date) FROM production_records),"
            " (SELECT MAX(work_date) FROM production_records)").fetchone()
        return _day(lo), _day(hi)

    return _read(path, run)


def default_filters(span: DateRange, days: int = DEFAULT_PERIOD_DAYS) -> Filters:
    """The dashboard's default view: the last ``days`` days that have data."""
    if span.date_to is None:
        return Filters()
    return Filters(date_from=span.date_to - timedelta(days=days - 1), date_to=span.date_to)


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


# --- aggregates ------------------------------------------------------------------------

_SUMS = (
    "COUNT(*), COALESCE(SUM(r.plan_qty), 0), COALESCE(SUM(r.good_qty), 0),"
    " COALESCE(SUM(r.defect_qty), 0), TOTAL(r.run_minutes), TOTAL(r.downtime_minutes)"
)


def kpis(path: Path, filters: Filters | None = None) -> Kpis:
    """Totals and rates over the filtered records (call twice to compare periods)."""
    params: list[Any] = []
    where = _where_sql(_where(filters or Filters(), params))
    sql = f"SELECT {_SUMS} FROM production_records r {where}"

    def run(c: sqlite3.Connection) -> Kpis:
        n, plan, good, defect, run_m, down_m = c.execute(sql, params).fetchone()
        return Kpis(
            records=n, plan_qty=plan, good_qty=good, defect_qty=defect,
            defect_rate=_rate(defect, good + defect), achievement=_rate(good, plan),
            run_minutes=round(run_m, 1), downtime_minutes=round(down_m, 1),
        )

    return _read(path, run)


def summary_daily(path: Path, filters: Filters | None = None) -> list[DailySummary]:
    """Per work_date totals, oldest first."""
    params: list[Any] = []
    where = _where_sql(_where(filters or Filters(), params))
    sql = (f"SELECT r.work_date, {_SUMS} FROM production_records r {where}"
           " GROUP BY r.work_date ORDER BY r.work_date")

    def run(c: sqlite3.Connection) -> list[DailySummary]:
        return [
            DailySummary(
                work_date=d, records=n, plan_qty=plan, good_qty=good, defect_qty=defect,
                defect_rate=_rate(defect, good + defect), achievement=_rate(good, plan),
                run_minutes=round(run_m, 1), downtime_minutes=round(down_m, 1),
            )
            for d, n, plan, good, defect, run_m, down_m in c.execute(sql, params)
        ]

    return _read(path, run)


# Sort names -> SQL over the grouped subquery ``s``; the only text that enters ORDER BY.
_SORT_SQL: dict[str, str] = {
    "good_qty": "s.good_qty",
    "defect_qty": "s.defect_qty",
    "plan_qty": "s.plan_qty",
    "records": "s.records",
    "defect_rate": "CAST(s.defect_qty AS REAL) / NULLIF(s.good_qty + s.defect_qty, 0)",
    "achievement": "CAST(s.good_qty AS REAL) / NULLIF(s.plan_qty, 0)",
}
SORTS: tuple[str, ...] = (*_SORT_SQL, "code")


def _order_by(sort: str, order: Order, code: str) -> str:
    if sort not in SORTS:
        raise InvalidQuery("sort", f"unknown sort {sort!r}; allowed: {', '.join(SORTS)}")
    if order not in ("asc", "desc"):
        raise InvalidQuery("order", f"must be asc or desc, got {order!r}")
    direction = "ASC" if order == "asc" else "DESC"
    if sort == "code":
        return f"ORDER BY s.{code} {direction}"
    # NULL rates last whatever the direction; ties broken by code so pages are stable.
    expr = _SORT_SQL[sort]
    return f"ORDER BY ({expr}) IS NULL, {expr} {direction}, s.{code} ASC"


def _limit(limit: int | None) -> str:
    if limit is None:
        return ""
    if not isinstance(limit, int) or limit < 1:
        raise InvalidQuery("limit", f"must be a positive whole number, got {limit!r}")
    return f" LIMIT {int(limit)}"


def summary_items(
    path: Path,
    filters: Filters | None = None,
    *,
    limit: int | None = None,
    sort: str = "good_qty",
    order: Order = "desc",
) -> list[ItemSummary]:
    """Per item totals; the top ``limit`` by ``sort`` (one of :data:`SORTS`)."""
    order_by = _order_by(sort, order, "item_code")
    params: list[Any] = []
    where = _where_sql(_where(filters or Filters(), params))
    sql = (
        "SELECT s.item_code, i.item_name, i.item_group, s.records, s.plan_qty, s.good_qty,"
        " s.defect_qty FROM ("
        "SELECT r.item_code, COUNT(*) AS records, COALESCE(SUM(r.plan_qty), 0) AS plan_qty,"
        " COALESCE(SUM(r.good_qty), 0) AS good_qty, COALESCE(SUM(r.defect_qty), 0) AS defect_qty"
        f" FROM production_records r {where} GROUP BY r.item_code) s"
        f" LEFT JOIN items i ON i.item_code = s.item_code {order_by}{_limit(limit)}"
    )

    def run(c: sqlite3.Connection) -> list[ItemSummary]:
        return [
            ItemSummary(
                item_code=code, item_name=name, item_group=group, records=n, plan_qty=plan,
                good_qty=good, defect_qty=defect,
                defect_rate=_rate(defect, good + defect), achievement=_rate(good, plan),
            )
            for code, name, group, n, plan, good, defect in c.execute(sql, params)
        ]

    return _read(path, run)


def summary_lines(
    path: Path,
    filters: Filters | None = None,
    *,
    limit: int | None = None,
    sort: str = "code",
    order: Order = "asc",
) -> list[LineSummary]:
    """Per line totals, by line code unless ``sort`` says otherwise."""
    order_by = _order_by(sort, order, "line_code")
    params: list[Any] = []
    where = _where_sql(_where(filters or Filters(), params))
    sql = (
        "SELECT s.line_code, l.line_name, l.plant, l.process, s.records, s.plan_qty,"
        " s.good_qty, s.defect_qty, s.run_m, s.down_m FROM ("
        "SELECT r.line_code, COUNT(*) AS records, COALESCE(SUM(r.plan_qty), 0) AS plan_qty,"
        " COALESCE(SUM(r.good_qty), 0) AS good_qty, COALESCE(SUM(r.defect_qty), 0) AS defect_qty,"
        " TOTAL(r.run_minutes) AS run_m, TOTAL(r.downtime_minutes) AS down_m"
        f" FROM production_records r {where} GROUP BY r.line_code) s"
        f" LEFT JOIN lines l ON l.line_code = s.line_code {order_by}{_limit(limit)}"
    )

    def run(c: sqlite3.Connection) -> list[LineSummary]:
        return [
            LineSummary(
                line_code=code, line_name=name, plant=plant, process=process, records=n,
                plan_qty=plan, good_qty=good, defect_qty=defect,
                defect_rate=_rate(defect, good + defect), achievement=_rate(good, plan),
                run_minutes=round(run_m, 1), downtime_minutes=round(down_m, 1),
            )
            for code, name, plant, process, n, plan, good, defect, run_m, down_m
            in c.execute(sql, params)
        ]

    return _read(path, run)


def defects_pareto(
    path: Path, filters: Filters | None = None, *, limit: int | None = None
) -> list[DefectShare]:
    """Defect quantities by code, largest first, with shares of the filtered total."""
    params: list[Any] = []
    where = _where_sql(_where(filters or Filters(), params))
    sql = (
        "SELECT d.defect_code, MAX(d.defect_name), SUM(d.qty) AS qty, SUM(SUM(d.qty)) OVER ()"
        " FROM defect_records d JOIN production_records r ON r.record_id = d.record_id"
        f" {where} GROUP BY d.defect_code ORDER BY qty DESC, d.defect_code{_limit(limit)}"
    )

    def run(c: sqlite3.Connection) -> list[DefectShare]:
        out: list[DefectShare] = []
        running = 0
        for code, name, qty, total in c.execute(sql, params):
            running += qty
            out.append(DefectShare(code, name, qty, _rate(qty, total), _rate(running, total)))
        return out

    return _read(path, run)

