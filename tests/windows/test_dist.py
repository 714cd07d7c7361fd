"""The Windows zip (``make windows-dist``) in a fresh Wine prefix that has no Python of
its own, in a network namespace with loopback only (no network during the run): the
console launcher, a demo check, the headless hub with its API and dashboard child, the
windowless tray launcher and its icon, the folder moved elsewhere, an upgrade that keeps
config, state and snapshots, and an uninstall that removes the Run value.

The one thing the fresh prefix gets besides the zip is a Wine workaround, not Python:
the ProcessPrng forwarding DLL (Wine 8 lacks it; real Windows 10/11 have it).
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.state import HubState
from tests.windows.conftest import ENV_DIR, free_port, write_config
from tests.windows.test_tray import TrayUnderTest
from tests.windows.wine import Wine, wait_until, winpath

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]  # a new prefix, the dashboard

DIST = os.environ.get("PDH_WINDOWS_DIST")
INSTALL = r"C:\Programs"  # stands in for %LOCALAPPDATA%\Programs


@dataclass
class Installed:
    wine: Wine
    holder: subprocess.Popen[bytes]  # keeps the network namespace
    version: str

    @property
    def drive_c(self) -> Path:
        return self.wine.prefix / "drive_c"

    def folder(self, name: str = "ProductionDataHub") -> Path:
        return self.drive_c / "Programs" / name

    def pdh(self, name: str = "ProductionDataHub") -> str:
        return f"{INSTALL}\\{name}\\pdh.exe"

    def extract(self, name: str = "ProductionDataHub") -> None:
        assert DIST
        target = self.drive_c / "Programs"
        with zipfile.ZipFile(DIST) as zf:
            zf.extractall(target)
        if name != "ProductionDataHub":
            (target / "ProductionDataHub").rename(target / name)

    def get(self, url: str) -> int | None:
        """An HTTP GET from inside the namespace (the Windows processes' loopback)."""
        code = ("import httpx, sys\n"
                "try: print(httpx.get(sys.argv[1], timeout=3, trust_env=False).status_code)\n"
                "except httpx.HTTPError: print(0)")
        out = subprocess.run(["nsenter", "-t", str(self.holder.pid), "-n", sys.executable,
                              "-c", code, url], capture_output=True, text=True, timeout=30)
        status = int(out.stdout.strip() or 0)
        return status or None

    def user_data(self) -> Path:
        users = [p for p in (self.drive_c / "users").iterdir() if p.name != "Public"]
        return users[0] / "AppData" / "Local" / "ProductionDataHub" / "pdh"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    if not DIST or not Path(DIST).is_file():
        pytest.skip("no Windows zip: PDH_WINDOWS_DIST (make test-windows builds it)")
    if shutil.which("nsenter") is None or shutil.which("ip") is None:
        pytest.skip("needs nsenter and ip (util-linux, iproute2) for a network namespace")
    assert ENV_DIR
    root = tmp_path_factory.mktemp("fresh")
    holder = subprocess.Popen(["unshare", "-n", "sh", "-c",
                               "ip link set lo up && exec sleep infinity"])
    wine = Wine(root, root, wrap=["nsenter", "-t", str(holder.pid), "-n"])
    try:
        wait_until(lambda: Path(f"/proc/{holder.pid}/ns/net").exists()
                   and os.readlink(f"/proc/{holder.pid}/ns/net")
                   != os.readlink("/proc/self/ns/net"), "the network namespace", 10)
        wine.start()  # wineboot makes the new prefix
        shutil.copy(Path(ENV_DIR) / "dl" / "bcryptprimitives.dll",
                    wine.prefix / "drive_c" / "windows" / "system32")
        for args in (("HKCU\\Software\\Wine\\Explorer", "/v", "Desktop", "/d", "Default"),
                     ("HKCU\\Software\\Wine\\Explorer\\Desktops", "/v", "Default", "/d",
                      "1024x768")):
            assert wine.run("reg", "add", *args, "/f").returncode == 0
        name = Path(DIST).name
        version = name.split("-")[1]
        yield Installed(wine, holder, version)
    finally:
        wine.close()
        holder.kill()
        holder.wait(10)


def test_no_python_and_no_network_but_the_zip(installed: Installed) -> None:
    installed.extract()
    found = [p for p in glob.glob(str(installed.drive_c / "**" / "python*.exe"),
                                  recursive=True) if "Programs" not in p]
    assert found == [], found  # the prefix has no Python of its own
    probe = subprocess.run(["nsenter", "-t", str(installed.holder.pid), "-n", sys.executable,
                            "-c", "import socket; socket.create_connection(('192.0.2.1', 80), 3)"],
                           capture_output=True, text=True, timeout=30)
    assert probe.returncode != 0 and "unreachable" in probe.stderr.lower()
    out = installed.wine.run(installed.pdh(), "--version")
    assert out.returncode == 0 and out.stdout.strip() == f"pdh {installed.version}", out.stdout


def test_check_headless_api_dashboard_and_tray(installed: Installed, tmp_path: Path) -> None:
    wine = installed.wine
    wine.workdir = tmp_path
    pdh = installed.pdh()
    assert wine.run(pdh, "demo-db", winpath(tmp_path / "hub.db"), "--rows", "3000"
                    ).returncode == 0
    check = wine.run(pdh, "check", "--db", winpath(tmp_path / "hub.db"))
    assert check.returncode == 0, check.stdout

    api, dash = free_port(), free_port()
    write_config(tmp_path, api_port=api, dashboard_port=dash)
    config = winpath(tmp_path / "pdh.toml")
    python = f"{INSTALL}\\ProductionDataHub\\python\\python.exe"
    hub = wine.start_process(python, "-m", "agent", "run", "--headless", "--config", config,
                             name="hub")  # the interpreter itself: Ctrl-C reaches it
    try:
        hub.wait_for_line(r"snapshot \w+ published")
        wait_until(lambda: installed.get(f"http://127.0.0.1:{api}/api/v1/health") == 200,
                   "the API answering", 60)
        wait_until(lambda: installed.get(f"http://127.0.0.1:{dash}/_stcore/health") == 200,
                   "the dashboard child answering", 180, interval=1)
        hub.interrupt()
        assert hub.wait(60) == 0
    finally:
        hub.stop()
    assert "Traceback" not in hub.output()

    # The windowless launcher: the tray icon appears; WM_CLOSE ends it cleanly.
    tray_proc = wine.start_process(f"{INSTALL}\\ProductionDataHub\\pdh-tray.exe",
                                   "--config", config, name="tray")
    try:
        tray = TrayUnderTest(wine, tmp_path, tray_proc)
        tray.icon(HubState.HEALTHY, timeout=120)
        kill = wine.run("taskkill", "/PID", str(tray.windows_pid()))
        assert kill.returncode == 0, kill.stdout
        assert tray_proc.wait(30) == 0
    finally:
        tray_proc.stop()
    log = (tmp_path / "logs" / "pdh.log").read_text(encoding="utf-8")
    assert "tray: win32" in log and "agent stopped" in log and "Traceback" not in log


def test_moved_upgraded_and_uninstalled(installed: Installed, tmp_path: Path) -> None:
    wine = installed.wine
    wine.workdir = tmp_path
    # Moved elsewhere: the launchers find their interpreter beside themselves.
    shutil.move(installed.folder(), installed.folder("Moved Hub"))
    out = wine.run(installed.pdh("Moved Hub"), "--version")
    assert out.returncode == 0 and installed.version in out.stdout, out.stdout
    shutil.rmtree(installed.folder("Moved Hub"))

    # Installed with the default (per-user) config, state and snapshots.
    installed.extract()
    data = installed.user_data()
    data.mkdir(parents=True, exist_ok=True)
    db = tmp_path / "hub.db"
    assert wine.run(installed.pdh(), "demo-db", winpath(db), "--rows", "2000").returncode == 0
    (data / "pdh.toml").write_text(
        f"[database]\npath = '{winpath(db)}'\n[api]\nenabled = false\n"
        "[dashboard]\nenabled = false\n[watch]\nsettle_interval = 0.3\n", encoding="utf-8")

    def run_once() -> str:
        hub = wine.start_process(f"{INSTALL}\\ProductionDataHub\\python\\python.exe", "-m",
                                 "agent", "run", "--headless", name="hub")
        try:
            hub.wait_for_line(r"snapshot \w+ published|index check ok")
            hub.interrupt()
            assert hub.wait(60) == 0
        finally:
            hub.stop()
        return hub.output()

    run_once()
    state = json.loads(next(data.rglob("state.json")).read_text())
    snapshots = sorted(p.name for p in data.rglob("snapshots/*"))
    assert state["last_check"] and snapshots

    # Upgrade: the folder replaced by a fresh copy of the zip; config, state, snapshots stay.
    shutil.rmtree(installed.folder())
    installed.extract()
    again = run_once()
    assert "Traceback" not in again
    assert json.loads(next(data.rglob("state.json")).read_text())["last_check"]
    assert set(snapshots) <= {p.name for p in data.rglob("snapshots/*")}

    # Uninstall: autostart off removes the Run value; then the folder goes.
    run_key = r"HKCU\Software\Microsoft\Windows\CurrentVersion\Run"
    assert wine.run(installed.pdh(), "autostart", "enable").returncode == 0
    value = wine.run("reg", "query", run_key).stdout
    assert "ProductionDataHub\\python\\pythonw.exe" in value, value
    assert wine.run(installed.pdh(), "autostart", "disable").returncode == 0
    value = wine.run("reg", "query", run_key).stdout
    assert "ProductionDataHub" not in value, value
    shutil.rmtree(installed.folder())
    assert data.is_dir()  # the user's data stays until they delete it (README.txt)
