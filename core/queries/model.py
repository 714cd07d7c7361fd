"""The vocabulary of the queries: limits, errors, filters (and the SQL they make) and
result types. No I/O here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Any, Literal, TypeVar

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


