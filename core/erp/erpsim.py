"""One ERP export, done the ways the ERP notes (shared/erp/README.md) says they reach the file.

For demos, tests and benchmarks of the hub: :func:`simulate_export` writes a fresh
``production_analysis.db`` at ``path`` by atomic replace, copy over in place, rebuild in
place through SQLite, delete-then-write, or a failed (truncated) export. It blocks for
about ``seconds`` so the hub can be watched while the write is under way; ``on_phase``
reports the moments tests synchronise on. With ``journal="wal"`` every mode writes a
WAL-mode file (the mode is persisted in the file's header), as some ERPs do.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Literal

from core.erp.demodb import build_demo_file, erp_schema_statements, write_erp_data

__all__ = [
    "ERP_TABLES",
    "ExportMode",
    "Journal",
    "simulate_export",
    "write_empty",
    "write_garbage",
    "write_missing_table",
]

ERP_TABLES = ("defect_records", "production_records", "lines", "items")  # drop order
_SIDECARS = ("-journal", "-wal", "-shm")
_CORRUPT_FRACTION = 0.4
_LOCK_WAIT = 5.0  # seconds the ERP waits for the hub's locks, as its own driver would

Phase = Callable[[str], None]
Journal = Literal["delete", "wal"]


class ExportMode(StrEnum):
    """How the ERP's export job gets the new data into the file."""

    REPLACE = "replace"  # write *.tmp beside it, rename over (new inode)
    COPY = "copy"  # truncate and rewrite in chunks (same inode, partial midway)
    REBUILD = "rebuild"  # DROP/CREATE/INSERT through SQLite (-journal or -wal come and go)
    DELETE = "delete"  # file missing for a while, then written anew
    CORRUPT = "corrupt"  # a failed export: a truncated file


def simulate_export(
    path: Path,
    mode: ExportMode,
    *,
    rows: int = 20_000,
    seconds: float = 2.0,
    seed: int | None = None,
    days: int = 90,
    chunks: int = 8,
    on_phase: Phase | None = None,
    transaction: Literal["one", "batches"] = "one",
    journal: Journal = "delete",
) -> None:
    """Run one export of ``rows`` production records into ``path``, taking about ``seconds``.

    The write happens in ``chunks`` steps (file chunks, or SQLite batches) with the time
    spread between them. ``seed=None`` draws a new seed so each export differs.
    ``transaction`` applies to rebuild: one long transaction, or one per batch.
    ``journal`` is the file's journal mode: "delete" (rollback journal) or "wal"; a WAL
    rebuild has ``-wal`` and ``-shm`` beside the file until the ERP closes its connection.
    Phases: "writing", "batch i/n" or "chunk i/n", "deleted", "renamed", "committed", "done".
    """
    path = Path(path)
    mode = ExportMode(mode)
    if chunks < 1 or seconds < 0:
        raise ValueError(f"need chunks >= 1 and seconds >= 0 (got {chunks}, {seconds})")
    if journal not in ("delete", "wal"):
        raise ValueError(f"journal must be 'delete' or 'wal' (got {journal!r})")
    if seed is None:
        # Differs per call, so a re-export really changes the content.
        seed = time.time_ns() ^ (os.getpid() << 20)
    phase: Phase = on_phase or (lambda _name: None)
    kwargs = {"rows": rows, "seed": seed, "days": days}
    if mode is ExportMode.REPLACE:
        _replace(path, seconds=seconds, chunks=chunks, phase=phase, journal=journal, **kwargs)
    elif mode is ExportMode.COPY:
        _copy(path, seconds=seconds, chunks=chunks, phase=phase, journal=journal, **kwargs)
    elif mode is ExportMode.REBUILD:
        one = transaction == "one"
        _rebuild(
            path, seconds=seconds, chunks=chunks, phase=phase, one=one, journal=journal, **kwargs
        )
    elif mode is ExportMode.DELETE:
        for p in (path, *_sidecars(path)):
            p.unlink(missing_ok=True)
        phase("deleted")
        time.sleep(seconds)
        _replace(path, seconds=0.0, chunks=1, phase=phase, journal=journal, **kwargs)
    else:
        _corrupt(path, phase=phase, journal=journal, **kwargs)
    phase("done")


def _sidecars(path: Path) -> list[Path]:
    return [path.with_name(path.name + s) for s in _SIDECARS]


def _batch_pacer(
    rows: int, chunks: int, seconds: float, phase: Phase
) -> tuple[int, Callable[[], None]]:
    """Batch size giving ``chunks`` batches, and a hook that reports and sleeps after each."""
    batch_rows = max(1, -(-rows // chunks))
    n_batches = max(1, -(-rows // batch_rows))
    done = 0

    def between_batches() -> None:
        nonlocal done
        done += 1
        phase(f"batch {done}/{n_batches}")
        time.sleep(seconds / n_batches)

    return batch_rows, between_batches


def _set_journal(conn: sqlite3.Connection, journal: Journal) -> None:
    """Set ``PRAGMA journal_mode``, retrying while the file is locked: the busy timeout does
    not cover the switch to WAL, which needs the file to itself for a moment."""
    deadline = time.monotonic() + _LOCK_WAIT
    while True:
        try:
            got = conn.execute(f"PRAGMA journal_mode={journal.upper()}").fetchone()[0]
            break
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    if got != journal:
        raise sqlite3.OperationalError(f"journal_mode={journal} refused (still {got})")


def _persist_journal(path: Path, journal: Journal) -> None:
    """Put a freshly built file in ``journal`` mode; the close checkpoints, so no -wal stays."""
    if journal == "delete":
        return  # build_demo_file already leaves a rollback-journal file
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        _set_journal(conn, journal)
    finally:
        conn.close()


def _replace(
    path: Path,
    *,
    rows: int,
    seed: int,
    days: int,
    seconds: float,
    chunks: int,
    phase: Phase,
    journal: Journal,
) -> None:
    tmp = path.with_name(path.name + ".tmp")
    batch_rows, pace = _batch_pacer(rows, chunks, seconds, phase)
    phase("writing")
    try:
        build_demo_file(
            tmp, rows=rows, seed=seed, days=days, batch_rows=batch_rows, between_batches=pace
        )
        _persist_journal(tmp, journal)
        os.replace(tmp, path)  # the only moment the file at `path` changes
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    phase("renamed")


def _build_private(rows: int, seed: int, days: int, journal: Journal) -> Path:
    """A complete export in the system temp dir (the ERP's side of a network copy)."""
    fd, name = tempfile.mkstemp(prefix="erpsim-", suffix=".db")
    os.close(fd)
    try:
        build_demo_file(Path(name), rows=rows, seed=seed, days=days)
        _persist_journal(Path(name), journal)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


def _copy(
    path: Path,
    *,
    rows: int,
    seed: int,
    days: int,
    seconds: float,
    chunks: int,
    phase: Phase,
    journal: Journal,
) -> None:
    src = _build_private(rows, seed, days, journal)
    try:
        size = src.stat().st_size
        chunk_size = -(-size // chunks)
        phase("writing")
        # r+b, not a new file: a copy tool keeps the inode, so inode watches see it too.
        with open(path, "r+b" if path.exists() else "wb") as out, open(src, "rb") as inp:
            out.truncate(0)
            for i in range(1, chunks + 1):
                out.write(inp.read(chunk_size))
                out.flush()  # make the partial file visible to the hub, as a share would
                phase(f"chunk {i}/{chunks}")
                if i < chunks:
                    time.sleep(seconds / max(1, chunks - 1))
            os.fsync(out.fileno())
    finally:
        src.unlink(missing_ok=True)


def _rebuild(
    path: Path,
    *,
    rows: int,
    seed: int,
    days: int,
    seconds: float,
    chunks: int,
    phase: Phase,
    one: bool,
    journal: Journal,
) -> None:
    batch_rows, pace = _batch_pacer(rows, chunks, seconds, phase)
    # Autocommit mode so the transactions are exactly the ones written here; the ERP
    # waits for the hub's locks. Closing the last connection checkpoints and removes -wal.
    conn = sqlite3.connect(path, timeout=_LOCK_WAIT, isolation_level=None)
    try:
        _set_journal(conn, journal)
        conn.execute("BEGIN IMMEDIATE")
        for table in ERP_TABLES:
            conn.execute(f"DROP TABLE IF EXISTS {table}")  # its indexes go with it
        _drop_statistics(conn)
        for statement in erp_schema_statements():
            conn.execute(statement)
        if not one:
            conn.commit()  # many short transactions: write_erp_data opens one per batch
        phase("writing")
        write_erp_data(
            conn, rows=rows, seed=seed, days=days, batch_rows=batch_rows, between_batches=pace
        )
        if conn.in_transaction:
            conn.commit()
        phase("committed")
    except BaseException:
        if conn.in_transaction:
            conn.rollback()
        raise
    finally:
        conn.close()


def _drop_statistics(conn: sqlite3.Connection) -> None:
    """Remove the planner statistics the hub's ANALYZE left, as a real re-export does."""
    names = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name LIKE 'sqlite_stat%'"
        )
    ]
    for name in names:
        try:
            conn.execute(f"DROP TABLE {name}")
        except sqlite3.OperationalError:  # older SQLite refuses to drop stat tables
            conn.execute(f"DELETE FROM {name}")


def _corrupt(
    path: Path, *, rows: int, seed: int, days: int, phase: Phase, journal: Journal
) -> None:
    """A failed export: only the first part of a valid file arrives, by atomic replace."""
    src = _build_private(rows, seed, days, journal)
    tmp = path.with_name(path.name + ".tmp")
    try:
        data = src.read_bytes()
        # Past the 100-byte header and page 1 (so it still looks like SQLite), never whole.
        cut = min(len(data) - 1, max(int(len(data) * _CORRUPT_FRACTION), 4096 + 512))
        phase("writing")
        tmp.write_bytes(data[:cut])
        os.replace(tmp, path)
        phase("renamed")
    finally:
        src.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)


def write_garbage(path: Path, size: int = 8192) -> None:
    """Write a file that is not SQLite at all (an export job that wrote a log instead)."""
    line = "ERP export failed: 연결이 끊어졌습니다 (connection reset)\n".encode()
    Path(path).write_bytes((line * (size // len(line) + 1))[:size])


def write_empty(path: Path) -> None:
    """Leave a zero-byte file at ``path`` (created, or truncated in place)."""
    with open(path, "wb"):
        pass


def write_missing_table(
    path: Path, table: str = "defect_records", *, rows: int = 2_000, seed: int = 1, days: int = 30
) -> None:
    """A valid export that lacks ``table`` (a schema change the hub must report)."""
    if table not in ERP_TABLES:
        raise ValueError(f"{table!r} is not an ERP table: {', '.join(ERP_TABLES)}")
    tmp = Path(path).with_name(Path(path).name + ".tmp")
    build_demo_file(tmp, rows=rows, seed=seed, days=days)
    conn = sqlite3.connect(tmp, isolation_level=None)
    try:
        conn.execute(f"DROP TABLE {table}")
    finally:
        conn.close()
    os.replace(tmp, path)
