"""Fixtures for the dashboard: the page under AppTest with a config handed over the way
the supervisor hands it (``PDH_DASHBOARD_CONFIG``), a real hub (with the real API, and
the supervised dashboard when asked) running in a background thread, and an oracle of
plain SQL."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from anyio.from_thread import BlockingPortal, start_blocking_portal
from streamlit.testing.v1 import AppTest

from core.config import Config
from core.dbfile import look
from core.hub import Hub
from core.state import Activity, ServerState
from dashboard import access
from dashboard.settings import APP_PATH, ENV_DASHBOARD_CONFIG, config_env
from tests.conftest import wait_for

APPTEST_TIMEOUT = 30.0


@pytest.fixture(autouse=True)
def _fresh_streamlit_caches() -> Iterator[None]:
    """Each test starts with empty Streamlit caches (they are process-wide)."""
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def page(monkeypatch: pytest.MonkeyPatch) -> Callable[..., AppTest]:
    """``page(config, **query)``: an AppTest of dashboard/app.py for ``config``, run once.

    AppTest has no connection, so the viewer's address (the edge :mod:`dashboard.access`
    reads from Streamlit's server) is given: ``peer``, this computer unless told.
    """

    def make(config: Config, run: bool = True, peer: str | None = "127.0.0.1",
             **query: str | list[str]) -> AppTest:
        monkeypatch.setenv(ENV_DASHBOARD_CONFIG, config_env(config)[ENV_DASHBOARD_CONFIG])
        monkeypatch.setattr(access, "_peer", lambda: peer)
        at = AppTest.from_file(str(APP_PATH), default_timeout=APPTEST_TIMEOUT)
        for key, value in query.items():
            at.query_params[key] = value
        if run:
            at.run()
        return at

    return make


# --- a real hub in a background thread ----------------------------------------------------


class ThreadedHub:
    """The agent's hub (API installed; dashboard too with ``dashboard.enabled``) on its own
    event loop thread, as ``pdh run`` has it; AppTest and browsers run on the test thread."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.portal: BlockingPortal | None = None
        self.hub: Hub | None = None
        self._run: Future[Any] | None = None

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        assert self.portal is not None
        return self.portal.call(fn, *args)

    def status(self) -> Any:
        assert self.hub is not None
        return self.call(self.hub.status)

    @contextmanager
    def running(self) -> Iterator[ThreadedHub]:
        with start_blocking_portal(backend="asyncio") as portal:
            self.portal = portal
            self.hub = portal.call(self._build)
            self._run = portal.start_task_soon(self.hub.run)
            try:
                yield self
            finally:
                portal.call(self.hub.shutdown)
                self._run.result(timeout=30)

    def _build(self) -> Hub:
        from agent import hub_app as agent_app

        return agent_app.build_hub(self.config)  # the API and the dashboard, as wired

    def count_calls(self, name: str) -> list[tuple[Any, ...]]:
        """Every call the hub gets of its method ``name`` from now on (the real method
        still runs): what the API passes on of the controls."""
        assert self.hub is not None
        calls: list[tuple[Any, ...]] = []
        real: Callable[..., Any] = getattr(self.hub, name)

        def counted(*args: Any) -> Any:
            calls.append(args)
            return real(*args)

        setattr(self.hub, name, counted)
        return calls

    def at_rest(self) -> bool:
        """Idle, the API up, and the file on disk is the version the hub last accepted."""
        status = self.status()
        api = status.servers.get("api")
        return (
            status.activity is Activity.IDLE
            and self.hub is not None
            and self.hub.known_version == look(self.config.db_path).version
            and api is not None and api.state is ServerState.RUNNING
        )

    def wait_at_rest(self, timeout: float = 30.0) -> None:
        wait_for(self.at_rest, timeout, interval=0.05, message="the hub to come to rest")


# --- an oracle of plain SQL ---------------------------------------------------------------


def sql_one(db: Path, sql: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return tuple(conn.execute(sql, params).fetchone())
    finally:
        conn.close()


def last_day(db: Path) -> date:
    return date.fromisoformat(sql_one(db, "SELECT MAX(work_date) FROM production_records")[0])


def expected_kpis(db: Path, start: date, end: date, where: str = "",
                  params: tuple[Any, ...] = ()) -> dict[str, Any]:
    """KPIs over [start, end] by our own SQL, independent of core.queries."""
    sql = (
        "SELECT COUNT(*), SUM(plan_qty), SUM(good_qty), SUM(defect_qty),"
        " SUM(run_minutes), SUM(downtime_minutes) FROM production_records"
        " WHERE work_date BETWEEN ? AND ?" + (f" AND {where}" if where else "")
    )
    n, plan, good, defect, run, down = sql_one(db, sql, (start.isoformat(), end.isoformat(),
                                                         *params))
    return {
        "records": n, "plan": plan or 0, "good": good or 0, "defect": defect or 0,
        "rate": (defect / (good + defect)) if n else None,
        "achievement": (good / plan) if plan else None,
        "run_h": (run or 0) / 60, "down_h": (down or 0) / 60,
    }


def default_period(db: Path) -> tuple[date, date]:
    end = last_day(db)
    return end - timedelta(days=29), end


def default_good_qty(db: Path) -> str:
    """The Good quantity the default view shows for ``db``, by our own SQL, as the page
    writes it (a bare "is there a value" holds for "0" too)."""
    start, end = default_period(db)
    return f"{round(expected_kpis(db, start, end)['good']):,}"


def metrics(at: AppTest) -> dict[str, tuple[str, str | None]]:
    return {m.label: (m.value, m.delta) for m in at.metric}


def texts(at: AppTest) -> str:
    """All the text the page shows in messages, captions and markdown (for assertions)."""
    parts: list[str] = []
    for kind in ("info", "warning", "error", "success", "caption", "markdown", "title",
                 "subheader", "header"):
        parts.extend(str(e.value) for e in getattr(at, kind))
    return "\n".join(parts)
