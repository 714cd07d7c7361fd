"""A real, private X desktop for tray tests and the agent benchmark (see
shared/design/LINUX-DESKTOP-TESTING.md): Xvfb on a free display, a private
session bus, a test ``org.freedesktop.Notifications`` service, and ``trayer`` as the
tray host. Every process is started here and stopped here by its pid.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from PIL import Image

from core.state import HubState
from tests.icon_colours import nearest_state

REQUIRED_TOOLS = ("Xvfb", "xdpyinfo", "trayer", "dbus-daemon", "xdotool", "import",
                  "xwininfo")
HERE = Path(__file__).resolve().parent
TRAY_BOX = (0, 0, 40, 32)  # where trayer docks the first icon (left, top, right, bottom)


def missing_tools(tools: tuple[str, ...] = REQUIRED_TOOLS) -> list[str]:
    return [tool for tool in tools if shutil.which(tool) is None]


def _wait(cond: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


class Desktop:
    """``with Desktop(tmp) as d:`` ... ``d.env`` is the environment for the agent."""

    def __init__(self, workdir: Path, *, notifications: bool = True, tray: bool = True,
                 x: bool = True) -> None:
        self.workdir = workdir
        self.want_x = x
        self.want_notifications = notifications
        self.want_tray = tray
        self.procs: list[subprocess.Popen[bytes]] = []
        self.dbus_pid: int | None = None
        self.env: dict[str, str] = {}
        self.notify_log = workdir / "notifications.jsonl"
        self.notify_proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Desktop:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _spawn(self, args: list[str], **kw: Any) -> subprocess.Popen[bytes]:
        name = Path(args[1] if args[0] == sys.executable else args[0]).stem
        with (self.workdir / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen(args, env=self.env, stdout=kw.pop("stdout", log),
                                    stderr=log, stdin=subprocess.DEVNULL, **kw)
        self.procs.append(proc)
        return proc

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("DBUS_SESSION_BUS_ADDRESS", "WAYLAND_DISPLAY", "DISPLAY")}
        self.env.update(LANG="C.UTF-8", NO_AT_BRIDGE="1", XDG_RUNTIME_DIR=str(self.workdir))
        if self.want_x:
            self.env["DISPLAY"] = self._start_xvfb()
            _wait(lambda: subprocess.run(["xdpyinfo"], env=self.env, capture_output=True)
                  .returncode == 0, 15, "Xvfb")
        out = subprocess.run(
            ["dbus-daemon", "--session", "--fork", "--print-address=1", "--print-pid=1"],
            env=self.env, capture_output=True, text=True, check=True, timeout=10,
        ).stdout.split()
        self.env["DBUS_SESSION_BUS_ADDRESS"], self.dbus_pid = out[0], int(out[1])
        if self.want_notifications:
            self.notify_proc = self._spawn(
                [sys.executable, str(HERE / "notifications_service.py"),
                 "--out", str(self.notify_log)], stdout=subprocess.PIPE)
            assert self.notify_proc.stdout is not None
            line = self.notify_proc.stdout.readline()
            assert line.strip() == b"ready", f"notification service: {line!r}"
        if self.want_tray and self.want_x:
            self._spawn(["trayer", "--edge", "top", "--align", "left", "--widthtype", "pixel",
                         "--width", "200", "--height", "32", "--transparent", "false"])
            _wait(lambda: self._has_window("panel"), 10, "trayer")

    def _start_xvfb(self) -> str:
        """Xvfb picks a free display itself (-displayfd): no race with other X servers."""
        read_fd, write_fd = os.pipe()
        try:
            self._spawn(["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1024x768x24",
                         "-nolisten", "tcp"], pass_fds=(write_fd,))
        finally:
            os.close(write_fd)
        with os.fdopen(read_fd, "rb") as pipe:
            number = pipe.readline().strip()
        if not number.isdigit():
            raise RuntimeError("Xvfb did not start (see Xvfb.log)")
        return f":{number.decode()}"

    def _has_window(self, name: str) -> bool:
        out = subprocess.run(["xwininfo", "-root", "-children"], env=self.env,
                             capture_output=True, text=True).stdout
        return name in out

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
            if proc.stdout is not None:
                proc.stdout.close()
        self.procs.clear()
        if self.dbus_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.dbus_pid, signal.SIGTERM)
            self.dbus_pid = None

    # looking at the screen ---------------------------------------------------------

    def screenshot(self) -> Image.Image:
        png = subprocess.run(["import", "-window", "root", "png:-"], env=self.env,
                             capture_output=True, check=True, timeout=15).stdout
        return Image.open(io.BytesIO(png)).convert("RGB")

    def tray_state(self, shot: Image.Image | None = None) -> HubState | None:
        """The state whose colour most pixels of the docked icon have (None: no icon)."""
        shot = shot or self.screenshot()
        votes: Counter[HubState] = Counter()
        for x in range(TRAY_BOX[0], TRAY_BOX[2]):
            for y in range(TRAY_BOX[1], TRAY_BOX[3]):
                state = nearest_state(shot.getpixel((x, y)), tolerance=40)
                if state is not None:
                    votes[state] += 1
        if not votes or votes.most_common(1)[0][1] < 20:
            return None
        return votes.most_common(1)[0][0]

    def wait_tray_state(self, state: HubState, timeout: float = 20) -> None:
        seen: list[HubState | None] = []

        def reached() -> bool:
            seen.append(self.tray_state())
            return seen[-1] is state

        try:
            _wait(reached, timeout, f"tray icon {state}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; saw {seen[-5:]}") from None

    def xdotool(self, *args: str) -> str:
        return subprocess.run(["xdotool", *args], env=self.env, capture_output=True,
                              text=True, timeout=10).stdout

    def notifications(self) -> list[dict[str, Any]]:
        try:
            text = self.notify_log.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def click_toast(self) -> None:
        """Emit ActionInvoked(last id, "default"), as a click on the last toast does."""
        assert self.notify_proc is not None
        self.notify_proc.send_signal(signal.SIGUSR1)
