"""Make a snapshot of the ERP's file: copy it into the store, verify the copy, heal it and
add what makes the readers fast.

The copy is made from a short read-only connection as one committed state, never a
half-written one: a rollback-journal file byte for byte while that connection holds
SQLite's SHARED lock (no writer can commit meanwhile; as fast as ``cp``), a WAL-mode
file with SQLite's online backup. The copy then has to pass :func:`core.verify.verify`
before anyone may see it. What the snapshot gets beyond the ERP's file (the index spec when the
in-place heal did not add it, statistics, optional covering indexes) goes into the
snapshot only, never into the ERP's file.

Every function here blocks (sqlite3, file I/O): the hub calls them through
``anyio.to_thread``.
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import BinaryIO

from core.config import HealConfig, IndexSpec
from core.dbfile import DbLook, look
from core.errors import DbBusy, DbChanged, DbUnreadable, ExportRejected, StoreError
from core.heal import STATISTICS, IndexStatus, check_readable, inspect
from core.sqlite import (
    BUSY_CODES,
    DAMAGED_CODES,
    FULL_CODE,
    LOCK_SLICE_S,
    LockWait,
    Mode,
    connect,
    error_code,
)
from core.verify import check_damage, damage_first, verify

log = logging.getLogger(__name__)

# Covering indexes for the aggregate reads (summaries, KPIs, Pareto). Not built by
# default: on 1M rows they cost 3.2 s of every publish and 64 MB of every snapshot, and
# gave the cold filtered aggregates only 1.2-1.4x (15 against 21 ms) and the all-data
# ones nothing (docs/benchmarks.md, "Snapshots (issue 10)"); the index spec serves them.
SERVING_INDEXES: tuple[IndexSpec, ...] = (
    IndexSpec(
        name="pdh_serve_records",
        table="production_records",
        columns=["work_date", "line_code", "item_code", "shift", "plan_qty", "good_qty",
                 "defect_qty", "run_minutes", "downtime_minutes"],
    ),
    IndexSpec(
        name="pdh_serve_defects",
        table="defect_records",
        columns=["record_id", "defect_code", "qty", "defect_name"],
    ),
)

_COPY_BUFFER = 8 << 20
_BACKUP_PAGES = 2048  # pages per backup step (8 MB of 4 KB pages)


def _full(exc: BaseException) -> bool:
    if isinstance(exc, sqlite3.Error):
        return error_code(exc) == FULL_CODE
    return isinstance(exc, OSError) and exc.errno == errno.ENOSPC


def _same_file(fh_stat: os.stat_result, path: Path) -> bool:
    try:
        st = path.stat()
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == (fh_stat.st_dev, fh_stat.st_ino)


def _copy_bytes(src: BinaryIO, dst: BinaryIO, stop: Callable[[], None]) -> None:
    """Copy an open file to another (in the kernel where it can: sendfile on Linux), a
    slice at a time; ``stop()`` between slices may raise to end the copy."""
    if sys.platform.startswith("linux"):
        size = os.fstat(src.fileno()).st_size
        offset = 0
        while offset < size:
            stop()
            sent = os.sendfile(dst.fileno(), src.fileno(), offset,
                               min(_COPY_BUFFER, size - offset))
            if sent == 0:
                break
            offset += sent
        return
    while True:
        stop()
        chunk = src.read(_COPY_BUFFER)
        if not chunk:
            return
        dst.write(chunk)


def _keep_going() -> None:
    """The default ``stop``: never stops."""


def _file_copy(conn: sqlite3.Connection, source: Path, dest: Path, waits: LockWait) -> bool:
    """Copy a rollback-journal ``source`` byte for byte while ``conn`` holds SQLite's
    SHARED lock on it: no writer can change the file until the lock is released, so the
    bytes are one committed state (SQLite itself lets any number of readers read while a
    SHARED lock is held). False, with nothing copied, when that cannot be done here: a
    WAL-mode file (committed pages may be in the -wal, and a checkpoint may write the
    main file under a reader), or a file replaced since SQLite opened it. The SHARED
    lock is waited for through ``waits``."""
    with open(source, "rb") as fh:
        opened = os.fstat(fh.fileno())
        with waits.reading(conn, "copying it"):
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() == "wal" or not _same_file(opened, source):
                return False
            header = fh.read(100)
            if len(header) < 100 or header[18] != 1 or header[19] != 1:
                return False  # not a rollback-journal database file (WAL: 2)
            fh.seek(0)
            with open(dest, "xb") as out:
                _copy_bytes(fh, out, waits.stop)
            # Still the file SQLite has locked (a rename-over makes a new inode).
            return _same_file(opened, source)


def copy_database(source: Path, dest: Path, *, timeout: float,
                  stop: Callable[[], None] = _keep_going) -> str:
    """Copy ``source`` into the new file ``dest`` as one committed state. Returns how:
    ``"file"`` (a rollback-journal file, copied byte for byte under a SHARED lock; as
    fast as ``cp``) or ``"backup"`` (SQLite's backup API: WAL mode, or a file copy that
    could not be made). Raises ExportRejected for a damaged source, StoreError for a
    full or unwritable store, DbBusy when another program keeps ``source`` locked for
    ``timeout`` s; ``stop()``, called every few MB and between the slices of a lock
    wait, may raise (e.g. :class:`~core.errors.Interrupted` when the hub stops) to end
    the copy, and nothing of it is left."""
    dest.unlink(missing_ok=True)
    waits = LockWait(source, timeout, stop)
    try:
        src = connect(source, Mode.READ_ONLY, busy_timeout=LOCK_SLICE_S)
    except sqlite3.Error as exc:
        raise ExportRejected(f"{source.name} cannot be opened: {exc}") from None
    try:
        with closing(src):
            try:
                if _file_copy(src, source, dest, waits):
                    return "file"
            except OSError as exc:
                if _full(exc):
                    raise
                log.info("file copy of %s failed (%s); using the backup API", source.name, exc)
            dest.unlink(missing_ok=True)
            with closing(connect(dest, Mode.CREATE)) as dst:
                for pragma in _BUILD_PRAGMAS:
                    dst.execute(pragma)
                # In steps (so ``stop`` can end it) from one read transaction: every step
                # reads the same committed state, and a commit between steps does not
                # make the backup start again.
                with waits.reading(src, "copying it"):
                    src.backup(dst, pages=_BACKUP_PAGES, progress=lambda *_: stop())
            return "backup"
    except sqlite3.Error as exc:
        dest.unlink(missing_ok=True)
        if _full(exc):
            raise StoreError(f"the snapshot store {dest.parent.parent} ran out of disk space "
                             "while copying") from None
        if error_code(exc) in DAMAGED_CODES:
            raise ExportRejected(f"{source.name} is damaged or not a database ({exc})") from None
        if error_code(exc) in BUSY_CODES:
            raise DbBusy(f"{source.name} stayed locked by another program while it was "
                         f"copied ({timeout:g} s busy timeout)") from None
        if dest.parent.exists() and error_code(exc) == sqlite3.SQLITE_CANTOPEN:
            raise StoreError(f"cannot write a snapshot in {dest.parent}: {exc}") from None
        raise
    except OSError as exc:
        dest.unlink(missing_ok=True)
        if _full(exc):
            raise StoreError(f"the snapshot store {dest.parent.parent} ran out of disk space "
                             "while copying") from None
        raise StoreError(f"cannot write a snapshot in {dest.parent}: "
                         f"{exc.strerror or exc}") from None
    except BaseException:
        dest.unlink(missing_ok=True)
        raise


def newest_work_date(path: Path) -> date | None:
    """The newest production date in a copy (one index lookup)."""
    with closing(connect(path, Mode.READ_ONLY)) as conn:
        raw = conn.execute("SELECT MAX(work_date) FROM production_records").fetchone()[0]
    try:
        return date.fromisoformat(raw) if raw else None
    except (TypeError, ValueError):
        return None


# We own a copy until it is published, and a crash leaves it in incoming/, which is
# cleared at start: no journal, no syncs while building, one fsync at the end. (No bigger
# page cache or in-memory temp store: the hub process kept that memory, 58 -> 360 MB.)
_BUILD_PRAGMAS = ("PRAGMA journal_mode=OFF", "PRAGMA synchronous=OFF")


def _fsync(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


class _Flush(threading.Thread):
    """fsync a file in the background; :meth:`check` re-raises what it failed with."""

    def __init__(self, path: Path) -> None:
        super().__init__(name=f"fsync {path.name}", daemon=True)
        self.path = path
        self.error: OSError | None = None
        self.start()

    def run(self) -> None:
        try:
            _fsync(self.path)
        except OSError as exc:
            self.error = exc

    def check(self) -> None:
        if self.error is not None:
            raise self.error


def prepare(path: Path, cfg: HealConfig, *, serving_aids: bool = False, sync: bool = True
            ) -> list[str]:
    """Give the copy the index spec (and with ``serving_aids`` the covering indexes of
    :data:`SERVING_INDEXES`) and statistics for what was added; then fsync it, unless
    ``sync`` is False (the caller does). Returns what was added."""
    specs = list(cfg.indexes) + (list(SERVING_INDEXES) if serving_aids else [])
    added: list[str] = []
    with closing(connect(path, Mode.READ_WRITE)) as conn:
        # Readers open snapshots immutable: a rollback-journal file with no WAL to read.
        conn.execute("PRAGMA journal_mode=DELETE")
        for pragma in _BUILD_PRAGMAS:
            conn.execute(pragma)
        found = inspect(conn, specs)
        for finding in found.needing(IndexStatus.MISMATCHED, IndexStatus.MISSING):
            spec = finding.spec
            conn.execute(f'DROP INDEX IF EXISTS "{spec.name}"')
            conn.execute(spec.create_sql())
            added.append(spec.name)
        if not found.stats_fresh:
            conn.execute("ANALYZE")
            added.append(STATISTICS)
        else:  # statistics of the source are fresh: only the new indexes need theirs
            for name in added:
                conn.execute(f'ANALYZE "{name}"')
        if found.problems:
            log.info("snapshot %s: %s", path.name, "; ".join(found.problems))
    if sync:
        _fsync(path)
    return added


@dataclass(frozen=True, slots=True)
class Taken:
    """A byte-exact copy of one settled export, not checked yet."""

    path: Path
    source: DbLook  # the ERP's file as the copy left it (after our read connection closed)
    as_of: datetime
    seconds: float


def take_copy(
    source: Path,
    dest: Path,
    cfg: HealConfig,
    *,
    expected: DbLook,
    check_space: Callable[[int], None],
    as_of: datetime | None = None,
    stop: Callable[[], None] = _keep_going,
) -> Taken:
    """Copy the settled export ``expected`` of ``source`` to ``dest``.

    ``as_of`` is when the ERP wrote the export (default: the file's mtime; after an
    in-place heal that is the heal's time, so the hub passes the settled look's).
    Raises DbChanged if the file is not the settled one any more (settle again),
    ExportRejected, StoreError; DbMissing/DbUnreadable for a file that is gone or not
    whole.
    """
    started = time.perf_counter()
    try:
        before = check_readable(source)
    except DbUnreadable as exc:
        raise ExportRejected(str(exc)) from None
    if not before.same_content(expected):
        raise DbChanged(f"{source.name} changed since it settled")
    check_space(before.main.size)
    copy_database(source, dest, timeout=cfg.connect_timeout, stop=stop)
    after = look(source)
    if (after.main.dev, after.main.ino, after.main.size, after.change_counter) != (
        before.main.dev, before.main.ino, before.main.size, before.change_counter
    ):
        dest.unlink(missing_ok=True)
        raise DbChanged(f"{source.name} changed while it was copied")
    as_of = as_of or datetime.fromtimestamp(before.main.mtime_ns / 1e9, UTC)
    return Taken(dest, after, as_of, time.perf_counter() - started)


def ready_copy(path: Path, cfg: HealConfig, *, last_rows: int | None,
               min_row_ratio: float) -> int:
    """Check a copy's tables, columns and row count, then prepare it (not synced yet):
    afterwards the file is final and may be read ``immutable`` while
    :func:`finish_copy` runs. Returns the row count; ExportRejected (the copy is left
    for the store to hold), StoreError."""
    try:
        rows = verify(path, cfg.indexes, last_rows=last_rows, min_row_ratio=min_row_ratio,
                      thorough=False)
    except ExportRejected as exc:
        raise damage_first(path, exc) from None
    try:
        prepare(path, cfg, sync=False)
    except (sqlite3.Error, OSError) as exc:
        if _full(exc):
            path.unlink(missing_ok=True)
            raise StoreError(f"the snapshot store {path.parent.parent} ran out of disk space "
                             "while indexing the copy") from None
        if isinstance(exc, sqlite3.DatabaseError):
            check_damage(path)  # a damaged page found by the index build: say so
        path.unlink(missing_ok=True)
        raise
    return rows


def finish_copy(path: Path) -> None:
    """The last check and the sync of a ready copy, side by side: quick_check reads every
    page (CPU) while the copy's bytes go to the disk (I/O). ExportRejected if the copy
    is damaged; OSError if it cannot be synced."""
    flushing = _Flush(path)
    try:
        check_damage(path)
    finally:
        flushing.join()
    try:
        flushing.check()
    except OSError as exc:
        path.unlink(missing_ok=True)
        if _full(exc):
            raise StoreError(f"the snapshot store {path.parent.parent} ran out of disk space "
                             "while writing the copy") from None
        raise
