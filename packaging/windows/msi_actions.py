"""The MSI's custom actions (packaging/windows/build_msi.py), run by the installed
windowless interpreter: ``python\\pythonw.exe installer\\msi_actions.py <action> ...``.

- ``install``: copy ``--config`` to where the hub reads it; the login item on or off
  (``--autostart``: the value ``pdh autostart enable`` writes, through the same module;
  per-machine under HKLM, for every user); start again a tray that an upgrade stopped.
- ``uninstall``: the login item off; what runs from this folder stopped (the tray asked
  to close as ``taskkill /PID`` does, then killed after a grace), the trays noted so
  that the install of an upgrade starts them again.
- ``open-dashboard``: the Start-menu shortcut: the configured dashboard in the browser.

Windowless, so every step goes to ``%TEMP%\\ProductionDataHub-msi.log``; the exit code
is what Windows Installer acts on (install: non-zero rolls the install back).
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

log = logging.getLogger("pdh.msi")
HERE = Path(__file__).resolve().parent
INSTALL_DIR = HERE.parent
RESTART_NOTE = "ProductionDataHub-restart.json"
DEFAULT_DASHBOARD = "http://127.0.0.1:8501/"
MACHINE_CONFIG = Path(os.environ.get("PROGRAMDATA", r"C:\ProgramData"),
                      "ProductionDataHub", "pdh.toml")


class MachineRunKey:
    """``HKEY_LOCAL_MACHINE\\...\\Run``: the login item of a per-machine install, for every
    user (agent.autostart's Registry protocol)."""

    def _key(self, access: int):  # noqa: ANN202
        import winreg

        from agent.autostart import WIN_RUN_KEY

        return winreg.CreateKeyEx(winreg.HKEY_LOCAL_MACHINE, WIN_RUN_KEY, 0,
                                  access | winreg.KEY_WOW64_64KEY)

    def get(self, name: str) -> str | None:
        import winreg

        try:
            with self._key(winreg.KEY_READ) as key:
                return str(winreg.QueryValueEx(key, name)[0])
        except FileNotFoundError:
            return None

    def set(self, name: str, value: str) -> None:
        import winreg

        with self._key(winreg.KEY_SET_VALUE) as key:
            winreg.SetValueEx(key, name, 0, winreg.REG_SZ, value)

    def delete(self, name: str) -> bool:
        import winreg

        try:
            with self._key(winreg.KEY_SET_VALUE) as key:
                winreg.DeleteValue(key, name)
        except FileNotFoundError:
            return False
        return True


REMEMBER_KEY = r"Software\ProductionDataHub\Installer"


def remember(scope: str, values: dict[str, str] | None) -> None:
    """The choices an upgrade reads back (build_msi.py's AppSearch), or (None) gone."""
    import winreg

    root = winreg.HKEY_LOCAL_MACHINE if scope == "machine" else winreg.HKEY_CURRENT_USER
    if values is None:
        with contextlib.suppress(FileNotFoundError):
            winreg.DeleteKeyEx(root, REMEMBER_KEY, winreg.KEY_WOW64_64KEY, 0)
        return
    with winreg.CreateKeyEx(root, REMEMBER_KEY, 0,
                            winreg.KEY_SET_VALUE | winreg.KEY_WOW64_64KEY) as key:
        for name, value in values.items():
            winreg.SetValueEx(key, name, 0, winreg.REG_SZ, value)


def login_item(scope: str, config_file: Path | None):  # noqa: ANN201
    from agent.autostart import WindowsAutostart, WinRunKey, launch_command

    source = config_file if config_file is not None and config_file.is_file() else None
    command = launch_command(source, python=str(INSTALL_DIR / "python" / "pythonw.exe"),
                             platform="win32")
    registry = MachineRunKey() if scope == "machine" else WinRunKey()
    return WindowsAutostart(command, registry=registry)


def copy_config(source: Path, target: Path) -> None:
    if not source.is_file():
        raise SystemExit(f"CONFIG={source}: no such file")
    import tomllib

    tomllib.loads(source.read_text(encoding="utf-8"))  # a broken file fails the install
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_file() and target.read_bytes() != source.read_bytes():
        shutil.copy2(target, target.with_suffix(".toml.bak"))
        log.info("kept the previous config as %s", target.with_suffix(".toml.bak"))
    shutil.copyfile(source, target)
    log.info("config %s copied to %s", source, target)


# stopping and restarting ------------------------------------------------------------


def _image(pid: int) -> str:
    """A process's executable (QueryFullProcessImageNameW: psutil's exe() asks
    NtQuerySystemInformation, which Wine refuses)."""
    import ctypes
    from ctypes import wintypes

    kernel = ctypes.WinDLL("kernel32", use_last_error=True)
    kernel.OpenProcess.restype = wintypes.HANDLE
    handle = kernel.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return ""
    try:
        size = wintypes.DWORD(1024)
        buf = ctypes.create_unicode_buffer(size.value)
        if not kernel.QueryFullProcessImageNameW(wintypes.HANDLE(handle), 0, buf,
                                                 ctypes.byref(size)):
            return ""
        return buf.value
    finally:
        kernel.CloseHandle(wintypes.HANDLE(handle))


def _ours() -> list:  # noqa: ANN202
    """The processes running from this install folder, outermost first (a launcher
    before its python child), this one and its parents left out."""
    import psutil

    me = psutil.Process()
    skip = {me.pid}
    with contextlib.suppress(psutil.Error, OSError):
        skip.update(p.pid for p in me.parents())
    folder = str(INSTALL_DIR).lower().rstrip("\\") + "\\"
    found = []
    for proc in psutil.process_iter():
        try:  # Wine refuses some processes' details with a plain OSError
            exe = _image(proc.pid).lower()
            proc.info = {"ppid": proc.ppid()}
        except (psutil.Error, OSError):
            continue
        if proc.pid not in skip and exe.startswith(folder):
            found.append(proc)
    pids = {p.pid for p in found}
    return [p for p in found if p.info["ppid"] not in pids] + \
           [p for p in found if p.info["ppid"] in pids]


def stop_running(grace: float = 20.0) -> list[list[str]]:
    """Ask what runs from the folder to close (WM_CLOSE, as ``taskkill /PID``: the tray
    stops cleanly), kill what is left after ``grace``; returns this user's trays."""
    import psutil

    procs = _ours()
    trays: list[list[str]] = []
    user = getpass.getuser().lower()
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            cmdline = proc.cmdline()
            owner = (proc.username() or "").rsplit("\\", 1)[-1].lower()
            outer = proc.info["ppid"] not in {p.pid for p in procs}
            if outer and owner == user and ("run" in cmdline or cmdline[0].lower()
                                            .endswith("pdh-tray.exe")):
                trays.append(cmdline)
            log.info("asking pid %d to close: %s", proc.pid, subprocess.list2cmdline(cmdline))
            subprocess.run(["taskkill", "/PID", str(proc.pid)], capture_output=True,
                           timeout=30, creationflags=subprocess.CREATE_NO_WINDOW)
    _gone, alive = psutil.wait_procs(procs, timeout=grace)
    for proc in alive:
        log.info("pid %d did not close in %.0f s: killed", proc.pid, grace)
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=10)
    return trays


def note_path() -> Path:
    return Path(os.environ.get("TEMP", str(INSTALL_DIR.parent)), RESTART_NOTE)


def restart_trays() -> None:
    path = note_path()
    try:
        trays = json.loads(path.read_text(encoding="utf-8"))
        path.unlink()
    except (OSError, ValueError):
        return
    flags = (subprocess.DETACHED_PROCESS | subprocess.CREATE_NEW_PROCESS_GROUP
             | subprocess.CREATE_BREAKAWAY_FROM_JOB)
    for cmdline in trays:
        if not Path(cmdline[0]).is_file():
            continue
        log.info("starting again: %s", subprocess.list2cmdline(cmdline))
        try:
            subprocess.Popen(cmdline, creationflags=flags, close_fds=True)
        except OSError:  # a job that allows no breakaway
            subprocess.Popen(cmdline, creationflags=flags & ~subprocess.CREATE_BREAKAWAY_FROM_JOB,
                             close_fds=True)


# the actions ------------------------------------------------------------------------


def merged(data: list[str]) -> dict[str, str]:
    """``--data`` values (``key=value|...``), the first non-empty value of each key."""
    out: dict[str, str] = {}
    for text in data:
        for item in text.split("|"):
            key, _, value = item.partition("=")
            if value.strip() and not out.get(key):
                out[key] = value.strip()
    return out


def pdh(*args: str) -> None:
    """``pdh.exe`` of this installation, its output in the log; failing fails the action."""
    done = subprocess.run([str(INSTALL_DIR / "pdh.exe"), *args], capture_output=True,
                          text=True, errors="replace", timeout=180,
                          creationflags=subprocess.CREATE_NO_WINDOW)
    log.info("pdh %s -> %d\n%s", " ".join(args), done.returncode,
             (done.stdout + done.stderr).strip())
    if done.returncode != 0:
        raise SystemExit(f"pdh {' '.join(args)} failed ({done.returncode})")


def cmd_install(args: argparse.Namespace) -> int:
    data = merged(args.data)
    autostart, service = data.get("autostart", "1"), data.get("service", "")
    config_file = Path(data["config_file"]) if data.get("config_file") else None
    if data.get("config"):
        if config_file is None:
            raise SystemExit("no config_file to copy the config to")
        copy_config(Path(data["config"]), config_file)
    item = login_item(args.scope, config_file)
    if autostart == "1":
        log.info("login item: %s = %s", item.enable(), item.content())
    elif item.disable():
        log.info("login item removed (AUTOSTART=%s)", autostart)
    if service == "1" and args.scope == "machine":
        if config_file is None or not config_file.is_file():
            raise SystemExit(f"SERVICE=1 needs a config: CONFIG=<pdh.toml> (copied to "
                             f"{config_file})")
        pdh("service", "install", "--config", str(config_file))
    remember(args.scope, {"InstallDir": str(INSTALL_DIR) + "\\",
                          "Autostart": autostart, "Service": service})
    if args.scope == "user":
        restart_trays()
    return 0


def cmd_uninstall(args: argparse.Namespace) -> int:
    item = login_item(args.scope, None)
    if item.disable():
        log.info("login item removed: %s", item.where)
    remember(args.scope, None)
    if args.scope == "machine":
        with contextlib.suppress(SystemExit):  # not installed is fine
            pdh("service", "uninstall")
    trays = stop_running()
    if trays and args.scope == "user":
        note_path().write_text(json.dumps(trays), encoding="utf-8")
    return 0


def cmd_open_dashboard(args: argparse.Namespace) -> int:
    import webbrowser

    url = DEFAULT_DASHBOARD
    try:
        from agent.instance import configured_dashboard_url
        from core.config.loading import discover_config_file, load_config

        source = discover_config_file()
        if source is None and MACHINE_CONFIG.is_file():
            source = MACHINE_CONFIG
        url = configured_dashboard_url(load_config(source).config) or url
    except Exception:  # a broken config still opens the default address
        log.exception("reading the config for the dashboard's address")
    log.info("opening %s", url)
    webbrowser.open(url)
    return 0


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(INSTALL_DIR / "python" / "Lib" / "site-packages"))
    logging.basicConfig(
        filename=os.path.join(os.environ.get("TEMP", "."), "ProductionDataHub-msi.log"),
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", encoding="utf-8")
    parser = argparse.ArgumentParser(prog="msi_actions")
    sub = parser.add_subparsers(dest="action", required=True)
    p = sub.add_parser("install")
    p.add_argument("--scope", choices=("user", "machine"), required=True)
    p.add_argument("--data", action="append", default=[],
                   help="key=value|...: autostart, service, config, config_file")
    p.set_defaults(handler=cmd_install)
    p = sub.add_parser("uninstall")
    p.add_argument("--scope", choices=("user", "machine"), required=True)
    p.set_defaults(handler=cmd_uninstall)
    sub.add_parser("open-dashboard").set_defaults(handler=cmd_open_dashboard)
    args = parser.parse_args(argv)
    log.info("%s (%s, %s): %s", args.action, INSTALL_DIR, getpass.getuser(),
             subprocess.list2cmdline(sys.argv[1:]))
    started = time.monotonic()
    try:
        code = args.handler(args)
    except SystemExit as exc:
        log.error("%s failed: %s", args.action, exc)
        return 1
    except Exception:
        log.exception("%s failed", args.action)
        return 1
    log.info("%s done in %.1f s", args.action, time.monotonic() - started)
    return code


if __name__ == "__main__":
    sys.exit(main())
