"""The tray's presenter: a status snapshot in, what the icon shows out (colour, tooltip,
menu), as plain data. Pure functions, no threads and no pystray: agent.tray.controller
applies the result to an icon, agent.tray.attached does the same for a tray attached to a
headless hub.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from enum import StrEnum
from urllib.parse import urlsplit

from agent.tray.texts import Language, tr
from core.channel import CommandKind
from core.eventlog import utcnow
from core.heal import STATISTICS
from core.state import HubState, ServerState, StatusSnapshot
from core.status_text import status_line
from core.words import state_label

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
        return tr("never", lang)
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
    title = tr("title", lang)
    if snapshot is None:
        return f"{title}: {tr('starting', lang)}"
    lines = [f"{title}: {state_label(snapshot.state, lang)}"]
    published = snapshot.published
    lines.append(tr("data_as_of", lang, at=_when(published.as_of, lang, now, tz))
                 if published is not None else tr("no_data", lang))
    if snapshot.held_back is not None:
        lines.append(tr("held_back", lang))
    if snapshot.freshness.problem:
        lines.append(tr(snapshot.freshness.state, lang))
    lines.append(tr("last_update", lang, at=_when(snapshot.last_db_update, lang, now, tz)))
    check = snapshot.last_check
    if check is None:
        lines.append(tr("last_check", lang, at=tr("never", lang), result="-"))
    else:
        indexes = sum(1 for name in check.healed if name != STATISTICS)
        if check.result == "healed" and indexes:
            result = tr("result_healed", lang, n=indexes)
        elif check.result == "healed":
            result = tr("result_stats", lang)
        else:
            result = tr(f"result_{check.result}", lang)
        lines.append(tr("last_check", lang, at=_when(check.at, lang, now, tz), result=result))
    if snapshot.next_check is not None:
        lines.append(tr("next_check", lang, at=_when(snapshot.next_check, lang, now, tz)))
    text = "\n".join(lines)
    return text if len(text) <= TOOLTIP_MAX else text[: TOOLTIP_MAX - 1] + "…"


def present(snapshot: StatusSnapshot | None, lang: Language, *, autostart_on: bool | None,
            now: datetime | None = None, tz: tzinfo | None = None) -> TrayView:
    """The tray's colour, tooltip and menu for ``snapshot`` (None: hub not started yet).

    ``autostart_on`` None means start-at-login is not available here (item disabled).
    """
    now = now or utcnow()
    if snapshot is None:
        state, status, auto_mode, ready = HubState.WORKING, tr("starting", lang), True, False
        forceable = False
        dashboard_url = api_docs = None
        dashboard = None
    else:
        state, auto_mode, ready = snapshot.state, snapshot.auto_mode, True
        held = snapshot.held_back
        forceable = held is not None and held.forceable
        label = state_label(state, lang)
        status = tr("status", lang, state=label)
        status += f": {status_line(snapshot, lang)}"
        dashboard_url = _running_url(snapshot, "dashboard")
        api_url = _running_url(snapshot, "api")
        api_docs = docs_url(api_url) if api_url else None
        dashboard = snapshot.servers.get("dashboard")
    dash_state = dashboard.state if dashboard is not None else ServerState.DISABLED
    can_start = dash_state in (ServerState.STOPPED, ServerState.FAILED, ServerState.GAVE_UP)
    can_stop = dash_state in (ServerState.STARTING, ServerState.RUNNING, ServerState.RESTARTING)
    can_restart = dash_state in (ServerState.RUNNING, ServerState.FAILED, ServerState.GAVE_UP)
    server_menu = (
        MenuEntry(tr("restart", lang), Action.DASHBOARD_RESTART, enabled=can_restart),
        MenuEntry(tr("stop", lang), Action.DASHBOARD_STOP, enabled=can_stop),
        MenuEntry(tr("start", lang), Action.DASHBOARD_START, enabled=can_start),
    )
    menu = (
        MenuEntry(status, enabled=False),
        SEPARATOR,
        MenuEntry(tr("check_now", lang), Action.CHECK_NOW,
                  enabled=ready and state is not HubState.WORKING),
        MenuEntry(tr("auto_mode", lang), Action.AUTO_MODE, enabled=ready, checked=auto_mode),
        MenuEntry(tr("publish_anyway", lang), Action.PUBLISH_ANYWAY,
                  enabled=forceable and state is not HubState.WORKING),
        SEPARATOR,
        MenuEntry(tr("open_dashboard", lang), Action.OPEN_DASHBOARD,
                  enabled=dashboard_url is not None, default=True),
        MenuEntry(tr("open_api_docs", lang), Action.OPEN_API_DOCS, enabled=api_docs is not None),
        MenuEntry(tr("dashboard_server", lang), enabled=dash_state is not ServerState.DISABLED,
                  children=server_menu),
        MenuEntry(tr("open_logs", lang), Action.OPEN_LOGS),
        MenuEntry(tr("autostart", lang), Action.AUTOSTART, enabled=autostart_on is not None,
                  checked=bool(autostart_on)),
        SEPARATOR,
        MenuEntry(tr("quit", lang), Action.QUIT),
    )
    return TrayView(
        state=state,
        tooltip=tooltip_text(snapshot, lang, now=now, tz=tz),
        menu=menu,
        auto_mode=auto_mode,
        dashboard_url=dashboard_url,
        api_docs_url=api_docs,
    )
