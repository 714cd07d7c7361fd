"""The tray icon: a pure presenter (snapshot -> colour, tooltip, menu) and the controller
that applies it to a pystray icon on the tray's own thread.

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
from datetime import datetime, tzinfo
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from agent.tray_texts import APP_TITLE, STATE_LABELS, Language, t
from core.channel import Channel, Command, CommandKind
from core.config import Config
from core.eventlog import utcnow
from core.heal import STATISTICS
from core.messages import localize
from core.state import HubState, ServerState, StatusSnapshot

log = logging.getLogger(__name__)

TOOLTIP_MAX = 127  # Windows truncates a tray tip at 128 UTF-16 units


class Action(StrEnum):
    CHECK_NOW = "check_now"
    PUBLISH_ANYWAY = "publish_anyway"
    AUTO_MODE = "auto_mode"
    OPEN_DASHBOARD = "open_dashboard"
    OPEN_API_DOCS = "open_api_docs"
    DASHBOARD_RESTART = "dashboard_restart"
    DASHBOARD_STOP = "dashboard_stop"
    DASHBOARD_START = "dashboard_start"
    OPEN_LOGS = "open_logs"
    AUTOSTART = "autostart"
    QUIT = "quit"


SERVER_COMMANDS = {
    Action.DASHBOARD_RESTART: CommandKind.RESTART_SERVER,
    Action.DASHBOARD_STOP: CommandKind.STOP_SERVER,
    Action.DASHBOARD_START: CommandKind.START_SERVER,
}


@dataclass(frozen=True, slots=True)
class MenuEntry:
    """One menu line. ``action`` None with no children is a disabled label or separator."""

    text: str
    action: Action | None = None
    enabled: bool = True
    checked: bool | None = None  # None: not checkable
    default: bool = False
    children: tuple[MenuEntry, ...] = ()
    separator: bool = False


SEPARATOR = MenuEntry("", enabled=False, separator=True)


@dataclass(frozen=True, slots=True)
class TrayView:
    """What the tray shows for one snapshot."""

    state: HubState
    tooltip: str
    menu: tuple[MenuEntry, ...]
    auto_mode: bool = True
    dashboard_url: str | None = None
    api_docs_url: str | None = None


# presenter ---------------------------------------------------------------------------


def _when(moment: datetime | None, lang: Language, now: datetime, tz: tzinfo | None) -> str:
    if moment is None:
        return t(lang, "never")
    local, today = moment.astimezone(tz), now.astimezone(tz)
    if local.date() == today.date():
        return local.strftime("%H:%M")
    return local.strftime("%m-%d %H:%M")


def _running_url(snapshot: StatusSnapshot, name: str) -> str | None:
    server = snapshot.servers.get(name)
    if server is None or server.state is not ServerState.RUNNING or not server.url:
        return None
    return server.url


def docs_url(api_url: str) -> str:
    """The OpenAPI page of the API at ``api_url`` (served at /docs on the same origin)."""
    parts = urlsplit(api_url)
    return f"{parts.scheme}://{parts.netloc}/docs"


def tooltip_text(snapshot: StatusSnapshot | None, lang: Language, *,
                 now: datetime, tz: tzinfo | None = None) -> str:
    """State, data as of (the published snapshot), a held-back export, Last DB Update,
    Last Index Check with its result, Next Check."""
    title = APP_TITLE[lang]
    if snapshot is None:
        return f"{title}: {t(lang, 'starting')}"
    lines = [f"{title}: {STATE_LABELS[lang][snapshot.state]}"]
    published = snapshot.published
    lines.append(t(lang, "data_as_of", at=_when(published.as_of, lang, now, tz))
                 if published is not None else t(lang, "no_data"))
    if snapshot.held_back is not None:
        lines.append(t(lang, "held_back"))
    if snapshot.freshness.problem:
        lines.append(t(lang, snapshot.freshness.state))
    lines.append(t(lang, "last_update", at=_when(snapshot.last_db_update, lang, now, tz)))
    check = snapshot.last_check
    if check is None:
        lines.append(t(lang, "last_check", at=t(lang, "never"), result="-"))
    else:
        indexes = sum(1 for name in check.healed if name != STATISTICS)
        if check.result == "healed" and indexes:
            result = t(lang, "result_healed", n=indexes)
        elif check.result == "healed":
            result = t(lang, "result_stats")
        else:
            result = t(lang, f"result_{check.result}")
        lines.append(t(lang, "last_check", at=_when(check.at, lang, now, tz), result=result))
    if snapshot.next_check is not None:
        lines.append(t(lang, "next_check", at=_when(snapshot.next_check, lang, now, tz)))
    text = "\n".join(lines)
    return text if len(text) <= TOOLTIP_MAX else text[: TOOLTIP_MAX - 1] + "…"


def present(snapshot: StatusSnapshot | None, lang: Language, *, autostart_on: bool | None,
            now: datetime | None = None, tz: tzinfo | None = None) -> TrayView:
    """The tray's colour, tooltip and menu for ``snapshot`` (None: hub not started yet).

    ``autostart_on`` None means start-at-login is not available here (item disabled).
    """
    now = now or utcnow()
    if snapshot is None:
        state, status, auto_mode, ready = HubState.WORKING, t(lang, "starting"), True, False
        forceable = False
        dashboard_url = api_docs = None
        dashboard = None
    else:
        state, auto_mode, ready = snapshot.state, snapshot.auto_mode, True
        held = snapshot.held_back
        forceable = held is not None and held.forceable
        label = STATE_LABELS[lang][state]
        status = t(lang, "status", state=label)
        if snapshot.message:
            status += f": {localize(snapshot.message, lang)}"
        dashboard_url = _running_url(snapshot, "dashboard")
        api_url = _running_url(snapshot, "api")
        api_docs = docs_url(api_url) if api_url else None
        dashboard = snapshot.servers.get("dashboard")
    dash_state = dashboard.state if dashboard is not None else ServerState.DISABLED
    can_start = dash_state in (ServerState.STOPPED, ServerState.FAILED, ServerState.GAVE_UP)
    can_stop = dash_state in (ServerState.STARTING, ServerState.RUNNING, ServerState.RESTARTING)
    can_restart = dash_state in (ServerState.RUNNING, ServerState.FAILED, ServerState.GAVE_UP)
    server_menu = (
        MenuEntry(t(lang, "restart"), Action.DASHBOARD_RESTART, enabled=can_restart),
        MenuEntry(t(lang, "stop"), Action.DASHBOARD_STOP, enabled=can_stop),
        MenuEntry(t(lang, "start"), Action.DASHBOARD_START, enabled=can_start),
    )
    menu = (
        MenuEntry(status, enabled=False),
        SEPARATOR,
        MenuEntry(t(lang, "check_now"), Action.CHECK_NOW,
                  enabled=ready and state is not HubState.WORKING),
        MenuEntry(t(lang, "auto_mode"), Action.AUTO_MODE, enabled=ready, checked=auto_mode),
        MenuEntry(t(lang, "publish_anyway"), Action.PUBLISH_ANYWAY,
                  enabled=forceable and state is not HubState.WORKING),
        SEPARATOR,
        MenuEntry(t(lang, "open_dashboard"), Action.OPEN_DASHBOARD,
                  enabled=dashboard_url is not None, default=True),
        MenuEntry(t(lang, "open_api_docs"), Action.OPEN_API_DOCS, enabled=api_docs is not None),
        MenuEntry(t(lang, "dashboard_server"), enabled=dash_state is not ServerState.DISABLED,
                  children=server_menu),
        MenuEntry(t(lang, "open_logs"), Action.OPEN_LOGS),
        MenuEntry(t(lang, "autostart"), Action.AUTOSTART, enabled=autostart_on is not None,
                  checked=bool(autostart_on)),
        SEPARATOR,
        MenuEntry(t(lang, "quit"), Action.QUIT),
    )
    return TrayView(
        state=state,
        tooltip=tooltip_text(snapshot, lang, now=now, tz=tz),
        menu=menu,
        auto_mode=auto_mode,
        dashboard_url=dashboard_url,
        api_docs_url=api_docs,
    )


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

    def __init__(self, channel: Channel, config: Config, backend: TrayBackend, *,
                 language: Language, autostart: Autostart | None = None,
                 deps: TrayDeps | None = None, tz: tzinfo | None = None) -> None:
        from agent.icons import state_icon

        self._state_icon = state_icon
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
        self.view = present(None, language, autostart_on=self._autostart_on, tz=tz)
        self.icon = backend.create_icon(
            "pdh", state_icon(self.view.state), self.view.tooltip
        )
        self.icon.menu = backend.make_menu(self.view.menu, self.perform)
        self.dispatcher = backend.dispatcher(self.icon)
        self._unsubscribe = channel.subscribe(self._on_snapshot)
        self.applied = 0  # views applied (tests wait on it)

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
        view = present(snapshot, self.language, autostart_on=self._autostart_on, tz=self._tz)
        old, self.view = self.view, view
        if view.state != old.state:
            self.icon.icon = self._state_icon(view.state)
        if view.tooltip != old.tooltip:
            self.icon.title = view.tooltip
        if view.menu != old.menu:
            self.icon.menu = self.backend.make_menu(view.menu, self.perform)
        self.applied += 1

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
