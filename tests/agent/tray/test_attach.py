"""`pdh run` with a tray while the same configuration runs headless (a service, or
`--headless`): a real headless hub process with its API on a free loopback port, and the
agent's own `run_agent` with a fake tray backend (the real gtk tray: test_xdesktop.py)."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent import launch
from agent.tray.attached import RemoteHub
from agent.tray.view import Action
from core.channel import Command, CommandKind
from core.config import load_config
from core.hubapi import HubApi
from core.state import HubState
from tests.agent.test_run import Agent, agents, headless_env, write_config  # noqa: F401
from tests.agent.tray.fake_tray import FakeBackend, FakeIcon
from tests.conftest import free_port, wait_for


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """run_agent sets up the process's logging (stderr, a file in tmp_path): undo it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)


def hub_status(port: int) -> dict[str, Any] | None:
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/api/v1/hub/status", timeout=2,
                             trust_env=False)
    except httpx.HTTPError:
        return None
    return response.json() if response.status_code == 200 else None


def start_hub(tmp_path: Path, config: Path, port: int,
              agents: list[Agent]) -> Agent:  # noqa: F811
    hub = Agent(["--config", str(config), "--headless"], tmp_path, headless_env())
    agents.append(hub)
    wait_for(lambda: (s := hub_status(port)) and s["last_check"] and s["state"] == "healthy",
             timeout=30, message="the headless hub healthy, its API answering")
    return hub


def texts(icon: FakeIcon) -> list[str]:
    return [entry.text for entry in icon.entries()]


def test_a_tray_attaches_to_a_headless_hub_and_drives_it(
        tmp_path: Path, small_db: Path, agents: list[Agent],  # noqa: F811
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    port = free_port()
    config_file = write_config(tmp_path, small_db, api=f"port = {port}",
                               ui='language = "en"\nstatus_poll_interval = 0.2')
    hub = start_hub(tmp_path, config_file, port, agents)
    config = load_config(config_file).config
    backend = FakeBackend()
    monkeypatch.setattr(launch, "tray_backend", lambda: (backend, ""))
    codes: list[int] = []
    tray_thread = threading.Thread(target=lambda: codes.append(launch.run_agent(
        config, headless=False, demo=False, config_source=config_file)), name="tray-main")
    tray_thread.start()
    try:
        wait_for(lambda: backend.icons, message="the tray icon")
        icon = backend.icons[0]
        wait_for(lambda: icon.state is HubState.HEALTHY, message="green: the hub's state")
        assert icon.title.startswith("Production Data Hub: Healthy\nData as of: ")
        assert f"Attached to the running hub (pid {hub.proc.pid})" in texts(icon)
        assert icon.find(Action.QUIT).text == "Close Tray (the hub keeps running)"
        server = next(e for e in icon.entries() if e.text == "Dashboard Server")
        assert not server.enabled  # the API has no route for the dashboard server

        # A second tray for the same config is refused; no second icon.
        assert launch.run_agent(config, headless=False, demo=False,
                                  config_source=config_file) == 0
        assert "a tray is already attached" in capsys.readouterr().out
        assert len(backend.icons) == 1

        icon.click(Action.AUTO_MODE)
        wait_for(lambda: (hub_status(port) or {}).get("auto_mode") is False,
                 message="auto mode off in the hub")
        wait_for(lambda: icon.state is HubState.PAUSED, message="grey")
        assert icon.find(Action.AUTO_MODE).checked is False
        checked_at = (hub_status(port) or {})["last_check"]["at"]
        icon.click(Action.CHECK_NOW)
        wait_for(lambda: (hub_status(port) or {})["last_check"]["at"] != checked_at,
                 message="a check run by Check Now")
        icon.click(Action.AUTO_MODE)
        wait_for(lambda: icon.state is HubState.HEALTHY, message="green again")

        # The hub goes away: red, and why; it comes back: the tray follows it.
        assert hub.stop(signal.SIGTERM) == 0
        wait_for(lambda: icon.state is HubState.ERROR, message="red: the API is gone")
        assert icon.title.startswith("Production Data Hub: Hub not answering\n")
        assert not icon.find(Action.CHECK_NOW).enabled
        again = start_hub(tmp_path, config_file, port, agents)
        wait_for(lambda: icon.state is HubState.HEALTHY, message="green: the hub is back")
        assert f"Attached to the running hub (pid {again.proc.pid})" in texts(icon)

        icon.click(Action.QUIT)
        tray_thread.join(10)
        assert codes == [0]
        assert again.proc.poll() is None and hub_status(port) is not None  # hub goes on
    finally:
        if tray_thread.is_alive():
            backend.icons[0].stop()
            tray_thread.join(10)
    assert again.stop(signal.SIGINT) == 0
    tray_log = (tmp_path / "logs" / "tray" / "pdh.log").read_text()
    assert "attached to the headless hub" in tray_log and "Traceback" not in tray_log


def test_remote_control_refusals_reach_the_user(tmp_path: Path, small_db: Path,
                                                agents: list[Agent]) -> None:  # noqa: F811
    port = free_port()
    config_file = write_config(tmp_path, small_db, api=f"port = {port}")
    start_hub(tmp_path, config_file, port, agents)
    refused: list[str] = []
    remote = RemoteHub(HubApi(f"http://127.0.0.1:{port}"), poll_interval=0.2,
                       on_refused=refused.append)
    remote.start()
    try:
        assert remote.post(Command(CommandKind.PUBLISH_ANYWAY))  # nothing is held back
        wait_for(lambda: refused, message="the hub's refusal")
        assert "held back" in refused[0]
        assert not remote.post(Command(CommandKind.RESTART_SERVER, "dashboard"))
        assert not remote.shutdown()
        assert remote.problem is None and remote.latest()[1] is not None
    finally:
        remote.close()


def test_a_tray_does_not_attach_to_a_hub_with_its_api_off(
        tmp_path: Path, small_db: Path, agents: list[Agent],  # noqa: F811
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    config_file = write_config(tmp_path, small_db)  # api enabled = false
    hub = Agent(["--config", str(config_file), "--headless"], tmp_path, headless_env())
    agents.append(hub)
    wait_for(lambda: list((tmp_path / "state").glob("hub-*.json")), timeout=20,
             message="the hub's instance info")
    backend = FakeBackend()
    monkeypatch.setattr(launch, "tray_backend", lambda: (backend, ""))
    config = load_config(config_file).config
    assert launch.run_agent(config, headless=False, demo=False,
                              config_source=config_file) == 2
    err = capsys.readouterr().err
    assert f"already running for {small_db} (pid {hub.proc.pid}" in err
    assert "its API is off" in err
    assert backend.icons == []
