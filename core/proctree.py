"""A child process's operating-system side: its own process group, signals to that group,
the whole tree reaped, and its output in a size-rotated log file.

POSIX: the child leads its own session, so one ``killpg`` reaches the tree. Windows: it is
started with ``CREATE_NEW_PROCESS_GROUP`` and asked to stop with ``CTRL_BREAK_EVENT``.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio.abc
import psutil

log = logging.getLogger(__name__)

POSIX = os.name == "posix"

SIGKILL = getattr(signal, "SIGKILL", signal.SIGTERM)
# Windows: a console control event to the child's process group (it was started with
# CREATE_NEW_PROCESS_GROUP); Python and Streamlit stop cleanly on it, as on SIGTERM.
SIGSTOP = signal.SIGTERM if POSIX else getattr(signal, "CTRL_BREAK_EVENT", 1)


def group_options() -> dict[str, Any]:
    """``open_process`` keywords that start the child in a process group of its own."""
    if POSIX:
        return {"start_new_session": True}  # its own group: the tree can be killed
    return {  # pragma: no cover - Windows
        "creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)}


class ChildLog:
    """Lines of the child's output into a size-rotated file (blocking: call off the loop)."""

    def __init__(self, path: Path, *, max_bytes: int, backups: int) -> None:
        self.path = path
        self._handler: logging.Handler | None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._handler = logging.handlers.RotatingFileHandler(
                path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8", delay=True
            )
        except OSError as exc:
            # A read-only log folder must not keep the dashboard from running.
            log.warning("cannot write %s (%s); child output is dropped", path, exc)
            self._handler = None
        else:
            self._handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))

    def write(self, lines: Sequence[str]) -> None:
        if self._handler is None:
            return
        for line in lines:
            self._handler.handle(
                logging.makeLogRecord({"msg": line, "levelno": logging.INFO, "args": None})
            )

    def close(self) -> None:
        if self._handler is not None:
            self._handler.close()

def descendants(pid: int) -> list[psutil.Process]:
    """The processes below ``pid`` (empty when it is gone)."""
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def signal_group(proc: anyio.abc.Process | subprocess.Popen[bytes], sig: int) -> None:
    """Signal the child's process group (POSIX) or the child itself (Windows)."""
    if POSIX:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)  # the child leads its own session: pgid == pid
        return
    if sig == SIGKILL:  # pragma: no cover - Windows (tests/windows)
        with contextlib.suppress(OSError):
            proc.kill()  # TerminateProcess; reap ends the rest of the tree
        return
    _ctrl_break(proc.pid)  # pragma: no cover


def _ctrl_break(pid: int) -> None:  # pragma: no cover - Windows (tests/windows)
    """CTRL_BREAK_EVENT to the process group ``pid`` leads. Not ``os.kill``: when
    GenerateConsoleCtrlEvent fails (no console to share: pythonw, a service), CPython
    3.11's ``os.kill`` goes on to TerminateProcess, the very kill this is to avoid. Then
    the end of the child's stdin, closed already, is the request."""
    if sys.platform != "win32":
        return
    import ctypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    if not kernel32.GenerateConsoleCtrlEvent(1, pid):  # 1: CTRL_BREAK_EVENT
        log.debug("no CTRL_BREAK_EVENT for pid %s (error %s); its stdin was closed", pid,
                  ctypes.get_last_error())


def reap(tree: list[psutil.Process], timeout: float) -> None:
    """Make sure every process of the child's tree is gone (they are not our children)."""
    if not tree:
        return
    for p in tree:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _gone, alive = psutil.wait_procs(tree, timeout=min(timeout, 3.0))
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(alive, timeout=3.0)
