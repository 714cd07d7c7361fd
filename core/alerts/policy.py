"""Which events need a person, and when to tell them: the policy in front of the alert
channels (the rest of :mod:`core.alerts` delivers).

The events come from the hub's one event stream (the toasts read the same events):

- ``heal_failed``, ``export_rejected``, ``export_overdue`` and ``server_gave_up`` are
  alerts at once; ``db_missing`` and ``db_unreadable`` only when the problem has lasted
  ``[alerts] problem_grace`` (an export that deletes before it writes is no news);
- a problem that clears (the events in :data:`CLEARED_BY`) gets a recovery message, if
  its alert was sent;
- alerts of one kind are sent at most once per ``min_interval``; the ones held back are
  counted, and the count goes with the next message, or with a summary once the interval
  is over and the problem is still there.

:class:`AlertPolicy` is plain and clocked from outside (tests drive it with a fake
clock); :func:`run_alerts` is the service that feeds it in the hub's task group.
"""

from __future__ import annotations

import asyncio
import logging
import math
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import anyio
from anyio.abc import TaskStatus

from core.alerts import Alert
from core.config import AlertsConfig
from core.eventlog import EventName, utcnow
from core.language import Language

log = logging.getLogger(__name__)

AT_ONCE = {EventName.HEAL_FAILED, EventName.EXPORT_REJECTED, EventName.EXPORT_OVERDUE,
           EventName.SERVER_GAVE_UP}
AFTER_GRACE = {EventName.DB_MISSING, EventName.DB_UNREADABLE}
_BACK = {EventName.SNAPSHOT_PUBLISHED, EventName.CHECK_OK, EventName.INDEXES_HEALED}
CLEARED_BY: dict[str, set[str]] = {
    EventName.HEAL_FAILED: {EventName.CHECK_OK, EventName.INDEXES_HEALED},
    EventName.EXPORT_REJECTED: {EventName.SNAPSHOT_PUBLISHED},
    EventName.EXPORT_OVERDUE: {EventName.EXPORT_RESUMED},
    EventName.SERVER_GAVE_UP: {EventName.SERVER_STARTED},
    EventName.DB_MISSING: {*_BACK, EventName.DB_SETTLED},
    EventName.DB_UNREADABLE: set(_BACK),
}


def describe(record: dict[str, Any]) -> str:
    """The detail of an event for a person (the hub's own words)."""
    name = record.get("event")
    if name == EventName.DB_MISSING:
        return f"database file not found: {record.get('path', '')}"
    if name == EventName.SERVER_GAVE_UP:
        return f"{record.get('server', 'server')}: {record.get('error') or 'gave up'}"
    for key in ("reason", "error", "message"):
        if record.get(key):
            return str(record[key])
    return str(name)


@dataclass(slots=True)
class _Kind:
    """What the policy knows about one kind of problem."""

    active: bool = False
    since: datetime | None = None  # when it started (for the grace period)
    message: str = ""
    alerted: bool = False  # a problem message went out and no recovery since
    last_sent: datetime | None = None
    suppressed: int = 0


# kind, recovered, message, suppressed, the last message's time (what "since" counts from)
MakeAlert = Callable[[str, bool, str, int, datetime | None], Alert]


class AlertPolicy:
    def __init__(self, cfg: AlertsConfig, submit: Callable[[Alert], None],
                 make: MakeAlert) -> None:
        self.cfg = cfg
        self.submit = submit
        self.make = make
        self._kinds: dict[str, _Kind] = {}

    def on_event(self, record: dict[str, Any], now: datetime) -> None:
        name = str(record.get("event", ""))
        for kind, clears in CLEARED_BY.items():
            if name in clears:
                self._clear(kind, now)
        if name in AT_ONCE or name in AFTER_GRACE:
            state = self._kinds.setdefault(name, _Kind())
            if not state.active:
                state.active, state.since = True, now
            state.message = describe(record)
            if name in AT_ONCE:
                self._problem(name, state, now)
        self.tick(now)

    def tick(self, now: datetime) -> datetime | None:
        """Send what is due at ``now`` (grace periods over, summaries of held-back alerts);
        returns when to call again (None: nothing pending)."""
        grace = timedelta(seconds=self.cfg.problem_grace)
        interval = timedelta(seconds=self.cfg.min_interval)
        due: list[datetime] = []
        for name, state in self._kinds.items():
            if not state.active:
                continue
            if name in AFTER_GRACE and not state.alerted and state.suppressed == 0:
                assert state.since is not None
                if now - state.since >= grace:
                    self._problem(name, state, now)
                else:
                    due.append(state.since + grace)
                    continue
            if state.suppressed and state.last_sent is not None:
                if now - state.last_sent >= interval:
                    self._send(name, state, recovered=False, now=now)
                else:
                    due.append(state.last_sent + interval)
        return min(due) if due else None

    def _problem(self, name: str, state: _Kind, now: datetime) -> None:
        interval = timedelta(seconds=self.cfg.min_interval)
        if state.last_sent is not None and now - state.last_sent < interval:
            state.suppressed += 1
            return
        self._send(name, state, recovered=False, now=now)

    def _clear(self, name: str, now: datetime) -> None:
        state = self._kinds.get(name)
        if state is None or not state.active:
            return
        state.active, state.since = False, None
        if state.alerted:
            self._send(name, state, recovered=True, now=now)
        state.suppressed = 0

    def _send(self, name: str, state: _Kind, *, recovered: bool, now: datetime) -> None:
        suppressed = 0 if recovered else state.suppressed
        alert = self.make(name, recovered, state.message, suppressed,
                          state.last_sent if suppressed else None)
        state.suppressed = 0
        state.alerted = not recovered
        state.last_sent = now
        log.info("alert %s%s: %s", name, " recovered" if recovered else "", state.message)
        self.submit(alert)


async def run_alerts(
    events: Any,
    submit: Callable[[Alert], None],
    cfg: AlertsConfig,
    *,
    db: str,
    state: Callable[[], str],
    language: Language,
    clock: Callable[[], datetime] = utcnow,
    task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Feed ``events`` (an :class:`~core.eventlog.EventLog`) to an :class:`AlertPolicy`
    until cancelled; events emitted in other threads are handed over to this loop."""
    host = socket.gethostname()

    def make(kind: str, recovered: bool, message: str, suppressed: int,
             since: datetime | None) -> Alert:
        return Alert(kind=kind, recovered=recovered, state=state(), message=message, db=db,
                     time=clock(), host=host, suppressed=suppressed, language=language,
                     suppressed_since=since)

    policy = AlertPolicy(cfg, submit, make)
    send, receive = anyio.create_memory_object_stream[dict[str, Any]](256)
    loop = asyncio.get_running_loop()
    loop_thread = threading.get_ident()

    def put(record: dict[str, Any]) -> None:
        try:
            send.send_nowait(record)
        except (anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError):
            log.warning("alerts: event %s dropped (the queue is full)", record.get("event"))

    def listener(record: dict[str, Any]) -> None:
        if threading.get_ident() == loop_thread:
            put(record)
        else:
            loop.call_soon_threadsafe(put, record)

    unsubscribe = events.subscribe(listener)
    task_status.started()
    try:
        async with receive:
            deadline: datetime | None = None
            while True:
                delay = math.inf if deadline is None else max(
                    0.0, (deadline - clock()).total_seconds())
                record = None
                with anyio.move_on_after(delay):
                    record = await receive.receive()
                if record is not None:
                    policy.on_event(record, clock())
                deadline = policy.tick(clock())
    finally:
        unsubscribe()
        send.close()
