"""Start at login. Linux for real (a temporary XDG_CONFIG_HOME, the real `pdh autostart`);
Windows and macOS by the exact content written (not run on this machine)."""

from __future__ import annotations

import plistlib
import subprocess
import sys
from pathlib import Path

import pytest

from agent.autostart import (
    WIN_VALUE_NAME,
    LaunchAgentAutostart,
    WindowsAutostart,
    XdgAutostart,
    desktop_exec_arg,
    launch_command,
)

ROOT = Path(__file__).resolve().parents[2]


class FakeRegistry:
    """HKCU\\...\\Run as a dict: the one true edge on a Linux machine."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.writes = 0

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def set(self, name: str, value: str) -> None:
        self.writes += 1
        self.values[name] = value

    def delete(self, name: str) -> bool:
        return self.values.pop(name, None) is not None


def test_the_command_starts_this_installation_with_this_config(tmp_path: Path) -> None:
    cmd = launch_command(tmp_path / "pdh.toml")
    assert cmd == [sys.executable, "-m", "agent", "run", "--config", str(tmp_path / "pdh.toml")]
    cmd = launch_command(None, db_path=Path("rel/x.db"), demo=True, python="/py/bin/python3")
    assert cmd == ["/py/bin/python3", "-m", "agent", "run", "--db",
                   str(Path("rel/x.db").resolve()), "--demo"]


def test_windows_prefers_pythonw_so_no_console_opens(tmp_path: Path) -> None:
    (tmp_path / "python.exe").touch()
    (tmp_path / "pythonw.exe").touch()
    cmd = launch_command(None, python=str(tmp_path / "python.exe"), platform="win32")
    assert cmd[0] == str(tmp_path / "pythonw.exe")


def test_windows_run_value_is_quoted_and_idempotent() -> None:
    reg = FakeRegistry()
    cmd = [r"C:\Program Files\PDH\.venv\Scripts\pythonw.exe", "-m", "agent", "run",
           "--config", r"C:\Users\공장\pdh config\pdh.toml"]
    item = WindowsAutostart(cmd, registry=reg)
    assert not item.is_enabled()
    where = item.enable()
    assert where == r"HKCU\Software\Microsoft\Windows\CurrentVersion\Run\ProductionDataHub"
    assert reg.values == {WIN_VALUE_NAME: (
        r'"C:\Program Files\PDH\.venv\Scripts\pythonw.exe" -m agent run '
        r'--config "C:\Users\공장\pdh config\pdh.toml"')}
    item.enable()
    assert reg.writes == 1 and item.is_enabled()
    other = WindowsAutostart(["x.exe"], registry=reg)
    assert other.status().enabled and not other.status().matches
    assert "enabled for another command" in other.status().describe()
    assert item.disable() is True and item.disable() is False
    assert reg.values == {}


def test_macos_launch_agent_plist_exact_content(tmp_path: Path) -> None:
    cmd = ["/Users/kim/pdh/.venv/bin/python", "-m", "agent", "run", "--config",
           "/Users/kim/pdh.toml"]
    item = LaunchAgentAutostart(cmd, home=tmp_path, log_dir=Path("/Users/kim/Library/Logs/pdh"))
    path = Path(item.enable())
    assert path == tmp_path / "Library/LaunchAgents/com.productiondatahub.agent.plist"
    assert path.read_bytes() == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" '
        b'"http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n'
        b'<plist version="1.0">\n<dict>\n'
        b"\t<key>Label</key>\n\t<string>com.productiondatahub.agent</string>\n"
        b"\t<key>ProcessType</key>\n\t<string>Interactive</string>\n"
        b"\t<key>ProgramArguments</key>\n\t<array>\n"
        b"\t\t<string>/Users/kim/pdh/.venv/bin/python</string>\n"
        b"\t\t<string>-m</string>\n\t\t<string>agent</string>\n\t\t<string>run</string>\n"
        b"\t\t<string>--config</string>\n\t\t<string>/Users/kim/pdh.toml</string>\n"
        b"\t</array>\n"
        b"\t<key>RunAtLoad</key>\n\t<true/>\n"
        b"\t<key>StandardErrorPath</key>\n"
        b"\t<string>/Users/kim/Library/Logs/pdh/launchd.err.log</string>\n"
        b"</dict>\n</plist>\n"
    )
    assert plistlib.loads(path.read_bytes())["ProgramArguments"] == cmd
    mtime = path.stat().st_mtime_ns
    item.enable()
    assert path.stat().st_mtime_ns == mtime and item.is_enabled()
    assert item.disable() and not path.exists() and not item.is_enabled()


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("/usr/bin/python3", "/usr/bin/python3"),
        ("/home/kim/my pdh/pdh.toml", '"/home/kim/my pdh/pdh.toml"'),
        ("/tmp/100%.toml", "/tmp/100%%.toml"),
        ('/a"b$c`d\\e', '"/a\\\\"b\\\\$c\\\\`d\\\\\\\\e"'),
        ("", '""'),
    ],
)
def test_desktop_exec_quoting_follows_the_spec(arg: str, expected: str) -> None:
    assert desktop_exec_arg(arg) == expected


def test_xdg_desktop_entry_content_and_idempotence(tmp_path: Path) -> None:
    cmd = ["/opt/pdh/bin/python", "-m", "agent", "run", "--config", "/home/kim/my pdh.toml"]
    item = XdgAutostart(cmd, env={"XDG_CONFIG_HOME": str(tmp_path)}, icon="/opt/pdh/db-64.png")
    path = Path(item.enable())
    assert path == tmp_path / "autostart" / "production-data-hub.desktop"
    assert path.read_text() == (
        "[Desktop Entry]\nType=Application\nName=Production Data Hub\n"
        "Comment=Keeps the ERP production database indexed and served\n"
        'Exec=/opt/pdh/bin/python -m agent run --config "/home/kim/my pdh.toml"\n'
        "Icon=/opt/pdh/db-64.png\nTerminal=false\nX-GNOME-Autostart-enabled=true\n"
    )
    item.enable()
    assert list(path.parent.iterdir()) == [path]
    home_default = XdgAutostart(cmd, env={}, home=tmp_path / "home")
    assert home_default.path == tmp_path / "home/.config/autostart/production-data-hub.desktop"


def _pdh(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def test_pdh_autostart_for_real_and_the_registered_command_works(tmp_path: Path) -> None:
    import os

    config = tmp_path / "site" / "pdh.toml"
    config.parent.mkdir()
    config.write_text('[database]\npath = "missing.db"\n[api]\nenabled = false\n')
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "xdg"))
    env.pop("PDH_CONFIG", None)
    desktop = tmp_path / "xdg" / "autostart" / "production-data-hub.desktop"

    out = _pdh("autostart", "status", "--config", str(config), env=env, cwd=tmp_path)
    assert out.returncode == 0 and "start at login disabled" in out.stdout
    out = _pdh("autostart", "enable", "--config", str(config), env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert f"start at login enabled: {desktop}" in out.stdout
    exec_line = next(x for x in desktop.read_text().splitlines() if x.startswith("Exec="))
    assert exec_line == f"Exec={sys.executable} -m agent run --config {config}"
    out = _pdh("autostart", "enable", "--config", str(config), env=env, cwd=tmp_path)
    assert out.returncode == 0 and len(list(desktop.parent.iterdir())) == 1
    out = _pdh("autostart", "status", "--config", str(config), env=env, cwd=tmp_path)
    assert out.stdout.startswith(f"start at login enabled: {desktop}")

    # The registered command, run from elsewhere, starts this installation with this
    # config: ask it for its help (it parses the same command line) from another folder.
    argv = exec_line.removeprefix("Exec=").split(" ")
    probe = subprocess.run([*argv[:4], "--help"], env=env, cwd="/", capture_output=True,
                           text=True, timeout=60)
    assert probe.returncode == 0 and "--headless" in probe.stdout

    out = _pdh("autostart", "disable", "--config", str(config), env=env, cwd=tmp_path)
    assert out.returncode == 0 and "start at login disabled (removed" in out.stdout
    assert not desktop.exists()
    out = _pdh("autostart", "disable", "--config", str(config), env=env, cwd=tmp_path)
    assert "was not enabled" in out.stdout
    bad = _pdh("autostart", "enable", "--config", str(tmp_path / "nope.toml"), env=env,
               cwd=tmp_path)
    assert bad.returncode == 2 and "config file not found" in bad.stderr
    assert not desktop.exists()
