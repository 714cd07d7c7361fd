"""Versioned reads: every answer is labelled with the DB version it was read from.

A read takes a look at the file (stat + 100-byte header, see :mod:`core.dbfile`),
answers from the cache for that version if it can, else runs the query and looks again:
if the two looks differ, the result may mix two files, so it is thrown away and the read
is tried once more, then refused with 503. With a hub, reads are refused while the hub
says the ERP is still writing (settling) or before it has seen a new version at all.

Everything here blocks; the routes call :meth:`DataSource.fetch` through
``anyio.to_thread``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from api.cache import VersionedCache
from api.models import (
    DailyOut,
    ItemsOut,
    ItemSummaryOut,
    LinesOut,
    LineSummaryOut,
    ParetoOut,
    RecordsOut,
)
from core import queries
from core.dbfile import DbLook, look
from core.queries import (
    RECORD_FIELDS,
    DataChanged,
    DataUnavailable,
    Filters,
    Order,
    Record,
    check_look,
)
from core.state import Activity

if TYPE_CHECKING:
    from core.hub import Hub

log = logging.getLogger(__name__)

UPDATING = "database update in progress"
ATTEMPTS = 2  # a read that sees the file change twice in a row gets 503


@dataclass(frozen=True, slots=True)
class Query:
    """A cacheable read: a canonical key and how to compute its JSON body."""

    key: tuple[Hashable, ...]
    compute: Callable[[], bytes]


@dataclass(frozen=True, slots=True)
class Served:
    version: str
    etag: str
    body: bytes | None  # None: the client's copy is current (304)


@dataclass(slots=True)
class CsvStart:
    version: str
    etag: str
    first: list[Record] | None  # None: 304
    rest: Iterator[list[Record]] | None


RawKey = tuple[str, bytes]
RAW_INDEX_SIZE = 4096


def raw_key(scope: Mapping[str, Any]) -> RawKey:
    """A request's path and query string exactly as sent."""
    return scope["path"], scope["query_string"]


def make_etag(version: str, key: Hashable) -> str:
    digest = hashlib.blake2b(repr(key).encode(), digest_size=8).hexdigest()
    return f'"{version}-{digest}"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison against an ``If-None-Match`` header."""
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False


def _json(model: BaseModel) -> bytes:
    return model.model_dump_json().encode()


class DataSource:
    """Versioned, cached reads of one database file, optionally gated by a hub."""

    def __init__(
        self,
        path: Path,
        *,
        hub: Hub | None = None,
        cache: VersionedCache | None = None,
        updating_retry_after: float = 2.0,
    ) -> None:
        self.path = path
        self.hub = hub
        self.cache = cache or VersionedCache()
        self.updating_retry_after = max(1, math.ceil(updating_retry_after))
        # URL as sent -> canonical query key, for URLs the routes have answered before.
        self._raw: OrderedDict[RawKey, tuple[Hashable, ...]] = OrderedDict()
        self._raw_lock = threading.Lock()
        self.retries = 0  # reads that saw the file change and ran again
        self.refused = 0  # reads refused because the file kept changing

    # gating ------------------------------------------------------------------------

    def retry_after(self, exc: DataUnavailable) -> int:
        if exc.kind == "updating":
            return self.updating_retry_after
        return 2 if exc.kind == "busy" else 10

    def gate(self, current: DbLook) -> None:
        """Raise :class:`DataUnavailable` unless data of ``current`` may be served now."""
        hub = self.hub
        if hub is not None and current.exists:
            activity = hub.activity
            if activity is Activity.SETTLING:
                raise DataUnavailable(UPDATING, "updating")
            # A version the hub has not taken in yet is a write it has not seen settle
            # (the watcher fires a moment after the first byte). While it checks and heals
            # the data is complete: serve it. With auto mode off nothing will settle it.
            if (activity is Activity.IDLE and hub.auto_mode
                    and current.version != hub.known_version):
                raise DataUnavailable(UPDATING, "updating")
        check_look(current)

    def look(self) -> DbLook:
        current = look(self.path)
        self.cache.observe(current.version)
        return current

    # reads -------------------------------------------------------------------------

    def fetch(self, query: Query, if_none_match: str | None = None) -> Served:
        """The body of ``query`` for the current version (blocking)."""
        for _attempt in range(ATTEMPTS):
            before = self.look()
            self.gate(before)
            version = before.version
            etag = make_etag(version, query.key)
            if etag_matches(if_none_match, etag):
                return Served(version, etag, None)
            body = self.cache.get(version, query.key)
            if body is not None:
                return Served(version, etag, body)
            try:
                body = query.compute()
            except DataUnavailable:
                if self.look().version == version:
                    raise  # the file is really bad, not just mid-write
                self.retries += 1
                continue
            if self.look().version != version:
                self.retries += 1
                continue
            self.cache.put(version, query.key, body)
            return Served(version, etag, body)
        self.refused += 1
        raise DataUnavailable(UPDATING, "updating")

    def remember(self, raw: RawKey, key: tuple[Hashable, ...]) -> None:
        """Note that the URL ``raw`` asks for the query ``key`` (bounded, LRU)."""
        with self._raw_lock:
            self._raw[raw] = key
            self._raw.move_to_end(raw)
            if len(self._raw) > RAW_INDEX_SIZE:
                self._raw.popitem(last=False)

    def known(self, raw: RawKey) -> tuple[Hashable, ...] | None:
        """The query a URL asked for before, if the routes have answered it (no I/O)."""
        return self._raw.get(raw)

    def fetch_hit(self, key: tuple[Hashable, ...], if_none_match: str | None) -> Served | None:
        """The cached answer to ``key`` for the current version (blocking); None: let the
        route handle it. Looked at and gated exactly as in :meth:`fetch`."""
        current = self.look()
        self.gate(current)
        etag = make_etag(current.version, key)
        if etag_matches(if_none_match, etag):
            return Served(current.version, etag, None)
        body = self.cache.get(current.version, key)
        return None if body is None else Served(current.version, etag, body)

    def version_now(self) -> tuple[DbLook, DataUnavailable | None]:
        """A look, and why its data could not be served now (None: it could)."""
        current = self.look()
        try:
            self.gate(current)
        except DataUnavailable as exc:
            return current, exc
        return current, None

    # queries -----------------------------------------------------------------------

    def items(self) -> Query:
        return Query(("items",), lambda: _json(ItemsOut(items=queries.items(self.path))))

    def lines(self) -> Query:
        return Query(("lines",), lambda: _json(LinesOut(lines=queries.lines(self.path))))

    def records(self, filters: Filters, limit: int, cursor: str | None, order: Order) -> Query:
        if cursor:
            queries.decode_cursor(cursor, order)  # a bad cursor is a 422 before any look

        def compute() -> bytes:
            page = queries.records(self.path, filters, limit, cursor, order)
            return _json(RecordsOut(records=page.records, next_cursor=page.next_cursor))

        return Query(("records", filters.key(), limit, cursor, order), compute)

    def summary_daily(self, filters: Filters) -> Query:
        return Query(
            ("summary/daily", filters.key()),
            lambda: _json(DailyOut(days=queries.summary_daily(self.path, filters))),
        )

    def summary_items(self, filters: Filters, limit: int | None, sort: str,
                      order: Order) -> Query:
        def compute() -> bytes:
            rows = queries.summary_items(self.path, filters, limit=limit, sort=sort, order=order)
            return _json(ItemSummaryOut(items=rows))

        return Query(("summary/items", filters.key(), limit, sort, order), compute)

    def summary_lines(self, filters: Filters, limit: int | None, sort: str,
                      order: Order) -> Query:
        def compute() -> bytes:
            rows = queries.summary_lines(self.path, filters, limit=limit, sort=sort, order=order)
            return _json(LineSummaryOut(lines=rows))

        return Query(("summary/lines", filters.key(), limit, sort, order), compute)

    def pareto(self, filters: Filters, limit: int | None) -> Query:
        return Query(
            ("defects/pareto", filters.key(), limit),
            lambda: _json(ParetoOut(defects=queries.defects_pareto(self.path, filters,
                                                                   limit=limit))),
        )

    def kpis(self, filters: Filters) -> Query:
        from pydantic import TypeAdapter

        adapter = TypeAdapter(queries.Kpis)
        return Query(
            ("kpis", filters.key()),
            lambda: adapter.dump_json(queries.kpis(self.path, filters)),
        )

    # CSV ---------------------------------------------------------------------------

    def open_csv(self, filters: Filters, order: Order, if_none_match: str | None,
                 page_size: int = 5000) -> CsvStart:
        """Read the first page of a CSV export (blocking); the rest follows page by page,
        each checked against the same version (:class:`DataChanged` if the file moved)."""
        key = ("records.csv", filters.key(), order)
        for _attempt in range(ATTEMPTS):
            before = self.look()
            self.gate(before)
            version = before.version
            etag = make_etag(version, key)
            if etag_matches(if_none_match, etag):
                return CsvStart(version, etag, None, None)
            pages = queries.iter_records(
                self.path, filters, page_size=page_size, version=version, order=order
            )
            try:
                first = next(pages, [])
            except (DataChanged, DataUnavailable):
                if self.look().version == version:
                    raise
                self.retries += 1
                continue
            return CsvStart(version, etag, first, pages)
        self.refused += 1
        raise DataUnavailable(UPDATING, "updating")

    # warming -----------------------------------------------------------------------

    def default_queries(self) -> list[Query]:
        """What the dashboard and a person opening the API first ask for."""
        span = queries.date_range(self.path)
        period = queries.default_filters(span)
        return [
            self.items(),
            self.lines(),
            self.summary_daily(period),
            self.summary_items(period, DEFAULT_TOP, "good_qty", "desc"),
            self.summary_lines(period, None, "code", "asc"),
            self.pareto(period, None),
            self.kpis(period),
            self.kpis(period.previous_period() or period),
        ]

    def warm(self, version: str) -> int:
        """Fill the cache for ``version`` (blocking); returns how many answers were added."""
        try:
            current = self.look()
            if current.version != version:
                return 0  # already changed again; the next check warms the next one
            warmed = 0
            for query in self.default_queries():
                before = len(self.cache)
                self.fetch(query)
                warmed += len(self.cache) > before
            return warmed
        except (DataUnavailable, DataChanged) as exc:
            log.info("cache warming skipped: %s", exc)
            return 0


DEFAULT_TOP = 20  # summary/items default top-N


def csv_header() -> bytes:
    return "\ufeff".encode() + _csv_rows([list(RECORD_FIELDS)])


def _csv_rows(rows: list[list[object]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf)  # RFC 4180: CRLF line ends, quotes where needed
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


def csv_page(page: list[Record]) -> bytes:
    fields = RECORD_FIELDS
    return _csv_rows([[getattr(r, f) for f in fields] for r in page])
