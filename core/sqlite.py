"""Talking to SQLite: interrupting the work in hand when the hub stops.

SQLite's busy wait (``busy_timeout``) cannot be interrupted (``Connection.interrupt``
stops running statements, not the wait for a lock), so a write lock is waited for here,
in short slices, checking between them whether the hub is stopping.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from core.errors import Interrupted

BUSY_CODES = {5, 6}  # SQLITE_BUSY, SQLITE_LOCKED
INTERRUPT_CODE = 9  # SQLITE_INTERRUPT
_SLICE_S = 0.05  # one busy wait; the longest a stop waits for a lock wait to notice


def error_code(exc: sqlite3.Error) -> int:
    """The primary SQLite result code of ``exc`` (0 if it has none)."""
    return int(getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF


class Interrupter:
    """Stops SQLite work in other threads: running statements (``Connection.interrupt``),
    lock waits and back-off sleeps all end with :class:`Interrupted`. Thread-safe."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._connections: set[sqlite3.Connection] = set()

    @property
    def interrupted(self) -> bool:
        return self._stop.is_set()

    def interrupt(self) -> None:
        """End the work in hand, and any started later (from any thread)."""
        self._stop.set()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            conn.interrupt()

    def check(self) -> None:
        if self._stop.is_set():
            raise Interrupted("the hub is stopping")

    def sleep(self, seconds: float) -> None:
        """``time.sleep`` that ends early, with Interrupted, when interrupted."""
        if self._stop.wait(seconds):
            raise Interrupted("the hub is stopping")

    @contextmanager
    def watching(self, conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        """Interrupt ``conn`` along with the rest; an interrupted statement on it raises
        Interrupted instead of sqlite3.OperationalError("interrupted")."""
        with self._lock:
            self._connections.add(conn)
        try:
            self.check()
            yield conn
        except sqlite3.OperationalError as exc:
            if error_code(exc) == INTERRUPT_CODE or self._stop.is_set():
                raise Interrupted("the hub is stopping; SQLite work interrupted") from exc
            raise
        finally:
            with self._lock:
                self._connections.discard(conn)


NEVER = Interrupter()  # for callers with nothing to stop them


def begin_immediate(conn: sqlite3.Connection, timeout: float, interrupter: Interrupter) -> None:
    """``BEGIN IMMEDIATE``, waiting up to ``timeout`` s for another program's write lock
    and ending with Interrupted as soon as ``interrupter`` says so. Raises the last
    sqlite3 busy error when the lock is not released in time."""
    deadline = time.monotonic() + timeout
    restore = int(conn.execute("PRAGMA busy_timeout").fetchone()[0])
    conn.execute(f"PRAGMA busy_timeout = {int(_SLICE_S * 1000)}")
    try:
        while True:
            interrupter.check()
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if error_code(exc) not in BUSY_CODES or time.monotonic() >= deadline:
                    raise
    finally:
        conn.execute(f"PRAGMA busy_timeout = {restore}")
