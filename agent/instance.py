"""One hub per database: an OS file lock keyed on the database file alone.

The key is :func:`core.paths.database_key` (the absolute path; letter case folded on
Windows), so two hubs for two databases run side by side, and a second hub for the same
database is refused whatever its config. The lock is taken in the user's lock folder
(:func:`core.config.lock_dir`), where every config of this user meets, and also in an
explicit ``[state] dir`` (where a service and a user's tray that share a config meet).
The holder writes its pid and URLs to a small JSON file beside each lock, which a second
``pdh run`` reads to say where the running hub is. The lock is the OS's
(``fcntl.flock`` / ``msvcrt``): it dies with its process, so a lock left by a crashed
agent never blocks a new start.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from core.config import Config, lock_dir
from core.eventlog import iso, utcnow
from core.net import base_url
from core.paths import absolute, database_key

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class InstanceInfo:
    """What the running agent tells a second one."""

    pid: int
    dashboard_url: str | None = None
    config: str | None = None
    db: str | None = None
    started: str = ""
    mode: str = ""  # "tray" or "headless" once the agent knows ("" from older agents)
    api_url: str | None = None  # where its API answers on this computer (None: off)

    def describe(self) -> str:
        parts = [f"pid {self.pid}"]
        if self.config:
            parts.append(f"config {self.config}")
        parts.append(self.dashboard_url or "dashboard off")
        return ", ".join(parts)

    @property
    def headless(self) -> bool:
        """The running agent shows no tray of its own (a service, or ``--headless``)."""
        return self.mode == "headless"


class AlreadyRunning(Exception):
    """Another agent holds the lock for this database."""

    def __init__(self, info: InstanceInfo | None) -> None:
        self.info = info
        where = info.describe() if info else "pid unknown"
        of = f" for {info.db}" if info and info.db else ""
        super().__init__(f"already running{of} ({where})")


def hub_info(config: Config, config_source: Path | None, *, mode: str) -> InstanceInfo:
    """What a hub of ``config`` tells a second one: its pid, config, database and where
    its dashboard and API answer on this computer (from the config)."""
    return InstanceInfo(
        pid=os.getpid(), mode=mode, db=str(config.db_path),
        config=str(absolute(config_source)) if config_source else None,
        dashboard_url=configured_dashboard_url(config), api_url=configured_api_url(config),
    )


def configured_dashboard_url(config: Config) -> str | None:
    """Where the dashboard will be, from the config (None when it is off)."""
    dash = config.dashboard
    if not dash.enabled or dash.port == 0:
        return None
    return base_url(dash.host, dash.port) + "/"


def configured_api_url(config: Config) -> str | None:
    """Where this computer reaches the configured API (None when it is off)."""
    if not config.api.enabled or config.api.port == 0:
        return None
    return base_url(config.api.host, config.api.port)


def hub_lock(config: Config, role: str = "hub") -> InstanceLock:
    """The lock of ``config``'s database for ``role`` ("hub": the one hub; "tray": the one
    tray attached to it)."""
    dirs = [lock_dir()]
    if config.state.dir is not None and absolute(config.state.dir) != absolute(dirs[0]):
        dirs.append(config.state.dir)
    return InstanceLock(dirs, f"{role}-{database_key(config.db_path)}")


def _lock(fh: IO[bytes]) -> bool:
    """Take the OS lock without waiting; False if another process holds it."""
    if sys.platform == "win32":
        import msvcrt

        try:
            fh.seek(0)
            msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (BlockingIOError, PermissionError):
        return False
    return True


def _unlock(fh: IO[bytes]) -> None:
    if sys.platform == "win32":
        import msvcrt

        with contextlib.suppress(OSError):
            fh.seek(0)
            msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)
    else:
        import fcntl

        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


class InstanceLock:
    """``acquire()`` or :class:`AlreadyRunning`; ``release()`` (or leave the ``with``).

    Held in each of ``dirs`` (all or none: a lock file a folder apiece, the same key)."""

    def __init__(self, dirs: Path | Sequence[Path], key: str) -> None:
        folders = [dirs] if isinstance(dirs, Path) else list(dirs)
        self.lock_paths = [folder / f"{key}.lock" for folder in folders]
        self.info_paths = [folder / f"{key}.json" for folder in folders]
        self._held: list[IO[bytes]] = []

    @property
    def lock_path(self) -> Path:
        return self.lock_paths[0]

    @property
    def info_path(self) -> Path:
        return self.info_paths[0]

    def acquire(self, info: InstanceInfo, *, wait_info_s: float = 2.0) -> None:
        for lock_path, info_path in zip(self.lock_paths, self.info_paths, strict=True):
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            fh = lock_path.open("a+b")  # never truncate: the holder may be writing
            if not _lock(fh):
                fh.close()
                self.release()
                raise AlreadyRunning(_read_other(info_path, wait_info_s))
            self._held.append(fh)
        self.write_info(info)

    def write_info(self, info: InstanceInfo) -> None:
        """Publish (or update) this agent's pid and URL beside each lock, atomically."""
        data = asdict(info)
        data["started"] = data["started"] or iso(utcnow())
        for info_path in self.info_paths:
            tmp = info_path.with_suffix(".tmp")
            try:
                tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
                replace_retrying(tmp, info_path)
            except OSError as exc:  # the lock is what counts; the info only helps others
                log.warning("cannot write %s: %s", info_path, exc)

    def release(self) -> None:
        if self._held:
            for info_path in self.info_paths:
                with contextlib.suppress(OSError):
                    info_path.unlink()
        for fh in reversed(self._held):
            _unlock(fh)
            fh.close()
        self._held = []

    @property
    def held(self) -> bool:
        return bool(self._held)

    def __enter__(self) -> InstanceLock:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def replace_retrying(source: Path, target: Path, timeout: float = 3.0) -> None:
    """``os.replace``, retried while another process has ``target`` open: on Windows a
    file open without FILE_SHARE_DELETE (a plain ``open()`` elsewhere) cannot be replaced
    ("access denied") until it is closed, whatever share mode the reader used."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.replace(source, target)
            return
        except PermissionError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def _read_other(info_path: Path, wait_s: float) -> InstanceInfo | None:
    """The holder's info; it may be a moment behind its lock, so wait a little."""
    deadline = time.monotonic() + wait_s
    while True:
        info = read_info(info_path)
        if info is not None and pid_alive(info.pid):
            return info
        if time.monotonic() >= deadline:
            return info
        time.sleep(0.05)


def read_info(path: Path) -> InstanceInfo | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        known = {name: data[name] for name in InstanceInfo.__dataclass_fields__ if name in data}
        return InstanceInfo(**known)
    except (OSError, ValueError, TypeError):
        return None


def pid_alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
