"""How this process is asked to stop: one place for every entry point of the agent.

A stop request comes as a signal (SIGINT, SIGTERM, SIGHUP: Ctrl+C, ``kill``, logout or
the terminal closing), on Windows as a console control event (Ctrl-C, Ctrl-Break, the
console closing, logoff, shutdown) or a window message to the tray (``WM_CLOSE``,
``WM_ENDSESSION``), and for the service as the service manager's stop. Each becomes one
call ``request_stop(why)``; what that call does is the entry point's.

- :data:`STOP_SIGNALS` and :class:`StopRequests`: the first request stops gracefully, a
  second one ends the process at once (as uvicorn).
- :func:`stop_on_signals`: in an event loop (``pdh run --headless``), until cancelled.
- :class:`StopHandlers`: around a blocking main loop (the tray, ``pdh dashboard``): the
  signal handlers installed and restored, again once pystray's loop runs (its gtk backend
  resets SIGINT), and Windows' console handler.
- :class:`WindowStop`: the tray's windows on Windows (nothing elsewhere).
- :class:`HubShutdown`: a stop asked of a hub through its channel, asked again until the
  hub has taken it (a stop may come before the hub listens).

The Windows mechanisms themselves are :mod:`agent.windows.stop_events` (imported on
Windows only).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any, Protocol

import anyio

log = logging.getLogger(__name__)

EXIT_FORCED = 1  # a second stop request: the process ends without its cleanup

STOP_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)

RequestStop = Callable[[str], None]  # ``request_stop(why)``, from any thread


class StopRequests:
    """What a stop request does (as uvicorn): the first calls ``graceful``, a second one
    ends the process at once. Call from any thread."""

    def __init__(self, graceful: Callable[[], object],
                 force: Callable[[], None] = lambda: os._exit(EXIT_FORCED)) -> None:
        self._graceful = graceful
        self._force = force
        # next() of itertools.count is one C call: atomic across threads, no lock needed.
        self._requests = itertools.count(1)

    def __call__(self, why: str) -> None:
        if next(self._requests) == 1:
            log.info("received %s; shutting down (again to force it)", why)
            self._graceful()
        else:
            log.warning("received %s again; exiting now, without waiting for cleanup", why)
            for handler in logging.getLogger().handlers:
                handler.flush()
            self._force()


def _console_handler(request_stop: RequestStop, stopped: threading.Event | None
                     ) -> contextlib.AbstractContextManager[None]:
    """Windows: the console's control events call ``request_stop`` at once, on a system
    thread (a ``signal.signal`` handler would wait for the main thread to run Python:
    under the tray's message loop, seen 9 s late). Nothing elsewhere."""
    if sys.platform != "win32":
        return contextlib.nullcontext()
    from agent.windows.stop_events import console_stop_handler

    return console_stop_handler(request_stop, stopped)


async def stop_on_signals(graceful: Callable[[], object], stopped: threading.Event) -> None:
    """Until cancelled, stop requests to this process call :class:`StopRequests` of
    ``graceful`` on the running event loop: the signals through the loop, Windows' console
    events (asyncio cannot add signal handlers there) from their system thread. For close,
    logoff and shutdown the console handler waits for ``stopped``."""
    if sys.platform == "win32":
        loop = asyncio.get_running_loop()
        request_stop = StopRequests(lambda: loop.call_soon_threadsafe(graceful))
        with _console_handler(request_stop, stopped):
            await anyio.sleep_forever()
        return
    request_stop = StopRequests(graceful)
    with anyio.open_signal_receiver(*STOP_SIGNALS) as received:
        async for signum in received:
            request_stop(signal.Signals(signum).name)


class StopHandlers:
    """While inside, the stop signals and Windows' console events call ``request_stop``
    instead of ending the process; the previous handlers come back on the way out.

    Signal handlers can only be set on the main thread: elsewhere (a test running an entry
    point beside its own) only the console handler is set. ``stopped``: for close, logoff
    and shutdown the console handler waits up to 4.5 s for it, because Windows ends the
    process when the handler returns.
    """

    def __init__(self, request_stop: RequestStop,
                 stopped: threading.Event | None = None) -> None:
        self._request_stop = request_stop
        self._stopped = stopped
        self._previous: dict[signal.Signals, Any] = {}
        self._console: contextlib.AbstractContextManager[None] = contextlib.nullcontext()

    def _handler(self, signum: int, _frame: FrameType | None) -> None:
        self._request_stop(signal.Signals(signum).name)

    def __enter__(self) -> StopHandlers:
        if threading.current_thread() is threading.main_thread():
            self._previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
            self.reinstall()
        self._console = _console_handler(self._request_stop, self._stopped)
        self._console.__enter__()
        return self

    def reinstall(self) -> None:
        """Set the handlers again (main thread only; elsewhere nothing): pystray's gtk
        backend resets SIGINT to the default once its loop runs."""
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                signal.signal(signum, self._handler)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        try:
            self._console.__exit__(kind, error, traceback)
        finally:
            for signum, handler in self._previous.items():
                with contextlib.suppress(ValueError, TypeError):
                    signal.signal(signum, handler)
            self._previous = {}


class WindowStop:
    """Windows: ``WM_CLOSE`` (``taskkill`` without ``/F``), logoff and shutdown reach the
    tray's hidden windows, not a signal; :meth:`tray_ready` hooks them so that they call
    ``request_stop`` and, as the session ends, ``end_session`` (which may wait a little:
    Windows ends the process soon after it returns). Elsewhere nothing."""

    def __init__(self, request_stop: RequestStop, end_session: Callable[[], None]) -> None:
        self._hook: Any = None
        if sys.platform == "win32":
            from agent.windows.stop_events import WindowStopHook

            self._hook = WindowStopHook(request_stop, end_session)

    def tray_ready(self, icon: Any) -> None:
        """On the tray's thread, once its loop runs (the windows exist)."""
        if self._hook is not None:
            self._hook.install(getattr(icon, "_hwnd", None), getattr(icon, "_menu_hwnd", None))


class Shutdown(Protocol):
    def shutdown(self) -> bool: ...


class HubShutdown:
    """A stop asked of the hub behind ``channel`` (a :class:`~core.channel.Channel`), from
    any thread and without waiting. The channel refuses while the hub does not listen yet
    (it is starting); the request is kept, and :meth:`again` / :meth:`keep_asking` ask
    again until the hub has taken it."""

    def __init__(self, channel: Shutdown) -> None:
        self._channel = channel
        self.asked = threading.Event()
        self.taken = threading.Event()

    def __call__(self) -> None:
        self.asked.set()
        if self._channel.shutdown():
            self.taken.set()

    def again(self) -> None:
        """Ask (again) unless the hub has taken the request."""
        if not self.taken.is_set():
            self()

    def keep_asking(self, interval: float = 0.1) -> None:
        """Block until a stop is asked, then ask every ``interval`` seconds until the hub
        has taken it (a thread of its own)."""
        self.asked.wait()
        while not self.taken.is_set():
            self()
            if not self.taken.is_set():
                time.sleep(interval)
