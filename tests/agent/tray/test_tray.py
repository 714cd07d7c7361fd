"""The tray controller with a fake tray backend, against a real hub through the real
channel: snapshots drive the icon on the tray thread; clicks become hub commands."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal

from agent.autostart import XdgAutostart, launch_command
from agent.tray.controller import Tray, TrayDeps
from agent.tray.view import Action
from core.channel import Channel, CommandKind
from core.config import Config
from core.hub import Hub
from core.state import HubState, ServerState, ServerStatus
from tests.agent.tray.fake_tray import FakeBackend, FakeIcon
from tests.conftest import make_config, wait_for
from tests.icon_colours import nearest_state


@dataclass
class Recorder:
    urls: list[str] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)
    server_commands: list[CommandKind] = field(default_factory=list)

    def deps(self) -> TrayDeps:
        # Background jobs run inline here: the tray thread is a test thread anyway.
        return TrayDeps(open_url=self.urls.append, open_path=self.paths.append,
                        background=lambda fn: fn())


@dataclass
class Running:
    hub: Hub
    channel: Channel
    tray: Tray
    icon: FakeIcon
    future: Future[Any]
    tray_thread: threading.Thread
    recorder: Recorder
    portal: BlockingPortal


@pytest.fixture
def running(tmp_path: Path, small_db: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Running]:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    config: Config = make_config(tmp_path, small_db, ui={"language": "en"})
    channel = Channel()
    hub = Hub(config, channel=channel)
    recorder = Recorder()

    async def dashboard_control(kind: CommandKind) -> None:
        recorder.server_commands.append(kind)

    hub.register_server("dashboard", ServerStatus(state=ServerState.RUNNING,
                                                  url="http://127.0.0.1:8501/"),
                        dashboard_control)
    backend = FakeBackend()
    autostart = XdgAutostart(launch_command(tmp_path / "pdh.toml"))
    tray = Tray(channel, config, backend, language="en", autostart=autostart,
                deps=recorder.deps())
    icon = backend.icons[0]
    tray_thread = threading.Thread(target=tray.run, name="tray-main")
    with start_blocking_portal(backend="asyncio") as portal:
        future = portal.start_task_soon(hub.run)
        tray_thread.start()
        try:
            yield Running(hub, channel, tray, icon, future, tray_thread, recorder, portal)
        finally:
            tray.stop()
            tray_thread.join(5)
            channel.shutdown()
            future.result(10)
    tray.close()


def wait_first_check(icon: FakeIcon) -> None:
    """Green after the first heal (before it the hub is idle and may already be green)."""
    wait_for(lambda: icon.state is HubState.HEALTHY and "restored)" in icon.title,
             message="green icon after the first heal")


def test_snapshots_drive_the_icon_on_the_tray_thread_only(running: Running) -> None:
    icon = running.icon
    # Before the hub's first word: blue, "Starting".
    assert nearest_state(icon.first_image.getpixel((32, 26))[:3]) is HubState.WORKING
    assert icon.first_title == "Production Data Hub: Starting"
    wait_first_check(icon)
    wait_for(lambda: icon.visible, message="icon shown")
    assert icon.title.startswith("Production Data Hub: Healthy\nData as of: ")
    assert "Last Index Check: " in icon.title and "restored)" in icon.title
    assert icon.find(Action.AUTO_MODE).checked is True
    assert icon.find(Action.OPEN_DASHBOARD).enabled is True
    # Every change after construction happened on the thread running the tray loop.
    later = icon.changes[1:]  # [0]: the menu set while building, before the loop
    assert later, "the tray never changed the icon"
    assert {thread for _attr, thread in later} == {"tray-main"}


def test_menu_actions_become_hub_commands(running: Running, tmp_path: Path,
                                          small_db: Path) -> None:
    icon, hub = running.icon, running.hub
    wait_first_check(icon)

    icon.click(Action.AUTO_MODE)
    wait_for(lambda: not hub.auto_mode, message="auto mode off in the hub")
    wait_for(lambda: icon.state is HubState.PAUSED, message="grey icon")
    assert icon.find(Action.AUTO_MODE).checked is False

    checked = hub.status().last_check
    icon.click(Action.CHECK_NOW)
    wait_for(lambda: hub.status().last_check != checked, message="a check run by Check Now")

    icon.click(Action.AUTO_MODE)
    wait_for(lambda: hub.auto_mode and icon.state is HubState.HEALTHY, message="green again")

    for action, kind in [(Action.DASHBOARD_RESTART, CommandKind.RESTART_SERVER),
                         (Action.DASHBOARD_STOP, CommandKind.STOP_SERVER)]:
        icon.click(action)
        wait_for(lambda k=kind: k in running.recorder.server_commands, message=str(kind))

    icon.click(Action.OPEN_DASHBOARD)
    icon.click(Action.OPEN_LOGS)
    wait_for(lambda: running.recorder.urls == ["http://127.0.0.1:8501/"], message="browser")
    wait_for(lambda: running.recorder.paths == [hub.config.log_dir], message="log folder")

    small_db.unlink()  # the ERP's delete-then-write, half done
    hub.channel.check_now()
    # The last snapshot is still served: amber, not red.
    wait_for(lambda: icon.state is HubState.DEGRADED, message="amber icon")
    assert "Degraded" in icon.title and "Data as of" in icon.title


def test_start_at_login_toggles_a_real_login_item(running: Running, tmp_path: Path) -> None:
    icon = running.icon
    desktop_file = tmp_path / "xdg" / "autostart" / "production-data-hub.desktop"
    wait_for(lambda: icon.find(Action.AUTOSTART).enabled, message="menu ready")
    assert icon.find(Action.AUTOSTART).checked is False
    icon.click(Action.AUTOSTART)
    wait_for(lambda: icon.find(Action.AUTOSTART).checked is True, message="checked")
    assert desktop_file.is_file()
    assert f"--config {tmp_path / 'pdh.toml'}" in desktop_file.read_text()
    icon.click(Action.AUTOSTART)
    wait_for(lambda: icon.find(Action.AUTOSTART).checked is False, message="unchecked")
    assert not desktop_file.exists()


def test_quit_stops_the_hub_and_the_tray(running: Running) -> None:
    wait_first_check(running.icon)
    running.icon.click(Action.QUIT)
    running.future.result(10)  # hub.run returned: shutdown went through the channel
    running.tray_thread.join(5)
    assert not running.tray_thread.is_alive()
    assert running.hub.config.state_file.is_file()  # state saved on the way out


def test_fallback_toast_goes_through_the_tray_thread(running: Running) -> None:
    running.tray.notify("Production Data Hub", "Database missing")
    wait_for(lambda: running.icon.notes == [("Database missing", "Production Data Hub")],
             message="tray notify")
