"""The one place that talks to SQLite: opening connections, naming its errors, bounding
reads, and interrupting the work in hand when the hub stops.

- :func:`connect` opens a file read-only (``ro``: the ERP's file, to look or copy),
  read-write (``rw``: a heal; ``rwc``: a new copy), or ``immutable`` (a published
  snapshot, which never changes: no locks, no change checks). Never ``immutable`` on
  the ERP's file. URIs come from :func:`core.paths.sqlite_uri` (Windows UNC paths).
- :func:`hub_error` maps an ``sqlite3.Error`` to the hub's exception types by its
  result code, never by the wording of the message.
- :func:`time_limit` bounds a read with a progress handler (as Datasette does): a
  runaway query ends with SQLITE_INTERRUPT instead of holding a lock or a thread.
- SQLite's busy wait cannot be interrupted (``Connection.interrupt`` stops running
  statements, not the wait for a lock), so every wait for another program's lock on
  the ERP's file goes through :class:`LockWait`: the statement that takes the lock
  (``BEGIN IMMEDIATE``, the first read of a read transaction, ``COMMIT``) is tried
  with a busy timeout of one slice (:data:`LOCK_SLICE_S`) and tried again until the
  configured timeout has passed, checking between slices whether the hub is stopping.
  Connections to the ERP's file are opened with that one-slice busy timeout too, so
  no statement outside :class:`LockWait` waits longer than a slice.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from core.errors import DbBusy, DbMissing, DbReadOnly, DbUnreadable, HubError, Interrupted
from core.paths import sqlite_uri

log = logging.getLogger(__name__)

BUSY_CODES = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}
INTERRUPT_CODE = sqlite3.SQLITE_INTERRUPT
DAMAGED_CODES = {sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT}
READONLY_CODES = {sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM}
FULL_CODE = sqlite3.SQLITE_FULL
_PROGRESS_STEPS = 1000  # VM steps between two looks at the clock
LOCK_SLICE_S = 0.05  # one busy wait: the longest a stop waits for a lock wait to notice
_STILL_WAITING_S = 1.0  # a lock wait this long is logged (once): the hub is not stuck


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


@dataclass(frozen=True, slots=True)
class LockWait:
    """How work on ``path`` waits for another program's lock: up to ``timeout`` s for
    each statement that takes a lock, in slices of :data:`LOCK_SLICE_S`, calling
    ``stop()`` between slices (it raises, e.g. Interrupted, to end the wait)."""

    path: Path
    timeout: float
    stop: Callable[[], None] = NEVER.check

    def execute(self, conn: sqlite3.Connection, statement: str, what: str) -> sqlite3.Cursor:
        """Run ``statement`` (one that takes a lock) on ``conn``, ``what`` saying why for
        the log. Raises the last sqlite3 busy error when the lock is not released within
        ``timeout``; whatever ``stop()`` raises when it says so."""
        started = time.monotonic()
        deadline = started + self.timeout
        logged = False
        restore = int(conn.execute("PRAGMA busy_timeout").fetchone()[0])
        conn.execute(f"PRAGMA busy_timeout = {round(LOCK_SLICE_S * 1000)}")
        try:
            while True:
                try:
                    return conn.execute(statement)
                except sqlite3.OperationalError as exc:
                    now = time.monotonic()
                    if error_code(exc) not in BUSY_CODES or now >= deadline:
                        raise
                    if not logged and now - started >= _STILL_WAITING_S:
                        logged = True
                        log.info("%s is locked by another program; still waiting for it "
                                 "while %s (up to %g s)", self.path.name, what, self.timeout)
                self.stop()
        finally:
            conn.execute(f"PRAGMA busy_timeout = {restore}")

    def begin_immediate(self, conn: sqlite3.Connection, what: str) -> None:
        """``BEGIN IMMEDIATE``: wait for the write lock."""
        self.execute(conn, "BEGIN IMMEDIATE", what)

    def commit(self, conn: sqlite3.Connection, what: str) -> None:
        """``COMMIT``: wait for the readers to let go (a busy COMMIT can be tried again,
        its transaction stays open)."""
        self.execute(conn, "COMMIT", what)

    @contextmanager
    def reading(self, conn: sqlite3.Connection, what: str) -> Iterator[sqlite3.Connection]:
        """One read transaction whose lock (SHARED; a snapshot of a WAL file) is taken
        first, by :meth:`execute`: no read inside the block waits for a lock again, and
        no writer commits until it ends (rolled back: it wrote nothing)."""
        conn.execute("BEGIN")
        try:
            # The first read takes the lock (and would see a hot journal).
            self.execute(conn, "SELECT 1 FROM sqlite_master LIMIT 1", what).fetchall()
            yield conn
        finally:
            conn.rollback()


class Mode(StrEnum):
    """How :func:`connect` opens a file."""

    READ_ONLY = "ro"
    READ_WRITE = "rw"
    CREATE = "rwc"
    IMMUTABLE = "immutable"


def connect(path: Path, mode: Mode, *, busy_timeout: float = 5.0,
            check_same_thread: bool = True) -> sqlite3.Connection:
    """Open ``path`` (autocommit: transactions are begun explicitly). ``busy_timeout`` is
    how long a statement waits for another program's lock, in seconds."""
    if mode is Mode.IMMUTABLE:
        uri = sqlite_uri(path, mode="ro", immutable="1")
    else:
        uri = sqlite_uri(path, mode=str(mode))
    conn = sqlite3.connect(uri, uri=True, timeout=busy_timeout, isolation_level=None,
                           check_same_thread=check_same_thread)
    return conn


@contextmanager
def time_limit(conn: sqlite3.Connection, seconds: float | None) -> Iterator[None]:
    """Interrupt what ``conn`` runs inside this block once it has taken ``seconds``
    (None: no limit); the statement fails with SQLITE_INTERRUPT, see
    :func:`is_time_out`."""
    if seconds is None:
        yield
        return
    deadline = time.monotonic() + seconds

    def over_time() -> int:
        return 1 if time.monotonic() > deadline else 0

    conn.set_progress_handler(over_time, _PROGRESS_STEPS)
    try:
        yield
    finally:
        conn.set_progress_handler(None, _PROGRESS_STEPS)


def is_time_out(exc: BaseException) -> bool:
    """True for the error of a statement :func:`time_limit` ended."""
    return isinstance(exc, sqlite3.OperationalError) and error_code(exc) == INTERRUPT_CODE


def hub_error(exc: sqlite3.Error, path: Path, what: str) -> HubError | sqlite3.Error:
    """The hub's exception for ``exc``, raised while ``what`` (e.g. "healing it") on
    ``path``, chosen by SQLite's result code; ``exc`` itself when none fits."""
    code = error_code(exc)
    if code in BUSY_CODES:
        # Even reads wait while a writer holds the exclusive lock (e.g. its cache spilled).
        return DbBusy(f"{path.name} stayed locked by another program while {what}: {exc}")
    if code in DAMAGED_CODES:
        return DbUnreadable(f"{path.name} is damaged or not a database ({exc}) while {what}")
    if code == sqlite3.SQLITE_CANTOPEN and not path.exists():
        return DbMissing(f"database file not found: {path}")
    if code in READONLY_CODES:
        return DbReadOnly(
            f"cannot write {path.name} while {what}: {exc} "
            f"(the file and its folder must be writable for the journal)"
        )
    if code == INTERRUPT_CODE:
        return Interrupted(f"{what} on {path.name} was interrupted ({exc})")
    return exc
