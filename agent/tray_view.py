"""The tray's presenter: a status snapshot in, what the icon shows out (colour, tooltip,
menu), as plain data. Pure functions, no threads and no pystray: agent.tray applies the
result to an icon, agent.attach does the same for a tray attached to a headless hub.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from enum import StrEnum
from urllib.parse import urlsplit

from agent.tray_texts import APP_TITLE, STATE_LABELS, Language, t
from core.channel import CommandKind
from core.eventlog import utcnow
from core.heal import STATISTICS
from core.state import HubState, ServerState, StatusSnapshot
from core.status_text import status_line

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
