"""Master data and aggregates: items, lines, the date range, KPIs, daily/item/line
summaries and the defect Pareto; sums happen in SQL."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from core.queries.model import (
    DEFAULT_PERIOD_DAYS,
    DailySummary,
    DateRange,
    DefectShare,
    Filters,
    InvalidQuery,
    Item,
    ItemSummary,
    Kpis,
    Line,
    LineSummary,
    Order,
    _rate,
    _where,
    _where_sql,
)
from core.queries.readers import _read

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


_GROUP_SUMS = (
    "COUNT(*) AS records, COALESCE(SUM(r.plan_qty), 0) AS plan_qty,"
    " COALESCE(SUM(r.good_qty), 0) AS good_qty, COALESCE(SUM(r.defect_qty), 0) AS defect_qty"
)


def _per_key(
    path: Path, filters: Filters | None, *, key: str, master: str, names: Sequence[str],
    extra_sums: Sequence[tuple[str, str]] = (), limit: int | None, sort: str, order: Order,
) -> list[tuple[Any, ...]]:
    """Totals of production_records per ``key`` (item_code or line_code), with the
    ``names`` columns of the ``master`` table and ``extra_sums`` (alias, SQL); rows of
    (key, *names, records, plan, good, defect, *extras)."""
    order_by = _order_by(sort, order, key)
    params: list[Any] = []
    where = _where_sql(_where(filters or Filters(), params))
    named = "".join(f" m.{n}," for n in names)
    extras = "".join(f", s.{alias}" for alias, _ in extra_sums)
    extra_sql = "".join(f", {expr} AS {alias}" for alias, expr in extra_sums)
    sql = (
        f"SELECT s.{key},{named} s.records, s.plan_qty, s.good_qty, s.defect_qty{extras}"
        f" FROM (SELECT r.{key}, {_GROUP_SUMS}{extra_sql}"
        f" FROM production_records r {where} GROUP BY r.{key}) s"
        f" LEFT JOIN {master} m ON m.{key} = s.{key} {order_by}{_limit(limit)}"
    )
    return _read(path, lambda c: c.execute(sql, params).fetchall())


def summary_items(
    path: Path,
    filters: Filters | None = None,
    *,
    limit: int | None = None,
    sort: str = "good_qty",
    order: Order = "desc",
) -> list[ItemSummary]:
    """Per item totals; the top ``limit`` by ``sort`` (one of :data:`SORTS`)."""
    rows = _per_key(path, filters, key="item_code", master="items",
                    names=("item_name", "item_group"), limit=limit, sort=sort, order=order)
    return [
        ItemSummary(
            item_code=code, item_name=name, item_group=group, records=n, plan_qty=plan,
            good_qty=good, defect_qty=defect,
            defect_rate=_rate(defect, good + defect), achievement=_rate(good, plan),
        )
        for code, name, group, n, plan, good, defect in rows
    ]


def summary_lines(
    path: Path,
    filters: Filters | None = None,
    *,
    limit: int | None = None,
    sort: str = "code",
    order: Order = "asc",
) -> list[LineSummary]:
    """Per line totals, by line code unless ``sort`` says otherwise."""
    rows = _per_key(path, filters, key="line_code", master="lines",
                    names=("line_name", "plant", "process"),
                    extra_sums=(("run_m", "TOTAL(r.run_minutes)"),
                                ("down_m", "TOTAL(r.downtime_minutes)")),
                    limit=limit, sort=sort, order=order)
    return [
        LineSummary(
            line_code=code, line_name=name, plant=plant, process=process, records=n,
            plan_qty=plan, good_qty=good, defect_qty=defect,
            defect_rate=_rate(defect, good + defect), achievement=_rate(good, plan),
            run_minutes=round(run_m, 1), downtime_minutes=round(down_m, 1),
        )
        for code, name, plant, process, n, plan, good, defect, run_m, down_m in rows
    ]


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

