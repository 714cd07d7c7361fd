"""Start at login: one login item per OS that starts this same installation with this same
configuration. ``pdh autostart`` and the tray's "Start at Login" use this module.

- Windows: a value under ``HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run``
  (through a small registry adapter, so tests check the exact value written).
- macOS: ``~/Library/LaunchAgents/<label>.plist`` with ``RunAtLoad`` (plistlib).
- Linux and other XDG desktops: ``$XDG_CONFIG_HOME/autostart/<name>.desktop``.

Every operation is idempotent: enabling twice writes the same item once.
"""

from __future__ import annotations

import os
import plistlib
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from core.paths import absolute

APP_NAME = "Production Data Hub"
DESKTOP_NAME = "production-data-hub.desktop"
MAC_LABEL = "com.productiondatahub.agent"
WIN_RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"
WIN_VALUE_NAME = "ProductionDataHub"


def launch_command(config_source: Path | None, *, db_path: Path | None = None,
                   demo: bool = False, python: str | None = None,
                   platform: str = sys.platform) -> list[str]:
    """The command that starts this installation's agent with this configuration.

    The interpreter is this one (``sys.executable``; on Windows its ``pythonw.exe``
    twin, so no console window opens at login) running ``-m agent``; paths are absolute
    so the command works from any working directory.
    """
    exe = python or sys.executable
    if platform == "win32":
        windowless = Path(exe).with_name("pythonw.exe")
        if Path(exe).name.lower() == "python.exe" and windowless.exists():
            exe = str(windowless)
    command = [exe, "-m", "agent", "run"]
    if config_source is not None:
        command += ["--config", str(absolute(config_source))]
    if db_path is not None:
        command += ["--db", str(absolute(db_path))]
    if demo:
        command.append("--demo")
    return command


def _write_if_changed(path: Path, content: bytes) -> str:
    """Write a login item atomically, and not at all when it already says the same
    (enable is idempotent)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not (path.is_file() and path.read_bytes() == content):
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(content)
        os.replace(tmp, path)
    return str(path)


def _remove(path: Path) -> bool:
    """Remove a login item; False when there was none."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class AutostartStatus:
    enabled: bool  # an item exists
    matches: bool  # ...and starts exactly this command
    where: str
    registered: str | None = None  # the command the item runs, as written

    def describe(self) -> str:
        if not self.enabled:
            return f"disabled ({self.where})"
        if self.matches:
            return f"enabled: {self.where}"
        return f"enabled for another command: {self.where}\n  runs: {self.registered}"


class LoginItem(Protocol):
    command: list[str]

    def enable(self) -> str: ...

    def disable(self) -> bool: ...

    def status(self) -> AutostartStatus: ...

    def is_enabled(self) -> bool: ...


# Linux / XDG -------------------------------------------------------------------------

_EXEC_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")


def desktop_exec_arg(arg: str) -> str:
    """One argument of a desktop entry's ``Exec`` key, quoted by the spec's rules."""
    if "\n" in arg or "\r" in arg:
        raise ValueError(f"a launcher argument cannot contain a line break: {arg!r}")
    arg = arg.replace("%", "%%")  # field codes
    if arg == "" or any(c in _EXEC_RESERVED for c in arg):
        arg = '"' + "".join("\\" + c if c in '"`$\\' else c for c in arg) + '"'
    return arg.replace("\\", "\\\\")  # the string-level escape applies on top


class XdgAutostart:
    def __init__(self, command: list[str], *, env: Mapping[str, str] | None = None,
                 home: Path | None = None, icon: str | None = None) -> None:
        env = os.environ if env is None else env
        base = env.get("XDG_CONFIG_HOME") or str((home or Path.home()) / ".config")
        self.path = Path(base) / "autostart" / DESKTOP_NAME
        self.command = command
        self.icon = icon

    def content(self) -> str:
        exec_line = " ".join(desktop_exec_arg(a) for a in self.command)
        lines = [
            "[Desktop Entry]",
            "Type=Application",
            f"Name={APP_NAME}",
            "Comment=Keeps the ERP production database indexed and served",
            f"Exec={exec_line}",
        ]
        if self.icon:
            lines.append(f"Icon={self.icon}")
        lines += ["Terminal=false", "X-GNOME-Autostart-enabled=true", ""]
        return "\n".join(lines)

    def _exec_of(self, text: str) -> str | None:
        for line in text.splitlines():
            if line.startswith("Exec="):
                return line[len("Exec="):]
        return None

    def enable(self) -> str:
        return _write_if_changed(self.path, self.content().encode("utf-8"))

    def disable(self) -> bool:
        return _remove(self.path)

    def status(self) -> AutostartStatus:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return AutostartStatus(False, False, str(self.path))
        registered = self._exec_of(text)
        mine = self._exec_of(self.content())
        return AutostartStatus(True, registered == mine, str(self.path), registered)

    def is_enabled(self) -> bool:
        return self.status().matches


# macOS -------------------------------------------------------------------------------


class LaunchAgentAutostart:
    def __init__(self, command: list[str], *, home: Path | None = None,
                 log_dir: Path | None = None) -> None:
        self.path = (home or Path.home()) / "Library" / "LaunchAgents" / f"{MAC_LABEL}.plist"
        self.command = command
        self.log_dir = log_dir

    def content(self) -> bytes:
        plist: dict[str, object] = {
            "Label": MAC_LABEL,
            "ProgramArguments": list(self.command),
            "RunAtLoad": True,
            "ProcessType": "Interactive",
        }
        if self.log_dir is not None:
            plist["StandardErrorPath"] = str(self.log_dir / "launchd.err.log")
        return plistlib.dumps(plist)

    def enable(self) -> str:
        return _write_if_changed(self.path, self.content())

    def disable(self) -> bool:
        return _remove(self.path)

    def status(self) -> AutostartStatus:
        try:
            data = plistlib.loads(self.path.read_bytes())
        except FileNotFoundError:
            return AutostartStatus(False, False, str(self.path))
        except (plistlib.InvalidFileException, ValueError):
            return AutostartStatus(True, False, str(self.path), "(unreadable plist)")
        args = data.get("ProgramArguments") if isinstance(data, dict) else None
        shown = subprocess.list2cmdline(args) if isinstance(args, list) else None
        return AutostartStatus(True, args == self.command, str(self.path), shown)

    def is_enabled(self) -> bool:
        return self.status().matches


# Windows -----------------------------------------------------------------------------


class Registry(Protocol):
    """The few registry calls autostart needs, on HKCU\\...\\Run."""

    def get(self, name: str) -> str | None: ...

    def set(self, name: str, value: str) -> None: ...

    def delete(self, name: str) -> bool: ...


class WinRunKey:
    """The real ``HKEY_CURRENT_USER\\Software\\Microsoft\\Windows\\CurrentVersion\\Run``."""

    def get(self, name: str) -> str | None:
        import winreg  # type: ignore[import-not-found,unused-ignore]

        try:
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, WIN_RUN_KEY) as key:
                value, _kind = winreg.QueryValueEx(key, name)
        except FileNotFoundError:
            return None
        return str(value)

    def set(self, name: str, value: str) -> None:
        import winreg  # type: ignore[import-not-found,unused-ignore]

        with winreg.CreateKeyEx(winreg.HKEY_CURRENT_USER, WIN_RUN_KEY, 0,
                                winreg.KEY_SET_VALUE) as key:
            winreg.SetValueEx(key, name, 0, winreg.REG_SZ, value)

    def delete(self, name: str) -> bool:
        import winreg  # type: ignore[import-not-found,unused-ignore]

        try:
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, WIN_RUN_KEY, 0,
                                winreg.KEY_SET_VALUE) as key:
                winreg.DeleteValue(key, name)
        except FileNotFoundError:
            return False
        return True


class WindowsAutostart:
    def __init__(self, command: list[str], *, registry: Registry | None = None) -> None:
        self.command = command
        self.registry = registry or WinRunKey()
        self.where = f"HKCU\\{WIN_RUN_KEY}\\{WIN_VALUE_NAME}"

    def content(self) -> str:
        """The value: the command line with Windows quoting (paths with spaces quoted)."""
        return subprocess.list2cmdline(self.command)

    def enable(self) -> str:
        if self.registry.get(WIN_VALUE_NAME) != self.content():
            self.registry.set(WIN_VALUE_NAME, self.content())
        return self.where

    def disable(self) -> bool:
        return self.registry.delete(WIN_VALUE_NAME)

    def status(self) -> AutostartStatus:
        value = self.registry.get(WIN_VALUE_NAME)
        if value is None:
            return AutostartStatus(False, False, self.where)
        return AutostartStatus(True, value == self.content(), self.where, value)

    def is_enabled(self) -> bool:
        return self.status().matches


def login_item(command: list[str], *, platform: str = sys.platform,
               env: Mapping[str, str] | None = None, home: Path | None = None,
               registry: Registry | None = None, log_dir: Path | None = None) -> LoginItem:
    """The login item for this OS."""
    if platform == "win32":
        return WindowsAutostart(command, registry=registry)
    if platform == "darwin":
        return LaunchAgentAutostart(command, home=home, log_dir=log_dir)
    from agent.tray.icons import icon_file

    return XdgAutostart(command, env=env, home=home, icon=icon_file(64))
