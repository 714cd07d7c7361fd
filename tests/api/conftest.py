"""Fixtures for the API: the app in-process (httpx ASGITransport), the app on a real
uvicorn in a thread, and a whole hub with the API, run on the test's event loop."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import uvicorn

from api.app import create_app
from api.data import DataSource
from core.config import Config
from core.hub import Hub
from core.state import Activity, ServerState
from core.store import Published, Store
from tests.conftest import await_for, free_port, make_config, wait_for

V1 = "/api/v1"


def published_config(tmp_path: Path, db: Path, **sections: Any) -> Config:
    """A config whose store serves ``db``: published by the real pipeline (pdh check)."""
    from core.checkonce import check_once

    config = make_config(tmp_path, db=db, **sections)
    outcome = check_once(config)
    assert outcome.publish in ("published", "unchanged"), outcome
    return config


def publish(config: Config) -> Published:
    """Publish the ERP's file as it is now (``pdh check``); the new snapshot."""
    from core.checkonce import check_once

    before = Store(config.store_dir).current()
    outcome = check_once(config)
    assert outcome.publish == "published", outcome
    published = current(config)
    assert before is None or published.version != before.version
    return published


def current(config: Config) -> Published:
    """What the store's pointer says readers are served now."""
    published = Store(config.store_dir).current()
    assert published is not None, f"nothing published in {config.store_dir}"
    return published


@pytest.fixture
def api_config(tmp_path: Path, small_db: Path) -> Config:
    return published_config(tmp_path, small_db)


@pytest.fixture
async def client(api_config: Config) -> AsyncIterator[httpx.AsyncClient]:
    """The standalone app (no hub) in-process, serving the published small demo DB."""
    app = create_app(api_config)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


class LiveServer:
    """An app on a real uvicorn, in a background thread, on a free loopback port."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None,
                           lifespan="on", access_log=False, timeout_graceful_shutdown=2)
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        wait_for(lambda: self.server.started or not self.thread.is_alive(), 10,
                 message="uvicorn to listen")
        assert self.server.started, "uvicorn did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def live(api_config: Config) -> Iterator[LiveServer]:
    with LiveServer(create_app(api_config)) as server:
        yield server


def hub_config(tmp_path: Path, db: Path, **api: Any) -> Config:
    """The API on a free port, a busy one tried again after 0.2 s."""
    return make_config(tmp_path, db=db, api={"enabled": True, "port": free_port(),
                                             "bind_retry": 0.2, **api})


def build_api_hub(config: Config) -> Hub:
    """The agent's hub with its services (the API among them)."""
    from agent import hub_app as agent_app

    return agent_app.build_hub(config)


@asynccontextmanager
async def running_hub(config: Config, *, healthy: bool = True) -> AsyncIterator[Hub]:
    """A hub with the API on the current event loop; with ``healthy``, waits until it
    has checked the DB, published a snapshot of it, and the API answers."""
    hub = build_api_hub(config)
    async with anyio.create_task_group() as tg:
        await tg.start(hub.run)
        if healthy:
            await await_for(lambda: hub.known_version and hub.status().activity is Activity.IDLE
                            and hub.status().published is not None
                            and hub.status().servers["api"].state is ServerState.RUNNING,
                            15, message="hub healthy, a snapshot published, the API running")
        try:
            yield hub
        finally:
            hub.shutdown()


def api_source(hub: Hub) -> DataSource:
    """The DataSource of the API installed in ``hub`` (found through its warming hook)."""
    for hook in hub.publisher._before:
        for cell in hook.__closure__ or ():
            if isinstance(cell.cell_contents, DataSource):
                return cell.cell_contents
    raise AssertionError("no API cache-warming hook on the hub")


def events(hub: Hub, name: str) -> list[dict[str, Any]]:
    """The hub's recent events called ``name``, oldest first."""
    return [e for e in hub.events.recent(50) if e["event"] == name]


def api_url(config: Config) -> str:
    return f"http://127.0.0.1:{config.api.port}{V1}"


def fetch_all(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """An independent oracle: plain sqlite3 on the file, no code of ours."""
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()
