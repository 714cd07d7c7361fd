"""Freshness: readers are served the published snapshot and nothing else. While the ERP
writes an export and the hub settles, copies and verifies it, every answer is the last
good snapshot (never a 503, never a mix of two files, every body the one of its
X-DB-Version); the first request after the hub publishes the new snapshot gets the new
data. Real hub, real uvicorn, real exports by the ERP simulator, clients hammering the
API the whole time."""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter, defaultdict
from contextlib import closing
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import anyio
import httpx
import pytest

from api.app import create_app
from core.checkonce import check_once
from core.config import Config
from core.dbfile import look
from core.erp.erpsim import ExportMode, Journal, simulate_export, write_garbage
from core.eventlog import iso
from core.hub import Hub
from core.store import Published, Store
from tests.api.conftest import (
    V1,
    api_url,
    current,
    events,
    hub_config,
    publish,
    published_config,
    running_hub,
)
from tests.conftest import await_for

pytestmark = pytest.mark.anyio

ROUTES = ["/kpis", "/records?limit=50&shift=N", "/summary/daily", "/defects/pareto?limit=5",
          "/summary/items?limit=5"]
NEW_ROWS = 3000


@dataclass(frozen=True, slots=True)
class Seen:
    route: str
    status: int
    version: str | None
    body: bytes
    sent_with: str  # the version the hub had published when the request was sent
    during_export: bool  # sent after the ERP began writing, before the new publish
    hub_busy: bool  # sent while the hub was settling or checking


def _backup(src: Path, dst: Path) -> Path:
    """An independent copy of ``src`` as it is now (plain sqlite3 backup)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(src)) as s, closing(sqlite3.connect(dst)) as d:
        s.backup(d)
    return dst


async def _bodies(config: Config) -> dict[str, bytes]:
    """What each route answers from ``config``'s store: a standalone app, in-process."""
    app = create_app(config)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://x") as c:
        out = {}
        for route in ROUTES:
            r = await c.get(V1 + route)
            assert r.status_code == 200, (route, r.text)
            out[route] = r.content
        return out


async def _expected_bodies(db: Path, tmp: Path) -> dict[str, bytes]:
    """The bodies for the data in ``db``, published on its own into a separate store."""
    copy = await anyio.to_thread.run_sync(_backup, db, tmp / "data" / "copy.db")
    config = await anyio.to_thread.run_sync(published_config, tmp, copy)
    return await _bodies(config)


def _took_in_the_export(hub: Hub, db: Path, old: str) -> Published | None:
    """The new snapshot, once the hub is at rest and serves the export now on disk."""
    status = hub.status()
    published = status.published
    if (hub.busy or published is None or published.version == old
            or published.rows != NEW_ROWS or hub.known_version != look(db).version
            or published.source_version != hub.known_version):
        return None
    return published


@pytest.mark.parametrize(
    ("mode", "journal"),
    [(ExportMode.REPLACE, "delete"), (ExportMode.COPY, "delete"),
     (ExportMode.REBUILD, "delete"), (ExportMode.REPLACE, "wal"), (ExportMode.REBUILD, "wal")],
    ids=["replace", "copy", "rebuild", "replace-wal", "rebuild-wal"],
)
async def test_export_under_load_with_running_hub(tmp_path: Path, small_db: Path,
                                                  mode: ExportMode, journal: Journal) -> None:
    config = hub_config(tmp_path, small_db)
    seen: list[Seen] = []
    writing = threading.Event()  # set by the ERP simulator's thread
    async with running_hub(config) as hub, httpx.AsyncClient(base_url=api_url(config),
                                                             timeout=30) as c:
        first = hub.status().published
        assert first is not None
        r = await c.get("/kpis")
        assert r.status_code == 200 and r.json()["records"] == 2000
        old_version = r.headers["x-db-version"]
        assert old_version == first.version
        assert r.headers["x-data-as-of"] == iso(first.as_of)
        old = await _expected_bodies(small_db, tmp_path / "old")
        published_before = len(events(hub, "snapshot_published"))
        stop = anyio.Event()
        done_export = False

        async def poll(route: str) -> None:
            etag = ""
            while not stop.is_set():
                pub = hub.publisher.published  # set only after the pointer was switched
                assert pub is not None
                sent_with = pub.version
                during = writing.is_set() and sent_with == old_version and not done_export
                busy = hub.busy
                r = await c.get(route, headers={"If-None-Match": etag} if etag else {})
                seen.append(Seen(route, r.status_code, r.headers.get("x-db-version"),
                                 r.content, sent_with, during, busy))
                if r.status_code == 200:
                    etag = r.headers["etag"]
                else:
                    await anyio.sleep(0.005)

        def on_phase(name: str) -> None:
            if name == "writing":
                writing.set()

        async with anyio.create_task_group() as tg:
            for route in ROUTES:
                tg.start_soon(poll, route)
            await anyio.to_thread.run_sync(partial(
                simulate_export, small_db, mode, rows=NEW_ROWS, seconds=0.6, seed=77, days=30,
                journal=journal, on_phase=on_phase))
            final = await await_for(lambda: _took_in_the_export(hub, small_db, old_version),
                                    30, message="the hub to publish the new export")
            done_export = True
            # Keep the load on until every route has answered with the new snapshot.
            await await_for(lambda: {s.route for s in seen if s.status == 200
                                     and s.version == final.version} == set(ROUTES), 20,
                            message="every route to serve the new snapshot")
            stop.set()
        published_events = events(hub, "snapshot_published")
        assert len(published_events) > published_before
        assert published_events[-1]["version"] == final.version
        # A request after the new snapshot was published: new data, new version.
        for route in ROUTES:
            r = await c.get(route)
            assert r.status_code == 200 and r.headers["x-db-version"] == final.version, route
            assert r.headers["x-data-as-of"] == iso(final.as_of)
        r = await c.get("/kpis")
        assert r.json()["records"] == NEW_ROWS
        new = await _expected_bodies(small_db, tmp_path / "new")

    assert old["/kpis"] != new["/kpis"]
    statuses = Counter(s.status for s in seen)
    assert set(statuses) <= {200, 304}, statuses  # readers never wait for an export
    assert statuses[304] > 0
    # The load overlapped the export and the hub's work on it; those got the old data.
    assert any(s.during_export and s.version == old_version for s in seen), "no overlap"
    assert any(s.hub_busy and s.version == old_version for s in seen), "never while busy"
    # Every version served was published, in order; none older than the one published
    # when the request was sent (the first request after a publish has the new data).
    order = [e["version"] for e in published_events]
    assert order[0] == old_version and order[-1] == final.version
    for s in seen:
        assert s.version in order, s
        assert order.index(s.version) >= order.index(s.sent_with), s
    by_version: dict[tuple[str, str | None], set[bytes]] = defaultdict(set)
    for s in seen:
        if s.status == 200:
            by_version[(s.route, s.version)].add(s.body)
    assert all(len(bodies) == 1 for bodies in by_version.values())  # no mixed data
    # Each version's bodies are all the old file's or all the new file's. (A WAL export
    # in one long transaction shows no change on disk until its commit: the hub may
    # publish the old, committed data once more under a new version meanwhile.)
    content: dict[str | None, str] = {}
    for (route, version), bodies in by_version.items():
        (body,) = bodies
        if old[route] == new[route]:
            continue
        kind = "old" if body == old[route] else "new" if body == new[route] else "neither"
        assert kind != "neither", (route, version)
        assert content.setdefault(version, kind) == kind, (route, version)
    assert content[old_version] == "old"
    assert content[final.version] == "new", "new data was served"


async def _get(c: httpx.AsyncClient, route: str, etag: str | None = None) -> httpx.Response:
    return await c.get(f"{V1}{route}", headers={"If-None-Match": etag} if etag else {})


async def test_standalone_serves_the_pointer_and_switches_on_the_next_request(
    tmp_path: Path, small_db: Path
) -> None:
    """Datasette 0.65.5 keeps answering from the old file after a rename until restarted;
    the same app object here answers from the newly published snapshot on the very next
    request, and never from an export that has not been published."""
    config = await anyio.to_thread.run_sync(published_config, tmp_path, small_db)
    first_pub = current(config)
    app = create_app(config)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://x") as c:
        first = await _get(c, "/kpis")
        assert first.json()["records"] == 2000
        assert first.headers["x-db-version"] == first_pub.version
        assert first.headers["x-data-as-of"] == iso(first_pub.as_of)
        assert (await _get(c, "/kpis")).content == first.content  # from the cache
        # The ERP replaces its file (atomic rename, new inode): not published, not served.
        await anyio.to_thread.run_sync(partial(
            simulate_export, small_db, ExportMode.REPLACE, rows=2500, seconds=0, seed=9, days=30))
        r = await _get(c, "/kpis", first.headers["etag"])
        assert r.status_code == 304 and r.headers["x-db-version"] == first_pub.version
        assert (await _get(c, "/kpis")).content == first.content
        second_pub = await anyio.to_thread.run_sync(publish, config)
        r = await _get(c, "/kpis", first.headers["etag"])
        assert r.status_code == 200 and r.json()["records"] == 2500
        assert r.headers["x-db-version"] == second_pub.version != first_pub.version
        assert r.headers["x-data-as-of"] == iso(second_pub.as_of)
        # Copied over in place (same inode), then published: the next request has it.
        await anyio.to_thread.run_sync(partial(
            simulate_export, small_db, ExportMode.COPY, rows=1500, seconds=0, seed=10, days=30))
        assert (await _get(c, "/kpis")).json()["records"] == 2500
        third_pub = await anyio.to_thread.run_sync(publish, config)
        r = await _get(c, "/kpis", r.headers["etag"])
        assert r.status_code == 200 and r.json()["records"] == 1500
        assert r.headers["x-db-version"] == third_pub.version
        health = (await _get(c, "/health")).json()["db"]
        assert health["version"] == third_pub.version and health["available"] is True


async def test_standalone_keeps_the_last_snapshot_while_the_export_is_garbage(
    tmp_path: Path, small_db: Path
) -> None:
    config = await anyio.to_thread.run_sync(published_config, tmp_path, small_db)
    served = current(config)
    store = Store(config.store_dir)
    app = create_app(config)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://x") as c:
        first = await _get(c, "/summary/daily")
        assert first.status_code == 200
        await anyio.to_thread.run_sync(write_garbage, small_db)  # an export that wrote a log
        assert (await _get(c, "/summary/daily")).content == first.content
        outcome = await anyio.to_thread.run_sync(check_once, config)
        assert outcome.publish == "held_back" and outcome.ok is False, outcome
        held = store.held_back()
        assert held is not None and not held.forceable
        assert "not an SQLite database" in held.reason, held.reason
        assert current(config) == served
        for route in ("/summary/daily", "/kpis", "/records.csv?shift=D"):
            r = await _get(c, route)
            assert r.status_code == 200, route
            assert r.headers["x-db-version"] == served.version
        assert (await _get(c, "/summary/daily")).content == first.content
        assert (await _get(c, "/kpis")).json()["records"] == 2000
        assert (await _get(c, "/summary/daily", first.headers["etag"])).status_code == 304
        health = (await _get(c, "/health")).json()["db"]
        assert health == {"exists": True, "version": served.version,
                          "as_of": health["as_of"], "available": True, "reason": None}
        # The ERP's next export is good: published, held-back cleared, served next.
        await anyio.to_thread.run_sync(partial(
            simulate_export, small_db, ExportMode.REPLACE, rows=1800, seconds=0, seed=12, days=30))
        fresh = await anyio.to_thread.run_sync(publish, config)
        assert store.held_back() is None
        r = await _get(c, "/kpis")
        assert r.json()["records"] == 1800 and r.headers["x-db-version"] == fresh.version
