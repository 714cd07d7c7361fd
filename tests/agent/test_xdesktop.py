"""The real agent under Xvfb with a real tray host (trayer), pystray's gtk backend, a
private session bus and a test notification service. See
shared/design/LINUX-DESKTOP-TESTING.md.

The xorg backend is not tested here on purpose: in pystray 0.19.5 its loop now and then
misses an icon change or the stop sent from another thread (python-xlib), so a test of
it would be flaky; gtk and appindicator, which pystray prefers, do not have the problem.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.eventlog import read_events
from core.state import HubState
from tests.agent.desktop import Desktop, missing_tools
from tests.agent.test_run import second_signal_forces, write_config
from tests.conftest import free_port, wait_for

pytestmark = pytest.mark.skipif(
    bool(missing_tools()),
    reason=f"needs {', '.join(missing_tools())} (apt-get install xvfb xdotool imagemagick "
           "x11-utils trayer dbus)",
)


def gtk_available() -> bool:
    probe = subprocess.run(
        [sys.executable, "-c", "import gi; gi.require_version('Gtk', '3.0')"],
        capture_output=True)
    return probe.returncode == 0


@pytest.fixture
def desktop(tmp_path: Path) -> Iterator[Desktop]:
    with Desktop(tmp_path / "desktop") as d:
        yield d


def start_agent(desktop: Desktop, config: Path, backend: str,
                cwd: Path) -> subprocess.Popen[bytes]:
    env = dict(desktop.env, PYSTRAY_BACKEND=backend)
    with (cwd / f"agent-{backend}.log").open("ab") as log:
        return subprocess.Popen([sys.executable, "-m", "agent", "run", "--config", str(config)],
                                cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


def open_menu_and_press(desktop: Desktop, *keys: str) -> None:
    """Right-click the icon, wait for the menu window, then drive it by keyboard."""
    def menu_open() -> bool:
        return bool(desktop.xdotool("search", "--onlyvisible", "--name", "__main__.py").strip())

    desktop.xdotool("mousemove", "16", "16", "click", "3")
    wait_for(menu_open, timeout=10, message="the tray menu")
    desktop.xdotool("key", "--delay", "100", *keys)


@pytest.mark.skipif(not gtk_available(), reason="PyGObject/Gtk 3 missing: apt-get install "
                    "gir1.2-gtk-3.0 libgirepository1.0-dev libcairo2-dev; pip install "
                    "'PyGObject<3.51'")
def test_gtk_tray_colours_toasts_menu_and_quit(tmp_path: Path, small_db: Path,
                                               desktop: Desktop) -> None:
    config = write_config(tmp_path, small_db)
    spare = tmp_path / "spare.db"
    shutil.copyfile(small_db, spare)
    proc = start_agent(desktop, config, "gtk", tmp_path)
    try:
        desktop.wait_tray_state(HubState.HEALTHY)  # docked, and green after the first heal

        def bodies() -> list[str]:
            return [n["body"].split("\n")[0] for n in desktop.notifications()]

        wait_for(lambda: bodies()[:1] and bodies()[0].startswith(
            "Indexes restored after an ERP update (5 indexes, "), message="the heal toast")
        assert desktop.notifications()[0]["app_name"] == "Production Data Hub"

        small_db.unlink()  # the ERP's delete-then-write, first half
        desktop.wait_tray_state(HubState.DEGRADED)  # amber: the last snapshot is served
        wait_for(lambda: "Database missing" in bodies(), message="the missing toast")

        shutil.copyfile(spare, small_db)  # a good file again
        desktop.wait_tray_state(HubState.HEALTHY)
        small_db.unlink()  # and missing again within the minute
        desktop.wait_tray_state(HubState.DEGRADED)
        wait_for(lambda: [e["event"] for e in read_events(tmp_path / "logs" / "events.jsonl")]
                 .count("db_missing") == 2, message="the second db_missing event")
        time.sleep(0.5)  # a toast, were there one, is sent within milliseconds of the event
        assert bodies().count("Database missing") == 1  # rate limit: one per kind per minute
        shutil.copyfile(spare, small_db)
        desktop.wait_tray_state(HubState.HEALTHY)

        # The menu, driven like a person: Down to Check Now, Down to Auto Mode, Return.
        open_menu_and_press(desktop, "Down", "Down", "Return")
        desktop.wait_tray_state(HubState.PAUSED)  # auto mode off: grey
        open_menu_and_press(desktop, "Down", "Down", "Return")
        desktop.wait_tray_state(HubState.HEALTHY)

        # Quit (the last item: Up from the top wraps to it) ends the process cleanly.
        open_menu_and_press(desktop, "Up", "Return")
        assert proc.wait(20) == 0
        assert desktop.tray_state() is None  # the icon is gone
    finally:
        stop(proc)
    log = (tmp_path / "agent-gtk.log").read_text()
    assert "tray: gtk" in log and "agent stopped" in log and "Traceback" not in log


@pytest.mark.skipif(not gtk_available(), reason="PyGObject/Gtk 3 missing")
def test_gtk_tray_ends_cleanly_on_sigint_and_sigterm(tmp_path: Path, small_db: Path,
                                                     desktop: Desktop) -> None:
    # pystray's gtk backend resets SIGINT to the default (die at once); the agent installs
    # its handler again on the tray thread, so Ctrl+C still stops the hub and saves state.
    config = write_config(tmp_path, small_db)
    for sig in (signal.SIGINT, signal.SIGTERM):
        proc = start_agent(desktop, config, "gtk", tmp_path)
        try:
            # Green means the icon is up, so its on_ready (the handlers) has been queued
            # ahead of that colour change on the tray thread.
            desktop.wait_tray_state(HubState.HEALTHY)
            proc.send_signal(sig)
            assert proc.wait(20) == 0
            wait_for(lambda: desktop.tray_state() is None, message="the icon removed")
        finally:
            stop(proc)
        log = (tmp_path / "agent-gtk.log").read_text()
        assert f"received {sig.name}; shutting down" in log
        (tmp_path / "agent-gtk.log").unlink()
    assert "Traceback" not in log


@pytest.mark.skipif(not gtk_available(), reason="PyGObject/Gtk 3 missing")
def test_gtk_tray_second_signal_forces_the_exit(tmp_path: Path, small_db: Path,
                                                desktop: Desktop) -> None:
    config = write_config(tmp_path, small_db,
                          dashboard=f"enabled = true\nport = {free_port()}")
    proc = start_agent(desktop, config, "gtk", tmp_path)
    try:
        desktop.wait_tray_state(HubState.HEALTHY)  # the icon is up: the handlers are set
        second_signal_forces(proc, lambda: (tmp_path / "agent-gtk.log").read_text())
    finally:
        stop(proc)


@pytest.mark.skipif(not gtk_available(), reason="PyGObject/Gtk 3 missing")
def test_gtk_tray_attaches_to_a_headless_hub(tmp_path: Path, small_db: Path,
                                             desktop: Desktop) -> None:
    # The hub runs headless (as a service would, no display of its own); `pdh run` on the
    # desktop then shows a tray for that hub and drives it through its API.
    from tests.agent.test_run import headless_env
    from tests.agent.tray.test_attach import hub_status
    from tests.conftest import free_port

    port = free_port()
    config = write_config(tmp_path, small_db, api=f"port = {port}",
                          ui='language = "en"\nstatus_poll_interval = 0.2')
    hub = subprocess.Popen([sys.executable, "-m", "agent", "run", "--config", str(config),
                            "--headless"], cwd=tmp_path, env=headless_env(),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc = None
    try:
        wait_for(lambda: (s := hub_status(port)) and s["state"] == "healthy", timeout=30,
                 message="the headless hub healthy")
        proc = start_agent(desktop, config, "gtk", tmp_path)
        desktop.wait_tray_state(HubState.HEALTHY)
        open_menu_and_press(desktop, "Down", "Down", "Return")  # Auto Mode
        wait_for(lambda: (hub_status(port) or {}).get("auto_mode") is False,
                 message="auto mode off in the headless hub")
        desktop.wait_tray_state(HubState.PAUSED)
        open_menu_and_press(desktop, "Up", "Return")  # Close Tray
        assert proc.wait(20) == 0
        assert desktop.tray_state() is None
        assert hub.poll() is None and hub_status(port) is not None  # the hub goes on
        hub.send_signal(signal.SIGTERM)
        assert hub.wait(20) == 0
    finally:
        if proc is not None:
            stop(proc)
        stop(hub)
    log = (tmp_path / "agent-gtk.log").read_text()
    assert "showing a tray for it" in log and "Traceback" not in log
