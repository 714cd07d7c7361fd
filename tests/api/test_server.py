"""The API on real uvicorn: standalone, inside a running hub, busy ports, control auth,
``pdh api`` as a real child process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fastapi import HTTPException

from api.app import create_app
from api.cache import VersionedCache
from api.data import DataSource
from api.security import check_control, is_loopback, startup_problem
from core.config import ApiConfig, Config
from core.dbfile import look
from core.state import ServerState, StatusSnapshot
from tests.api.conftest import V1, LiveServer, api_url, hub_config, running_hub
from tests.conftest import await_for, free_port, make_config, make_db

REPO = Path(__file__).resolve().parents[2]


# --- standalone on real uvicorn ---------------------------------------------------------


def test_every_route_over_real_http(live: LiveServer, small_db: Path) -> None:
    version = look(small_db).version
    with httpx.Client(base_url=live.url + V1, timeout=10) as c:
        for route in ("/items", "/lines", "/records?limit=3", "/summary/daily",
                      "/summary/items", "/summary/lines", "/defects/pareto", "/kpis"):
            r = c.get(route)
            assert r.status_code == 200, route
            assert r.headers["x-db-version"] == version
            assert c.get(route, headers={"If-None-Match": r.headers["etag"]}).status_code == 304
        assert c.get("/health").json()["db"]["available"] is True
        assert c.get("/records?limit=5000").status_code == 422
        assert c.get("/hub/status").status_code == 503
        csv_bytes = c.get("/records.csv").content
        assert csv_bytes.startswith("\ufeffrecord_id,".encode())
        assert csv_bytes.count(b"\r\n") == 2001


def test_large_csv_streams_in_pages_over_real_http(tmp_path: Path) -> None:
    db = make_db(tmp_path / "big" / "production_analysis.db", rows=12_000, seed=3)
    config = make_config(tmp_path, db=db)
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
async def test_csv_is_cut_off_if_the_file_changes_mid_stream(tmp_path: Path) -> None:
    """Straight ASGI, so the change lands exactly between two pages."""
    db = make_db(tmp_path / "data" / "production_analysis.db", rows=12_000, seed=4)
    app = create_app(make_config(tmp_path, db=db))
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        await anyio.sleep_forever()
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and len(sent) == 2:
            import sqlite3

            conn = sqlite3.connect(db)
            conn.execute("UPDATE production_records SET good_qty = 0 WHERE record_id = 11000")
            conn.commit()
            conn.close()

    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"},
             "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": f"{V1}/records.csv", "raw_path": f"{V1}/records.csv".encode(),
             "query_string": b"", "root_path": "", "headers": [(b"host", b"test")],
             "client": ("127.0.0.1", 5000), "server": ("test", 80)}
    await app(scope, receive, send)
    assert sent[0]["status"] == 200
    bodies = [m for m in sent if m["type"] == "http.response.body"]
    assert all(m.get("more_body") for m in bodies), "the stream must not look complete"
    rows = b"".join(m["body"] for m in bodies).count(b"\r\n") - 1
    assert rows == 5000  # the first page only


# --- security ---------------------------------------------------------------------------


def test_loopback_detection() -> None:
    for host in ("127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "::ffff:127.0.0.1"):
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
        no_token = config.model_copy(deep=True)
        no_token.api.token = ""
        app = create_app(no_token, hub=hub)
        remote = httpx.ASGITransport(app=app, client=("198.51.100.20", 40000))
        async with httpx.AsyncClient(transport=remote, base_url="http://hub") as c:
            r = await c.post(f"{V1}/hub/check", headers={"Authorization": "Bearer "})
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
        assert status.db.version == look(small_db).version
        checks = hub.cycles
        r = await c.post("/hub/check")
        assert r.status_code == 202
        StatusSnapshot.model_validate(r.json())
        await await_for(lambda: hub.cycles > checks, 10, message="the check to run")
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


@pytest.mark.anyio
async def test_cache_is_warmed_after_each_check(tmp_path: Path, small_db: Path) -> None:
    config = hub_config(tmp_path, small_db)
    async with running_hub(config) as hub:
        source = _api_source(hub)
        await await_for(lambda: len(source.cache) >= 7, 10, message="warm cache")
        assert source.cache.version == look(small_db).version
        hits = source.cache.hits
        async with httpx.AsyncClient(base_url=api_url(config), timeout=10) as c:
            for url in ("/summary/daily?date_from=2026-03-02&date_to=2026-03-31",
                        "/kpis?date_from=2026-03-02&date_to=2026-03-31",
                        "/defects/pareto?date_from=2026-03-02&date_to=2026-03-31",
                        "/items", "/lines"):
                assert (await c.get(url)).status_code == 200
        assert source.cache.hits == hits + 5


def _api_source(hub: Any) -> DataSource:
    """The DataSource of the API installed in ``hub`` (found through its warm hook)."""
    for hook in hub._after_check:
        cells = [c.cell_contents for c in (hook.__closure__ or ())]
        for cell in cells:
            if isinstance(cell, DataSource):
                return cell
    raise AssertionError("no API cache hook on the hub")


@pytest.mark.anyio
async def test_busy_port_marks_api_failed_and_recovers(tmp_path: Path, small_db: Path) -> None:
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
            # The rest of the hub goes on: it still checks and heals the file.
            await await_for(lambda: hub.known_version == look(small_db).version, 10,
                            message="the hub to check the DB")
            assert hub.status().state.value == "degraded"
            blocker.close()
            await await_for(lambda: hub.status().servers["api"].state is ServerState.RUNNING,
                            15, message="the API to bind once the port is free")
            async with httpx.AsyncClient(base_url=api_url(config), timeout=10) as c:
                assert (await c.get("/kpis")).status_code == 200
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


# --- pdh api, a real child process ------------------------------------------------------

def _pdh(*args: str, config: Config) -> subprocess.Popen[str]:
    toml = config.database.path.parent.parent / "pdh.toml"
    toml.write_text(f'[log]\ndir = "{config.log_dir}"\n', encoding="utf-8")
    return subprocess.Popen(
        [sys.executable, "-m", "agent", *args, "--config", str(toml)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def test_pdh_api_standalone(tmp_path: Path, small_db: Path) -> None:
    config = make_config(tmp_path, db=small_db)
    port = free_port()
    proc = _pdh("api", "--db", str(small_db), "--port", str(port), config=config)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}" in line, line
        base = f"http://127.0.0.1:{port}{V1}"
        r = httpx.get(f"{base}/kpis", timeout=10)
        assert r.status_code == 200 and r.json()["records"] == 2000
        assert r.headers["x-db-version"] == look(small_db).version
        journal = small_db.with_name(small_db.name + "-journal")
        journal.write_bytes(b"\0" * 512)
        r = httpx.get(f"{base}/kpis", timeout=10)
        assert r.status_code == 503 and r.headers["retry-after"]
        journal.unlink()
        assert httpx.get(f"{base}/hub/status", timeout=10).json() == {
            "detail": "no hub in this process"}
        # A second copy on the same port: a clear message, exit 1.
        second = _pdh("api", "--db", str(small_db), "--port", str(port), config=config)
        out, err = second.communicate(timeout=30)
        assert second.returncode == 1
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
