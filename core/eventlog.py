"""The event log: important events only, one JSON object a line in ``events.jsonl``.

Every line has ``time`` (ISO-8601, UTC), ``event`` (an :class:`EventName`) and the
event's fields. Writers in any thread call :meth:`EventLog.emit`, which never touches
the disk itself (it is called on the hub's event loop): the lines go to a writer thread
that lives while there are lines to write, in order. :meth:`EventLog.flush` waits for
them. A failure to write (disk full, folder gone) is logged, never raised, because an
event log must not stop the hub from healing the database.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class EventName(StrEnum):
    DB_CHANGE_DETECTED = "db_change_detected"
    DB_SETTLED = "db_settled"
    DB_MISSING = "db_missing"
    DB_UNREADABLE = "db_unreadable"
    CHECK_OK = "check_ok"
    INDEXES_HEALED = "indexes_healed"
    HEAL_FAILED = "heal_failed"
    SNAPSHOT_PUBLISHED = "snapshot_published"
    EXPORT_REJECTED = "export_rejected"
    PUBLISH_FAILED = "publish_failed"
    EXPORT_OVERDUE = "export_overdue"
    EXPORT_RESUMED = "export_resumed"
    SERVER_STARTED = "server_started"
    SERVER_CRASHED = "server_crashed"
    SERVER_GAVE_UP = "server_gave_up"
    AUTO_MODE_CHANGED = "auto_mode_changed"


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """ISO-8601 in UTC with milliseconds and a Z, the one time format of the hub's files."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Event:
    """One important thing that happened, with a UTC time."""

    event: EventName
    fields: dict[str, Any] = field(default_factory=dict)
    time: datetime = field(default_factory=utcnow)

    def to_json(self) -> dict[str, Any]:
        return {"time": iso(self.time), "event": str(self.event), **self.fields}


class EventLog:
    """Appends events to ``path`` (created with its folder on first write); keeps the last few."""

    def __init__(self, path: Path | None, *, keep: int = 50) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._written = threading.Condition(self._lock)
        self._recent: deque[dict[str, Any]] = deque(maxlen=keep)
        self._listeners: list[Callable[[dict[str, Any]], None]] = []
        self._pending: list[str] = []
        self._writer: threading.Thread | None = None

    def subscribe(self, listener: Callable[[dict[str, Any]], None]) -> Callable[[], None]:
        """Call ``listener(record)`` after each event (in the emitting thread); returns the
        unsubscribe function. A failing listener is logged, never raised."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def emit(self, name: EventName, **fields: Any) -> Event:
        event = Event(EventName(name), fields)
        record = event.to_json()
        line = json.dumps(record, ensure_ascii=False, default=str)
        with self._lock:
            self._recent.append(record)
            if self.path is not None:
                self._pending.append(line)
                if self._writer is None:
                    self._writer = threading.Thread(
                        target=self._write_pending, name="pdh-eventlog"
                    )
                    self._writer.start()
        for listener in list(self._listeners):
            try:
                listener(record)
            except Exception:
                log.exception("event listener failed")
        return event

    def _write_pending(self) -> None:
        assert self.path is not None
        while True:
            with self._lock:
                lines, self._pending = self._pending, []
                if not lines:
                    self._writer = None
                    self._written.notify_all()
                    return
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as fh:
                    fh.write("".join(line + "\n" for line in lines))
            except OSError as exc:
                log.warning("cannot write event log %s: %s", self.path, exc)

    def flush(self, timeout: float | None = 5.0) -> bool:
        """Wait until every emitted event is in the file (blocking: not on the loop);
        False if that took longer than ``timeout``."""
        with self._lock:
            return self._written.wait_for(lambda: self._writer is None, timeout)

    def recent(self, n: int = 20) -> list[dict[str, Any]]:
        """The newest ``n`` events, newest last."""
        with self._lock:
            items = list(self._recent)
        return items[-n:]

    def preload(self, records: Iterable[dict[str, Any]]) -> None:
        """Seed the in-memory tail (e.g. from the persisted state after a restart)."""
        with self._lock:
            self._recent.extend(records)


def read_events(path: Path) -> list[dict[str, Any]]:
    """All events of a log file, skipping lines a crash left half-written."""
    out: list[dict[str, Any]] = []
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out
