"""Windows' ways of asking a process to stop (imported on Windows only, by
:mod:`agent.stopping`, which every entry point uses).

Windows has no SIGTERM or SIGHUP. A console process is asked to stop by console control
events: Ctrl-C, Ctrl-Break (what a supervisor sends a child it started in a new process
group), the console window closing, logoff and shutdown. A windowed process (the tray,
started by ``pythonw``) is asked by window messages: ``WM_CLOSE`` (``taskkill`` without
``/F``) and ``WM_QUERYENDSESSION``/``WM_ENDSESSION`` (logoff, shutdown).

Both arrive outside the asyncio loop and outside Python's own signal machinery: console
events on a thread the system creates, window messages on the tray's message loop. That
is why Ctrl-C here does not wait for the next window message (as a ``signal.signal``
handler on the tray's main thread would), and why each callback must be thread-safe.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from ctypes import wintypes

log = logging.getLogger(__name__)

CONSOLE_EVENTS = {0: "CTRL_C_EVENT", 1: "CTRL_BREAK_EVENT", 2: "CTRL_CLOSE_EVENT",
                  5: "CTRL_LOGOFF_EVENT", 6: "CTRL_SHUTDOWN_EVENT"}
# After the handler returns from these, Windows ends the process: the handler waits for
# the clean stop first (Windows allows about 5 s).
_ENDING_EVENTS = {2, 5, 6}

WM_CLOSE = 0x0010
WM_QUERYENDSESSION = 0x0011
WM_ENDSESSION = 0x0016
GWLP_WNDPROC = -4

LRESULT = ctypes.c_ssize_t
_HandlerRoutine = ctypes.WINFUNCTYPE(wintypes.BOOL, wintypes.DWORD)
_WNDPROC = ctypes.WINFUNCTYPE(LRESULT, wintypes.HWND, wintypes.UINT, wintypes.WPARAM,
                              wintypes.LPARAM)

_kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
_kernel32.SetConsoleCtrlHandler.argtypes = (_HandlerRoutine, wintypes.BOOL)
_kernel32.SetConsoleCtrlHandler.restype = wintypes.BOOL
_user32 = ctypes.WinDLL("user32", use_last_error=True)
_user32.SetWindowLongPtrW.argtypes = (wintypes.HWND, ctypes.c_int, ctypes.c_void_p)
_user32.SetWindowLongPtrW.restype = ctypes.c_void_p
_user32.CallWindowProcW.argtypes = (ctypes.c_void_p, wintypes.HWND, wintypes.UINT,
                                    wintypes.WPARAM, wintypes.LPARAM)
_user32.CallWindowProcW.restype = LRESULT


@contextmanager
def console_stop_handler(request_stop: Callable[[str], None],
                         stopped: threading.Event | None = None,
                         grace: float = 4.5) -> Iterator[None]:
    """While inside, every console control event calls ``request_stop(event name)`` on
    the system's handler thread. For close, logoff and shutdown the handler then waits up
    to ``grace`` seconds for ``stopped``, because Windows ends the process when the
    handler returns."""

    def handler(event: int) -> bool:
        name = CONSOLE_EVENTS.get(event, f"console event {event}")
        try:
            request_stop(name)
        except Exception:
            log.exception("stop request for %s failed", name)
        if event in _ENDING_EVENTS and stopped is not None:
            stopped.wait(grace)
        return True  # handled: Python's own handler (KeyboardInterrupt) is not called

    routine = _HandlerRoutine(handler)  # kept alive by this frame until removed
    if not _kernel32.SetConsoleCtrlHandler(routine, True):
        log.warning("SetConsoleCtrlHandler failed (error %d); Ctrl-C may be slow",
                    ctypes.get_last_error())
    try:
        yield
    finally:
        _kernel32.SetConsoleCtrlHandler(routine, False)


class WindowStopHook:
    """Subclasses the tray's hidden windows so that ``WM_CLOSE`` asks the agent to stop
    (instead of destroying the menu's window, after which the menu never opens again) and
    logoff/shutdown stop it cleanly before Windows ends the process.

    ``install`` and the window procedure run on the tray's message-loop thread.
    """

    def __init__(self, request_stop: Callable[[str], None], end_session: Callable[[], None]):
        self._request_stop = request_stop
        self._end_session = end_session
        self._procs: dict[int, tuple[object, int]] = {}  # hwnd -> (our proc, the old one)

    def install(self, *hwnds: int | None) -> None:
        for hwnd in hwnds:
            if not hwnd or hwnd in self._procs:
                continue
            proc = _WNDPROC(self._wndproc)
            old = _user32.SetWindowLongPtrW(hwnd, GWLP_WNDPROC,
                                            ctypes.cast(proc, ctypes.c_void_p))
            if not old:
                log.warning("cannot hook the tray window (error %d); WM_CLOSE and logoff "
                            "will not stop the agent cleanly", ctypes.get_last_error())
                continue
            self._procs[hwnd] = (proc, old)

    def _wndproc(self, hwnd: int, msg: int, wparam: int, lparam: int) -> int:
        try:
            if msg == WM_CLOSE:
                self._request_stop("WM_CLOSE")
                return 0  # the window stays: the menu keeps working until the agent ends
            if msg == WM_QUERYENDSESSION:
                return 1  # yes, the session may end
            if msg == WM_ENDSESSION:
                if wparam:  # it ends: Windows may end us as soon as this returns
                    self._end_session()
                return 0
        except Exception:
            log.exception("tray window message %#x failed", msg)
            return 0
        _proc, old = self._procs[hwnd]
        return int(_user32.CallWindowProcW(old, hwnd, msg, wparam, lparam))
