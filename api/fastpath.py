"""Answers without routing, for the requests that dominate the load.

1. Cache hits: a URL the routes have answered before, whose answer is cached for the
   current DB version, is sent straight from the cache.
2. The records route: a ``GET /records`` whose parameters are all valid by the route's
   own rules is answered here, with the same query, cache entry, ETag and headers as the
   route would give. Anything else (an unknown or repeated parameter, a value the route
   would refuse, nothing published yet) goes to the route, which answers it (a 422 in
   FastAPI's shape, a 503): the fast path never decides an error.

Which snapshot is served is still asked on every request, so an answer from here is
exactly as fresh as a routed one; only FastAPI's parameter parsing and dependency
resolution are skipped (about two thirds of a routed request's time).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import anyio
from pydantic import ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from api.data import DataSource, Query, Served, raw_key
from api.params import PAGE, RECORDS, Page
from core.queries import DataUnavailable, Filters, InvalidQuery, decode_cursor


def records_query(source: DataSource, query_string: bytes) -> Query | None:
    """The records query a valid query string asks for, exactly as the route would build
    it (the same table of parameters, :mod:`api.params`, parsed the same way); None when
    the route must decide (anything it refuses, an unknown or repeated parameter)."""
    try:
        pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    except ValueError:  # pragma: no cover - parse_qsl is lenient
        return None
    values: dict[str, Any] = {}
    try:
        for name, raw in pairs:
            param = RECORDS.get(name)
            if param is None or name in values:
                return None
            values[name] = param.parse(raw)
        page = Page(**{p.name: values.pop(p.name) for p in PAGE if p.name in values})
        filters = Filters(**values)
        if page.cursor:
            decode_cursor(page.cursor, page.order)
    except (ValidationError, InvalidQuery):
        return None
    return source.records(filters, page.limit, page.cursor, page.order)


async def send_served(send: Send, served: Served) -> None:
    headers = [(b"etag", served.etag.encode()),
               (b"x-db-version", served.version.encode()),
               (b"x-data-as-of", served.as_of.encode()),
               (b"cache-control", b"no-cache")]
    if served.body is None:
        await send({"type": "http.response.start", "status": 304, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return
    headers += [(b"content-type", b"application/json"),
                (b"content-length", str(len(served.body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": served.body})


def _if_none_match(scope: Scope) -> str | None:
    inm = None
    for name, value in scope["headers"]:
        if name == b"if-none-match":
            inm = value.decode("latin-1")
    return inm


class CacheHitMiddleware:
    def __init__(self, app: ASGIApp, source: DataSource, prefix: str) -> None:
        self.app = app
        self.source = source
        self.prefix = prefix
        self.records_path = f"{prefix}/records"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope["method"] != "GET"
                or not scope["path"].startswith(self.prefix)):
            await self.app(scope, receive, send)
            return
        query = self.source.known(raw_key(scope))
        if query is not None:
            served = await anyio.to_thread.run_sync(
                self.source.fetch_hit, query, _if_none_match(scope))
            if served is not None:
                await send_served(send, served)
                return
        elif scope["path"] == self.records_path:
            query = records_query(self.source, scope["query_string"])
            if query is not None:
                try:
                    served = await self.source.answer(query, _if_none_match(scope))
                except DataUnavailable:
                    pass  # the route answers (503 with Retry-After)
                else:
                    await send_served(send, served)
                    return
        await self.app(scope, receive, send)  # not cached, or nothing to serve
