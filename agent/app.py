"""Wiring of the agent: build the hub with its services and run it (headless here; the
tray runs it in a second thread through the same :func:`serve`)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence

import anyio

from agent.dashboard_service import install as install_dashboard
from core.channel import Channel
from core.config import Config
from core.hub import Hub
from core.logs import setup_logging
from core.state import ServerState, ServerStatus

log = logging.getLogger(__name__)

EXIT_FORCED = 1  # a second stop request: the process ends without its cleanup


class StopRequests:
    """What a stop signal does (as uvicorn): the first stops the hub gracefully, a second
    one ends the process at once. Call from any thread."""

    def __init__(self, graceful: Callable[[], None],
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

# ``install(hub)`` adds one service (a server, the demo exporter, the toasts) to a hub.
ServiceInstaller = Callable[[Hub], None]


def install_api(hub: Hub) -> None:
    """The data API in the hub's task group. Imported only when enabled: FastAPI and
    uvicorn are about a third of the agent's memory."""
    if not hub.config.api.enabled:
        hub.register_server("api", ServerStatus(state=ServerState.DISABLED))
        return
    from api.server import install

    install(hub)


# The servers every agent runs; a run adds its own (demo, toasts) to this list.
DEFAULT_INSTALLERS: tuple[ServiceInstaller, ...] = (install_api, install_dashboard)


def build_hub(config: Config, channel: Channel | None = None,
              installers: Sequence[ServiceInstaller] = DEFAULT_INSTALLERS) -> Hub:
    hub = Hub(config, channel=channel)
    for install in installers:
        install(hub)
    return hub


async def serve(config: Config, channel: Channel | None = None, *, handle_signals: bool,
                installers: Sequence[ServiceInstaller] = DEFAULT_INSTALLERS) -> None:
    """Run the hub until shutdown; with ``handle_signals``, SIGINT/SIGTERM stop it cleanly."""
    hub = build_hub(config, channel, installers)
    stopped = threading.Event()
    async with anyio.create_task_group() as tg:
        if handle_signals:
            tg.start_soon(_stop_on_signal, hub, stopped)
        try:
            await hub.run()
        finally:
            stopped.set()
        tg.cancel_scope.cancel()


async def _stop_on_signal(hub: Hub, stopped: threading.Event) -> None:
    if sys.platform == "win32":
        await _stop_on_console_event(hub, stopped)
        return
    signals = [signal.SIGINT, signal.SIGTERM]
    if hasattr(signal, "SIGHUP"):
        signals.append(signal.SIGHUP)  # logout / terminal closed
    request_stop = StopRequests(hub.shutdown)
    with anyio.open_signal_receiver(*signals) as received:
        async for signum in received:
            request_stop(signal.Signals(signum).name)


async def _stop_on_console_event(hub: Hub, stopped: threading.Event) -> None:
    """Windows: asyncio cannot add signal handlers there; console control events (Ctrl-C,
    Ctrl-Break, the console closing, logoff, shutdown) arrive on a system thread."""
    from agent.winsession import console_stop_handler

    loop = asyncio.get_running_loop()

    def stop_hub() -> None:
        loop.call_soon_threadsafe(hub.shutdown)

    request_stop = StopRequests(stop_hub)
    with console_stop_handler(request_stop, stopped):
        await anyio.sleep_forever()


def run_headless(config: Config) -> int:
    setup_logging(config.log_dir, config.log.level)
    log.info("Production Data Hub starting (headless) on %s", config.db_path)
    anyio.run(lambda: serve(config, handle_signals=True), backend="asyncio")
    return 0
