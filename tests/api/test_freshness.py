"""Freshness: the first answer after an export has settled is the new data, and no answer
ever pairs data with a version it did not come from. Real hub, real uvicorn, real
exports by the ERP simulator, clients hammering the API the whole time."""

from __future__ import annotations

import os
import shutil
from collections import defaultdict
from functools import partial
from pathlib import Path

import anyio
import httpx
import pytest

from api.app import create_app
from core.dbfile import look
from core.erpsim import ExportMode, simulate_export
from tests.api.conftest import V1, api_url, hub_config, running_hub
from tests.conftest import await_for, make_config, make_db

pytestmark = pytest.mark.anyio

ROUTES = ["/kpis", "/records?limit=50&shift=N", "/summary/daily", "/defects/pareto?limit=5",
          "/summary/items?limit=5"]
NEW_ROWS = 3000


async def _bodies(config_db: Path, tmp_path: Path) -> dict[str, bytes]:
    """What each route answers for a given file: the standalone app, in-process."""
    app = create_app(make_config(tmp_path, db=config_db))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://x") as c:
        out = {}
        for route in ROUTES:
            r = await c.get(V1 + route)
            assert r.status_code == 200
            out[route] = r.content
        return out


def _copy(src: Path, dst: Path) -> None:
    shutil.copyfile(src, dst)


@pytest.mark.parametrize("mode", [ExportMode.REPLACE, ExportMode.COPY, ExportMode.REBUILD])
async def test_export_under_load_with_running_hub(tmp_path: Path, small_db: Path,
                                                  mode: ExportMode) -> None:
    config = hub_config(tmp_path, small_db)
    old_copy = tmp_path / "old.db"
    seen: list[tuple[str, int, str | None, bytes]] = []
    async with running_hub(config) as hub, httpx.AsyncClient(base_url=api_url(config),
                                                             timeout=30) as c:
        r = await c.get("/kpis")
        assert r.status_code == 200 and r.json()["records"] == 2000
        old_version = r.headers["x-db-version"]
        await anyio.to_thread.run_sync(_copy, small_db, old_copy)
        stop = anyio.Event()

        async def poll(route: str) -> None:
            etag = ""
            while not stop.is_set():
                r = await c.get(route, headers={"If-None-Match": etag} if etag else {})
                seen.append((route, r.status_code, r.headers.get("x-db-version"), r.content))
                if r.status_code == 200:
                    etag = r.headers["etag"]
                if r.status_code == 503:
                    assert r.headers["retry-after"]
                    await anyio.sleep(0.01)

        async with anyio.create_task_group() as tg:
            for route in ROUTES:
                tg.start_soon(poll, route)
            await anyio.to_thread.run_sync(partial(
                simulate_export, small_db, mode, rows=NEW_ROWS, seconds=0.6, seed=77, days=30))
            await await_for(lambda: not hub.busy and hub.known_version not in ("", old_version)
                            and hub.known_version == look(small_db).version, 20,
                            message="the hub to take in the export")
            final_version = hub.known_version
            # Keep the load on until every route has answered with the new version.
            await await_for(lambda: {r for r, s, v, _ in seen if s == 200
                                     and v == final_version} == set(ROUTES), 20,
                            message="every route to serve the new version")
            stop.set()
        # A request after the new version settled: new data, new version.
        r = await c.get("/kpis")
        assert r.status_code == 200
        assert r.headers["x-db-version"] == final_version != old_version
        assert r.json()["records"] == NEW_ROWS

    old = await _bodies(old_copy, tmp_path / "o")
    new = await _bodies(small_db, tmp_path / "n")
    assert old["/kpis"] != new["/kpis"]
    statuses = defaultdict(int)
    by_version: dict[tuple[str, str | None], set[bytes]] = defaultdict(set)
    for route, status, version, body in seen:
        statuses[status] += 1
        if status == 200:
            by_version[(route, version)].add(body)
            expected = old[route] if version == old_version else new[route]
            assert body == expected, (route, version, "old" if body == old[route] else "other")
    assert set(statuses) <= {200, 304, 503}, statuses
    assert statuses[503] > 0, "the export was never seen as in progress"
    assert statuses[304] > 0
    assert all(len(bodies) == 1 for bodies in by_version.values())
    assert any(v == final_version for _, v in by_version), "new data was served"


async def test_standalone_never_serves_a_replaced_file(tmp_path: Path, small_db: Path) -> None:
    """Datasette 0.65.5 keeps answering from the old file after a rename until restarted;
    the same app object here answers from the new one on the next request."""
    app = create_app(make_config(tmp_path, db=small_db))
    other = make_db(tmp_path / "export" / "new.tmp", rows=2500, seed=9)
    third = make_db(tmp_path / "export" / "third.db", rows=1500, seed=10)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://x") as c:
        first = await c.get(f"{V1}/kpis")
        assert first.json()["records"] == 2000
        assert (await c.get(f"{V1}/kpis")).json() == first.json()  # served from the cache
        os.replace(other, small_db)  # atomic rename, new inode
        r = await c.get(f"{V1}/kpis", headers={"If-None-Match": first.headers["etag"]})
        assert r.status_code == 200
        assert r.json()["records"] == 2500
        assert r.headers["x-db-version"] == look(small_db).version != first.headers[
            "x-db-version"]
        await anyio.to_thread.run_sync(_copy, third, small_db)  # copy over in place
        r = await c.get(f"{V1}/kpis")
        assert r.json()["records"] == 1500
        assert r.headers["x-db-version"] == look(small_db).version


def test_a_read_that_spans_a_replace_is_redone(tmp_path: Path, small_db: Path) -> None:
    """The race the two looks close: the query runs on the old file while a rename
    lands. The answer must not go out under either version; the read runs again."""
    from api.data import DataSource, Query
    from core import queries

    replacement = make_db(tmp_path / "export" / "new.tmp", rows=2500, seed=9)
    source = DataSource(small_db)
    calls = []

    def compute() -> bytes:
        records = queries.kpis(small_db).records
        if not calls:
            os.replace(replacement, small_db)  # lands after the query read the old file
        calls.append(records)
        return str(records).encode()

    served = source.fetch(Query(("kpis-race",), compute))
    assert calls == [2000, 2500]
    assert served.body == b"2500" and served.version == look(small_db).version
    assert source.retries == 1

    def always_changing() -> bytes:
        conn = __import__("sqlite3").connect(small_db)
        conn.execute("UPDATE production_records SET good_qty = good_qty + 1 WHERE record_id = 1")
        conn.commit()
        conn.close()
        return b"x"

    with pytest.raises(queries.DataUnavailable, match="update in progress"):
        source.fetch(Query(("busy-writer",), always_changing))
    assert source.refused == 1
    assert len(source.cache) == 0  # new versions seen: the old answer is gone
