"""Toasts on important events, rate-limited and coalesced: one per kind per window.

- :class:`ToastDeriver` turns the stream of hub snapshots into toasts: new events in
  ``recent_events`` (indexes healed, check failed, database missing or unreadable) and
  server transitions (the dashboard restarted after a crash, or gave up).
- :class:`Coalescer` lets the first toast of a kind through and holds the rest of the
  window back; when the window ends, one toast says how many more there were.
- :class:`ToastService` runs in the hub's task group (asyncio loop) and sends through
  desktop-notifier, falling back to the tray's own ``notify``.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskStatus

from agent.tray.texts import Language, tr
from core.config import Config
from core.eventlog import EventName
from core.heal import STATISTICS
from core.hub import Hub
from core.state import ServerState, StatusSnapshot

log = logging.getLogger(__name__)

DEFAULT_WINDOW_S = 60.0
WATCHED_SERVERS = ("dashboard",)


@dataclass(frozen=True, slots=True)
class Toast:
    kind: str  # healed | check_failed | unreadable | missing | restarted | gave_up
    title: str
    body: str


def index_count(healed: list[str]) -> int:
    """Indexes among a heal's ``healed`` names (which also list the statistics)."""
    return sum(1 for name in healed if name != STATISTICS)


def _event_key(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, default=str)


class ToastDeriver:
    """Snapshots in, toasts out. The first snapshot is the baseline: events from before
    the agent started (persisted ones) never toast."""

    def __init__(self, language: Language) -> None:
        self.language = language
        self._seen: set[str] | None = None
        self._servers: dict[str, tuple[ServerState, int]] = {}
        self._crashed: set[str] = set()

    def feed(self, snapshot: StatusSnapshot) -> list[Toast]:
        keys = [_event_key(r) for r in snapshot.recent_events]
        toasts: list[Toast] = []
        if self._seen is not None:
            for key, record in zip(keys, snapshot.recent_events, strict=True):
                if key not in self._seen:
                    toast = self._from_event(record)
                    if toast is not None:
                        toasts.append(toast)
        self._seen = set(keys)
        toasts.extend(self._from_servers(snapshot))
        return toasts

    def _toast(self, kind: str, body: str) -> Toast:
        return Toast(kind, tr("title", self.language), body)

    def _from_event(self, record: dict[str, Any]) -> Toast | None:
        lang, name = self.language, record.get("event")
        if name == EventName.INDEXES_HEALED:
            indexes = index_count(record.get("healed") or [])
            if indexes == 0:
                return None  # only the planner statistics were refreshed: no news
            seconds = float(record.get("duration_s") or 0.0)
            return self._toast("healed", tr("toast_healed", lang, n=indexes, s=seconds))
        if name == EventName.HEAL_FAILED:
            reason = record.get("error") or "?"
            return self._toast("check_failed", tr("toast_check_failed", lang, reason=reason))
        if name == EventName.EXPORT_REJECTED:
            reason = record.get("reason") or "?"
            key = "toast_rejected" if record.get("served", True) else "toast_rejected_none"
            return self._toast("rejected", tr(key, lang, reason=reason))
        if name == EventName.DB_UNREADABLE:
            reason = record.get("error") or "?"
            return self._toast("unreadable", tr("toast_unreadable", lang, reason=reason))
        if name == EventName.DB_MISSING:
            path = record.get("path") or ""
            body = tr("toast_missing", lang)
            if path:
                body += "\n" + tr("toast_missing_body", lang, path=path)
            return self._toast("missing", body)
        return None

    def _from_servers(self, snapshot: StatusSnapshot) -> list[Toast]:
        out: list[Toast] = []
        for name in WATCHED_SERVERS:
            server = snapshot.servers.get(name)
            if server is None:
                continue
            before = self._servers.get(name)
            self._servers[name] = (server.state, server.restarts)
            if before is None:
                continue
            state, _restarts = before
            # RESTARTING and FAILED come from crashes only; a restart asked for from the
            # menu also counts in ``restarts`` but is no news.
            if server.state in (ServerState.FAILED, ServerState.RESTARTING):
                self._crashed.add(name)
            if server.state is ServerState.GAVE_UP and state is not ServerState.GAVE_UP:
                self._crashed.discard(name)
                out.append(self._toast("gave_up", tr("toast_gave_up", self.language)))
            elif server.state is ServerState.RUNNING and name in self._crashed:
                self._crashed.discard(name)
                out.append(self._toast("restarted", tr("toast_restarted", self.language)))
            elif server.state in (ServerState.STOPPED, ServerState.DISABLED):
                self._crashed.discard(name)  # stopped on purpose: no "restarted" later
        return out


def _window_text(window_s: float, lang: Language) -> str:
    if window_s >= 60 and window_s % 60 == 0:
        minutes = int(window_s // 60)
        if lang == "ko":
            return f"{minutes}분"
        return "minute" if minutes == 1 else f"{minutes} minutes"
    return f"{window_s:g}초" if lang == "ko" else f"{window_s:g} s"


@dataclass
class _Held:
    latest: Toast
    count: int = 1


@dataclass
class Coalescer:
    """At most one toast per kind per ``window_s``; the extras become one summary toast
    sent when the window ends."""

    window_s: float = DEFAULT_WINDOW_S
    language: Language = "en"
    clock: Callable[[], float] = time.monotonic
    _sent_at: dict[str, float] = field(default_factory=dict)
    _held: dict[str, _Held] = field(default_factory=dict)

    def offer(self, toast: Toast) -> Toast | None:
        """The toast to send now, or None if it is held back."""
        now = self.clock()
        last = self._sent_at.get(toast.kind)
        if toast.kind not in self._held and (last is None or now - last >= self.window_s):
            self._sent_at[toast.kind] = now
            return toast
        held = self._held.get(toast.kind)
        if held is None:
            self._held[toast.kind] = _Held(toast)
        else:
            held.latest, held.count = toast, held.count + 1
        return None

    def due(self) -> list[Toast]:
        """Summaries whose window has ended."""
        now, out = self.clock(), []
        for kind, held in list(self._held.items()):
            if now - self._sent_at.get(kind, -math.inf) >= self.window_s:
                del self._held[kind]
                self._sent_at[kind] = now
                body = tr("toast_repeat", self.language, text=held.latest.body, n=held.count,
                         window=_window_text(self.window_s, self.language))
                out.append(Toast(kind, held.latest.title, body))
        return out

    def next_due_in(self) -> float | None:
        """Seconds until the next summary is due; None if nothing is held."""
        if not self._held:
            return None
        now = self.clock()
        return max(0.0, min(self._sent_at.get(k, -math.inf) + self.window_s - now
                            for k in self._held))


Fallback = Callable[[str, str], None]


class DesktopSender:
    """desktop-notifier on the hub's loop; a toast it cannot deliver goes to ``fallback``."""

    def __init__(self, app_name: str, *, icon_path: Path | None = None,
                 fallback: Fallback | None = None,
                 on_clicked: Callable[[], None] | None = None) -> None:
        self.app_name = app_name
        self.icon_path = icon_path
        self.fallback = fallback
        self.on_clicked = on_clicked
        self._notifier: Any = None
        self._broken = False
        self.sent: list[Toast] = []

    def _get(self) -> Any:
        if self._notifier is None and not self._broken:
            try:
                from desktop_notifier import DesktopNotifier, Icon

                icon = Icon(path=self.icon_path) if self.icon_path else None
                self._notifier = DesktopNotifier(app_name=self.app_name, app_icon=icon)
            except Exception as exc:  # no backend for this platform or session
                log.info("desktop notifications unavailable (%s); using the tray's", exc)
                self._broken = True
        return self._notifier

    async def send(self, toast: Toast) -> bool:
        """Send ``toast``; True if some path delivered it."""
        notifier = self._get()
        if notifier is not None:
            dispatched = anyio.Event()
            try:
                # desktop-notifier logs and swallows failures; on_dispatched tells us.
                await notifier.send(title=toast.title, message=toast.body,
                                    on_dispatched=dispatched.set, on_clicked=self.on_clicked)
            except Exception as exc:
                log.warning("toast failed: %s", exc)
            if dispatched.is_set():
                self.sent.append(toast)
                return True
        if self.fallback is not None:
            self.fallback(toast.title, toast.body)
            self.sent.append(toast)
            return True
        log.info("toast (nowhere to show it): %s", toast.body)
        return False

    async def aclose(self) -> None:
        bus = getattr(getattr(self._notifier, "_backend", None), "bus", None)
        if bus is not None:
            bus.disconnect()
            with anyio.move_on_after(2):
                await bus.wait_for_disconnect()


class ToastService:
    """The hub service that watches snapshots and sends toasts."""

    def __init__(self, sender: DesktopSender, *, language: Language,
                 window_s: float = DEFAULT_WINDOW_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.sender = sender
        self.deriver = ToastDeriver(language)
        self.coalescer = Coalescer(window_s, language, clock)
        self._ready: list[Toast] = []
        self._wake: anyio.Event | None = None

    def install(self, hub: Hub) -> None:
        hub.add_service(self.run)

    def _on_snapshot(self, snapshot: StatusSnapshot) -> None:
        """On the hub's loop (the hub publishes there): derive, rate-limit, wake the sender."""
        for toast in self.deriver.feed(snapshot):
            now = self.coalescer.offer(toast)
            if now is not None:
                self._ready.append(now)
            else:
                log.info("toast held back (one %s per %g s): %s", toast.kind,
                         self.coalescer.window_s, toast.body)
        if self._wake is not None:
            self._wake.set()

    async def run(self, hub: Hub, *,
                  task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        self._wake = anyio.Event()
        unsubscribe = hub.channel.subscribe(self._on_snapshot)
        task_status.started()
        try:
            while True:
                timeout = self.coalescer.next_due_in()
                with anyio.move_on_after(math.inf if timeout is None else timeout):
                    await self._wake.wait()
                self._wake = anyio.Event()
                ready, self._ready = self._ready + self.coalescer.due(), []
                for toast in ready:
                    log.info("toast: %s", toast.body.replace("\n", " "))
                    await self.sender.send(toast)
        finally:
            unsubscribe()
            with anyio.move_on_after(2, shield=True):
                await self.sender.aclose()


def install_toasts(hub: Hub, config: Config, *, language: Language,
                   fallback: Fallback | None = None, window_s: float = DEFAULT_WINDOW_S,
                   on_clicked: Callable[[], None] | None = None,
                   clock: Callable[[], float] = time.monotonic) -> ToastService | None:
    """Add the toast service to ``hub``; None (and no toasts) when ``ui.notifications`` is off."""
    if not config.ui.notifications:
        return None
    from agent.tray.icons import icon_file

    sender = DesktopSender(tr("title", language), icon_path=Path(icon_file(64)),
                           fallback=fallback, on_clicked=on_clicked)
    service = ToastService(sender, language=language, window_s=window_s, clock=clock)
    service.install(hub)
    return service
