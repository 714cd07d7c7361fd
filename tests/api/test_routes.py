"""Every data route and filter, in-process (httpx ASGITransport), against the model."""

from __future__ import annotations

import csv
import io
import os
import shutil
from collections.abc import Hashable
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from api.app import create_app
from core.checkonce import check_once
from core.config import Config
from core.dbfile import look
from core.erp.erpsim import ExportMode, simulate_export
from core.eventlog import EventLog, iso
from core.publisher import Publisher
from core.store import Published, Store
from tests.api.conftest import V1, current, fetch_all, publish, published_config
from tests.api.oracle import Oracle, group, pareto, totals
from tests.conftest import make_config, make_db

pytestmark = pytest.mark.anyio

MARCH = {"date_from": "2026-03-01", "date_to": "2026-03-15"}
DATA_ROUTES = ["/items", "/lines", "/records", "/records.csv", "/summary/daily",
               "/summary/items", "/summary/lines", "/defects/pareto", "/kpis"]
FILTERED_ROUTES = DATA_ROUTES[2:]
ORDERED_ROUTES = ["/records", "/records.csv", "/summary/items", "/summary/lines"]
INJECTIONS = ["' OR '1'='1", "1; DROP TABLE production_records; --", "\" OR \"\"=\"",
              "%' UNION SELECT sql FROM sqlite_master --", "BR-1001'--", "\\x00",
              "브래킷' OR 1=1 --"]


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)


@pytest.fixture
def oracle(small_db: Path) -> Oracle:
    return Oracle(small_db)


def select(o: Oracle, params: dict[str, str]) -> list[Any]:
    kw: dict[str, Any] = {k: v for k, v in params.items() if k not in ("date_from", "date_to")}
    for k in ("date_from", "date_to"):
        if k in params:
            kw[k] = date.fromisoformat(params[k])
    return o.select(**kw)


def filter_cases(o: Oracle) -> list[dict[str, str]]:
    first = o.rows[5]
    return [
        {},
        MARCH,
        {"date_from": "2026-03-31"},
        {"date_to": "2026-02-01"},
        {"item_code": first.item_code},
        {"line_code": first.line_code, **MARCH},
        {"shift": "D"},
        {"shift": "N", "plant": "P1"},
        {"plant": "P2"},
        {"item_group": "하우징"},
        {"item_code": first.item_code, "line_code": first.line_code, "shift": first.shift,
         "date_from": first.work_date, "date_to": first.work_date},
        {"item_code": "NO-SUCH-ITEM"},
    ]


async def test_master_data(client: httpx.AsyncClient, oracle: Oracle) -> None:
    items = (await client.get(f"{V1}/items")).json()["items"]
    assert [i["item_code"] for i in items] == sorted(oracle.items)
    assert items[0]["item_name"] == oracle.items[items[0]["item_code"]][1]
    lines = (await client.get(f"{V1}/lines")).json()["lines"]
    assert {ln["line_code"]: ln["line_name"] for ln in lines} == {
        c: r[1] for c, r in oracle.lines.items()}
    assert any("공장" in ln["line_name"] for ln in lines)


async def test_every_filter_on_every_aggregate(client: httpx.AsyncClient,
                                               oracle: Oracle) -> None:
    for params in filter_cases(oracle):
        rows = select(oracle, params)
        r = await client.get(f"{V1}/kpis", params=params)
        assert r.status_code == 200 and r.json() == totals(rows), params

        days = (await client.get(f"{V1}/summary/daily", params=params)).json()["days"]
        by_day = group(rows, "work_date")
        assert days == [{"work_date": d, **totals(by_day[d])} for d in sorted(by_day)]

        items = (await client.get(f"{V1}/summary/items",
                                  params={**params, "limit": 1000, "sort": "code",
                                          "order": "asc"})).json()["items"]
        by_item = group(rows, "item_code")
        assert [i["item_code"] for i in items] == sorted(by_item)
        assert all(i["good_qty"] == totals(by_item[i["item_code"]])["good_qty"] for i in items)

        lines = (await client.get(f"{V1}/summary/lines", params=params)).json()["lines"]
        by_line = group(rows, "line_code")
        assert [(ln["line_code"], ln["defect_qty"]) for ln in lines] == [
            (c, totals(by_line[c])["defect_qty"]) for c in sorted(by_line)]

        defects = (await client.get(f"{V1}/defects/pareto", params=params)).json()["defects"]
        assert [(d["defect_code"], d["qty"]) for d in defects] == pareto(oracle, rows)

        page = (await client.get(f"{V1}/records", params={**params, "limit": 1000})).json()
        assert [r["record_id"] for r in page["records"]] == [
            r.record_id for r in sorted(rows, key=lambda r: (r.work_date, r.record_id))
        ][:1000]


async def test_top_n_and_sorts(client: httpx.AsyncClient) -> None:
    r = await client.get(f"{V1}/summary/items", params={**MARCH, "limit": 3,
                                                        "sort": "defect_rate"})
    top = r.json()["items"]
    assert len(top) == 3
    rates = [i["defect_rate"] for i in top]
    assert rates == sorted(rates, reverse=True)
    default = (await client.get(f"{V1}/summary/items")).json()["items"]
    assert len(default) == 20
    goods = [i["good_qty"] for i in default]
    assert goods == sorted(goods, reverse=True)
    lines = (await client.get(f"{V1}/summary/lines",
                              params={"sort": "achievement", "order": "asc", "limit": 4})).json()
    ach = [ln["achievement"] for ln in lines["lines"]]
    assert len(ach) == 4 and ach == sorted(ach)
    pareto_top = (await client.get(f"{V1}/defects/pareto", params={"limit": 2})).json()
    assert len(pareto_top["defects"]) == 2
    assert pareto_top["defects"][1]["cumulative_share"] < 1


async def test_pagination_over_many_pages(client: httpx.AsyncClient, oracle: Oracle) -> None:
    for order, params in (("asc", {}), ("desc", {"shift": "N"}), ("asc", {"plant": "P2"})):
        expected = [r.record_id for r in sorted(select(oracle, params),
                                                key=lambda r: (r.work_date, r.record_id),
                                                reverse=order == "desc")]
        seen: list[int] = []
        cursor: str | None = None
        pages = 0
        while True:
            query = {**params, "limit": 23, "order": order}
            if cursor:
                query["cursor"] = cursor
            body = (await client.get(f"{V1}/records", params=query)).json()
            seen += [r["record_id"] for r in body["records"]]
            pages += 1
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert pages > 20
        assert len(seen) == len(set(seen)), "duplicates across pages"
        assert seen == expected, "gaps or wrong order"


async def test_csv_bytes(client: httpx.AsyncClient, oracle: Oracle) -> None:
    r = await client.get(f"{V1}/records.csv", params={"plant": "P1"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in r.headers["content-disposition"]
    assert r.headers["x-db-version"] and r.headers["etag"]
    raw = r.content
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads UTF-8
    text = raw.decode("utf-8-sig")
    assert "공장" in text and "\r\n" in text
    rows = list(csv.DictReader(io.StringIO(text)))
    expected = sorted(select(oracle, {"plant": "P1"}), key=lambda r: (r.work_date, r.record_id))
    assert [int(row["record_id"]) for row in rows] == [r.record_id for r in expected]
    first = rows[0]
    assert first["item_name"] == oracle.items[first["item_code"]][1]
    assert int(first["good_qty"]) == expected[0].good_qty
    again = await client.get(f"{V1}/records.csv", params={"plant": "P1"},
                             headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    empty = await client.get(f"{V1}/records.csv", params={"item_code": "NONE"})
    assert empty.content.decode("utf-8-sig").strip() == ",".join(next(iter([list(first)])))


async def test_etag_304_and_headers(client: httpx.AsyncClient, api_config: Config) -> None:
    published = current(api_config)
    version = published.version
    assert version != look(api_config.db_path).version  # the snapshot's, not the file's
    as_of = iso(published.as_of)
    moment = datetime.fromisoformat(as_of.replace("Z", "+00:00"))
    assert moment.utcoffset() == timedelta(0)  # ISO-8601, UTC
    assert abs((moment - published.as_of).total_seconds()) < 0.001
    etags = set()
    for route in DATA_ROUTES:
        r = await client.get(f"{V1}{route}")
        assert r.status_code == 200, route
        assert r.headers["x-db-version"] == version
        assert r.headers["x-data-as-of"] == as_of
        assert r.headers["cache-control"] == "no-cache"
        etag = r.headers["etag"]
        assert etag.startswith(f'"{version}-') and etag.endswith('"')
        etags.add(etag)
        for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
            again = await client.get(f"{V1}{route}", headers={"If-None-Match": header})
            assert again.status_code == 304, (route, header)
            assert again.headers["etag"] == etag
            assert again.headers["x-db-version"] == version
            assert again.headers["x-data-as-of"] == as_of
        stale = await client.get(f"{V1}{route}", headers={"If-None-Match": '"old-etag"'})
        assert stale.status_code == 200
    assert len(etags) == len(DATA_ROUTES)  # the query is part of the tag
    a = (await client.get(f"{V1}/kpis", params={"shift": "D"})).headers["etag"]
    b = (await client.get(f"{V1}/kpis", params={"shift": "N"})).headers["etag"]
    assert a != b


@pytest.mark.parametrize("in_place", [False, True])
async def test_data_as_of_is_when_the_erp_wrote_the_export(
    tmp_path: Path, small_db: Path, in_place: bool
) -> None:
    erp_wrote = datetime(2026, 3, 31, 22, 0, tzinfo=UTC)
    os.utime(small_db, (erp_wrote.timestamp(), erp_wrote.timestamp()))
    config = await anyio.to_thread.run_sync(
        partial(published_config, tmp_path, small_db, heal={"in_place": in_place}))
    transport = httpx.ASGITransport(app=create_app(config))
    async with httpx.AsyncClient(transport=transport, base_url="http://x") as c:
        r = await c.get(f"{V1}/kpis")
    assert r.status_code == 200
    assert r.headers["x-data-as-of"] == iso(erp_wrote)


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("date_from=2026-13-01", "date_from"),
        ("date_from=yesterday", "date_from"),
        ("date_to=2026-02-30", "date_to"),
        # Not read as Unix times (pydantic's lax date would: 1970-01-01, 1970-01-02).
        ("date_to=0", "date_to"),
        ("date_from=0", "date_from"),
        ("date_from=86400", "date_from"),
        ("date_to=1772323200", "date_to"),
        ("date_from=86400.0", "date_from"),
        # Only YYYY-MM-DD, no other ISO 8601 spellings.
        ("date_from=20260301", "date_from"),
        ("date_from=2026-03-01T00:00:00", "date_from"),
        ("date_to=2026-W09-1", "date_to"),
        ("date_from=2026-3-1", "date_from"),
        ("date_from=%EF%BC%92026-03-01", "date_from"),  # a full-width digit
        ("date_to=2026-03-01%20", "date_to"),
        ("date_from=2026-03-02&date_to=2026-03-01", "date_to"),
        ("limit=1001", "limit"),
        ("limit=0", "limit"),
        ("limit=ten", "limit"),
        ("shift=X", "shift"),
        ("shift=d", "shift"),
        ("order=sideways", "order"),
        ("cursor=not-a-cursor", "cursor"),
        ("item_code=" + "A" * 65, "item_code"),
        ("line_code=", "line_code"),
    ],
)
async def test_422_names_the_parameter(client: httpx.AsyncClient, query: str,
                                       param: str) -> None:
    r = await client.get(f"{V1}/records?{query}")
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert any(e["loc"] == ["query", param] for e in detail), detail
    assert all(isinstance(e["msg"], str) and e["msg"] for e in detail)


async def test_dates_are_iso_calendar_dates_on_every_route(
    client: httpx.AsyncClient, oracle: Oracle
) -> None:
    for route in FILTERED_ROUTES:
        for param, value in (("date_to", "0"), ("date_from", "0"), ("date_from", "86400")):
            r = await client.get(f"{V1}{route}", params={param: value})
            assert r.status_code == 422, (route, param, value)
            [error] = r.json()["detail"]
            assert error["loc"] == ["query", param], (route, error)
            assert "YYYY-MM-DD" in error["msg"] and repr(value) in error["msg"]
        r = await client.get(f"{V1}{route}", params=MARCH)
        assert r.status_code == 200, route
    r = await client.get(f"{V1}/kpis", params=MARCH)
    assert r.json() == totals(select(oracle, MARCH))


async def test_422_on_summaries(client: httpx.AsyncClient) -> None:
    for url, param in ((f"{V1}/summary/items?sort=price", "sort"),
                       (f"{V1}/summary/lines?order=up", "order"),
                       (f"{V1}/defects/pareto?limit=-1", "limit"),
                       (f"{V1}/kpis?date_to=2026-01-01&date_from=2026-02-01", "date_to"),
                       (f"{V1}/records.csv?shift=Z", "shift")):
        r = await client.get(url)
        assert r.status_code == 422, url
        assert any(e["loc"][-1] == param for e in r.json()["detail"]), url


async def test_cursor_for_another_order(client: httpx.AsyncClient) -> None:
    cursor = (await client.get(f"{V1}/records?limit=5")).json()["next_cursor"]
    r = await client.get(f"{V1}/records", params={"cursor": cursor, "order": "desc"})
    assert r.status_code == 422
    assert "order=asc" in r.json()["detail"][0]["msg"]


async def test_sql_injection_shaped_values_in_every_parameter(
    client: httpx.AsyncClient, small_db: Path, api_config: Config
) -> None:
    before = look(small_db).version
    snapshot = Store(api_config.store_dir)
    snapshot_file = snapshot.path_of(current(api_config))
    snapshot_before = look(snapshot_file)
    text_params = ["item_code", "line_code", "plant", "item_group"]
    for value in INJECTIONS:
        for route in FILTERED_ROUTES:
            for param in text_params:
                r = await client.get(f"{V1}{route}", params={param: value})
                assert r.status_code == 200, (route, param, value)
                if route == "/kpis":
                    assert r.json()["records"] == 0
            checked = ("date_from", "date_to", "shift")
            if route in ORDERED_ROUTES:
                checked += ("order",)
            for param in checked:
                r = await client.get(f"{V1}{route}", params={param: value})
                assert r.status_code == 422, (route, param, value)
        for param in ("limit", "cursor"):
            r = await client.get(f"{V1}/records", params={param: value})
            assert r.status_code == 422, (param, value)
        for route in ("/summary/items", "/summary/lines", "/defects/pareto"):
            params = ("sort", "limit") if route != "/defects/pareto" else ("limit",)
            for param in params:
                r = await client.get(f"{V1}{route}", params={param: value})
                assert r.status_code == 422, (route, param, value)
    # Everything still there, nothing written.
    assert look(small_db).version == before
    assert look(snapshot_file) == snapshot_before
    r = await client.get(f"{V1}/kpis")
    assert r.json()["records"] == 2000


async def test_503_only_before_anything_is_published(tmp_path: Path, small_db: Path) -> None:
    config = make_config(tmp_path / "fresh", db=small_db)  # a store nothing was published to
    app = create_app(config)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://x") as c:
        for route in DATA_ROUTES:
            r = await c.get(f"{V1}{route}")
            assert r.status_code == 503, route
            assert r.json()["detail"].startswith("no data published yet"), r.json()
            assert int(r.headers["retry-after"]) >= 1
            assert r.headers["cache-control"] == "no-store"
            assert "x-db-version" not in r.headers
        # The fast path does not answer for nothing either (the URL is known by now).
        again = await c.get(f"{V1}/kpis", headers={"If-None-Match": "*"})
        assert again.status_code == 503
        health = (await c.get(f"{V1}/health")).json()
        assert health["db"] == {"exists": False, "version": "", "as_of": None,
                                "available": False, "reason": r.json()["detail"]}
        # Once the hub (here: pdh check) publishes, the same app serves it, no restart.
        published = await anyio.to_thread.run_sync(publish, config)
        r = await c.get(f"{V1}/kpis")
        assert r.status_code == 200 and r.json()["records"] == 2000
        assert r.headers["x-db-version"] == published.version
        health = (await c.get(f"{V1}/health")).json()
        assert health["db"]["available"] is True and health["db"]["exists"] is True
        assert health["db"]["version"] == published.version


async def test_the_last_snapshot_is_served_whatever_the_erps_file_is_doing(
    client: httpx.AsyncClient, api_config: Config, small_db: Path, tmp_path: Path
) -> None:
    """Being written, gone, empty, not a database: readers get the last snapshot (200)."""
    served = current(api_config)
    expected = {route: (await client.get(f"{V1}{route}")).content for route in DATA_ROUTES}
    keep = tmp_path / "keep.db"
    shutil.copyfile(small_db, keep)
    journal = small_db.with_name(small_db.name + "-journal")

    def being_written() -> None:
        _write(journal, b"\0" * 512)

    def gone() -> None:
        journal.unlink()
        os.remove(small_db)

    breakers = {"being written": being_written, "missing": gone,
                "empty": lambda: _write(small_db, b""),
                "not a database": lambda: _write(
                    small_db, b"PK\x03\x04 this is a zip, not a database" * 50)}
    for case, breaker in breakers.items():
        breaker()
        for route in DATA_ROUTES:
            r = await client.get(f"{V1}{route}")
            assert r.status_code == 200, (case, route)
            assert r.headers["x-db-version"] == served.version, (case, route)
            assert r.content == expected[route], (case, route)
        health = (await client.get(f"{V1}/health")).json()["db"]
        assert health["available"] is True and health["version"] == served.version, case
    # pdh check holds the broken export back; readers keep the last snapshot still.
    outcome = await anyio.to_thread.run_sync(check_once, api_config)
    assert outcome.publish == "held_back", outcome
    assert current(api_config) == served
    r = await client.get(f"{V1}/kpis")
    assert r.status_code == 200 and r.json()["records"] == 2000
    shutil.copyfile(keep, small_db)
    r = await client.get(f"{V1}/kpis")
    assert r.status_code == 200 and r.headers["x-db-version"] == served.version


async def test_standalone_hub_routes_say_no_hub(client: httpx.AsyncClient) -> None:
    for method, url, body in (("GET", "/hub/status", None), ("POST", "/hub/check", None),
                              ("PUT", "/hub/auto-mode", {"auto_mode": False}),
                              ("POST", "/hub/publish", {"force": True})):
        r = await client.request(method, f"{V1}{url}", json=body)
        assert r.status_code == 503
        assert r.json() == {"detail": "no hub in this process"}
    health = (await client.get(f"{V1}/health")).json()
    assert health["status"] == "ok" and health["hub"] is False


async def test_unknown_route_and_method_are_json(client: httpx.AsyncClient) -> None:
    r = await client.get(f"{V1}/nope")
    assert r.status_code == 404 and r.json()["detail"]
    r = await client.delete(f"{V1}/records")
    assert r.status_code == 405


async def test_openapi_is_a_true_spec(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    paths = spec["paths"]
    for route in DATA_ROUTES + ["/health", "/hub/status"]:
        assert f"{V1}{route}" in paths, route
    assert "post" in paths[f"{V1}/hub/check"] and "put" in paths[f"{V1}/hub/auto-mode"]
    publish_op = paths[f"{V1}/hub/publish"]["post"]
    assert {"200", "409", "422"} <= set(publish_op["responses"])
    records = paths[f"{V1}/records"]["get"]
    names = {p["name"] for p in records["parameters"]}
    assert names >= {"date_from", "date_to", "item_code", "line_code", "shift", "limit",
                     "cursor", "plant", "item_group", "order"}
    assert "503" in records["responses"] and "304" in records["responses"]
    for status in ("200", "304"):
        assert {"ETag", "X-DB-Version", "X-Data-As-Of"} <= set(
            records["responses"][status]["headers"]), status
    schema = records["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/RecordsOut")
    assert "StatusSnapshot" in spec["components"]["schemas"]
    assert "HTTPValidationError" not in spec["components"]["schemas"]  # one 422 shape
    assert (await client.get("/docs")).status_code == 200


def _param(operation: dict[str, Any], name: str) -> dict[str, Any]:
    [found] = [p for p in operation["parameters"] if p["name"] == name]
    return found


async def test_openapi_states_the_rules_it_enforces(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    paths = spec["paths"]
    for route in DATA_ROUTES:
        op = paths[f"{V1}{route}"]["get"]
        responses = op["responses"]
        invalid = responses["422"]
        assert invalid["content"]["application/json"]["schema"]["$ref"].endswith(
            "/InvalidOut"), route
        assert responses["503"]["headers"]["Retry-After"]["required"] is True, route
        assert set(responses["304"]["headers"]) == {"ETag", "X-DB-Version",
                                                    "X-Data-As-Of"}, route
        assert "If-None-Match" in responses["304"]["description"], route
        assert _param(op, "if-none-match")["in"] == "header", route
        if route not in FILTERED_ROUTES:
            continue
        assert "`date_to` before `date_from`" in invalid["description"], route
        for name in ("date_from", "date_to"):
            date_param = _param(op, name)
            assert {"type": "string", "format": "date"} in date_param["schema"]["anyOf"]
            assert "YYYY-MM-DD" in date_param["description"], (route, name)
        assert "not before `date_from`" in _param(op, "date_to")["description"]
        if any(p["name"] == "limit" for p in op["parameters"]):
            limit = _param(op, "limit")
            bounds = limit["schema"].get("anyOf", [limit["schema"]])[0]
            assert (bounds["minimum"], bounds["maximum"]) == (1, 1000), route
            assert "1..1000" in limit["description"] and "`limit`" in invalid["description"]
    records = paths[f"{V1}/records"]["get"]
    cursor = _param(records, "cursor")["description"]
    assert "opaque" in cursor and "`next_cursor`" in cursor
    assert "`cursor` not a `next_cursor`" in records["responses"]["422"]["description"]
    auto = paths[f"{V1}/hub/auto-mode"]["put"]
    assert "JSON boolean" in auto["responses"]["422"]["description"]
    body = spec["components"]["schemas"]["AutoModeIn"]
    assert body["properties"]["auto_mode"]["type"] == "boolean"
    assert body["required"] == ["auto_mode"] and body["additionalProperties"] is False


async def test_repeated_urls_skip_routing_but_not_the_freshness_checks(
    client: httpx.AsyncClient, api_config: Config, small_db: Path, tmp_path: Path
) -> None:
    """A URL answered before is sent from the cache without routing (the route's fetch
    is not called), yet the first request after a publish has the new snapshot."""
    source = client._transport.app.state.source  # type: ignore[attr-defined]
    routed: list[tuple[Hashable, ...]] = []
    fetch = source.fetch

    def counting_fetch(query: Any, if_none_match: str | None = None) -> Any:
        routed.append(query.key)
        return fetch(query, if_none_match)

    source.fetch = counting_fetch
    url = f"{V1}/summary/lines"  # one of the answers the hub warms before a publish
    first = await client.get(url)
    assert first.status_code == 200 and len(routed) == 1
    hits = source.cache.hits
    second = await client.get(url)
    assert len(routed) == 1, "a repeated URL went through routing"
    assert source.cache.hits == hits + 1
    assert second.content == first.content
    for header in ("etag", "x-db-version", "x-data-as-of", "cache-control", "content-type"):
        assert second.headers[header] == first.headers[header]
    r = await client.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert r.status_code == 304 and len(routed) == 1
    assert r.headers["x-data-as-of"] == first.headers["x-data-as-of"]
    # The ERP's file changes: nothing is published, the fast path keeps the snapshot.
    _write(small_db.with_name(small_db.name + "-journal"), b"\0" * 512)
    r = await client.get(url)
    assert r.status_code == 200 and r.content == first.content and len(routed) == 1
    small_db.with_name(small_db.name + "-journal").unlink()
    other = make_db(tmp_path / "export" / "other.db", rows=1200, seed=5)
    os.replace(other, small_db)
    r = await client.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert r.status_code == 304 and len(routed) == 1
    # Published (cold cache): the first request after it has the new data, routed.
    published = await anyio.to_thread.run_sync(publish, api_config)
    r = await client.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert r.status_code == 200 and r.headers["x-db-version"] == published.version
    assert r.content != first.content and len(routed) == 2
    again = await client.get(url)
    assert again.content == r.content and len(routed) == 2  # then the fast path again
    assert (await client.get(f"{V1}/kpis")).json()["records"] == 1200
    # Published as the hub does, warmed first: the first request after the switch has
    # the new snapshot from the fast path, not from routing.
    await anyio.to_thread.run_sync(partial(
        simulate_export, small_db, ExportMode.REPLACE, rows=1000, seconds=0, seed=6, days=30))
    publisher = Publisher(api_config, EventLog(None))

    async def warm(snapshot: Published, path: Path) -> None:
        await anyio.to_thread.run_sync(source.warm, snapshot.version, path)

    publisher.add_before_publish(warm)
    await publisher.start()
    outcome = await publisher.publish_export(await anyio.to_thread.run_sync(look, small_db))
    assert outcome.published is not None, outcome
    n = len(routed)
    r = await client.get(url, headers={"If-None-Match": again.headers["etag"]})
    assert r.status_code == 200 and r.headers["x-db-version"] == outcome.published.version
    assert len(routed) == n, "the warmed answer went through routing"
    lines = {ln["line_code"]: ln["records"] for ln in r.json()["lines"]}
    assert sum(lines.values()) == 1000
    assert lines == {code: n for code, n in fetch_all(
        small_db, "SELECT line_code, count(*) FROM production_records GROUP BY line_code")}


async def test_an_unexpected_error_is_a_json_500_without_traceback(
    api_config: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from api.app import create_app
    from api.data import DataSource

    class Broken(DataSource):
        def fetch(self, query: Any, if_none_match: str | None = None) -> Any:
            raise RuntimeError("a bug")

    app = create_app(api_config, source=Broken(Store(api_config.store_dir)))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://x") as c:
        r = await c.get(f"{V1}/kpis")
    assert r.status_code == 500
    assert r.json() == {"detail": "internal error; see the hub's log"}
    assert "Traceback" not in r.text and "a bug" not in r.text
    assert any("internal error on GET /api/v1/kpis" in rec.message for rec in caplog.records)


def test_route_sort_names_are_the_core_whitelist() -> None:
    from typing import get_args

    from api.routes import SortName
    from core.queries import SORTS

    assert set(get_args(SortName)) == set(SORTS)


async def test_dates_covering_the_whole_snapshot_share_the_all_data_answer(
    client: httpx.AsyncClient, small_db: Path
) -> None:
    """A year given by dates that cover all the snapshot's data is the "all data" query:
    the same ETag and body, answered from the cache entry the hub warms."""
    source = client._transport.app.state.source  # type: ignore[attr-defined]
    [(first, last)] = fetch_all(
        small_db, "SELECT MIN(work_date), MAX(work_date) FROM production_records")
    lo, hi = date.fromisoformat(first), date.fromisoformat(last)
    for route in ("summary/daily", "kpis", "summary/items", "summary/lines", "defects/pareto"):
        everything = await client.get(f"{V1}/{route}")
        hits = source.cache.hits
        for query in (f"date_from={lo}&date_to={hi}",
                      f"date_from={lo - timedelta(days=40)}&date_to={hi + timedelta(days=3)}",
                      f"date_to={hi}", f"date_from={lo}"):
            r = await client.get(f"{V1}/{route}?{query}")
            assert r.status_code == 200, (route, query, r.text)
            assert r.headers["etag"] == everything.headers["etag"], (route, query)
            assert r.content == everything.content, (route, query)
        assert source.cache.hits == hits + 4, route  # no query computed again
        inside = await client.get(f"{V1}/{route}?date_from={lo + timedelta(days=1)}")
        assert inside.headers["etag"] != everything.headers["etag"]
        assert inside.content != everything.content
    days = (await client.get(f"{V1}/summary/daily?date_from={lo + timedelta(days=1)}"
                             f"&date_to={hi + timedelta(days=9)}")).json()["days"]
    assert days[0]["work_date"] > first and days[-1]["work_date"] == last


async def test_the_records_fast_path_answers_as_the_route_would(
    client: httpx.AsyncClient, small_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Valid /records requests are answered without routing, with the bytes and headers
    the route gives (the route's RecordsOut model, byte for byte); every request the
    route would refuse, or might read otherwise, still goes to the route."""
    from api import fastpath
    from api.models import RecordsOut
    from core import queries

    app = client._transport.app  # type: ignore[attr-defined]
    source = app.state.source
    first = (await client.get(f"{V1}/records?limit=3&order=desc")).json()
    node = app.middleware_stack
    while not isinstance(node, fastpath.CacheHitMiddleware):
        node = node.app
    routed: list[object] = []
    inner = node.app

    async def routing(scope: Any, receive: Any, send: Any) -> None:
        routed.append(scope["query_string"])
        await inner(scope, receive, send)

    node.app = routing
    [(item, line, last)] = fetch_all(
        small_db, "SELECT item_code, line_code, MAX(work_date) FROM production_records")
    month = f"date_from={date.fromisoformat(last) - timedelta(days=29)}&date_to={last}"
    valid = [
        "", "?limit=5", f"?{month}&item_code={item}", f"?{month}&line_code={line}&shift=N",
        f"?order=desc&limit=7&{month}", "?plant=P1&limit=1000", "?item_group=%EB%B8%8C",
        f"?limit=3&order=desc&cursor={first['next_cursor']}", f"?{month}&limit=100&order=asc",
        "?limit=05",  # the route reads 5: so does the fast path (one table of parameters)
    ]
    refused = [
        "?limit=0", "?limit=abc", "?limit=1001", "?shift=X", "?order=up",
        "?date_from=20260301", "?date_from=2026-02-30", f"?date_from={last}&date_to=2020-01-01",
        "?cursor=bad", f"?cursor={first['next_cursor']}&order=asc", "?item_code=",
        f"?item_code={'x' * 65}", "?limit=5&limit=6", "?unknown=1",
    ]
    fast: dict[str, httpx.Response] = {}
    for query in valid + refused:
        routed.clear()
        fast[query] = await client.get(f"{V1}/records{query}")
        assert bool(routed) == (query in refused), query
    for query in valid:
        r = fast[query]
        assert r.status_code == 200, (query, r.text)
        params = dict(httpx.QueryParams(query.lstrip("?")))
        page = queries.records(
            source.serving().path,
            queries.Filters(**{k: (date.fromisoformat(v) if k.startswith("date") else v)
                               for k, v in params.items()
                               if k not in ("limit", "cursor", "order")}),
            int(params.get("limit", 100)), params.get("cursor"), params.get("order", "asc"))  # type: ignore[arg-type]
        model = RecordsOut(records=page.records, next_cursor=page.next_cursor)
        assert r.content == model.model_dump_json().encode(), query
    monkeypatch.setattr(fastpath, "records_query", lambda *a: None)  # the route only
    source.cache.clear()
    for query, r in fast.items():
        routed.clear()
        via_route = await client.get(f"{V1}/records{query}")
        assert routed or query in refused, query  # a refused URL may be a cache hit now
        assert (via_route.status_code, via_route.content) == (r.status_code, r.content), query
        for header in ("etag", "x-db-version", "x-data-as-of", "cache-control",
                       "content-type", "content-length"):
            assert via_route.headers.get(header) == r.headers.get(header), (query, header)
