"""`pdh service` under Wine's service manager (services.exe): install (which starts it),
status, the API answering while the hub runs as a service, a tray-less hub that
`pdh run` attaches to (the lock says headless), stop (clean: "hub stopped" in its log),
start again, uninstall. What Wine's manager does not do (restart on failure) is in
docs/operations.md; `service run` outside the manager says what it is for."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.windows.conftest import free_port, write_config
from tests.windows.wine import PY, Wine, wait_until, winpath

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]


def answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=3,
                         trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def test_service_install_status_stop_start_uninstall(wine: Wine, wdir: Path) -> None:
    assert wine.run(PY, "-m", "agent", "demo-db", winpath(wdir / "hub.db"), "--rows",
                    "2000").returncode == 0
    port = free_port()
    write_config(wdir, api_port=port)
    # The service runs in another working directory: absolute paths in its config.
    text = (wdir / "pdh.toml").read_text()
    for key in ("hub.db", "logs", "state", "snapshots"):
        text = text.replace(f"'{key}'", f"'{winpath(wdir / key)}'")
        text = text.replace(f'"{key}"', f"'{winpath(wdir / key)}'")
    (wdir / "pdh.toml").write_text(text)
    config = winpath(wdir / "pdh.toml")

    def pdh(*args: str) -> str:
        out = wine.run(PY, "-m", "agent", "service", *args, "--config", config, timeout=90)
        assert out.returncode == 0, out.stdout
        return out.stdout

    alone = wine.run(PY, "-m", "agent", "service", "run", "--config", config)
    assert alone.returncode == 2 and "what the Windows service runs" in alone.stdout

    assert "not installed" in pdh("status")
    try:
        assert "installed and started" in pdh("install")
        wait_until(lambda: answers(port), "the service's API", 90, interval=0.5)
        assert "running" in pdh("status")
        info = json.loads(next((wdir / "state").glob("hub-*.json")).read_text())
        assert info["mode"] == "headless"  # so a user's tray attaches to it
        tray = wine.start_process(PY, "-m", "agent", "run", "--config", config, name="tray")
        try:
            tray.wait_for_line(rf"the hub runs already without a tray \(pid {info['pid']}\); "
                               "showing a tray for it")
        finally:
            tray.stop()

        assert "stopped" in pdh("stop")
        assert not answers(port)
        assert ": stopped" in pdh("status")
        log = (wdir / "logs" / "pdh.log").read_text(encoding="utf-8")
        assert "starting (Windows service, pid" in log and "service: stop requested" in log
        assert "hub stopped" in log and "Traceback" not in log

        assert "started" in pdh("start")
        wait_until(lambda: answers(port), "the API after a start", 90, interval=0.5)
    finally:
        out = wine.run(PY, "-m", "agent", "service", "uninstall", "--config", config,
                       timeout=90).stdout
    assert "stopped and removed" in out, out
    assert not answers(port)
    assert "not installed" in pdh("status")
