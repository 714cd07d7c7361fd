"""``pdh run``: one agent per configuration; the tray on the main thread and the core in
a second thread (an anyio blocking portal, asyncio backend), or the core alone
(headless: asked for, or no display/tray here).

Quit from the menu, SIGTERM, SIGINT or SIGHUP (logout) all end the same way: the hub
shuts down (its supervisor stops the children; it saves its state), the icon goes away,
and the process exits with no thread of ours left running.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
from anyio.from_thread import start_blocking_portal

from agent import hub_app
from agent.instance import AlreadyRunning, hub_info, hub_lock
from agent.stopping import HubShutdown, StopHandlers, StopRequests, WindowStop
from agent.tray.controller import Tray, TrayBackend
from agent.tray.texts import Language, resolve_language
from agent.tray.view import Action
from core.channel import Channel
from core.config import Config
from core.hub import Hub
from core.layout import adopt_legacy
from core.logs import setup_logging

log = logging.getLogger(__name__)

HEADLESS_NOTICE = "no display/tray available; running headless"


def tray_backend(env: dict[str, str] | None = None) -> tuple[TrayBackend | None, str]:
    """The pystray backend, or None and why (no display, or pystray will not load)."""
    env = dict(os.environ) if env is None else env
    if sys.platform not in ("win32", "darwin") and not (
        env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")
    ):
        return None, "no DISPLAY or WAYLAND_DISPLAY"
    try:
        from agent.tray.pystray_backend import PystrayBackend

        return PystrayBackend(), ""
    except Exception as exc:  # ImportError, Xlib display errors, Gtk init failure
        return None, f"pystray: {exc}"


def autostart_command_args(config: Config, config_source: Path | None,
                           db_override: Path | None) -> Path | None:
    """The ``--db`` a login item needs: the override, or the default-config path."""
    if db_override is not None:
        return db_override
    return config.db_path if config_source is None else None


def run_agent(config: Config, *, headless: bool, demo: bool, config_source: Path | None,
              db_override: Path | None = None) -> int:
    """Run the agent until Quit or a stop signal; the exit code of ``pdh run``.

    When the same configuration already runs headless (a service, ``--headless``), a
    ``pdh run`` with a tray attaches to it: a tray that drives that hub over its API
    (:mod:`agent.tray.attached`) instead of refusing with "already running"."""
    setup_logging(config.log_dir, config.log.level)
    backend: TrayBackend | None = None
    reason = "--headless"
    if not headless:
        backend, reason = tray_backend()
    lock = hub_lock(config)
    try:
        lock.acquire(hub_info(config, config_source,
                              mode="headless" if backend is None else "tray"))
    except AlreadyRunning as exc:
        return _attach_or_refuse(exc, config, backend, config_source=config_source,
                                 db_path=autostart_command_args(config, config_source,
                                                                db_override))
    with lock:
        adopt_legacy(config, config_source)
        installers: list[Callable[[Hub], Any]] = []
        if demo:
            from agent.services import demo as demo_service

            demo_service.prepare_demo_db(config)
            installers.append(demo_service.install)
        if backend is None and not headless:
            print(f"pdh: {HEADLESS_NOTICE}", file=sys.stderr, flush=True)
            log.info("%s (%s)", HEADLESS_NOTICE, reason)
        if backend is None:
            return _run_headless(config, installers)
        return _run_tray(config, backend, installers, config_source=config_source,
                         db_path=autostart_command_args(config, config_source, db_override),
                         demo=demo)


def _attach_or_refuse(exc: AlreadyRunning, config: Config, backend: TrayBackend | None, *,
                      config_source: Path | None, db_path: Path | None) -> int:
    """A hub for this database runs already: attach a tray to it when it has none, else
    refuse (exit 2, naming the running one)."""
    other = exc.info
    if backend is None or other is None or not other.headless:
        print(f"pdh: a hub is {exc}", file=sys.stderr)
        return 2
    if other.api_url is None:
        print(f"pdh: a hub is {exc}; its API is off ([api] enabled = "
              "false or port = 0), so a tray cannot attach to it", file=sys.stderr)
        return 2
    from agent.tray.attached import run_attached

    return run_attached(config, backend, other, config_source=config_source, db_path=db_path)


def _run_headless(config: Config, installers: list[Callable[[Hub], Any]]) -> int:
    log.info("Production Data Hub starting (headless) on %s", config.db_path)
    anyio.run(functools.partial(hub_app.serve, config, handle_signals=True,
                                installers=[*hub_app.DEFAULT_INSTALLERS, *installers]),
              backend="asyncio")
    return 0


def _run_tray(config: Config, backend: TrayBackend, installers: list[Callable[[Hub], Any]],
              *, config_source: Path | None, db_path: Path | None, demo: bool) -> int:
    from agent.autostart import launch_command, login_item
    from agent.services.toasts import install_toasts

    language: Language = resolve_language(config.ui.language)
    log.info("Production Data Hub starting (tray: %s, %s) on %s", backend.name, language,
             config.db_path)
    channel = Channel()
    command = launch_command(config_source, db_path=db_path, demo=demo)
    tray = Tray(channel, config, backend, language=language,
                autostart=login_item(command, log_dir=config.log_dir))

    def open_dashboard() -> None:  # a click on a toast
        tray.dispatcher.call_soon(lambda: tray.perform(Action.OPEN_DASHBOARD))

    def toasts(hub: Hub) -> None:
        install_toasts(hub, config, language=language, fallback=tray.notify,
                       on_clicked=open_dashboard)

    stop_hub = HubShutdown(channel)
    tray.on_quit = stop_hub
    hub_done = threading.Event()

    def stop_all() -> None:  # any thread
        stop_hub()
        tray.stop()

    def request_stop(why: str) -> None:
        log.info("received %s; shutting down", why)
        stop_all()

    def end_session() -> None:  # Windows logoff/shutdown, on the tray thread
        request_stop("WM_ENDSESSION")
        if not hub_done.wait(4.5):  # Windows ends the process soon after we return
            log.warning("the session ends before the hub finished stopping")

    # As headless: a second signal (or console event) forces the exit.
    signals = StopHandlers(StopRequests(stop_all), stopped=hub_done)
    windows = WindowStop(request_stop, end_session)

    def on_tray_ready() -> None:
        signals.reinstall()
        windows.tray_ready(tray.icon)

    tray.on_ready = on_tray_ready
    failed = False
    try:
        with signals, start_blocking_portal(backend="asyncio") as portal:
            future = portal.start_task_soon(functools.partial(
                hub_app.serve, config, channel, handle_signals=False,
                installers=[*hub_app.DEFAULT_INSTALLERS, *installers, toasts],
            ))
            def hub_ended(_future: Any) -> None:
                hub_done.set()
                tray.stop()

            future.add_done_callback(hub_ended)
            try:
                tray.run()
            finally:
                # Quit and the signals ask the hub to stop. Ask until the hub has taken
                # the request (the tray failed, or the hub was not listening yet), then
                # wait for it to finish: children stopped, state saved.
                while True:
                    stop_hub.again()
                    try:
                        future.result(timeout=0.5)
                        break
                    except TimeoutError:
                        continue
                    except Exception as exc:  # the hub's own failure, already logged
                        log.error("the hub stopped with an error: %r", exc)
                        failed = True
                        break
    finally:
        tray.close()
    log.info("agent stopped")
    return 1 if failed else 0
