"""One database, one hub, one store: two hubs on one PC with every folder left at its
default (a home of the test's own) never mix their data, and a second hub for a database
that has one is refused, whatever its config."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

from core.config import load_config, parse_config
from core.erp.erpsim import ExportMode, simulate_export
from tests.conftest import make_db, wait_for
from tests.e2e.conftest import START_TIMEOUT, HubProcess, hub_env

DEFAULT_FOLDERS = {"log": {"dir": ""}, "state": {"dir": ""}, "store": {"dir": ""}}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The platform's app folders in a home of this test's own (the hubs inherit it)."""
    for name in ("XDG_DATA_HOME", "XDG_STATE_HOME"):
        monkeypatch.setenv(name, str(tmp_path / "home" / name.lower()))
    return tmp_path / "home"


@contextmanager
def default_hub(folder: Path, db: Path) -> Iterator[HubProcess]:
    folder.mkdir(parents=True, exist_ok=True)
    hub = HubProcess(folder, db, dashboard={"enabled": False}, **DEFAULT_FOLDERS)
    hub.log_dir = load_config(hub.config_file).config.log_dir  # the database's own
    hub.start()
    try:
        yield hub
    finally:
        assert hub.stop() == 0, hub.tail()
        text = (hub.log_dir / "pdh.log").read_text(encoding="utf-8", errors="replace")
        assert "Traceback" not in text, text[-4000:]


def pdh_check(hub: HubProcess, db: Path) -> subprocess.CompletedProcess[str]:
    """``pdh check --db db`` with ``hub``'s config, from its folder."""
    return subprocess.run(
        [sys.executable, "-m", "agent", "check", "--config", str(hub.config_file),
         "--db", str(db)], cwd=hub.folder, env=hub_env(), capture_output=True, text=True,
        timeout=60)


def records(hub: HubProcess) -> int | None:
    try:
        response = hub.get("/kpis")
    except httpx.HTTPError:
        return None
    return int(response.json()["records"]) if response.status_code == 200 else None


def test_two_hubs_on_default_folders_keep_their_data_apart(tmp_path: Path, home: Path) -> None:
    # Same file name, two folders (two plants): each its own store, state and log.
    db_a = make_db(tmp_path / "Plant1" / "production_analysis.db", rows=1500, seed=1)
    db_b = make_db(tmp_path / "Plant2" / "production_analysis.db", rows=2500, seed=2)
    rows_a, rows_b = [1500, 1600, 1700, 1800], [2500, 2600, 2700, 2800]
    with ExitStack() as stack:
        hub_a = stack.enter_context(default_hub(tmp_path / "a", db_a))
        hub_b = stack.enter_context(default_hub(tmp_path / "b", db_b))
        for hub in (hub_a, hub_b):
            hub.wait_at_rest(START_TIMEOUT)
        seen: dict[str, set[int]] = {"a": set(), "b": set()}
        done = threading.Event()

        def read(name: str, hub: HubProcess) -> None:
            while not done.is_set():
                answer = records(hub)
                if answer is not None:
                    seen[name].add(answer)

        readers = [threading.Thread(target=read, args=("a", hub_a), daemon=True),
                   threading.Thread(target=read, args=("b", hub_b), daemon=True)]
        for reader in readers:
            reader.start()
        try:
            for n in range(1, 4):
                simulate_export(db_a, ExportMode.REPLACE, rows=rows_a[n], seconds=0.1,
                                seed=10 + n, days=60)
                simulate_export(db_b, ExportMode.REPLACE, rows=rows_b[n], seconds=0.1,
                                seed=20 + n, days=60)
                for hub, rows in ((hub_a, rows_a[n]), (hub_b, rows_b[n])):
                    hub.wait_status(lambda s, rows=rows: (s.get("published") or {}).get(
                        "rows") == rows, f"{hub.db} published with {rows} rows")
        finally:
            done.set()
            for reader in readers:
                reader.join(10)
        assert seen["a"] and seen["a"] <= set(rows_a), seen
        assert seen["b"] and seen["b"] <= set(rows_b), seen
        for hub, rows in ((hub_a, rows_a[3]), (hub_b, rows_b[3])):
            status = hub.status()
            assert status["db"]["path"] == str(hub.db)
            assert status["published"]["rows"] == rows == records(hub)
        stores = {load_config(h.config_file).config.store_dir for h in (hub_a, hub_b)}
        assert len(stores) == 2 and all(str(home) in str(s) for s in stores)
        logs = {hub_a.log_dir, hub_b.log_dir}
        assert len(logs) == 2 and all((d / "events.jsonl").is_file() for d in logs)

        # A second hub for database A, with a config of its own: refused, naming the first.
        (tmp_path / "a2").mkdir()
        other = HubProcess(tmp_path / "a2", db_a, dashboard={"enabled": False},
                           **DEFAULT_FOLDERS)
        second = subprocess.run(
            [sys.executable, "-m", "agent", "run", "--headless", "--config",
             str(other.config_file)], cwd=other.folder, env=hub_env(), capture_output=True,
            text=True, timeout=60)
        other.client.close()
        assert second.returncode == 2, second
        assert f"already running for {db_a}" in second.stderr
        assert f"pid {hub_a.proc.pid}" in second.stderr and str(hub_a.config_file) in second.stderr

        # `pdh check` of database B from A's folder: B's own store; A's served data as it was.
        before = hub_a.status()["published"]["version"]
        check = pdh_check(hub_a, db_b)
        # B's hub owns B: the check is handed to B's hub, at the API its lock names.
        assert check.returncode == 0, check
        assert "asked it to check now" in check.stdout
        assert hub_a.status()["published"]["version"] == before
        assert records(hub_a) == rows_a[3]


def test_pdh_check_of_another_database_gets_its_own_store(tmp_path: Path, home: Path) -> None:
    db_a = make_db(tmp_path / "Plant1" / "production_analysis.db", rows=1500, seed=1)
    db_b = make_db(tmp_path / "Plant2" / "production_analysis.db", rows=2500, seed=2)
    with default_hub(tmp_path / "a", db_a) as hub_a:
        status = hub_a.wait_at_rest(START_TIMEOUT)
        before = status["published"]["version"]
        check = pdh_check(hub_a, db_b)
        assert check.returncode == 0, check
        assert "published 2,500 records" in check.stdout
        wait_for(lambda: hub_a.status()["published"]["version"] == before, 5,
                 message="hub A's snapshot unchanged")
        assert records(hub_a) == 1500
        store_b = parse_config({"database": {"path": str(db_b)}}, base=tmp_path).store_dir
        assert store_b != load_config(hub_a.config_file).config.store_dir
        assert json.loads((store_b / "current.json").read_text("utf-8"))["rows"] == 2500
        assert json.loads((store_b / "source.json").read_text("utf-8"))["database"] == str(db_b)


def test_the_upgrade_restart_keeps_serving_the_flat_stores_snapshot(
        tmp_path: Path, home: Path) -> None:
    from tests.core.test_db_folders import default_config, legacy_layout

    db = make_db(tmp_path / "Plant1" / "production_analysis.db", rows=1500, seed=1)
    legacy = legacy_layout(default_config(db))
    served = json.loads((legacy.store / "current.json").read_text("utf-8"))
    with default_hub(tmp_path / "a", db) as hub:
        status = hub.wait_status(lambda s: s.get("published") is not None,
                                 "the hub to serve the old store's snapshot", START_TIMEOUT)
        assert status["published"]["version"] == served["version"]
        assert records(hub) == 1500
        hub.wait_at_rest(START_TIMEOUT)
        assert hub.status()["published"]["version"] == served["version"]  # not copied again
    assert not legacy.store.exists()
