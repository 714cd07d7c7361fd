"""The records parameters' one table (api/params.py), checked at every bound it declares:
just inside and just outside each, on the fast path and on the route alone, byte for
byte. The cases are generated from the table, so a bound changed there is tested here."""

from __future__ import annotations

import types
import typing
from datetime import date
from typing import Any
from urllib.parse import quote

import annotated_types as at
import httpx
import pytest

from api import fastpath
from api.params import RECORDS, Param
from tests.api.conftest import V1

HEADERS = ("etag", "x-db-version", "x-data-as-of", "cache-control", "content-type",
           "content-length")


def _base(annotation: Any) -> tuple[Any, list[Any]]:
    """The type under ``Annotated`` (``None`` taken out of a union) and the constraints."""
    constraints: list[Any] = []
    while True:
        if typing.get_origin(annotation) is typing.Annotated:
            annotation, *meta = typing.get_args(annotation)
            for item in meta:
                constraints.extend(getattr(item, "metadata", []))
            continue
        if typing.get_origin(annotation) in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) == 1:
                annotation = args[0]
                continue
        return annotation, constraints


def bounds(param: Param) -> list[tuple[str, bool]]:
    """(value, within the declared rules) just inside and just outside every bound."""
    base, constraints = _base(param.annotation)
    if base is date:
        return [("2026-03-31", True), ("2024-02-29", True), ("2026-02-30", False),
                ("20260331", False), ("0", False)]
    if typing.get_origin(base) is typing.Literal:
        names = [str(v) for v in typing.get_args(base)]
        return [*((n, True) for n in names), (names[0].swapcase(), False), ("X", False)]
    cases: list[tuple[str, bool]] = []
    for c in constraints:
        if isinstance(c, at.MaxLen):
            cases += [("x" * c.max_length, True), ("x" * (c.max_length + 1), False)]
        elif isinstance(c, at.MinLen) and c.min_length > 0:
            cases += [("x" * c.min_length, True), ("x" * (c.min_length - 1), False)]
        elif isinstance(c, at.Ge):
            cases += [(str(c.ge), True), (str(int(c.ge) - 1), False)]
        elif isinstance(c, at.Le):
            cases += [(str(c.le), True), (str(int(c.le) + 1), False)]
    if base is int:
        cases += [("abc", False), ("1.5", False)]
    return cases


CASES = [(p.name, value, ok) for p in RECORDS.values() for value, ok in bounds(p)]


def test_every_parameter_has_bounds_to_test() -> None:
    for param in RECORDS.values():
        outside = [v for v, ok in bounds(param) if not ok]
        assert outside, f"{param.name}: no bound found in its declaration"


@pytest.fixture
async def routes_seen(client: httpx.AsyncClient) -> list[bytes]:
    """The query strings that reached the routes (passed over by the fast path)."""
    app = client._transport.app  # type: ignore[attr-defined]
    await client.get(f"{V1}/health")  # builds the middleware stack
    node = app.middleware_stack
    while not isinstance(node, fastpath.CacheHitMiddleware):
        node = node.app
    seen: list[bytes] = []
    inner = node.app

    async def routing(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["query_string"])
        await inner(scope, receive, send)

    node.app = routing
    return seen


@pytest.mark.anyio
async def test_each_bound_answers_the_same_on_the_fast_path_and_the_route(
        client: httpx.AsyncClient, routes_seen: list[bytes],
        monkeypatch: pytest.MonkeyPatch) -> None:
    app = client._transport.app  # type: ignore[attr-defined]
    fast: dict[str, httpx.Response] = {}
    answered_fast: dict[str, bool] = {}
    for name, value, _ok in CASES:
        query = f"{name}={quote(value)}"
        routes_seen.clear()
        fast[query] = await client.get(f"{V1}/records?{query}")
        answered_fast[query] = not routes_seen
    monkeypatch.setattr(fastpath, "records_query", lambda *a: None)  # the route alone
    app.state.source.cache.clear()
    for name, value, ok in CASES:
        query = f"{name}={quote(value)}"
        routed = await client.get(f"{V1}/records?{query}")
        got = fast[query]
        assert (got.status_code, got.content) == (routed.status_code, routed.content), query
        for header in HEADERS:
            assert got.headers.get(header) == routed.headers.get(header), (query, header)
        if not ok:  # outside a declared bound: a 422 naming the parameter, by the route
            assert routed.status_code == 422, (query, routed.text)
            assert ["query", name] in [e["loc"] for e in routed.json()["detail"]], routed.text
        # The fast path answers exactly what the route answers with data.
        assert answered_fast[query] == (routed.status_code == 200), (query, routed.text)
