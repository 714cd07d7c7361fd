"""``python -m dashboard.serve [streamlit options]``: ``streamlit run dashboard/app.py``
that also ends itself when the process that started it is gone.

The hub's supervisor stops the dashboard cleanly on the way out, but a hub that is
killed outright (Task Manager, ``kill -9``, a power-user's mistake) cannot. A dashboard
left behind would hold the port, and the next hub's dashboard could not start. So the
starter's pid comes in ``PDH_PARENT_PID`` and a watchdog thread ends this process, via
Streamlit's own clean shutdown, once that pid is gone. Started by the supervisor
(``PDH_STOP_ON_EOF=1``), the end of stdin is a stop request too: the supervisor closes
that pipe to ask, and a dead starter's end of it closes by itself. On Windows it is the
request that works when there is no console to carry a CTRL_BREAK_EVENT (``pythonw``).

The stop is Streamlit's own SIGTERM handler, raised in this process
(``signal.raise_signal``): on Windows ``os.kill(pid, SIGTERM)`` would be TerminateProcess.

It starts the warmer (:mod:`dashboard.warm`) that prepares the default view at start
and after every publish. It also keeps Streamlit's server from believing anybody's
``X-Forwarded-For`` (see :mod:`dashboard.visitors`).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence

import psutil

from core.config import ConfigError
from dashboard.settings import (
    APP_PATH,
    UVICORN_FORWARDED_ALLOW_IPS,
    load_dashboard_config,
    parent_pid,
    stop_on_eof,
    warm_interval,
)

WATCH_INTERVAL_S = 1.0
GRACE_S = 10.0  # for Streamlit's own shutdown, before the process just exits


def watch_parent(pid: int, interval: float = WATCH_INTERVAL_S) -> threading.Thread:
    """Start a daemon thread that terminates this process when ``pid`` has ended."""

    def gone() -> bool:
        # On POSIX an orphan is adopted (its ppid changes); Windows keeps the old ppid.
        return not psutil.pid_exists(pid) or (os.name == "posix" and os.getppid() != pid)

    def watch() -> None:
        while not gone():
            time.sleep(interval)
        # Our output went to a pipe read by the dead starter: a write now fails with
        # BrokenPipeError, which would kill Streamlit's shutdown handler half-way.
        _quiet_output()
        _stop_cleanly()

    thread = threading.Thread(target=watch, name="pdh-parent-watch", daemon=True)
    thread.start()
    return thread


def watch_stdin() -> threading.Thread:
    """Start a daemon thread that stops this process cleanly when stdin reaches its end.

    On Windows the end is looked for every :data:`STDIN_POLL_S` (``PeekNamedPipe``)
    instead of read: while one thread waits in a read of a synchronous pipe, Windows
    makes other calls on that handle wait for the read, and importing pyarrow or pandas
    makes one. Under Wine ``import pyarrow`` then waited until the hub stopped us (12 s
    in a test with a Windows parent; with the blocking read gone, 1.4 s): the page's
    first run and the warmer never got past it.
    """
    watch = _poll_stdin_until_closed if sys.platform == "win32" else _read_stdin_to_end
    thread = threading.Thread(target=watch, name="pdh-stdin-watch", daemon=True)
    thread.start()
    return thread


STDIN_POLL_S = 0.25
_ERROR_BROKEN_PIPE = 109  # the writing end closed: the starter asks us to stop


def _read_stdin_to_end() -> None:
    with contextlib.suppress(OSError, ValueError):
        while os.read(sys.stdin.fileno(), 4096):
            pass  # nobody should write; whatever comes is not a stop request
    _stop_cleanly()


def _poll_stdin_until_closed() -> None:  # pragma: no cover - Windows (tests/windows)
    import ctypes
    import msvcrt
    from ctypes import wintypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    peek = kernel32.PeekNamedPipe
    peek.argtypes = [wintypes.HANDLE, ctypes.c_void_p, wintypes.DWORD, ctypes.c_void_p,
                     ctypes.POINTER(wintypes.DWORD), ctypes.c_void_p]
    peek.restype = wintypes.BOOL
    fd = sys.stdin.fileno()
    handle = msvcrt.get_osfhandle(fd)
    waiting = wintypes.DWORD()
    while True:
        if not peek(handle, None, 0, None, ctypes.byref(waiting), None):
            error = ctypes.get_last_error()
            if error == _ERROR_BROKEN_PIPE:
                break
            # Not a pipe after all: nobody can close it to stop us; the parent watch
            # still ends this process when the starter is gone.
            sys.stderr.write(f"dashboard: stdin cannot be watched (error {error})\n")
            return
        if waiting.value:
            os.read(fd, waiting.value)  # nobody should write; whatever comes is dropped
        time.sleep(STDIN_POLL_S)
    _stop_cleanly()


def _stop_cleanly() -> None:
    signal.raise_signal(signal.SIGTERM)  # Streamlit shuts its server down cleanly
    time.sleep(GRACE_S)
    os._exit(1)  # it did not: leave anyway, the port must come free


def _quiet_output() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    for fd in (1, 2):
        with contextlib.suppress(OSError):
            os.dup2(devnull, fd)
    os.close(devnull)


def start_warmer() -> None:
    """Prepare the default view now and at every publish (see :mod:`dashboard.warm`);
    stopped on the way out. A bad configuration is left for the page to explain."""
    interval = warm_interval()
    if interval <= 0:
        return
    try:
        config = load_dashboard_config()
    except ConfigError:
        return
    from dashboard.warm import Warmer

    warmer = Warmer(config, interval).start()
    atexit.register(warmer.stop)


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    # Streamlit's server (uvicorn) would otherwise rewrite the peer of a loopback
    # connection from its X-Forwarded-For: the page decides who is local from the real
    # peer and believes the header only from [dashboard] trusted_proxies.
    os.environ[UVICORN_FORWARDED_ALLOW_IPS] = ""
    parent = parent_pid()
    if parent is not None:
        watch_parent(parent)
    if stop_on_eof() and sys.stdin is not None:
        watch_stdin()
    start_warmer()
    from streamlit.web import cli

    sys.argv = ["streamlit", "run", str(APP_PATH), *args]
    cli.main(prog_name="streamlit")


if __name__ == "__main__":
    main()
