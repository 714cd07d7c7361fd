"""The headless hub on Windows: ``pdh check``, ``pdh run --headless`` from detection to a
published snapshot, stop requests, a database on a UNC path, the dashboard child."""

from __future__ import annotations

import json
import os
import re
import socket
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.windows.conftest import dashboard_process, free_port, processes_with, write_config
from tests.windows.wine import PDH, PY, Wine, WineProcess, wait_until, winpath

pytestmark = pytest.mark.slow


def _status(port: int) -> dict:
    return httpx.get(f"http://127.0.0.1:{port}/api/v1/hub/status", timeout=5,
                     trust_env=False).json()


def _api_status(port: int) -> dict | None:
    try:
        return _status(port)
    except httpx.HTTPError:
        return None


def _hub_with_dashboard(wine: Wine, wdir: Path) -> tuple[WineProcess, int, int]:
    assert wine.run(PDH, "demo-db", winpath(wdir / "hub.db"), "--rows", "3000").returncode == 0
    port, dash_port = free_port(), free_port()
    write_config(wdir, api_port=port, dashboard_port=dash_port)
    hub = wine.start_process(PY, "-m", "agent", "run", "--headless", "--config",
                             winpath(wdir / "pdh.toml"), name="hub")
    return hub, port, dash_port


def _dashboard_pid(port: int) -> int | None:
    server = (_api_status(port) or {}).get("servers", {}).get("dashboard", {})
    return server.get("pid") if server.get("state") == "running" else None


def test_check_heals_and_publishes(wine: Wine, wdir: Path) -> None:
    db = winpath(wdir / "hub.db")
    assert wine.run(PDH, "demo-db", db, "--rows", "5000").returncode == 0
    write_config(wdir)
    out = wine.run(PDH, "check", "--config", winpath(wdir / "pdh.toml"), "--json")
    assert out.returncode == 0, out.stdout
    report = json.loads(out.stdout[out.stdout.index("{"):])
    assert report["publish"] == "published", report
    assert "idx_records_work_date" in report["healed"]
    assert report["published"]["rows"] == 5000


def test_check_on_a_unc_path(wine: Wine, wdir: Path) -> None:
    """Defect C: ``file://server/share/x.db`` (pathlib's URI of a UNC path) is refused by
    SQLite; ``file:////server/share/x.db`` works. Wine serves \\\\server\\share from
    dosdevices/unc/server/share."""
    share = wine.prefix / "dosdevices" / "unc" / "fileserver" / f"erp-{os.getpid()}"
    share.parent.mkdir(parents=True, exist_ok=True)
    share.unlink(missing_ok=True)
    share.symlink_to(wdir, target_is_directory=True)
    try:
        unc = rf"\\fileserver\{share.name}\production_analysis.db"
        assert wine.run(PDH, "demo-db", unc, "--rows", "3000").returncode == 0
        write_config(wdir, db=unc)
        out = wine.run(PDH, "check", "--config", winpath(wdir / "pdh.toml"), "--json")
        assert out.returncode == 0, out.stdout
        report = json.loads(out.stdout[out.stdout.index("{"):])
        assert report["publish"] == "published", report
        assert report["db"] == unc  # as typed: not resolved to another spelling
    finally:
        share.unlink()


def test_headless_detects_heals_publishes_and_stops_on_ctrl_c(wine: Wine, wdir: Path) -> None:
    """Defect A: on main, ``pdh run --headless`` died at start with NotImplementedError
    (asyncio cannot add signal handlers on Windows)."""
    db = winpath(wdir / "hub.db")
    assert wine.run(PDH, "demo-db", db, "--rows", "5000").returncode == 0
    port = free_port()
    write_config(wdir, api_port=port)
    hub = wine.start_process(PY, "-m", "agent", "run", "--headless", "--config",
                             winpath(wdir / "pdh.toml"), name="hub")
    first = wait_until(lambda: (s := _api_status(port)) and s.get("published") and s,
                       "the first publish", timeout=90)
    # The ERP's export: a Windows process replacing the file (Wine keeps Windows'
    # sharing rules only between Wine processes).
    erp = wine.run(PDH, "erp-sim", db, "--mode", "replace", "--rows", "6000", "--seconds", "0.5")
    assert erp.returncode == 0, erp.stdout
    second = wait_until(
        lambda: (s := _api_status(port)) and s["published"]["version"]
        != first["published"]["version"] and s["state"] == "healthy" and s,
        "the export's publish, and the hub at rest", timeout=60)
    assert second["published"]["rows"] == 6000
    assert second["state"] == "healthy"
    records = httpx.get(f"http://127.0.0.1:{port}/api/v1/records?limit=5", timeout=5,
                        trust_env=False)
    assert records.status_code == 200
    assert records.headers["X-DB-Version"] == second["published"]["version"]

    started = time.monotonic()
    hub.interrupt()
    assert hub.wait(15) == 0, hub.output()[-3000:]
    stop_s = time.monotonic() - started
    out = hub.output()
    assert "received CTRL_C_EVENT; shutting down" in out
    assert "hub stopped" in out
    assert "Traceback" not in out, out[-3000:]
    print(f"headless hub stopped {stop_s:.2f} s after Ctrl-C")


def test_dashboard_child_stops_cleanly_and_restarts_after_a_crash(wine: Wine,
                                                                   wdir: Path) -> None:
    """The supervisor on Windows: CTRL_BREAK_EVENT (and the end of the child's stdin)
    instead of TerminateProcess, a restart after a crash, the child gone after the hub."""
    hub, port, dash_port = _hub_with_dashboard(wine, wdir)

    def dashboard_pid() -> int | None:
        return _dashboard_pid(port)

    first = wait_until(dashboard_pid, "the dashboard child running", timeout=180)
    health = httpx.get(f"http://127.0.0.1:{dash_port}/_stcore/health", timeout=10,
                       trust_env=False)
    assert health.status_code == 200
    # The dashboard's warmer runs on Windows too, beside a healthy server.
    wait_until(lambda: "default view of snapshot" in _dashboard_logs(wdir),
               "the dashboard to prepare its default view", timeout=120)

    # A crash: the child ended from outside, as Task Manager would.
    kill = wine.run("taskkill", "/F", "/PID", str(first))
    assert kill.returncode == 0, kill.stdout
    second = wait_until(lambda: (pid := dashboard_pid()) not in (None, first) and pid,
                        "the restarted dashboard", timeout=180)
    assert second != first

    hub.interrupt()
    assert hub.wait(40) == 0, hub.output()[-3000:]
    logs = _dashboard_logs(wdir)
    out = hub.output()
    assert "did not stop" not in out, "the child was killed, not stopped"
    codes = re.findall(r"=== pid \d+ ended with code (\S+)", logs)
    assert codes[-1] == "0", logs[-3000:]  # Streamlit stopped itself; TerminateProcess: 15
    wait_until(lambda: dashboard_process(dash_port) is None,
               "no dashboard process left", timeout=15)


def _dashboard_logs(wdir: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in (wdir / "logs").glob("dashboard*"))


def test_pythonw_headless_has_no_stderr_and_still_logs(wine: Wine, wdir: Path) -> None:
    """``pythonw`` (what start-at-login runs) has ``sys.stderr`` None."""
    db = winpath(wdir / "hub.db")
    assert wine.run(PDH, "demo-db", db, "--rows", "3000").returncode == 0
    port = free_port()
    write_config(wdir, api_port=port)
    hub = wine.start_process(PY.replace("python.exe", "pythonw.exe"), "-m", "agent", "run",
                             "--headless", "--config", winpath(wdir / "pdh.toml"), name="pyw")
    try:
        wait_until(lambda: (s := _api_status(port)) and s.get("published"),
                   "the first publish under pythonw", timeout=90)
    finally:
        hub.stop()
    text = "".join(p.read_text(errors="replace") for p in (wdir / "logs").glob("*.log"))
    assert "snapshot" in text and "published" in text
    assert "Logging error" not in text and "Traceback" not in text, text[-3000:]


def test_a_killed_hub_leaves_no_dashboard_behind(wine: Wine, wdir: Path) -> None:
    """The hub killed outright (Task Manager, ``taskkill /F``): the dashboard child sees
    its stdin end (and its parent gone), stops itself through Streamlit's own shutdown,
    and the port comes free for the next hub. (On main the parent watch got there too,
    but by TerminateProcess on itself: this guards the new way.)"""
    hub, port, dash_port = _hub_with_dashboard(wine, wdir)
    wait_until(lambda: _dashboard_pid(port), "the dashboard child", timeout=180)
    hub_pid = json.loads(next((wdir / "state").glob("hub-*.json")).read_text())["pid"]
    assert wine.run("taskkill", "/F", "/PID", str(hub_pid)).returncode == 0
    hub.wait(30)
    wait_until(lambda: dashboard_process(dash_port) is None,
               "the orphaned dashboard gone", timeout=30)
    with socket.socket() as s:
        s.bind(("127.0.0.1", dash_port))  # free again


def _spawned_windows_pythons() -> list[psutil.Process]:
    """The Windows Pythons multiprocessing spawned (the suite runs one Wine program at a
    time, so these are the pdh api's)."""
    return processes_with("python.exe", "spawn_main")


def test_pdh_api_in_two_processes(wine: Wine, wdir: Path) -> None:
    """``pdh api --processes 2`` on Windows: uvicorn's supervisor spawns two Windows
    processes that share the listening socket (multiprocessing hands it over with
    WSADuplicateSocket); both answer, and Ctrl-C stops them all."""
    db = winpath(wdir / "hub.db")
    assert wine.run(PDH, "demo-db", db, "--rows", "3000").returncode == 0
    port = free_port()
    write_config(wdir, api_port=port)
    assert wine.run(PDH, "check", "--config", winpath(wdir / "pdh.toml")).returncode == 0
    api = wine.start_process(PY, "-m", "agent", "api", "--processes", "2", "--config",
                             winpath(wdir / "pdh.toml"), name="api")
    api.wait_for_line(r"Production Data Hub API on http://127\.0\.0\.1:\d+", timeout=120)
    serving = _spawned_windows_pythons()
    assert len(serving) == 2, api.output()[-3000:]
    for _ in range(20):
        r = httpx.get(f"http://127.0.0.1:{port}/api/v1/records?limit=5", timeout=10,
                      trust_env=False)
        assert r.status_code == 200 and len(r.json()["records"]) == 5
    api.interrupt()
    assert api.wait(20) == 0, api.output()[-3000:]
    wait_until(lambda: not _spawned_windows_pythons(), "the serving processes to end", 15)
    assert "Traceback" not in api.output(), api.output()[-3000:]
    assert "did not stop in time" not in api.output()  # they stopped, not killed
