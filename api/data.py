"""Versioned reads: every answer comes from the published snapshot and is labelled with
its version (``X-DB-Version``) and the time its export was written (``X-Data-As-Of``).

What may be served is decided in one place, :func:`core.serving.serving`: the
published snapshot, or 503 before the first one. A snapshot never changes, so an answer
computed from it is cached under its version until the next publish; the hub warms the
cache for the next snapshot before switching to it.

Everything here blocks but :meth:`DataSource.answer`, which the routes await: it runs
:meth:`DataSource.fetch` on a worker thread, a records page in its own lane.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import orjson
from pydantic import BaseModel, TypeAdapter

from api.cache import VersionedCache
from api.models import (
    DailyOut,
    ItemsOut,
    ItemSummaryOut,
    LinesOut,
    LineSummaryOut,
    ParetoOut,
)
from core import queries
from core.eventlog import iso
from core.queries import RECORD_FIELDS, DataUnavailable, Filters, Order, Record
from core.serving import Serving, serving
from core.store import Store

if TYPE_CHECKING:
    from core.hub import Hub

log = logging.getLogger(__name__)

Span = tuple[date | None, date | None]  # a snapshot's first and last work_date


@dataclass(frozen=True, slots=True)
class Query:
    """A cacheable read: its key and how to compute its JSON body from a snapshot.

    With ``filters`` (at ``key[1]`` as ``filters.key()``), the key is made canonical
    for each snapshot (:meth:`key_for`): date bounds covering the snapshot's whole range
    are dropped, so a year given by dates shares the warmed "all the data" answer.
    """

    key: tuple[Hashable, ...]
    compute: Callable[[Path], bytes]
    filters: Filters | None = None
    many_rows: bool = False  # a page of rows, not an aggregate: read in the records lane

    def key_for(self, span: Span) -> tuple[Hashable, ...]:
        if self.filters is None:
            return self.key
        canonical = self.filters.within(*span)
        if canonical is self.filters:
            return self.key
        return (self.key[0], canonical.key(), *self.key[2:])


@dataclass(frozen=True, slots=True)
class Served:
    version: str
    as_of: str  # ISO-8601 UTC: when the ERP wrote the export
    etag: str
    body: bytes | None  # None: the client's copy is current (304)


@dataclass(slots=True)
class CsvStart:
    version: str
    as_of: str
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


_KPIS = TypeAdapter(queries.Kpis)


class DataSource:
    """Cached reads of the published snapshot of one store; with a hub in the process,
    its words say why nothing is served yet."""

    def __init__(
        self,
        store: Store,
        *,
        hub: Hub | None = None,
        cache: VersionedCache | None = None,
        retry_after: float = 10.0,
        record_readers: int = 1,
    ) -> None:
        self.store = store
        self.hub = hub
        self.cache = cache or VersionedCache()
        self.retry_after_s = max(1, math.ceil(retry_after))
        # URL as sent -> canonical query key, for URLs the routes have answered before.
        self._raw: OrderedDict[RawKey, Query] = OrderedDict()
        self._raw_lock = threading.Lock()
        self._spans: dict[str, Span] = {}  # snapshot version -> its work_date span
        # Reads that turn many rows into Python objects take the GIL back at every row;
        # a few of them at once in one process are slower together than in turn, so they
        # queue for ``record_readers`` threads. Aggregates (few rows, the work in SQLite)
        # keep the shared pool.
        self._records_lane = anyio.CapacityLimiter(record_readers)

    def retry_after(self, exc: DataUnavailable) -> int:
        return self.retry_after_s

    def serving(self) -> Serving:
        """The snapshot to answer from now, or DataUnavailable (503)."""
        try:
            current = serving(self.store)
        except DataUnavailable:
            if self.hub is None:
                raise
            # Nothing published: say why, in the hub's status line (built only now).
            current = serving(self.store, self.hub.message)
        self.cache.observe(current.version)
        return current

    # reads -------------------------------------------------------------------------

    def span(self, version: str, path: Path) -> Span:
        """The first and last work_date of the snapshot ``version`` (read once)."""
        span = self._spans.get(version)
        if span is None:
            span = queries.work_date_span(path)
            if len(self._spans) >= 4:  # the served snapshot and the one being warmed
                self._spans.clear()
            self._spans[version] = span
        return span

    def key_of(self, query: Query, current: Serving) -> tuple[Hashable, ...]:
        if query.filters is None:
            return query.key
        return query.key_for(self.span(current.version, current.path))

    def fetch(self, query: Query, if_none_match: str | None = None) -> Served:
        """The body of ``query`` from the published snapshot (blocking)."""
        current = self.serving()
        version, as_of = current.version, iso(current.published.as_of)
        key = self.key_of(query, current)
        etag = make_etag(version, key)
        if etag_matches(if_none_match, etag):
            return Served(version, as_of, etag, None)
        body = self.cache.get(version, key)
        if body is None:
            body = query.compute(current.path)
            self.cache.put(version, key, body)
        return Served(version, as_of, etag, body)

    async def answer(self, query: Query, if_none_match: str | None = None) -> Served:
        """:meth:`fetch` on a worker thread (a page of records in the records lane)."""
        lane = self._records_lane if query.many_rows else None
        return await anyio.to_thread.run_sync(self.fetch, query, if_none_match, limiter=lane)

    def remember(self, raw: RawKey, query: Query) -> None:
        """Note that the URL ``raw`` asks for ``query`` (bounded, LRU)."""
        with self._raw_lock:
            self._raw[raw] = query
            self._raw.move_to_end(raw)
            if len(self._raw) > RAW_INDEX_SIZE:
                self._raw.popitem(last=False)

    def known(self, raw: RawKey) -> Query | None:
        """The query a URL asked for before, if the routes have answered it (no I/O)."""
        return self._raw.get(raw)

    def fetch_hit(self, query: Query, if_none_match: str | None) -> Served | None:
        """The cached answer to ``query`` for the published snapshot; None: let the route
        handle it (not cached, or nothing to serve)."""
        try:
            current = self.serving()
            key = self.key_of(query, current)
        except DataUnavailable:
            return None
        version, as_of = current.version, iso(current.published.as_of)
        etag = make_etag(version, key)
        if etag_matches(if_none_match, etag):
            return Served(version, as_of, etag, None)
        body = self.cache.get(version, key)
        return None if body is None else Served(version, as_of, etag, body)

    def serving_now(self) -> tuple[Serving | None, DataUnavailable | None]:
        """The snapshot served now, or why there is none."""
        try:
            return self.serving(), None
        except DataUnavailable as exc:
            return None, exc

    # queries -----------------------------------------------------------------------

    def items(self) -> Query:
        return Query(("items",), lambda p: _json(ItemsOut(items=queries.items(p))))

    def lines(self) -> Query:
        return Query(("lines",), lambda p: _json(LinesOut(lines=queries.lines(p))))

    def records(self, filters: Filters, limit: int, cursor: str | None, order: Order) -> Query:
        if cursor:
            queries.decode_cursor(cursor, order)  # a bad cursor is a 422 before any read

        def compute(path: Path) -> bytes:
            # The bytes RecordsOut's model_dump_json gives (tests/api check), 2-3x faster.
            rows, nxt = queries.record_rows(path, filters, limit, cursor, order)
            fields = RECORD_FIELDS
            return orjson.dumps({"records": [dict(zip(fields, r, strict=True)) for r in rows],
                                 "next_cursor": nxt})

        return Query(("records", filters.key(), limit, cursor, order), compute, filters,
                     many_rows=True)

    def summary_daily(self, filters: Filters) -> Query:
        return Query(
            ("summary/daily", filters.key()),
            lambda p: _json(DailyOut(days=queries.summary_daily(p, filters))), filters,
        )

    def summary_items(self, filters: Filters, limit: int | None, sort: str,
                      order: Order) -> Query:
        def compute(path: Path) -> bytes:
            rows = queries.summary_items(path, filters, limit=limit, sort=sort, order=order)
            return _json(ItemSummaryOut(items=rows))

        return Query(("summary/items", filters.key(), limit, sort, order), compute, filters)

    def summary_lines(self, filters: Filters, limit: int | None, sort: str,
                      order: Order) -> Query:
        def compute(path: Path) -> bytes:
            rows = queries.summary_lines(path, filters, limit=limit, sort=sort, order=order)
            return _json(LineSummaryOut(lines=rows))

        return Query(("summary/lines", filters.key(), limit, sort, order), compute, filters)

    def pareto(self, filters: Filters, limit: int | None) -> Query:
        return Query(
            ("defects/pareto", filters.key(), limit),
            lambda p: _json(ParetoOut(defects=queries.defects_pareto(p, filters, limit=limit))),
            filters,
        )

    def kpis(self, filters: Filters) -> Query:
        return Query(("kpis", filters.key()),
                     lambda p: _KPIS.dump_json(queries.kpis(p, filters)), filters)

    # CSV ---------------------------------------------------------------------------

    def open_csv(self, filters: Filters, order: Order, if_none_match: str | None,
                 page_size: int = 5000) -> CsvStart:
        """Read the first page of a CSV export (blocking); the rest follows page by page
        from the same snapshot (which stays in the store for one more publish)."""
        current = self.serving()
        version, as_of = current.version, iso(current.published.as_of)
        etag = make_etag(version, ("records.csv", filters.key(), order))
        if etag_matches(if_none_match, etag):
            return CsvStart(version, as_of, etag, None, None)
        pages = queries.iter_records(current.path, filters, page_size=page_size, order=order)
        first = next(pages, [])
        return CsvStart(version, as_of, etag, first, pages)

    # warming -----------------------------------------------------------------------

    def first_queries(self, path: Path) -> list[Query]:
        """What the dashboard and a person opening the API ask for first, warmed before a
        snapshot is published: the daily summary of all the data (the longest, first),
        then the default period's views and first records pages."""
        span = queries.date_range(path)
        period = queries.default_filters(span)
        return [
            self.summary_daily(Filters()),
            self.items(),
            self.lines(),
            self.summary_daily(period),
            self.summary_items(period, DEFAULT_TOP, "good_qty", "desc"),
            self.summary_lines(period, None, "code", "asc"),
            self.pareto(period, None),
            self.kpis(period),
            self.kpis(period.previous_period() or period),
            # The first page of records: the route's default size and the dashboard's.
            *(self.records(period, n, None, "asc") for n in FIRST_PAGES),
        ]

    def later_queries(self) -> list[Query]:
        """The other summaries of all the data, warmed right after the publish (seconds
        on a large snapshot: they would hold the publish back)."""
        everything = Filters()
        return [
            self.summary_items(everything, DEFAULT_TOP, "good_qty", "desc"),
            self.summary_lines(everything, None, "code", "asc"),
            self.kpis(everything),
        ]

    def default_queries(self, path: Path) -> list[Query]:
        """Everything warmed for a new snapshot, before and after its publish."""
        return [*self.first_queries(path), *self.later_queries()]

    def warm(self, version: str, path: Path, todo: list[Query] | None = None) -> int:
        """Compute answers (default: :meth:`default_queries`) for the snapshot
        ``version`` at ``path`` (blocking): before it is published, they wait aside
        (:meth:`VersionedCache.begin`); returns how many were cached."""
        if version != self.cache.version:
            self.cache.begin(version)
        warmed = 0
        try:
            span = self.span(version, path)
            for query in self.default_queries(path) if todo is None else todo:
                self.cache.put(version, query.key_for(span), query.compute(path))
                warmed += 1
        except DataUnavailable as exc:
            log.info("cache warming stopped: %s", exc)
        return warmed


DEFAULT_TOP = 20  # summary/items default top-N
FIRST_PAGES = (100, 50)  # records: the route's default page size, the dashboard's first

