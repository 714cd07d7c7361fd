"""A tray attached to a hub that runs without one (what a service is), under Wine: the
headless hub and the tray are both Windows processes; the tray's icon shows the hub's
state and its menu drives the hub through the API; closing the tray leaves the hub up."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from core.state import HubState
from tests.windows.conftest import free_port, write_config
from tests.windows.test_tray import TrayUnderTest
from tests.windows.wine import PDH, PY, Wine, wait_until, winpath

pytestmark = pytest.mark.slow

# agent.tray.attached.present_attached's rows: the status line, "Attached to the running hub",
# Check Now, Auto Mode, Publish Anyway, Open Dashboard, Open API Docs, Dashboard Server,
# Open Log Folder, Start at Login, Close Tray.
ATTACHED_ROWS = {"check_now": 2, "auto_mode": 3, "quit": 10}


def status(port: int) -> dict[str, object] | None:
    try:
        answer = httpx.get(f"http://127.0.0.1:{port}/api/v1/hub/status", timeout=3,
                           trust_env=False)
    except httpx.HTTPError:
        return None
    return answer.json() if answer.status_code == 200 else None


def test_a_tray_attaches_to_the_headless_hub_and_drives_it(wine: Wine, wdir: Path) -> None:
    assert wine.run(PDH, "demo-db", winpath(wdir / "hub.db"), "--rows", "3000").returncode == 0
    port = free_port()
    write_config(wdir, api_port=port, extra="""\
        status_poll_interval = 0.3
        """)  # appended under [ui]
    config = winpath(wdir / "pdh.toml")
    hub = wine.start_process(PY, "-m", "agent", "run", "--headless", "--config", config,
                             name="hub")
    tray_proc = None
    try:
        hub.wait_for_line(r"snapshot \w+ published")
        wait_until(lambda: (s := status(port)) and s["state"] == "healthy", "the hub's API", 60)
        tray_proc = wine.start_process(PY, "-m", "agent", "run", "--config", config,
                                       name="tray")
        tray_proc.wait_for_line(r"showing a tray for it")
        tray = TrayUnderTest(wine, wdir, tray_proc, rows=ATTACHED_ROWS, menu_rows=11)
        tray.icon(HubState.HEALTHY)

        tray.choose("auto_mode")
        wait_until(lambda: (status(port) or {}).get("auto_mode") is False,
                   "auto mode off in the hub", 30)
        tray.icon(HubState.PAUSED)
        tray.choose("auto_mode")
        wait_until(lambda: (status(port) or {}).get("auto_mode") is True,
                   "auto mode on again", 30)
        tray.icon(HubState.HEALTHY)
        checks = hub.output().count("index check ok")
        tray.choose("check_now")
        wait_until(lambda: hub.output().count("index check ok") > checks, "Check Now", 30)

        tray.choose("quit")  # Close Tray: the tray ends, the hub goes on
        assert tray_proc.wait(30) == 0
        assert status(port) is not None and hub.popen.poll() is None
        hub.interrupt()
        assert hub.wait(30) == 0
    finally:
        if tray_proc is not None:
            tray_proc.stop()
        hub.stop()
    assert "attached tray closed" in tray_proc.output()
    assert "Traceback" not in tray_proc.output() + hub.output()
