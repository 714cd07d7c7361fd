"""The dashboard's reads: cached by DB version, never a full-table load.

Every ``st.cache_data`` function takes ``db_ver`` first, so a new export (a new version)
misses every cache at once and nobody sees old data as new. Each cached read runs
between two looks at the file (:func:`core.queries.consistent`); a result that did not
come from ``db_ver`` raises instead of being cached under the wrong version.

While the ERP is writing, the page reads with ``live=False``: only what is already
cached for the last good version is shown ("showing data as of ..."); nothing touches
the file mid-write.
"""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import streamlit as st

from core import queries as q
from core.dbfile import DbLook, look
from core.queries import DataChanged, DataUnavailable, Filters
from core.state import Activity, StatusSnapshot

T = TypeVar("T")

TOP_ITEMS = 10
CSV_BOM = "\ufeff"  # so Excel opens Hangul as UTF-8


class NotCached(Exception):
    """A read that would have to touch the file while it must not (an update running)."""


class View(StrEnum):
    READY = "ready"  # data of the current file
    UPDATING = "updating"  # the ERP (or the heal) is writing: last good data, if any
    NO_DB = "no_db"
    UNREADABLE = "unreadable"


@dataclass(frozen=True)
class Source:
    """Which data the page shows on this run, and why."""

    view: View
    version: str = ""  # the DB version to read (the last good one while updating)
    as_of: datetime | None = None  # when that data was written (file mtime)
    reason: str = ""  # for a person: why it is not READY
    live: bool = True  # False: cache only, never touch the file


@dataclass(frozen=True)
class LastGood:
    version: str
    as_of: datetime


class _LastGoodBook:
    """The last version each DB path was read completely, shared by all sessions."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_path: dict[str, LastGood] = {}

    def get(self, path: Path) -> LastGood | None:
        with self._lock:
            return self._by_path.get(str(path))

    def put(self, path: Path, good: LastGood) -> None:
        with self._lock:
            self._by_path[str(path)] = good


@st.cache_resource(show_spinner=False)
def last_good_book() -> _LastGoodBook:
    return _LastGoodBook()


def _mtime(current: DbLook) -> datetime:
    return datetime.fromtimestamp(current.main.mtime_ns / 1e9, UTC)


def hub_updating(status: StatusSnapshot | None, current: DbLook) -> bool:
    """The hub says a new export is being written or healed (not a routine check)."""
    if status is None:
        return False
    if status.activity is Activity.SETTLING:
        return True
    checked = status.last_check.version if status.last_check else None
    return status.activity is Activity.CHECKING and checked != current.version


def assess(path: Path, status: StatusSnapshot | None) -> Source:
    """Decide from a look at the file (and the hub's status, if known) what to show."""
    current = look(path)
    hub_busy = hub_updating(status, current)
    try:
        q.check_look(current)
    except DataUnavailable as exc:
        if exc.kind == "missing" and not hub_busy:
            return Source(View.NO_DB, reason=exc.reason)
        if exc.kind in ("updating", "busy", "missing") or hub_busy:
            return updating(path, exc.reason)
        return Source(View.UNREADABLE, reason=exc.reason)
    if hub_busy:
        return updating(path, status.message if status else "")
    return Source(View.READY, version=current.version, as_of=_mtime(current))


@dataclass(frozen=True)
class Seen:
    """What a page run was drawn from: the file's version and whether it was being written.

    The panel compares it with a fresh look to know when to draw the page again; a
    lasting problem (an unreadable file) looks the same each time, so it never loops.
    """

    version: str
    busy: bool


def observe(path: Path, status: StatusSnapshot | None) -> Seen:
    current = look(path)
    return Seen(current.version, hub_updating(status, current) or current.writing)


def updating(path: Path, reason: str) -> Source:
    """Show the last good data (cache only), or nothing yet, while the file is written."""
    good = last_good_book().get(path)
    if good is None:
        return Source(View.UPDATING, reason=reason, live=False)
    return Source(View.UPDATING, version=good.version, as_of=good.as_of, reason=reason,
                  live=False)


def remember_good(path: Path, source: Source) -> None:
    if source.live and source.version and source.as_of is not None:
        last_good_book().put(path, LastGood(source.version, source.as_of))


# --- cached reads ----------------------------------------------------------------------


def _read(path: str, db_ver: str, live: bool, fn: Callable[[Path], T]) -> T:
    if not live:
        raise NotCached(db_ver)
    p = Path(path)
    seen, result = q.consistent(p, lambda: fn(p))
    if seen != db_ver:
        raise DataChanged(f"{p.name} is no longer version {db_ver}")
    return result


_CACHE: dict[str, Any] = {"max_entries": 256, "show_spinner": False}


@st.cache_data(**_CACHE)
def date_range(db_ver: str, path: str, _live: bool = True) -> q.DateRange:
    return _read(path, db_ver, _live, q.date_range)


@st.cache_data(**_CACHE)
def items(db_ver: str, path: str, _live: bool = True) -> list[q.Item]:
    return _read(path, db_ver, _live, q.items)


@st.cache_data(**_CACHE)
def lines(db_ver: str, path: str, _live: bool = True) -> list[q.Line]:
    return _read(path, db_ver, _live, q.lines)


@st.cache_data(**_CACHE)
def kpis(db_ver: str, path: str, filters: Filters, _live: bool = True) -> q.Kpis:
    return _read(path, db_ver, _live, lambda p: q.kpis(p, filters))


@st.cache_data(**_CACHE)
def summary_daily(db_ver: str, path: str, filters: Filters,
                  _live: bool = True) -> list[q.DailySummary]:
    return _read(path, db_ver, _live, lambda p: q.summary_daily(p, filters))


@st.cache_data(**_CACHE)
def summary_lines(db_ver: str, path: str, filters: Filters,
                  _live: bool = True) -> list[q.LineSummary]:
    return _read(path, db_ver, _live, lambda p: q.summary_lines(p, filters))


@st.cache_data(**_CACHE)
def top_items(db_ver: str, path: str, filters: Filters,
              _live: bool = True) -> list[q.ItemSummary]:
    return _read(path, db_ver, _live,
                 lambda p: q.summary_items(p, filters, limit=TOP_ITEMS, sort="good_qty"))


@st.cache_data(**_CACHE)
def defects_pareto(db_ver: str, path: str, filters: Filters,
                   _live: bool = True) -> list[q.DefectShare]:
    return _read(path, db_ver, _live, lambda p: q.defects_pareto(p, filters))


@st.cache_data(**_CACHE)
def records_page(db_ver: str, path: str, filters: Filters, limit: int, cursor: str | None,
                 _live: bool = True) -> q.RecordsPage:
    return _read(path, db_ver, _live, lambda p: q.records(p, filters, limit, cursor))


def records_csv(path: Path, db_ver: str, filters: Filters) -> bytes:
    """All matching records as CSV (UTF-8 with BOM), read page by page, one version."""
    out = io.StringIO()
    out.write(CSV_BOM)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(q.RECORD_FIELDS)
    for page in q.iter_records(path, filters, version=db_ver):
        writer.writerows(
            [getattr(r, name) for name in q.RECORD_FIELDS] for r in page
        )
    return out.getvalue().encode("utf-8")
