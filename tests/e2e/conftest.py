"""End to end: ``pdh run --headless`` as a real child process (the hub, its API and the
supervised dashboard), driven only from outside as a person or the ERP would: the DB
file on disk, the HTTP API, ``pdh.log`` and ``events.jsonl``, and a real browser.

Each fault test has a hub of its own (:func:`own_hub`), so none depends on what another
did or on their order; the scenario's export modes share one (:func:`settled_hub`), each
starting from rest. Every hub is stopped with SIGTERM, must exit 0 and must leave no
process of its tree behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from core import queries
from core.dbfile import look
from core.eventlog import read_events
from tests.browser import CHROMIUM, MISSING, chromium_page
from tests.conftest import free_port, make_db, wait_for

SETTLE_INTERVAL = 0.3  # s between looks; 3 unchanged looks settle an export
SETTLE_CHECKS = 3
SETTLE_WINDOW = SETTLE_INTERVAL * SETTLE_CHECKS
START_TIMEOUT = 90.0  # s for the hub and its Streamlit child on a loaded 2-core machine
REST_TIMEOUT = 40.0  # s for one export to be noticed, settled, healed and served
INDEXES = {"idx_records_work_date", "idx_records_item_date", "idx_records_line_date",
           "idx_records_lot_no", "idx_defects_record_id"}


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))  # a TOML basic string is a JSON string


def write_config(folder: Path, sections: dict[str, dict[str, Any]]) -> Path:
    path = folder / "pdh.toml"
    path.write_text("".join(
        f"[{name}]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in values.items())
        for name, values in sections.items()
    ), encoding="utf-8")
    return path


def hub_env() -> dict[str, str]:
    """This environment, without a display (headless anyway) or another config."""
    drop = ("DISPLAY", "WAYLAND_DISPLAY", "PDH_CONFIG", "PDH_DB")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["LANG"] = "C.UTF-8"
    return env


class HubProcess:
    """``pdh run --headless`` on ``db`` with the API and the dashboard on free ports."""

    def __init__(self, folder: Path, db: Path, *, api_port: int | None = None,
                 **overrides: dict[str, Any]) -> None:
        self.folder = folder
        self.db = db
        self.api_port = api_port or free_port()
        self.dashboard_port = free_port()
        self.log_dir = folder / "logs"
        self.state_dir = folder / "state"
        sections: dict[str, dict[str, Any]] = {
            "database": {"path": db},
            "watch": {"settle_interval": SETTLE_INTERVAL, "settle_checks": SETTLE_CHECKS,
                      "poll_interval": 0.2, "check_interval": 3600.0},
            "heal": {"connect_timeout": 2.0, "retries": 3, "retry_backoff": 0.1},
            "api": {"enabled": True, "host": "127.0.0.1", "port": self.api_port,
                    "bind_retry": 0.5},
            "dashboard": {"enabled": True, "host": "127.0.0.1", "port": self.dashboard_port,
                          "start_timeout": START_TIMEOUT, "restart_backoff": 0.2,
                          "stable_after": 5.0},
            "ui": {"language": "en", "notifications": False},
            "log": {"dir": self.log_dir, "level": "INFO"},
            "state": {"dir": self.state_dir},
            "store": {"dir": folder / "store"},
            # The exports here vary from 500 to 600,000 rows on purpose; the row-count check
            # has tests of its own (tests/core/test_snapshots.py).
            "verify": {"min_row_ratio": 0.0},
        }
        for name, values in overrides.items():
            sections.setdefault(name, {}).update(values)
        self.servers = ("api", "dashboard") if sections["dashboard"]["enabled"] else ("api",)
        self.config_file = write_config(folder, sections)
        self.output = folder / "hub-output.txt"
        self.proc: subprocess.Popen[bytes] | None = None
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.api_port}/api/v1",
                                   timeout=10.0, trust_env=False)
        self.seen_dashboards: dict[int, psutil.Process] = {}

    # process -------------------------------------------------------------------------

    def start(self) -> None:
        with self.output.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "agent", "run", "--headless",
                 "--config", str(self.config_file)],
                cwd=self.folder, env=hub_env(), stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT,
            )

    def tail(self, n: int = 40) -> str:
        try:
            lines = self.output.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return ""
        return "\n".join(lines[-n:])

    def assert_alive(self) -> None:
        assert self.proc is not None
        code = self.proc.poll()
        if code is not None:
            raise AssertionError(f"the hub exited with code {code}:\n{self.tail()}")

    def tree(self) -> list[psutil.Process]:
        assert self.proc is not None
        try:
            return psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def stop(self) -> int:
        """SIGTERM; the exit code. Fails if the hub hangs or leaves a process behind."""
        assert self.proc is not None
        tree = self.tree() + list(self.seen_dashboards.values())
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(30)
        except subprocess.TimeoutExpired:
            for p in [*tree, psutil.Process(self.proc.pid)]:
                p.kill()
            self.proc.wait(10)
            raise AssertionError(f"the hub did not stop within 30 s of SIGTERM:\n{self.tail()}"
                                 ) from None
        finally:
            self.client.close()
        # Our own children are reaped by the hub; anything else would be an orphan.
        _gone, remaining = psutil.wait_procs(tree, timeout=5)
        left = [p for p in remaining if alive(p)]
        for p in left:
            p.kill()
        assert not left, f"left running after the hub stopped: {left}"
        return code

    # what the hub shows ------------------------------------------------------------------

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.client.get(path, params=params)

    def status(self) -> dict[str, Any]:
        response = self.get("/hub/status")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def status_or_none(self) -> dict[str, Any] | None:
        self.assert_alive()
        try:
            response = self.get("/hub/status")
        except httpx.HTTPError:
            return None
        return dict(response.json()) if response.status_code == 200 else None

    def events(self) -> list[dict[str, Any]]:
        return read_events(self.log_dir / "events.jsonl")

    def log_lines(self) -> list[str]:
        try:
            return (self.log_dir / "pdh.log").read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []

    def wait_status(self, condition: Callable[[dict[str, Any]], Any], message: str,
                    timeout: float = REST_TIMEOUT, interval: float = 0.05) -> dict[str, Any]:
        """Poll /hub/status until ``condition(status)``; that status."""
        def check() -> dict[str, Any] | None:
            status = self.status_or_none()
            return status if status is not None and condition(status) else None

        return dict(wait_for(check, timeout, interval=interval, message=message))

    def wait_events(self, condition: Callable[[list[dict[str, Any]]], Any], message: str,
                    since: int = 0, timeout: float = REST_TIMEOUT) -> list[dict[str, Any]]:
        def check() -> list[dict[str, Any]] | None:
            self.assert_alive()
            new = self.events()[since:]
            return new if condition(new) else None

        return list(wait_for(check, timeout, interval=0.05, message=message))

    def at_rest(self, status: dict[str, Any]) -> bool:
        """Healthy, idle, both servers running, and its last check is of the file on disk."""
        current = look(self.db).version
        last = status.get("last_check") or {}
        running = all(status["servers"].get(name, {}).get("state") == "running"
                      for name in self.servers)
        return bool(
            current
            and status["state"] == "healthy"
            and status["activity"] == "idle"
            and status["db"]["version"] == current
            and status.get("published") is not None
            and status.get("held_back") is None
            and last.get("version") == current
            and last.get("result") in ("ok", "healed")
            and running
        )

    def wait_at_rest(self, timeout: float = REST_TIMEOUT) -> dict[str, Any]:
        status = self.wait_status(self.at_rest, "the hub to come to rest (healthy, idle, "
                                  "last check of the file on disk)", timeout)
        dash = status["servers"].get("dashboard", {})
        if dash.get("pid"):
            self.remember_dashboard(int(dash["pid"]))
        return status

    def remember_dashboard(self, pid: int) -> None:
        if pid not in self.seen_dashboards:
            with contextlib.suppress(psutil.NoSuchProcess):
                self.seen_dashboards[pid] = psutil.Process(pid)

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}/"


def alive(p: psutil.Process) -> bool:
    """Running and not a zombie (an orphan's zombie may wait for a busy init)."""
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@contextmanager
def running_hub(folder: Path, db: Path, **kwargs: Any) -> Iterator[HubProcess]:
    """A started hub; on the way out SIGTERM, exit code 0, no process left, no traceback."""
    hub = HubProcess(folder, db, **kwargs)
    hub.start()
    try:
        yield hub
    finally:
        code = hub.stop()
        assert code == 0, f"the hub exited with {code} after SIGTERM:\n{hub.tail()}"
        logs = ("pdh.log", "dashboard.log") if "dashboard" in hub.servers else ("pdh.log",)
        for name in logs:  # a crash of the hub or of a page run
            text = (hub.log_dir / name).read_text(encoding="utf-8", errors="replace")
            assert "Traceback" not in text, f"a traceback in {name}:\n{text[-4000:]}"


def start_and_settle(hub: HubProcess) -> dict[str, Any]:
    """Wait until the hub has its servers up and has healed its first file."""
    return hub.wait_at_rest(START_TIMEOUT)


# --- expected data, by core.queries directly on the file --------------------------------------


def default_filters(db: Path) -> queries.Filters:
    """What the dashboard shows by default: the last 30 days that have data."""
    try:
        return queries.default_filters(queries.date_range(db))
    finally:
        queries.READERS.close_all()  # the oracle reads the ERP's file: never keep it open


def expected_kpis(db: Path) -> dict[str, Any]:
    try:
        return asdict(queries.kpis(db, default_filters(db)))
    finally:
        queries.READERS.close_all()


def api_kpis(hub: HubProcess) -> httpx.Response:
    f = default_filters(hub.db)
    assert f.date_from is not None and f.date_to is not None
    return hub.get("/kpis", date_from=f.date_from.isoformat(), date_to=f.date_to.isoformat())


def assert_api_serves_file(hub: HubProcess) -> dict[str, Any]:
    """/kpis for the default period equals our SQL on the file as it is now, labelled with
    the published snapshot's version; the KPIs."""
    expected = expected_kpis(hub.db)
    response = api_kpis(hub)
    assert response.status_code == 200, response.text
    published = hub.status()["published"]
    assert response.headers["X-DB-Version"] == published["version"]
    assert response.headers["X-Data-As-Of"]
    assert response.json() == expected
    return expected


def names(events: list[dict[str, Any]]) -> list[str]:
    return [str(e["event"]) for e in events]


def in_order(expected: list[str], actual: list[str]) -> bool:
    """``expected`` is a subsequence of ``actual``."""
    it = iter(actual)
    return all(name in it for name in expected)


def event_time(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(event["time"]).replace("Z", "+00:00")).timestamp()


# --- a real browser, once per module -------------------------------------------------------------


@pytest.fixture(scope="module")
def page() -> Iterator[Any]:
    """A headless chromium page (Debian's chromium through Playwright)."""
    if not CHROMIUM.exists():
        pytest.skip(MISSING)
    with chromium_page() as tab:
        yield tab


def shown_kpis(page: Any, url: str,
               labels: tuple[str, ...] = ("Good quantity", "Defect quantity")) -> dict[str, str]:
    """Reload the dashboard (open it, the first time); the first values it shows for
    ``labels``."""
    from tests.dashboard.test_browser import metric, wait_rendered

    load(page, url)
    # A Streamlit child's first run imports pandas and altair: on a loaded 2-core machine
    # that alone can pass Playwright's default 30 s, so the first KPI gets the start bound.
    page.wait_for_selector('[data-testid="stMetric"]', timeout=START_TIMEOUT * 1000)
    wait_rendered(page)
    shown = {label: str(wait_for(lambda label=label: metric(page, label, 1000), 30,
                                 message=f"the dashboard's {label!r}"))
             for label in labels}
    assert_no_exception(page)
    return shown


def load(page: Any, url: str) -> None:
    """What a person does: reload the open dashboard (keeping its address), or open it."""
    if page.url.startswith(url):
        page.reload()
    else:
        page.goto(url)


def assert_no_exception(page: Any) -> None:
    errors = page.locator('[data-testid="stException"]')
    assert errors.count() == 0, errors.first.inner_text()


def shown_text(page: Any, url: str, text: str) -> None:
    """Reload the dashboard and wait until it shows ``text``."""
    load(page, url)
    page.get_by_text(text).first.wait_for(timeout=30_000)
    assert_no_exception(page)


def wait_until(condition: Callable[[], Any], message: str, timeout: float = REST_TIMEOUT) -> Any:
    return wait_for(condition, timeout, interval=0.05, message=message)


@contextmanager
def settled_hub(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[HubProcess]:
    """A hub process on a fresh 2000-row export, started and at rest (a module's hub)."""
    folder = tmp_path_factory.mktemp(name)
    db = make_db(folder / "data" / "production_analysis.db", rows=2000)
    with running_hub(folder, db) as running:
        start_and_settle(running)
        yield running


@pytest.fixture(scope="session")
def export_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One fresh 2000-row export per session; each test's hub gets a copy."""
    return make_db(tmp_path_factory.mktemp("e2e-template") / "template.db", rows=2000)


@pytest.fixture
def own_hub(request: pytest.FixtureRequest, tmp_path: Path,
            export_template: Path) -> Iterator[HubProcess]:
    """A hub of this test's own on a copy of the 2000-row export, started and at rest.
    It runs the dashboard only for a test that uses the browser ``page`` (Streamlit's start
    is most of a hub's start-up)."""
    db = tmp_path / "data" / "production_analysis.db"
    db.parent.mkdir(parents=True)
    shutil.copyfile(export_template, db)
    with running_hub(tmp_path, db,
                     dashboard={"enabled": "page" in request.fixturenames}) as running:
        start_and_settle(running)
        yield running
