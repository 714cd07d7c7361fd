"""Wiring of the agent: build the hub with the services it installs and run it (headless
in ``pdh run --headless`` and the Windows service; the tray runs it in a second thread
through the same :func:`serve`)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import anyio

from agent.services.api import install as install_api
from agent.services.dashboard import install as install_dashboard
from agent.stopping import stop_on_signals
from core.channel import Channel
from core.config import Config
from core.hub import Hub

# ``install(hub)`` adds one service (a server, the demo exporter, the toasts) to a hub.
ServiceInstaller = Callable[[Hub], None]

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
    """Run the hub until shutdown; with ``handle_signals``, a stop request (SIGINT,
    SIGTERM, SIGHUP; Windows' console events) stops it cleanly, a second one at once."""
    hub = build_hub(config, channel, installers)
    stopped = threading.Event()
    async with anyio.create_task_group() as tg:
        if handle_signals:
            tg.start_soon(stop_on_signals, hub.shutdown, stopped)
        try:
            await hub.run()
        finally:
            stopped.set()
        tg.cancel_scope.cancel()
