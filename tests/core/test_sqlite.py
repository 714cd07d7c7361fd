"""The one SQLite access layer: errors named by code, every read bounded in time, every
lock wait ended by a stop, and no other module of the engine opening SQLite by itself."""

from __future__ import annotations

import ast
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from core import queries as q
from core import snapshot
from core.errors import DbBusy, DbMissing, DbUnreadable, Interrupted
from core.queries import readers
from core.sqlite import (
    BUSY_CODES,
    LOCK_SLICE_S,
    Interrupter,
    LockWait,
    Mode,
    connect,
    error_code,
    hub_error,
)

ROOT = Path(__file__).resolve().parents[2]
# The ERP-side tools (core/erp) write the ERP's files as the ERP would: not the engine.
ERP_SIDE = ROOT / "core" / "erp"


def test_only_core_sqlite_opens_connections() -> None:
    offenders = []
    for source in sorted((ROOT / "core").rglob("*.py")):
        if source.name == "sqlite.py" or ERP_SIDE in source.parents:
            continue
        for node in ast.walk(ast.parse(source.read_text("utf-8"))):
            if (isinstance(node, ast.Attribute) and node.attr == "connect"
                    and isinstance(node.value, ast.Name) and node.value.id == "sqlite3"):
                offenders.append(f"{source.name}:{node.lineno}")
    assert offenders == []


def test_errors_are_named_by_code_not_by_wording(small_db: Path) -> None:
    """A table whose name says "busy" is a schema problem, not a lock."""
    with pytest.raises(q.DataUnavailable) as err:
        readers._read(small_db, lambda c: c.execute("SELECT * FROM busy_lines").fetchall())
    assert err.value.kind == "unreadable" and "busy_lines" in err.value.reason


def test_hub_errors_from_real_failures(tmp_path: Path, small_db: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not sqlite" * 500)
    with connect(garbage, Mode.READ_ONLY) as conn, pytest.raises(sqlite3.DatabaseError) as exc:
        conn.execute("SELECT * FROM sqlite_master").fetchall()
    assert isinstance(hub_error(exc.value, garbage, "reading it"), DbUnreadable)

    missing = tmp_path / "missing.db"
    with pytest.raises(sqlite3.OperationalError) as exc:
        connect(missing, Mode.READ_ONLY)
    assert isinstance(hub_error(exc.value, missing, "opening it"), DbMissing)

    erp = sqlite3.connect(small_db, isolation_level=None)
    erp.execute("BEGIN EXCLUSIVE")
    try:
        reader = connect(small_db, Mode.READ_ONLY, busy_timeout=0.05)
        with pytest.raises(sqlite3.OperationalError) as exc:
            reader.execute("SELECT count(*) FROM items").fetchone()
        reader.close()
    finally:
        erp.execute("ROLLBACK")
        erp.close()
    assert isinstance(hub_error(exc.value, small_db, "reading it"), DbBusy)


def test_a_runaway_read_is_stopped(small_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readers, "READ_TIME_LIMIT_S", 0.2)
    runaway = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
               "WHERE x < 50000000) SELECT count(*) FROM c")
    started = time.monotonic()
    with pytest.raises(q.DataUnavailable) as err:
        readers._read(small_db, lambda c: c.execute(runaway).fetchone())
    assert time.monotonic() - started < 2
    assert err.value.kind == "busy" and "longer than 0.2 s" in err.value.reason
    # The pooled connection still works for the next read.
    assert q.items(small_db)


def _read(waits: LockWait, conn: sqlite3.Connection) -> None:
    with waits.reading(conn, "reading it"):
        assert conn.execute("SELECT count(*) FROM items").fetchone()[0] > 0


def _write(waits: LockWait, conn: sqlite3.Connection) -> None:
    waits.begin_immediate(conn, "writing it")
    conn.execute("ROLLBACK")


# (what the other program holds, what we wait to do)
LOCK_WAITS: dict[str, tuple[str, Callable[[LockWait, sqlite3.Connection], None]]] = {
    "read under EXCLUSIVE": ("BEGIN EXCLUSIVE", _read),
    "write under IMMEDIATE": ("BEGIN IMMEDIATE", _write),
}


@pytest.mark.parametrize("case", sorted(LOCK_WAITS))
def test_a_lock_wait_ends_at_once_when_interrupted(small_db: Path, case: str) -> None:
    """Another program holds the lock, the wait could last 30 s: a stop from another
    thread ends it with Interrupted within a slice or two."""
    held, wait = LOCK_WAITS[case]
    interrupter = Interrupter()
    waiting = threading.Event()

    def stop() -> None:  # called between the slices of the wait: proof that it waits
        waiting.set()
        interrupter.check()

    waits = LockWait(small_db, 30.0, stop)
    outcome: list[BaseException | None] = []

    def run() -> None:
        with closing(connect(small_db, Mode.READ_WRITE, busy_timeout=LOCK_SLICE_S)) as conn:
            try:
                with interrupter.watching(conn):
                    wait(waits, conn)
                outcome.append(None)
            except BaseException as exc:
                outcome.append(exc)

    with closing(sqlite3.connect(small_db, isolation_level=None)) as other:
        other.execute(held)
        worker = threading.Thread(target=run)
        worker.start()
        try:
            assert waiting.wait(10), "the wait never began"
            started = time.monotonic()
            interrupter.interrupt()
            worker.join(10)
            took = time.monotonic() - started
        finally:
            other.execute("ROLLBACK")
            worker.join(60)
    assert len(outcome) == 1 and isinstance(outcome[0], Interrupted), outcome
    assert took < 0.5, f"the stop took {took:.2f} s"


@pytest.mark.parametrize("case", sorted(LOCK_WAITS))
def test_a_lock_wait_gives_up_with_the_busy_error_after_its_timeout(
    small_db: Path, case: str
) -> None:
    """Not interrupted, the wait goes on in slices for its whole timeout, then ends with
    SQLite's busy error, which names the file and the wait as DbBusy; the connection's
    own busy timeout is left as it was."""
    held, wait = LOCK_WAITS[case]
    slices: list[float] = []
    waits = LockWait(small_db, 0.5, lambda: slices.append(time.monotonic()))
    with closing(sqlite3.connect(small_db, isolation_level=None)) as other, \
            closing(connect(small_db, Mode.READ_WRITE, busy_timeout=2.0)) as conn:
        other.execute(held)
        started = time.monotonic()
        try:
            with pytest.raises(sqlite3.OperationalError) as err:
                wait(waits, conn)
        finally:
            took = time.monotonic() - started
            other.execute("ROLLBACK")
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 2000
        assert not conn.in_transaction
        wait(waits, conn)  # once the lock is free, at once
    assert error_code(err.value) in BUSY_CODES
    assert 0.5 <= took < 0.5 + 0.5, took
    assert len(slices) >= 0.5 / LOCK_SLICE_S / 2, slices  # in slices, not in one wait
    busy = hub_error(err.value, small_db, "reading it")
    assert isinstance(busy, DbBusy)
    assert str(busy).startswith(
        "production_analysis.db stayed locked by another program while reading it")


def test_a_long_lock_wait_is_logged_once(small_db: Path,
                                         caplog: pytest.LogCaptureFixture) -> None:
    waits = LockWait(small_db, 1.5)
    with closing(sqlite3.connect(small_db, isolation_level=None)) as other, \
            closing(connect(small_db, Mode.READ_ONLY, busy_timeout=LOCK_SLICE_S)) as conn:
        other.execute("BEGIN EXCLUSIVE")
        try:
            with caplog.at_level("INFO", logger="core.sqlite"), \
                    pytest.raises(sqlite3.OperationalError):
                _read(waits, conn)
        finally:
            other.execute("ROLLBACK")
    waiting = [r.getMessage() for r in caplog.records if "still waiting" in r.getMessage()]
    assert waiting == ["production_analysis.db is locked by another program; still waiting "
                       "for it while reading it (up to 1.5 s)"]


@pytest.mark.parametrize("journal", ["delete", "wal"])
def test_the_copy_of_the_erps_file_waits_for_its_lock_in_slices(
    tmp_path: Path, small_db: Path, journal: str
) -> None:
    """The snapshot copy reads the ERP's file: its wait for a writer's exclusive lock
    ends with DbBusy after the timeout, and at once when ``stop`` says so; no copy is
    left either way."""
    if journal == "wal":
        with closing(sqlite3.connect(small_db)) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
    dest = tmp_path / "copy.db"
    with closing(sqlite3.connect(small_db, isolation_level=None)) as erp:
        # WAL: a writer blocks no reader, but a connection in exclusive locking mode does.
        if journal == "wal":
            erp.execute("PRAGMA locking_mode=EXCLUSIVE")
        erp.execute("BEGIN EXCLUSIVE")
        try:
            started = time.monotonic()
            with pytest.raises(DbBusy, match=(
                    r"production_analysis.db stayed locked by another program while it was "
                    r"copied \(0.4 s busy timeout\)")):
                snapshot.copy_database(small_db, dest, timeout=0.4)
            assert 0.4 <= time.monotonic() - started < 1.0
            assert not dest.exists()

            calls: list[float] = []

            def stop() -> None:
                calls.append(time.monotonic())
                if len(calls) == 3:
                    raise Interrupted("the hub is stopping")

            with pytest.raises(Interrupted):
                snapshot.copy_database(small_db, dest, timeout=30.0, stop=stop)
            assert calls[-1] - calls[0] < 0.5
            assert not dest.exists()
        finally:
            erp.execute("ROLLBACK")
    assert snapshot.copy_database(small_db, dest, timeout=1.0) == (
        "backup" if journal == "wal" else "file")
