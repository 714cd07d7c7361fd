"""Connections to published snapshots: pooled, ``immutable=1``, every read bounded in
time, SQLite's errors turned into :class:`DataUnavailable` (a 503)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

from core.errors import DbBusy, DbMissing, DbReadOnly, DbUnreadable
from core.queries.model import DataUnavailable, T
from core.sqlite import Mode, connect, error_code, hub_error, is_time_out, time_limit

# --- connections -----------------------------------------------------------------------


# Every read ends after this long (a progress handler): a runaway query must not hold a
# reader thread, nor a lock against the ERP's writes.
READ_TIME_LIMIT_S = 30.0


def _describe(exc: sqlite3.Error, path: Path) -> DataUnavailable:
    """The reader's 503 for ``exc``, chosen by SQLite's result code."""
    if is_time_out(exc):
        return DataUnavailable(
            f"reading {path.name} took longer than {READ_TIME_LIMIT_S:g} s; try a narrower "
            "filter", "busy")
    if error_code(exc) == sqlite3.SQLITE_ERROR and "no such" in str(exc):
        # A schema error has no code of its own: "no such table/column".
        return DataUnavailable(
            f"{path.name} does not have the ERP's tables ({exc}); a failed export?",
            "unreadable",
        )
    error = hub_error(exc, path, "reading it")
    if isinstance(error, DbBusy):
        return DataUnavailable(f"database {path.name} is locked by another program", "busy")
    if isinstance(error, DbMissing):
        return DataUnavailable(f"database file not found: {path}", "missing")
    if isinstance(error, DbUnreadable):
        return DataUnavailable(
            f"{path.name} is not a SQLite database or is damaged (a failed export?): {exc}",
            "unreadable")
    if isinstance(error, DbReadOnly):
        return DataUnavailable(f"cannot open database file {path}", "unreadable")
    return DataUnavailable(f"cannot read {path.name}: {exc}", "unreadable")


class _Readers:
    """Read-only connections to published snapshots, kept open and shared between calls.

    A snapshot never changes once published, so connections open it ``immutable=1`` (no
    locks, no change checks) and may stay open. A connection is used by one thread at a
    time; :meth:`retire` closes the idle ones of snapshots no longer served, so old
    files can be deleted (Windows cannot delete a file that is open).
    """

    MAX_IDLE = 16  # per snapshot: about the size of the thread pools that read

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: dict[Path, list[sqlite3.Connection]] = {}
        self._serving: set[Path] | None = None

    def acquire(self, path: Path) -> sqlite3.Connection:
        with self._lock:
            idle = self._idle.get(path)
            if idle:
                return idle.pop()
        if not path.exists():
            raise DataUnavailable(f"database file not found: {path}", "missing")
        try:
            return connect(path, Mode.IMMUTABLE, check_same_thread=False)
        except sqlite3.Error as exc:
            raise _describe(exc, path) from None

    def release(self, path: Path, conn: sqlite3.Connection) -> None:
        with self._lock:
            keep = self._serving is None or path in self._serving
            idle = self._idle.setdefault(path, [])
            if keep and len(idle) < self.MAX_IDLE:
                idle.append(conn)
                return
        conn.close()

    def retire(self, serving: set[Path]) -> None:
        """Close idle connections of every snapshot not in ``serving``."""
        with self._lock:
            self._serving = set(serving)
            gone = [p for p in self._idle if p not in self._serving]
            closing_now = [c for p in gone for c in self._idle.pop(p)]
        for conn in closing_now:
            conn.close()

    def forget(self, path: Path) -> None:
        """Close the idle connections to ``path`` (a file about to be renamed: Windows
        cannot rename a file that is open)."""
        with self._lock:
            conns = self._idle.pop(path, [])
        for conn in conns:
            conn.close()

    def close_all(self) -> None:
        with self._lock:
            conns = [c for idle in self._idle.values() for c in idle]
            self._idle.clear()
        for conn in conns:
            conn.close()


READERS = _Readers()


def _read(path: Path, fn: Callable[[sqlite3.Connection], T]) -> T:
    """Run ``fn`` on a pooled read-only connection to the snapshot at ``path``."""
    conn = READERS.acquire(path)
    try:
        with time_limit(conn, READ_TIME_LIMIT_S):
            result = fn(conn)
    except sqlite3.Error as exc:
        conn.close()
        raise _describe(exc, path) from None
    except BaseException:
        conn.close()
        raise
    READERS.release(path, conn)
    return result


