"""The API on real uvicorn: standalone, inside a running hub, busy ports, control auth,
``pdh api`` as a real child process."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import httpx
import psutil
import pytest
from fastapi import HTTPException

from api.app import create_app
from api.cache import VersionedCache
from api.security import check_control, is_loopback, startup_problem
from core import queries
from core.config import ApiConfig, Config
from core.dbfile import look
from core.erp.erpsim import ExportMode, simulate_export, write_garbage
from core.eventlog import iso
from core.state import HubState, ServerState, StatusSnapshot
from core.store import Store
from tests.api.conftest import (
    V1,
    LiveServer,
    api_source,
    api_url,
    build_api_hub,
    current,
    events,
    fetch_all,
    hub_config,
    publish,
    published_config,
    running_hub,
)
from tests.conftest import await_for, free_port, make_config, make_db

REPO = Path(__file__).resolve().parents[2]


# --- standalone on real uvicorn ---------------------------------------------------------


def test_every_route_over_real_http(live: LiveServer, api_config: Config) -> None:
    published = current(api_config)
    version, as_of = published.version, iso(published.as_of)
    with httpx.Client(base_url=live.url + V1, timeout=10) as c:
        for route in ("/items", "/lines", "/records?limit=3", "/summary/daily",
                      "/summary/items", "/summary/lines", "/defects/pareto", "/kpis",
                      "/records.csv?shift=D"):
            r = c.get(route)
            assert r.status_code == 200, route
            assert r.headers["x-db-version"] == version
            assert r.headers["x-data-as-of"] == as_of
            again = c.get(route, headers={"If-None-Match": r.headers["etag"]})
            assert again.status_code == 304, route
            assert again.headers["x-db-version"] == version
            assert again.headers["x-data-as-of"] == as_of
        health = c.get("/health").json()["db"]
        assert health["available"] is True and health["exists"] is True
        assert health["version"] == version
        assert datetime.fromisoformat(health["as_of"]) == published.as_of
        assert c.get("/records?limit=5000").status_code == 422
        assert c.get("/hub/status").status_code == 503
        csv_bytes = c.get("/records.csv").content
        assert csv_bytes.startswith("\ufeffrecord_id,".encode())
        assert csv_bytes.count(b"\r\n") == 2001


def test_large_csv_streams_in_pages_over_real_http(tmp_path: Path) -> None:
    db = make_db(tmp_path / "big" / "production_analysis.db", rows=12_000, seed=3)
    config = published_config(tmp_path, db)
    with LiveServer(create_app(config)) as live, httpx.Client(timeout=30) as c:
        chunks = 0
        data = b""
        with c.stream("GET", f"{live.url}{V1}/records.csv") as r:
            assert r.status_code == 200
            assert "content-length" not in r.headers  # streamed, not buffered
            for chunk in r.iter_raw():
                chunks += 1
                data += chunk
        lines = data.decode("utf-8-sig").splitlines()
        assert len(lines) == 12_001
        ids = [int(line.split(",", 1)[0]) for line in lines[1:]]
        assert len(set(ids)) == 12_000
        assert chunks >= 3


@pytest.mark.anyio
async def test_csv_streams_from_one_snapshot_while_a_new_one_is_published(
    tmp_path: Path,
) -> None:
    """Straight ASGI, so the ERP's new export lands, and is published, exactly between
    two pages: the stream goes on from its own snapshot (the store keeps the previous
    one) and completes, all of it the old data; the next request gets the new data."""
    db = make_db(tmp_path / "data" / "production_analysis.db", rows=12_000, seed=4)
    config = await anyio.to_thread.run_sync(published_config, tmp_path, db)
    assert config.store.keep == 2
    old = current(config)
    expected = fetch_all(db, "SELECT record_id, good_qty FROM production_records"
                             " ORDER BY work_date, record_id")
    app = create_app(config)
    sent: list[dict[str, Any]] = []
    switched: list[str] = []

    def new_export() -> str:
        """Record 11000 changes, then the export is published (pdh check)."""
        tmp = db.with_name("export.tmp")
        shutil.copyfile(db, tmp)
        conn = sqlite3.connect(tmp)
        conn.execute("UPDATE production_records SET good_qty = -1 WHERE record_id = 11000")
        conn.commit()
        conn.close()
        os.replace(tmp, db)
        return publish(config).version

    async def receive() -> dict[str, Any]:
        await anyio.sleep_forever()
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and len(sent) == 2:
            switched.append(await anyio.to_thread.run_sync(new_export))

    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"},
             "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": f"{V1}/records.csv", "raw_path": f"{V1}/records.csv".encode(),
             "query_string": b"", "root_path": "", "headers": [(b"host", b"test")],
             "client": ("127.0.0.1", 5000), "server": ("test", 80)}
    await app(scope, receive, send)
    assert sent[0]["status"] == 200
    assert dict(sent[0]["headers"])[b"x-db-version"] == old.version.encode()
    assert switched and switched[0] != old.version  # published while the stream ran
    assert current(config).version == switched[0]
    bodies = [m for m in sent if m["type"] == "http.response.body"]
    assert len(bodies) >= 3  # the first page, the pages after the publish, the end
    assert not bodies[-1].get("more_body"), "the stream did not complete"
    text = b"".join(m["body"] for m in bodies).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(int(r["record_id"]), int(r["good_qty"])) for r in rows] == expected  # all old
    # The next request is the new snapshot's.
    day = fetch_all(db, "SELECT work_date FROM production_records WHERE record_id = 11000")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://x") as c:
        r = await c.get(f"{V1}/records.csv",
                        params={"date_from": day[0][0], "date_to": day[0][0]})
        assert r.headers["x-db-version"] == switched[0]
        changed = [row["good_qty"] for row in csv.DictReader(
            io.StringIO(r.content.decode("utf-8-sig"))) if row["record_id"] == "11000"]
        assert changed == ["-1"]


# --- security ---------------------------------------------------------------------------


def test_loopback_detection() -> None:
    for host in ("127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "::ffff:127.0.0.1",
                 "LOCALHOST", "localhost.localdomain", "ip6-localhost", " 127.0.0.1 ",
                 "::1%eth0"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "::", "", None, "192.168.0.10", "10.0.0.1", "example.com",
                 "::ffff:10.0.0.1", "testclient"):
        assert not is_loopback(host), host


def test_control_needs_a_token_from_other_machines() -> None:
    check_control("127.0.0.1", None, "")
    check_control("::1", None, "secret")
    with pytest.raises(HTTPException) as err:
        check_control("192.0.2.7", None, "")
    assert err.value.status_code == 403 and "token" in err.value.detail
    for auth in (None, "", "Bearer", "Bearer wrong", "Basic c2VjcmV0", "secret"):
        with pytest.raises(HTTPException) as err:
            check_control("192.0.2.7", auth, "secret")
        assert err.value.status_code == 401
        assert err.value.headers == {"WWW-Authenticate": "Bearer"}
    check_control("192.0.2.7", "Bearer secret", "secret")
    check_control("192.0.2.7", "bearer  secret ", "secret")


def test_refusing_a_public_host_without_a_token() -> None:
    assert startup_problem(ApiConfig()) is None
    problem = startup_problem(ApiConfig(host="0.0.0.0"))
    assert problem and "0.0.0.0" in problem and "api.token" in problem
    assert startup_problem(ApiConfig(host="0.0.0.0", token="s3cret")) is None


@pytest.mark.anyio
async def test_control_routes_from_another_machine(tmp_path: Path, small_db: Path) -> None:
    config = hub_config(tmp_path, small_db, token="s3cret")
    async with running_hub(config) as hub:
        app = create_app(config, hub=hub)
        remote = httpx.ASGITransport(app=app, client=("198.51.100.20", 40000))
        async with httpx.AsyncClient(transport=remote, base_url="http://hub") as c:
            assert (await c.get(f"{V1}/kpis")).status_code == 200  # reads are open
            assert (await c.get(f"{V1}/hub/status")).status_code == 200
            r = await c.post(f"{V1}/hub/check")
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
            r = await c.put(f"{V1}/hub/auto-mode", json={"auto_mode": False},
                            headers={"Authorization": "Bearer nope"})
            assert r.status_code == 401
            assert hub.auto_mode is True
            r = await c.put(f"{V1}/hub/auto-mode", json={"auto_mode": False},
                            headers={"Authorization": "Bearer s3cret"})
            assert r.status_code == 200 and r.json()["auto_mode"] is False
            assert hub.auto_mode is False
            r = await c.post(f"{V1}/hub/publish", json={"force": True})
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
            r = await c.post(f"{V1}/hub/publish", json={"force": True},
                             headers={"Authorization": "Bearer s3cret"})
            assert r.status_code == 409  # allowed; nothing is held back
        no_token = config.model_copy(update={"api": config.api.model_copy(update={"token": ""})})
        app = create_app(no_token, hub=hub)
        remote = httpx.ASGITransport(app=app, client=("198.51.100.20", 40000))
        async with httpx.AsyncClient(transport=remote, base_url="http://hub") as c:
            r = await c.post(f"{V1}/hub/check", headers={"Authorization": "Bearer "})
            assert r.status_code == 403 and "token" in r.json()["detail"]
            r = await c.post(f"{V1}/hub/publish", json={"force": True})
            assert r.status_code == 403 and "token" in r.json()["detail"]


@pytest.mark.anyio
async def test_hub_refuses_to_serve_a_public_host_without_token(
    tmp_path: Path, small_db: Path
) -> None:
    config = hub_config(tmp_path, small_db, host="0.0.0.0")
    async with running_hub(config, healthy=False) as hub:
        await await_for(lambda: "api" in hub.status().servers, 10)
        api = hub.status().servers["api"]
        assert api.state is ServerState.FAILED
        assert api.error and "api.token" in api.error
        await await_for(lambda: hub.known_version, 10, message="hub checks anyway")
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", config.api.port)) != 0  # nothing listens
    events = [e["event"] for e in hub.events.recent(20)]
    assert "server_gave_up" in events


# --- inside the hub ---------------------------------------------------------------------


@pytest.mark.anyio
async def test_hub_routes_over_real_http(tmp_path: Path, small_db: Path) -> None:
    config = hub_config(tmp_path, small_db)
    async with running_hub(config) as hub, httpx.AsyncClient(base_url=api_url(config),
                                                             timeout=10) as c:
        r = await c.get("/hub/status")
        assert r.status_code == 200
        status = StatusSnapshot.model_validate(r.json())
        assert status.servers["api"].state is ServerState.RUNNING
        assert status.servers["api"].url == f"http://127.0.0.1:{config.api.port}"
        assert status.db.version == look(small_db).version  # the ERP's file, as last seen
        assert status.published is not None and status.held_back is None
        r = await c.get("/kpis")
        assert r.headers["x-db-version"] == status.published.version  # what readers get
        assert r.headers["x-data-as-of"] == iso(status.published.as_of)
        checked = hub.status().last_check
        r = await c.post("/hub/check")
        assert r.status_code == 202
        StatusSnapshot.model_validate(r.json())
        await await_for(lambda: hub.status().last_check != checked, 10,
                        message="the check to run")
        # Only JSON booleans: nothing else is taken as one (it would switch auto mode off).
        assert hub.auto_mode is True
        for bad in (0, "false", "False", "off", "0", "", None, [], {}):
            r = await c.put("/hub/auto-mode", json={"auto_mode": bad})
            assert r.status_code == 422, bad
            assert [e["loc"] for e in r.json()["detail"]] == [["body", "auto_mode"]], bad
        assert hub.auto_mode is True
        r = await c.put("/hub/auto-mode", json={"auto_mode": False})
        assert r.status_code == 200 and r.json()["auto_mode"] is False
        assert hub.auto_mode is False
        for bad in (1, "true", "on", 1.0):
            r = await c.put("/hub/auto-mode", json={"auto_mode": bad})
            assert r.status_code == 422, bad
            assert [e["loc"] for e in r.json()["detail"]] == [["body", "auto_mode"]], bad
        assert hub.auto_mode is False
        for bad in ({"auto_mode": "maybe"}, {}, {"auto_mode": True, "extra": 1}):
            r = await c.put("/hub/auto-mode", json=bad)
            assert r.status_code == 422
            assert r.json()["detail"][0]["loc"][0] == "body"
        r = await c.put("/hub/auto-mode", content=b"not json",
                        headers={"content-type": "application/json"})
        assert r.status_code == 422
        r = await c.put("/hub/auto-mode", json={"auto_mode": True})
        assert r.json()["auto_mode"] is True
        health = (await c.get("/health")).json()
        assert health["hub"] is True and health["db"]["available"] is True
        assert health["db"]["version"] == status.published.version


@pytest.mark.anyio
async def test_publish_anyway_over_real_http(tmp_path: Path, small_db: Path) -> None:
    """POST /hub/publish: 409 with nothing held back; an export with a third of the
    records is held back (amber, export_rejected, readers keep the old data) until it is
    published by force; a damaged export cannot be forced."""
    config = hub_config(tmp_path, small_db)
    async with running_hub(config) as hub, httpx.AsyncClient(base_url=api_url(config),
                                                             timeout=10) as c:
        served = hub.status().published
        assert served is not None and served.rows == 2000
        r = await c.post("/hub/publish", json={"force": True})
        assert r.status_code == 409
        assert r.json() == {"detail": "no export is held back: nothing to publish"}
        for bad in ({"force": False}, {}, {"force": "yes"}):
            r = await c.post("/hub/publish", json=bad)
            assert r.status_code == 422, bad
            assert r.json()["detail"][0]["loc"][0] == "body", bad
        rejected = len(events(hub, "export_rejected"))
        await anyio.to_thread.run_sync(partial(
            simulate_export, small_db, ExportMode.REPLACE, rows=667, seconds=0.0, seed=31,
            days=30))
        await await_for(lambda: len(events(hub, "export_rejected")) > rejected
                        and not hub.busy, 20, message="the small export held back")
        status = hub.status()
        assert status.state is HubState.DEGRADED, status
        assert status.published == served  # the last good snapshot is still served
        held = status.held_back
        assert held is not None and held.forceable and held.rows == 667
        assert "667 production records, 33% of the 2,000" in held.reason, held.reason
        event = events(hub, "export_rejected")[-1]
        assert event["reason"] == held.reason and event["forceable"] is True
        r = await c.get("/kpis")
        assert r.status_code == 200 and r.json()["records"] == 2000
        assert r.headers["x-db-version"] == served.version
        shown = (await c.get("/hub/status")).json()
        assert shown["state"] == "degraded" and shown["held_back"]["reason"] == held.reason
        # The engineer knows the drop is real: publish it anyway.
        r = await c.post("/hub/publish", json={"force": True})
        assert r.status_code == 200, r.text
        after = StatusSnapshot.model_validate(r.json())
        forced = after.published
        assert forced is not None and forced.forced and forced.rows == 667
        assert forced.version != served.version and after.held_back is None
        assert events(hub, "snapshot_published")[-1]["version"] == forced.version
        assert events(hub, "snapshot_published")[-1]["forced"] is True
        r = await c.get("/kpis")
        assert r.status_code == 200 and r.json()["records"] == 667
        assert r.headers["x-db-version"] == forced.version
        assert hub.status().state is HubState.HEALTHY
        # A damaged export is held back too, but no force publishes it.
        await anyio.to_thread.run_sync(write_garbage, small_db)
        await await_for(lambda: len(events(hub, "export_rejected")) > rejected + 1
                        and not hub.busy, 20, message="the garbage held back")
        held = hub.status().held_back
        assert held is not None and not held.forceable
        r = await c.post("/hub/publish", json={"force": True})
        assert r.status_code == 409
        assert "cannot be published even by force" in r.json()["detail"], r.json()
        r = await c.get("/kpis")
        assert r.json()["records"] == 667 and r.headers["x-db-version"] == forced.version
        assert hub.status().published == forced
        assert hub.status().state is HubState.DEGRADED


def _default_urls(path: Path) -> list[str]:
    """The default-period views the hub warms (what the dashboard asks for first)."""
    period = queries.default_filters(queries.date_range(path))
    assert period.date_from is not None and period.date_to is not None
    span = f"date_from={period.date_from}&date_to={period.date_to}"
    return [f"/summary/daily?{span}", f"/kpis?{span}", f"/defects/pareto?{span}",
            f"/summary/lines?{span}", "/summary/daily", "/kpis", "/items", "/lines"]


@pytest.mark.anyio
async def test_cache_is_warmed_before_each_publish(tmp_path: Path, small_db: Path) -> None:
    """The first requests after snapshot_published are cache hits (warmed before the
    switch), for the snapshot at start-up and for the next export."""
    config = hub_config(tmp_path, small_db)
    async with running_hub(config) as hub, httpx.AsyncClient(base_url=api_url(config),
                                                             timeout=10) as c:
        source = api_source(hub)

        async def all_hits() -> None:
            published = hub.status().published
            assert published is not None
            urls = _default_urls(hub.publisher.store.path_of(published))
            hits, misses = source.cache.hits, source.cache.misses
            for url in urls:
                r = await c.get(url)
                assert r.status_code == 200, url
                assert r.headers["x-db-version"] == published.version, url
            assert source.cache.version == published.version
            assert (source.cache.hits - hits, source.cache.misses - misses) == (len(urls), 0)

        await all_hits()
        count = len(events(hub, "snapshot_published"))
        await anyio.to_thread.run_sync(partial(
            simulate_export, small_db, ExportMode.REPLACE, rows=1500, seconds=0.0, seed=21,
            days=20))
        await await_for(lambda: len(events(hub, "snapshot_published")) > count
                        and not hub.busy, 20, message="the export published")
        assert hub.status().published.rows == 1500  # type: ignore[union-attr]
        await all_hits()


@pytest.mark.anyio
async def test_busy_port_marks_api_failed_and_recovers(tmp_path: Path, small_db: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    config = hub_config(tmp_path, small_db, port=port)
    try:
        async with running_hub(config, healthy=False) as hub:
            await await_for(lambda: "api" in hub.status().servers
                            and hub.status().servers["api"].state is ServerState.FAILED, 10)
            api = hub.status().servers["api"]
            assert api.error == (f"API port {port} on 127.0.0.1 is already in use "
                                 "(another program, or another copy of the hub?)")
            assert "retrying in 0.2 s" in caplog.text  # [api] bind_retry (hub_config)
            # The rest of the hub goes on: it still checks, heals and publishes the file.
            await await_for(lambda: hub.known_version == look(small_db).version
                            and hub.status().published is not None and not hub.busy, 10,
                            message="the hub to check and publish the DB")
            assert hub.status().state.value == "degraded"
            blocker.close()
            await await_for(lambda: hub.status().servers["api"].state is ServerState.RUNNING,
                            15, message="the API to bind once the port is free")
            async with httpx.AsyncClient(base_url=api_url(config), timeout=10) as c:
                r = await c.get("/kpis")
                assert r.status_code == 200
                published = hub.status().published
                assert published is not None and r.headers["x-db-version"] == published.version
    finally:
        blocker.close()
    events = [e["event"] for e in hub.events.recent(20)]
    assert "server_crashed" in events and "server_started" in events


def test_versioned_cache_bounds_and_invalidation() -> None:
    cache = VersionedCache(max_entries=3, max_bytes=1000)
    cache.observe("v1")
    for k in "abcd":
        cache.put("v1", k, b"x")
    assert len(cache) == 3 and cache.get("v1", "a") is None and cache.get("v1", "d") == b"x"
    cache.get("v1", "b")  # b is now most recent
    cache.put("v1", "e", b"x")
    assert cache.get("v1", "c") is None and cache.get("v1", "b") == b"x"
    cache.put("v1", "big", b"x" * 300)  # over a quarter of the budget: not stored
    assert cache.get("v1", "big") is None
    for k in "fgh":
        cache.put("v1", k, b"y" * 240)
    assert sum(len(cache.get("v1", k) or b"") for k in "efgh") <= 1000
    cache.observe("v2")
    assert len(cache) == 0 and cache.get("v1", "h") is None
    cache.put("v1", "late", b"old")  # a slow reader of the old version cannot refill it
    assert len(cache) == 0 and cache.get("v2", "late") is None
    assert cache.invalidations == 2


def test_versioned_cache_warms_the_next_version_aside() -> None:
    cache = VersionedCache()
    cache.observe("v1")
    cache.put("v1", "a", b"old")
    cache.begin("v2")  # a snapshot about to be published
    cache.put("v2", "a", b"new")
    assert cache.get("v1", "a") == b"old"  # still serving v1 meanwhile
    assert cache.get("v2", "a") is None  # not served before it is observed
    cache.observe("v2")  # the first request after the publish
    assert cache.get("v2", "a") == b"new" and len(cache) == 1
    cache.begin("v3")
    cache.put("v3", "a", b"never published")
    cache.observe("v4")  # another snapshot was published instead
    assert len(cache) == 0 and cache.get("v4", "a") is None


# --- pdh api, a real child process ------------------------------------------------------

def _pdh(*args: str, config: Config) -> subprocess.Popen[str]:
    toml = config.database.path.parent.parent / "pdh.toml"
    toml.write_text(f'[log]\ndir = "{config.log_dir}"\n[state]\ndir = "{config.state_dir}"\n'
                    f'[store]\ndir = "{config.store_dir}"\n', encoding="utf-8")
    return subprocess.Popen(
        [sys.executable, "-m", "agent", *args, "--config", str(toml)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def test_pdh_api_standalone(tmp_path: Path, small_db: Path) -> None:
    """pdh api serves what the store's pointer says, switching when another process
    (pdh check, the agent) publishes; 503 only before anything was published."""
    config = make_config(tmp_path, db=small_db)
    port = free_port()
    proc = _pdh("api", "--db", str(small_db), "--port", str(port), config=config)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}" in line, line
        base = f"http://127.0.0.1:{port}{V1}"
        r = httpx.get(f"{base}/kpis", timeout=10)
        assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1
        assert r.json()["detail"].startswith("no data published yet"), r.json()
        check = _pdh("check", "--db", str(small_db), config=config)
        out, err = check.communicate(timeout=60)
        assert check.returncode == 0, out + err
        first = current(config)
        r = httpx.get(f"{base}/kpis", timeout=10)
        assert r.status_code == 200 and r.json()["records"] == 2000
        assert r.headers["x-db-version"] == first.version
        assert r.headers["x-data-as-of"] == iso(first.as_of)
        journal = small_db.with_name(small_db.name + "-journal")
        journal.write_bytes(b"\0" * 512)  # the ERP is writing: the snapshot is served
        r = httpx.get(f"{base}/kpis", timeout=10)
        assert r.status_code == 200 and r.headers["x-db-version"] == first.version
        journal.unlink()
        simulate_export(small_db, ExportMode.REPLACE, rows=1500, seconds=0.0, seed=8, days=30)
        assert httpx.get(f"{base}/kpis", timeout=10).json()["records"] == 2000
        second = publish(config)  # published by another process than the API's
        r = httpx.get(f"{base}/kpis", headers={"If-None-Match": r.headers["etag"]}, timeout=10)
        assert r.status_code == 200 and r.json()["records"] == 1500
        assert r.headers["x-db-version"] == second.version
        assert httpx.get(f"{base}/hub/status", timeout=10).json() == {
            "detail": "no hub in this process"}
        # A second copy on the same port: a clear message, exit 1.
        second_api = _pdh("api", "--db", str(small_db), "--port", str(port), config=config)
        out, err = second_api.communicate(timeout=30)
        assert second_api.returncode == 1
        assert f"API port {port} on 127.0.0.1 is already in use" in err
        assert "Traceback" not in err
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err


def test_pdh_api_refuses_public_host_without_token(tmp_path: Path, small_db: Path) -> None:
    config = make_config(tmp_path, db=small_db)
    proc = _pdh("api", "--db", str(small_db), "--host", "0.0.0.0", "--port", str(free_port()),
                config=config)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert "api.token" in err and "Traceback" not in err


def _serving_children(proc: subprocess.Popen[str]) -> set[int]:
    """The pids of pdh api's serving processes (uvicorn's supervisor's spawned children,
    not multiprocessing's resource tracker; not one that died and is not reaped yet)."""
    pids = set()
    for child in psutil.Process(proc.pid).children():
        try:
            if "spawn_main" in " ".join(child.cmdline()):
                pids.add(child.pid)
        except psutil.Error:  # a zombie, or gone
            pass
    return pids


def _open_files(pid: int) -> set[str]:
    try:
        return {f.path for f in psutil.Process(pid).open_files()}
    except psutil.NoSuchProcess:
        return set()


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_pdh_api_in_processes(tmp_path: Path, small_db: Path,
                              stop_signal: signal.Signals) -> None:
    """``pdh api --processes 2``: two processes accept on one port and both serve (each
    reads the published snapshot); a new publish is served by each on the next request;
    one killed is replaced while the other serves; Ctrl+C (systemd's SIGTERM) stops all
    within seconds."""
    config = published_config(tmp_path, small_db)
    first = current(config)
    port = free_port()
    proc = _pdh("api", "--db", str(small_db), "--port", str(port), "--processes", "2",
                config=config)
    base = f"http://127.0.0.1:{port}{V1}"
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # printed once both processes serve
        assert f"http://127.0.0.1:{port}" in line, line
        children = _serving_children(proc)
        assert len(children) == 2, children
        snapshot = str(Store(config.store_dir).path_of(first))

        def load(until: Any, timeout: float = 30) -> list[httpx.Response]:
            """Requests on new connections from 4 threads until ``until()`` holds."""
            answers: list[httpx.Response] = []
            deadline = time.monotonic() + timeout

            def client() -> None:
                while not until() and time.monotonic() < deadline:
                    answers.append(httpx.get(f"{base}/records?limit=5", timeout=10))

            threads = [threading.Thread(target=client) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert until(), f"not within {timeout:g} s"
            return answers

        answers = load(lambda: all(snapshot in _open_files(pid) for pid in children))
        assert {(r.status_code, r.headers["x-db-version"]) for r in answers} == {
            (200, first.version)}

        simulate_export(small_db, ExportMode.REPLACE, rows=1500, seconds=0.0, seed=8, days=30)
        second = publish(config)
        after = [httpx.get(f"{base}/kpis", timeout=10) for _ in range(20)]
        assert {(r.status_code, r.headers["x-db-version"], r.json()["records"])
                for r in after} == {(200, second.version, 1500)}

        victim = min(children)
        os.kill(victim, signal.SIGKILL)
        replaced: set[int] = set()

        def replacement() -> bool:
            replaced.update(_serving_children(proc) - children)
            return bool(replaced)

        answers = load(replacement)
        assert {r.status_code for r in answers} <= {200}  # the other one served meanwhile
        alive = _serving_children(proc)
        assert len(alive) == 2
    finally:
        proc.send_signal(stop_signal)
        try:
            out, err = proc.communicate(timeout=15)
        finally:
            _kill_tree(proc)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "did not stop in time" not in err, err
    psutil.wait_procs([psutil.Process(pid) for pid in alive if psutil.pid_exists(pid)],
                      timeout=5)
    assert not any(psutil.pid_exists(pid) for pid in alive)


def _kill_tree(proc: subprocess.Popen[str]) -> None:
    """Whatever is left of ``proc`` and its children (a test that failed half-way)."""
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process(proc.pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                child.kill()
    proc.kill()
    proc.communicate(timeout=10)


def test_pdh_api_processes_stop_when_their_supervisor_is_killed(
        tmp_path: Path, small_db: Path) -> None:
    """SIGKILL to ``pdh api --processes 2`` (no chance to stop its children): each serving
    process notices and stops, so none keeps the port."""
    config = published_config(tmp_path, small_db)
    port = free_port()
    proc = _pdh("api", "--db", str(small_db), "--port", str(port), "--processes", "2",
                config=config)
    children: list[psutil.Process] = []
    try:
        assert proc.stdout is not None
        assert f"http://127.0.0.1:{port}" in proc.stdout.readline()
        children = [psutil.Process(pid) for pid in _serving_children(proc)]
        assert len(children) == 2
        proc.kill()
        proc.wait(10)
        gone, alive = psutil.wait_procs(children, timeout=15)
        assert not alive, alive
        proc.communicate(timeout=10)  # the pipes: no process holds them now
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}{V1}/health", timeout=5)
    finally:
        _kill_tree(proc)
        for child in children:
            with contextlib.suppress(psutil.Error):
                child.kill()


def test_the_hub_says_processes_are_for_pdh_api_alone(
        tmp_path: Path, small_db: Path, caplog: pytest.LogCaptureFixture) -> None:
    """``[api] processes`` in a hub's config: the hub's API stays in its process, and the
    log says so instead of ignoring the setting silently."""
    caplog.set_level("WARNING", logger="api.server")
    build_api_hub(hub_config(tmp_path, small_db, processes=2))
    assert "[api] processes = 2 is for pdh api alone" in caplog.text
    caplog.clear()
    build_api_hub(hub_config(tmp_path, small_db))
    assert "processes" not in caplog.text


def test_pdh_api_processes_out_of_range(tmp_path: Path, small_db: Path) -> None:
    config = make_config(tmp_path, db=small_db)
    proc = _pdh("api", "--db", str(small_db), "--processes", "0", config=config)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2, err
    assert "--processes" in err and "Traceback" not in err
