"""The service from the Windows zip (``make windows-dist``), installed as a new user would
(issue 30): a fresh Wine prefix with no Python, the zip extracted, and ``pdh.exe service
install`` the first Windows program run after ``wineboot``; a config with explicit
``[log]``, ``[state]`` and ``[store]`` folders (docs/operations.md). The service serves
the data and follows an ERP export; it is started once; a second hub for its database
(``service run`` by hand) exits 2 naming it; a second server on its API port fails with
a message; ``service stop`` leaves "hub stopped" in its log.

What issue 30 saw (two starts, then silence) was Wine's session model, not the hub's:
with no persistent wineserver the session ends when the last user program (``service
install``) exits, and the service's process is ended with it (TerminateProcess: nothing
logged); the next Wine program opens a new session, whose services.exe auto-starts the
service again. This session is persistent (``wineserver -p``), as on Windows.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.windows.conftest import ENV_DIR, free_port
from tests.windows.wine import Wine, wait_until, winpath

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

DIST = os.environ.get("PDH_WINDOWS_DIST")
FOLDER = r"C:\pdh\ProductionDataHub"
PDH_EXE = FOLDER + r"\pdh.exe"


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wine]:
    """A new prefix (wineboot makes it), the ProcessPrng forwarder and the zip: no Windows
    program has run in it but Wine's own start-up."""
    if not DIST or not Path(DIST).is_file():
        pytest.skip("no Windows zip: PDH_WINDOWS_DIST (make test-windows builds it)")
    assert ENV_DIR
    root = tmp_path_factory.mktemp("fresh-service")
    wine = Wine(root, root)
    try:
        wine.start()
        shutil.copy(Path(ENV_DIR) / "dl" / "bcryptprimitives.dll",
                    wine.prefix / "drive_c" / "windows" / "system32")
        with zipfile.ZipFile(DIST) as zf:
            zf.extractall(wine.prefix / "drive_c" / "pdh")
        yield wine
    finally:
        wine.close()


def _status(port: int) -> dict | None:
    try:
        answer = httpx.get(f"http://127.0.0.1:{port}/api/v1/hub/status", timeout=3,
                           trust_env=False)
    except httpx.HTTPError:
        return None
    return answer.json() if answer.status_code == 200 else None


def _kpis(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/api/v1/kpis", timeout=3,
                         trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def _config(folder: Path, db: Path, port: int) -> Path:
    path = folder / "pdh.toml"
    path.write_text(
        f"[database]\npath = '{winpath(db)}'\n"
        "[watch]\nsettle_interval = 0.5\nsettle_checks = 3\ncheck_interval = 3600\n"
        f"[api]\nport = {port}\n[dashboard]\nenabled = false\n"
        f"[log]\ndir = '{winpath(folder / 'logs')}'\n"
        f"[state]\ndir = '{winpath(folder / 'state')}'\n"
        f"[store]\ndir = '{winpath(folder / 'snapshots')}'\n"
        "[ui]\nnotifications = false\n", encoding="utf-8")
    return path


def test_service_installed_first_serves_follows_and_refuses_a_second(
        fresh: Wine, tmp_path: Path) -> None:
    wine = fresh
    wine.workdir = tmp_path
    db = tmp_path / "hub.db"
    # The ERP's first export, written from Linux: no Windows program before the install.
    made = subprocess.run([sys.executable, "-m", "agent", "demo-db", str(db), "--rows", "2000"],
                          capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stdout + made.stderr
    port = free_port()
    config = winpath(_config(tmp_path, db, port))
    log_file = tmp_path / "logs" / "pdh.log"

    def pdh(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        return wine.run(PDH_EXE, *args, "--config", config, timeout=timeout)

    started = time.monotonic()
    install = pdh("service", "install")
    assert install.returncode == 0 and "installed and started" in install.stdout, install.stdout
    try:
        wait_until(lambda: _kpis(port), "the service's API serving the data", 120,
                   interval=0.5)
        first = wait_until(lambda: (s := _status(port)) and s.get("published") and s,
                           "the first publish", 60, interval=0.5)
        serving_s = time.monotonic() - started
        log = log_file.read_text(encoding="utf-8")
        starts = re.findall(r"starting \(Windows service, pid (\d+)\)", log)
        assert len(starts) == 1, log  # started once
        pid = starts[0]

        # The ERP's next export (a Windows process: Wine keeps Windows' sharing rules
        # only between Wine processes): the service follows it.
        erp = wine.run(PDH_EXE, "erp-sim", winpath(db), "--mode", "replace", "--rows", "3000",
                       "--seconds", "0.5")
        assert erp.returncode == 0, erp.stdout
        second = wait_until(
            lambda: (s := _status(port)) and s["published"]["version"]
            != first["published"]["version"] and s["state"] == "healthy" and s,
            "the export's publish", 60, interval=0.5)
        assert second["published"]["rows"] == 3000

        # A second hub for the same database: refused, naming the running one.
        again = pdh("service", "run")
        assert again.returncode == 2, again.stdout
        assert "a hub already runs for" in again.stdout and f"pid {pid}" in again.stdout, \
            again.stdout

        # A second server on the API's port (another database): a clear failure.
        other = tmp_path / "other"
        other.mkdir()
        shutil.copy(db, other / "other.db")
        busy = wine.run(PDH_EXE, "api", "--config",
                        winpath(_config(other, other / "other.db", port)), timeout=60)
        assert busy.returncode == 1, busy.stdout
        assert f"API port {port} on 127.0.0.1 is already in use" in busy.stdout, busy.stdout
        assert _kpis(port)  # the service still serves

        stop = pdh("service", "stop")
        assert stop.returncode == 0 and "stopped" in stop.stdout, stop.stdout
        log = log_file.read_text(encoding="utf-8")
        assert "service: stop requested" in log and "hub stopped" in log, log
        assert "Traceback" not in log, log
        assert len(re.findall(r"starting \(Windows service", log)) == 1, log
        print(f"service serving {serving_s:.1f} s after the install started")
    finally:
        out = pdh("service", "uninstall")
    assert "removed" in out.stdout, out.stdout
