"""The dashboard's reads: from the published snapshot, cached by its version, never a
full-table load.

What may be shown is decided by :func:`core.serving.serving`, the rule the API uses
too: the snapshot the hub last verified and published (its pointer file in the store,
read on every run, one stat). Every ``st.cache_data`` function takes ``db_ver`` (the
snapshot's version) first, so a new snapshot misses every cache at once and nobody sees
old data as new. While an export is being written, or after one was held back, the
page keeps showing the published data and says so beside it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import streamlit as st

from core import queries as q
from core.config import Config
from core.queries import DataUnavailable, Filters
from core.records_csv import csv_document
from core.serving import serving
from core.state import Activity, StatusSnapshot
from core.store import Store

T = TypeVar("T")

TOP_ITEMS = 10


class Availability(StrEnum):
    """Whether the page has data to show, and if not, why (the published snapshot, or
    what stands in its place)."""

    READY = "ready"  # the published snapshot (perhaps with a note beside it)
    UPDATING = "updating"  # nothing published yet, and the first export is being written
    NO_DB = "no_db"  # nothing published yet
    UNREADABLE = "unreadable"  # nothing published yet, and the export was held back


class Note(StrEnum):
    """What the page says beside the data it shows."""

    NONE = ""
    UPDATING = "updating"  # a new export is being written or checked
    HELD_BACK = "held_back"  # the newest export failed verification


@dataclass(frozen=True)
class Source:
    """Which data the page shows on this run, and why."""

    available: Availability
    version: str = ""  # the snapshot's version
    path: Path | None = None  # the snapshot's file
    as_of: datetime | None = None  # when the ERP wrote that export
    reason: str = ""  # for a person: why it is not READY, or what the note is about
    note: Note = Note.NONE


@st.cache_resource(show_spinner=False)
def cached_store(root: str, keep: int, database: str) -> Store:
    """One Store per process (its pointer is cached until it changes)."""
    return Store(Path(root), keep, database=Path(database))


def _store(config: Config) -> Store:
    return cached_store(str(config.store_dir), config.store.keep, str(config.db_path))


def _note(status: StatusSnapshot | None, store: Store | None = None) -> tuple[Note, str]:
    """The note beside the data; with no hub status, the store still knows a held-back
    export."""
    if status is None:
        held = store.held_back() if store is not None else None
        return (Note.HELD_BACK, held.reason) if held else (Note.NONE, "")
    if status.held_back is not None:
        return Note.HELD_BACK, status.held_back.reason
    if status.activity is Activity.SETTLING:
        return Note.UPDATING, status.message
    newer = (status.published is not None and status.last_db_update is not None
             and status.last_db_update > status.published.published_at)
    if status.activity is Activity.CHECKING and newer:
        return Note.UPDATING, status.message
    return Note.NONE, ""


def assess(config: Config, status: StatusSnapshot | None) -> Source:
    """Decide what to show from the store's pointer (and the hub's status, if known)."""
    store = _store(config)
    try:
        current = serving(store)
    except DataUnavailable as exc:
        held = status.held_back if status is not None else store.held_back()
        if held is not None:
            return Source(Availability.UNREADABLE, reason=held.reason)
        if status is not None and status.db.problem == "unreadable":
            return Source(Availability.UNREADABLE, reason=status.db.error or exc.reason)
        if status is not None and status.activity is not Activity.IDLE:
            return Source(Availability.UPDATING, reason=status.message)
        return Source(Availability.NO_DB, reason=exc.reason)
    q.READERS.retire({current.path})
    note, reason = _note(status, store)
    return Source(Availability.READY, version=current.version, path=current.path,
                  as_of=current.published.as_of, reason=reason, note=note)


@dataclass(frozen=True)
class Seen:
    """What a page run was drawn from: the snapshot and the note beside it.

    The panel compares it with a fresh look to know when to draw the page again; a
    lasting problem (a held-back export) looks the same each time, so it never loops.
    """

    version: str
    note: Note


def published_version(config: Config) -> str:
    """The published snapshot's version ("" before the first): one stat of the pointer."""
    published = _store(config).current()
    return published.version if published else ""


def observe(config: Config, status: StatusSnapshot | None) -> Seen:
    store = _store(config)
    published = store.current()
    version = published.version if published else ""
    return Seen(version, _note(status, store)[0])


# --- cached reads ----------------------------------------------------------------------


def _read(path: str, fn: Callable[[Path], T]) -> T:
    # ``db_ver`` is only the cache key: the snapshot at ``path`` never changes.
    return fn(Path(path))


_CACHE: dict[str, Any] = {"max_entries": 256, "show_spinner": False}


@st.cache_data(**_CACHE)
def date_range(db_ver: str, path: str) -> q.DateRange:
    return _read(path, q.date_range)


@st.cache_data(**_CACHE)
def items(db_ver: str, path: str) -> list[q.Item]:
    return _read(path, q.items)


@st.cache_data(**_CACHE)
def lines(db_ver: str, path: str) -> list[q.Line]:
    return _read(path, q.lines)


@st.cache_data(**_CACHE)
def kpis(db_ver: str, path: str, filters: Filters) -> q.Kpis:
    return _read(path, lambda p: q.kpis(p, filters))


@st.cache_data(**_CACHE)
def summary_daily(db_ver: str, path: str, filters: Filters) -> list[q.DailySummary]:
    return _read(path, lambda p: q.summary_daily(p, filters))


@st.cache_data(**_CACHE)
def summary_lines(db_ver: str, path: str, filters: Filters) -> list[q.LineSummary]:
    return _read(path, lambda p: q.summary_lines(p, filters))


@st.cache_data(**_CACHE)
def top_items(db_ver: str, path: str, filters: Filters) -> list[q.ItemSummary]:
    return _read(path, lambda p: q.summary_items(p, filters, limit=TOP_ITEMS, sort="good_qty"))


@st.cache_data(**_CACHE)
def defects_pareto(db_ver: str, path: str, filters: Filters) -> list[q.DefectShare]:
    return _read(path, lambda p: q.defects_pareto(p, filters))


@st.cache_data(**_CACHE)
def records_page(db_ver: str, path: str, filters: Filters, limit: int,
                 cursor: str | None) -> q.RecordsPage:
    return _read(path, lambda p: q.records(p, filters, limit, cursor))


def records_csv(path: Path, filters: Filters) -> bytes:
    """All matching records of the snapshot at ``path`` as CSV (UTF-8 with BOM)."""
    return csv_document(q.iter_records(path, filters))
