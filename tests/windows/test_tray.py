"""The tray agent on Windows (pystray's win32 backend) in Wine's virtual desktop under
Xvfb: the icon's colour follows the state, its menu drives the hub, the toast fallback,
and every way Windows asks it to stop: Ctrl-C, WM_CLOSE (``taskkill``), logoff.
Screenshots land in the test's folder."""

from __future__ import annotations

import contextlib
import glob
import json
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from core.state import HubState
from tests.windows.conftest import dashboard_process, free_port, write_config
from tests.windows.screen import TrayIcon, box_above_icon, find_icon, menu_rows
from tests.windows.wine import PDH, PY, Wine, WineProcess, wait_until, winpath

pytestmark = pytest.mark.slow

# The menu's rows, top to bottom, as agent.tray.view.present lays them out (separators are
# not rows): the status line, Check Now, Auto Mode, Publish Anyway, Open Dashboard,
# Open API Docs, Dashboard Server, Open Log Folder, Start at Login, Quit.
ROW = {"check_now": 1, "auto_mode": 2, "quit": 9}
MENU_ROWS = 10


class TrayUnderTest:
    def __init__(self, wine: Wine, folder: Path, proc: WineProcess, *,
                 rows: dict[str, int] = ROW, menu_rows: int = MENU_ROWS) -> None:
        self.wine, self.folder, self.proc = wine, folder, proc
        self.rows, self.menu_rows = rows, menu_rows
        self.shots = 0

    def shot(self, name: str) -> Path:
        self.shots += 1
        return self.wine.screenshot(self.folder / f"{self.shots:02d}-{name}.png")

    def icon(self, state: HubState | None = None, timeout: float = 60) -> TrayIcon:
        seen: list[TrayIcon | None] = []

        def found() -> TrayIcon | None:
            seen.append(find_icon(self.shot("icon")))
            icon = seen[-1]
            return icon if icon and (state is None or icon.state is state) else None

        try:
            return wait_until(found, f"the tray icon ({state})", timeout, interval=0.5)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; saw {seen[-3:]}") from None

    def choose(self, item: str) -> None:
        """Right-click the icon and click one menu row, all found on the screen."""
        icon = self.icon()
        # A balloon toast still showing (Wine shows each for 10 s or more, one after the
        # other) covers the icon with its tail, and a click on it is a click on the
        # toast: wait, with the pointer away (no tooltip), until it has gone.
        self.wine.xdotool("mousemove", str(icon.x // 2), "100")
        wait_until(lambda: not box_above_icon(self.shot("before-menu"), icon.x),
                   "the balloons to go", 90, interval=1)
        left, rows = 0, []
        for _attempt in range(3):  # a click can land while the icon is being redrawn
            self.wine.xdotool("mousemove", str(icon.x), str(icon.y), "click", "3")
            try:
                left, rows = wait_until(
                    lambda: (m := menu_rows(self.shot("menu"), icon.x)) and len(m[1])
                    == self.menu_rows and m, "the tray menu", 4, interval=0.3)
                break
            except AssertionError:
                self.wine.xdotool("key", "Escape")
        assert rows, "the tray menu did not open after three right-clicks"
        self.wine.xdotool("mousemove", str(left + 40), str(rows[self.rows[item]]))
        time.sleep(0.3)  # the menu tracks the pointer before it takes the click
        self.wine.xdotool("click", "1")

    def windows_pid(self) -> int:
        info = glob.glob(str(self.folder / "state" / "hub-*.json"))
        return int(json.loads(Path(info[0]).read_text())["pid"])


@pytest.fixture
def tray(wine: Wine, wdir: Path) -> Iterator[TrayUnderTest]:
    assert wine.run(PDH, "demo-db", winpath(wdir / "hub.db"), "--rows", "3000").returncode == 0
    write_config(wdir, api_port=free_port(), extra="")
    text = (wdir / "pdh.toml").read_text().replace("notifications = false",
                                                   "notifications = true")
    (wdir / "pdh.toml").write_text(text)
    proc = wine.start_process(PY, "-m", "agent", "run", "--config",
                              winpath(wdir / "pdh.toml"), name="tray")
    proc.wait_for_line(r"starting \(tray: win32")
    proc.wait_for_line(r"snapshot \w+ published")
    under_test = TrayUnderTest(wine, wdir, proc)
    yield under_test
    proc.stop()


def test_icon_colour_follows_the_state_and_the_menu_drives_the_hub(tray: TrayUnderTest,
                                                                   wdir: Path) -> None:
    tray.icon(HubState.HEALTHY)
    # The toast of the first heal: desktop-notifier needs WinRT, which Wine lacks; the
    # tray's own balloon shows it instead (in the screenshot), and the log says which.
    out = tray.proc.output()
    assert "desktop notifications unavailable" in out and "using the tray's" in out
    tray.shot("balloon")

    # A bad export: held back, the last snapshot served, the icon amber.
    (wdir / "hub.db").write_bytes(b"this is not a database" * 1000)
    tray.proc.wait_for_line(r"export held back")
    tray.icon(HubState.DEGRADED)
    # A good one: published, green again, no restart.
    assert tray.wine.run(PDH, "demo-db", winpath(wdir / "next.db"),
                         "--rows", "3000").returncode == 0
    (wdir / "next.db").replace(wdir / "hub.db")
    wait_until(lambda: tray.proc.output().count("published (") >= 2, "the good export", 60)
    tray.icon(HubState.HEALTHY)

    tray.choose("auto_mode")
    tray.proc.wait_for_line(r"auto mode off")
    tray.choose("auto_mode")
    tray.proc.wait_for_line(r"auto mode on")
    checks = tray.proc.output().count("index check ok")
    tray.choose("check_now")
    wait_until(lambda: tray.proc.output().count("index check ok") > checks, "Check Now", 30)
    tray.choose("quit")
    assert tray.proc.wait(30) == 0
    assert "agent stopped" in tray.proc.output()


def test_ctrl_c_stops_the_tray_at_once(tray: TrayUnderTest) -> None:
    """Defect D: a ``signal.signal`` handler on the tray's thread ran only when the next
    window message came (seen 9 s late). The console handler runs on its own thread."""
    tray.icon(HubState.HEALTHY)
    started = time.monotonic()
    tray.proc.interrupt()
    assert tray.proc.wait(15) == 0
    took = time.monotonic() - started
    out = tray.proc.output()
    assert "received CTRL_C_EVENT" in out and "agent stopped" in out
    print(f"tray stopped {took:.2f} s after Ctrl-C")
    assert took < 10


def test_a_second_ctrl_c_forces_the_exit_of_a_stuck_stop(wine: Wine, wdir: Path) -> None:
    """As headless and as on Linux: the first Ctrl-C stops the hub gracefully; while that
    stop is held up (here by a dashboard child that cannot answer: its Linux process is
    stopped, so the supervisor waits for it), a second one ends the tray at once."""
    assert wine.run(PDH, "demo-db", winpath(wdir / "hub.db"), "--rows", "3000").returncode == 0
    dash_port = free_port()
    write_config(wdir, api_port=free_port(), dashboard_port=dash_port)
    proc = wine.start_process(PY, "-m", "agent", "run", "--config",
                              winpath(wdir / "pdh.toml"), name="tray")
    child: psutil.Process | None = None
    try:
        proc.wait_for_line(r"starting \(tray: win32")
        proc.wait_for_line(r"dashboard running \(pid \d+\)", timeout=180)
        child = wait_until(lambda: dashboard_process(dash_port), "the dashboard child", 60)
        child.suspend()
        proc.interrupt()
        proc.wait_for_line(r"received CTRL_C_EVENT; shutting down \(again to force it\)")
        proc.interrupt()
        assert proc.wait(20) == 1, proc.output()[-3000:]  # agent.stopping.EXIT_FORCED
        out = proc.output()
        assert "received CTRL_C_EVENT again; exiting now" in out, out[-3000:]
        assert "agent stopped" not in out
    finally:
        proc.stop()
        if child is not None:
            with contextlib.suppress(psutil.Error):
                child.kill()


def test_taskkill_without_f_stops_the_tray_cleanly(tray: TrayUnderTest) -> None:
    """Defect E: WM_CLOSE destroyed pystray's menu window (the menu never opened again)
    and the agent went on. Now it is a stop request, like Quit."""
    tray.icon(HubState.HEALTHY)
    kill = tray.wine.run("taskkill", "/PID", str(tray.windows_pid()))
    assert kill.returncode == 0, kill.stdout
    assert tray.proc.wait(20) == 0
    out = tray.proc.output()
    assert "received WM_CLOSE" in out and "hub stopped" in out and "agent stopped" in out


def test_logoff_saves_the_state_before_the_session_ends(tray: TrayUnderTest,
                                                        wdir: Path) -> None:
    """Logoff/shutdown (WM_QUERYENDSESSION, WM_ENDSESSION): the hub stops and saves its
    state before Windows ends the process (wineboot --end-session does what logoff
    does)."""
    tray.icon(HubState.HEALTHY)
    state_file = wdir / "state" / "state.json"
    before = state_file.stat().st_mtime_ns if state_file.exists() else 0
    tray.wine.run("wineboot", "--end-session", timeout=60)
    tray.proc.wait(30)
    out = tray.proc.output()
    assert "received WM_ENDSESSION" in out and "hub stopped" in out, out[-2000:]
    assert state_file.stat().st_mtime_ns > before
    tray.wine.new_session()  # the session ended: a new one for the tests that follow
