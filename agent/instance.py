"""One agent per configuration: an OS file lock in the state dir.

The lock file is keyed on the resolved config path and database path, so two agents
for two different databases can run side by side. The holder writes its pid and
dashboard URL to a small JSON file beside the lock, which a second ``pdh run`` reads to
say where the running agent is. The lock is the OS's (``fcntl.flock`` / ``msvcrt``):
it dies with its process, so a lock left by a crashed agent never blocks a new start.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from core.eventlog import iso, utcnow
from core.paths import absolute

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
        where = self.dashboard_url or "dashboard off"
        return f"pid {self.pid}, {where}"

    @property
    def headless(self) -> bool:
        """The running agent shows no tray of its own (a service, or ``--headless``)."""
        return self.mode == "headless"


class AlreadyRunning(Exception):
    """Another agent holds the lock for this configuration."""

    def __init__(self, info: InstanceInfo | None) -> None:
        self.info = info
        where = info.describe() if info else "pid unknown"
        super().__init__(f"already running ({where})")


def instance_key(config_source: Path | None, db_path: Path) -> str:
    """A short, stable key for one configuration (config file + database)."""
    parts = [str(absolute(config_source)) if config_source else "<defaults>",
             str(absolute(db_path))]
    if sys.platform == "win32":  # paths are case-insensitive there
        parts = [p.lower() for p in parts]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


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
    """``acquire()`` or :class:`AlreadyRunning`; ``release()`` (or leave the ``with``)."""

    def __init__(self, state_dir: Path, key: str) -> None:
        self.lock_path = state_dir / f"agent-{key}.lock"
        self.info_path = state_dir / f"agent-{key}.json"
        self._fh: IO[bytes] | None = None

    def acquire(self, info: InstanceInfo, *, wait_info_s: float = 2.0) -> None:
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        fh = self.lock_path.open("a+b")  # never truncate: the holder may be writing
        if not _lock(fh):
            fh.close()
            raise AlreadyRunning(self._read_other(wait_info_s))
        self._fh = fh
        try:
            self.write_info(info)
        except OSError as exc:  # the lock is what counts; the info only helps others
            log.warning("cannot write %s: %s", self.info_path, exc)

    def write_info(self, info: InstanceInfo) -> None:
        """Publish (or update) this agent's pid and URL, atomically."""
        data = asdict(info)
        data["started"] = data["started"] or iso(utcnow())
        tmp = self.info_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
        replace_retrying(tmp, self.info_path)

    def _read_other(self, wait_s: float) -> InstanceInfo | None:
        """The holder's info; it may be a moment behind its lock, so wait a little."""
        deadline = time.monotonic() + wait_s
        while True:
            info = read_info(self.info_path)
            if info is not None and pid_alive(info.pid):
                return info
            if time.monotonic() >= deadline:
                return info
            time.sleep(0.05)

    def release(self) -> None:
        if self._fh is None:
            return
        with contextlib.suppress(OSError):
            self.info_path.unlink()
        _unlock(self._fh)
        self._fh.close()
        self._fh = None

    @property
    def held(self) -> bool:
        return self._fh is not None

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
