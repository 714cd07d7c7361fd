"""The tray's controller: applies the presenter's view (agent.tray.view) to a pystray
icon on the tray's own thread and turns clicks into hub commands.

Threads: snapshots arrive on the hub's thread (``Channel.subscribe``); the controller
keeps only the latest and asks the tray thread, through a :class:`Dispatcher`, to apply
it. Menu callbacks run on the tray thread and never work or block: they post a command
through the channel, or hand slow things (opening a browser, writing a login item) to a
short-lived background thread.
"""

from __future__ import annotations

import logging
import threading
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from typing import Any, Protocol

from agent.tray.view import SERVER_COMMANDS, Action, MenuEntry, TrayView, present
from core.channel import Command, CommandKind
from core.config import Config
from core.state import StatusSnapshot
from core.words import Language

log = logging.getLogger(__name__)


# the tray thread ---------------------------------------------------------------------


class Dispatcher(Protocol):
    """Runs callables on the tray's thread, in order, without waiting for them."""

    def call_soon(self, fn: Callable[[], None]) -> None: ...

    def close(self) -> None: ...


class TrayIcon(Protocol):
    """The part of ``pystray.Icon`` the controller uses (a fake in unit tests)."""

    icon: Any
    title: str
    menu: Any
    visible: bool

    def run(self, setup: Callable[[Any], None] | None = None) -> None: ...

    def stop(self) -> None: ...

    def notify(self, message: str, title: str | None = None) -> None: ...


class TrayBackend(Protocol):
    """Creates the icon, its menus and its dispatcher."""

    name: str
    has_menu: bool
    has_notify: bool

    def create_icon(self, name: str, image: Any, title: str) -> TrayIcon: ...

    def make_menu(self, entries: tuple[MenuEntry, ...],
                  on_action: Callable[[Action], None]) -> Any: ...

    def dispatcher(self, icon: TrayIcon) -> Dispatcher: ...


class HubLink(Protocol):
    """What the tray needs of its hub: a :class:`~core.channel.Channel` to a hub in this
    process, or an :class:`agent.tray.attached.RemoteHub` to one behind its API."""

    def latest(self) -> tuple[int, StatusSnapshot | None]: ...

    def subscribe(self, listener: Callable[[StatusSnapshot], None]) -> Callable[[], None]: ...

    def check_now(self) -> bool: ...

    def set_auto_mode(self, on: bool) -> bool: ...

    def post(self, command: Command) -> bool: ...

    def shutdown(self) -> bool: ...


Presenter = Callable[..., TrayView]  # present()'s signature


class Autostart(Protocol):
    def is_enabled(self) -> bool: ...

    def enable(self) -> Any: ...

    def disable(self) -> Any: ...


def run_in_background(fn: Callable[[], Any], name: str = "pdh-tray-task") -> None:
    """Run a short, possibly blocking job (open a browser) off the tray thread."""

    def guarded() -> None:
        try:
            fn()
        except Exception:
            log.exception("tray action failed")

    threading.Thread(target=guarded, name=name, daemon=True).start()


def open_path(path: Path) -> None:
    """Open a folder in the OS file manager."""
    import os
    import subprocess
    import sys

    path.mkdir(parents=True, exist_ok=True)
    if sys.platform == "win32":
        os.startfile(path)  # type: ignore[attr-defined]  # noqa: S606
    else:
        opener = "open" if sys.platform == "darwin" else "xdg-open"
        subprocess.Popen([opener, str(path)], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)


@dataclass
class TrayDeps:
    """The edges of the tray's actions, replaceable in tests."""

    open_url: Callable[[str], Any] = webbrowser.open
    open_path: Callable[[Path], Any] = open_path
    background: Callable[[Callable[[], Any]], None] = field(default=run_in_background)


class Tray:
    """The controller: applies snapshots to the icon and turns clicks into commands."""

    def __init__(self, channel: HubLink, config: Config, backend: TrayBackend, *,
                 language: Language, autostart: Autostart | None = None,
                 deps: TrayDeps | None = None, tz: tzinfo | None = None,
                 presenter: Presenter = present) -> None:
        from agent.tray.icons import state_icon

        self._state_icon = state_icon
        self._present = presenter
        self.channel = channel
        self.config = config
        self.backend = backend
        self.language = language
        self.autostart = autostart
        self.deps = deps or TrayDeps()
        self.on_quit: Callable[[], object] = channel.shutdown  # Quit: stop the hub
        self._tz = tz
        self._lock = threading.Lock()
        self._latest: StatusSnapshot | None = None
        self._scheduled = False
        self._stop_requested = False
        self.on_ready: Callable[[], None] | None = None  # run on the tray thread once up
        self._autostart_on = self._read_autostart()
        self.view = presenter(None, language, autostart_on=self._autostart_on, tz=tz)
        self.icon = backend.create_icon(
            "pdh", state_icon(self.view.state), self.view.tooltip
        )
        self.icon.menu = backend.make_menu(self.view.menu, self.perform)
        self.dispatcher = backend.dispatcher(self.icon)
        self._unsubscribe = channel.subscribe(self._on_snapshot)

    # hub thread --------------------------------------------------------------------

    def _on_snapshot(self, snapshot: StatusSnapshot) -> None:
        with self._lock:
            self._latest = snapshot
            if self._scheduled:
                return  # latest wins: the pending apply will pick this one up
            self._scheduled = True
        self.dispatcher.call_soon(self._apply)

    # tray thread -------------------------------------------------------------------

    def _apply(self) -> None:
        with self._lock:
            snapshot, self._scheduled = self._latest, False
        view = self._present(snapshot, self.language, autostart_on=self._autostart_on,
                             tz=self._tz)
        old, self.view = self.view, view
        if view.state != old.state:
            self.icon.icon = self._state_icon(view.state)
        if view.tooltip != old.tooltip:
            self.icon.title = view.tooltip
        if view.menu != old.menu:
            self.icon.menu = self.backend.make_menu(view.menu, self.perform)

    def _setup(self, icon: Any) -> None:
        """Runs once the icon's loop is up (pystray calls it on a helper thread)."""
        if self._stop_requested:
            self.icon.stop()
            return
        self.icon.visible = True
        if self.on_ready is not None:
            self.dispatcher.call_soon(self.on_ready)
        with self._lock:
            if self._scheduled:
                return
            self._scheduled = True
        self.dispatcher.call_soon(self._apply)

    def run(self) -> None:
        """Show the icon and run its loop on this (the main) thread until :meth:`stop`."""
        _seq, latest = self.channel.latest()
        if latest is not None:
            self._on_snapshot(latest)
        self.icon.run(setup=self._setup)

    def stop(self) -> None:
        """Remove the icon and end :meth:`run`; safe from any thread, more than once."""
        self._unsubscribe()
        self._stop_requested = True
        self.dispatcher.call_soon(self.icon.stop)

    def close(self) -> None:
        """Release the dispatcher after :meth:`run` has returned."""
        self._unsubscribe()
        self.dispatcher.close()

    def notify(self, title: str, message: str) -> None:
        """A toast through the tray backend (the fallback when no notifier works)."""
        if not self.backend.has_notify:
            log.info("toast (no notifier): %s: %s", title, message)
            return
        self.dispatcher.call_soon(lambda: self.icon.notify(message, title))

    def perform(self, action: Action) -> None:
        """A menu click; runs on the tray thread and returns at once."""
        log.debug("tray action %s", action)
        if action is Action.CHECK_NOW:
            self.channel.check_now()
        elif action is Action.PUBLISH_ANYWAY:
            self.channel.post(Command(CommandKind.PUBLISH_ANYWAY))
        elif action is Action.AUTO_MODE:
            self.channel.set_auto_mode(not self.view.auto_mode)
        elif action is Action.OPEN_DASHBOARD:
            self._open(self.view.dashboard_url)
        elif action is Action.OPEN_API_DOCS:
            self._open(self.view.api_docs_url)
        elif action in SERVER_COMMANDS:
            self.channel.post(Command(SERVER_COMMANDS[action], "dashboard"))
        elif action is Action.OPEN_LOGS:
            folder = self.config.log_dir
            self.deps.background(lambda: self.deps.open_path(folder))
        elif action is Action.AUTOSTART:
            self.deps.background(self._toggle_autostart)
        elif action is Action.QUIT:
            self.quit()

    def quit(self) -> None:
        log.info("quit from the tray menu")
        self.on_quit()
        self.stop()

    def _open(self, url: str | None) -> None:
        if url is None:
            return
        self.deps.background(lambda: self.deps.open_url(url))

    # start at login ----------------------------------------------------------------

    def _read_autostart(self) -> bool | None:
        if self.autostart is None:
            return None
        try:
            return self.autostart.is_enabled()
        except OSError as exc:
            log.warning("cannot read the start-at-login setting: %s", exc)
            return None

    def _toggle_autostart(self) -> None:
        """Background thread: write or remove the login item, then refresh the menu."""
        if self.autostart is None:
            return
        try:
            if self.autostart.is_enabled():
                self.autostart.disable()
            else:
                self.autostart.enable()
        except OSError as exc:
            log.error("cannot change the start-at-login setting: %s", exc)
        self._autostart_on = self._read_autostart()
        with self._lock:
            if self._scheduled:
                return
            self._scheduled = True
        self.dispatcher.call_soon(self._apply)
