"""Make a snapshot of the ERP's file: copy it into the store, verify the copy, heal it and
add what makes the readers fast.

The copy is made from a short read-only connection as one committed state, never a
half-written one: a rollback-journal file byte for byte while that connection holds
SQLite's SHARED lock (no writer can commit meanwhile; as fast as ``cp``), a WAL-mode
file with SQLite's online backup. The copy then has to pass :func:`verify` before
anyone may see it. What the snapshot gets beyond the ERP's file (the index spec when the
in-place heal did not add it, statistics, optional covering indexes) goes into the
snapshot only, never into the ERP's file.

Every function here blocks (sqlite3, file I/O): the hub calls them through
``anyio.to_thread``.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import BinaryIO

from core.config import HealConfig, IndexSpec
from core.dbfile import DbLook, look
from core.errors import DbBusy, DbChanged, DbUnreadable, ExportRejected, StoreError
from core.heal import STATISTICS, IndexStatus, check_readable, inspect
from core.queries import REQUIRED_COLUMNS
from core.sqlite import BUSY_CODES, DAMAGED_CODES, FULL_CODE, Mode, connect, error_code

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


@dataclass(frozen=True, slots=True)
class Copy:
    """A verified, prepared copy of one export, ready to publish."""

    path: Path
    source: DbLook  # the ERP's file as the copy left it (after our read connection closed)
    rows: int
    as_of: datetime
    seconds: float


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


def _copy_bytes(src: BinaryIO, dst: BinaryIO) -> None:
    """Copy an open file to another (in the kernel where it can: sendfile on Linux)."""
    if sys.platform.startswith("linux"):
        size = os.fstat(src.fileno()).st_size
        offset = 0
        while offset < size:
            sent = os.sendfile(dst.fileno(), src.fileno(), offset, size - offset)
            if sent == 0:
                break
            offset += sent
        return
    shutil.copyfileobj(src, dst, _COPY_BUFFER)


def _file_copy(conn: sqlite3.Connection, source: Path, dest: Path) -> bool:
    """Copy a rollback-journal ``source`` byte for byte while ``conn`` holds SQLite's
    SHARED lock on it: no writer can change the file until the lock is released, so the
    bytes are one committed state (SQLite itself lets any number of readers read while a
    SHARED lock is held). False, with nothing copied, when that cannot be done here: a
    WAL-mode file (committed pages may be in the -wal, and a checkpoint may write the
    main file under a reader), or a file replaced since SQLite opened it."""
    with open(source, "rb") as fh:
        opened = os.fstat(fh.fileno())
        conn.execute("BEGIN")
        try:
            # The first read takes the SHARED lock (and would see a hot journal).
            conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() == "wal" or not _same_file(opened, source):
                return False
            header = fh.read(100)
            if len(header) < 100 or header[18] != 1 or header[19] != 1:
                return False  # not a rollback-journal database file (WAL: 2)
            fh.seek(0)
            with open(dest, "xb") as out:
                _copy_bytes(fh, out)
            # Still the file SQLite has locked (a rename-over makes a new inode).
            return _same_file(opened, source)
        finally:
            conn.rollback()


def copy_database(source: Path, dest: Path, *, timeout: float) -> str:
    """Copy ``source`` into the new file ``dest`` as one committed state. Returns how:
    ``"file"`` (a rollback-journal file, copied byte for byte under a SHARED lock; as
    fast as ``cp``) or ``"backup"`` (SQLite's backup API, in one step: WAL mode, or a
    file copy that could not be made). Raises ExportRejected for a damaged source,
    StoreError for a full or unwritable store."""
    dest.unlink(missing_ok=True)
    try:
        src = connect(source, Mode.READ_ONLY, busy_timeout=timeout)
    except sqlite3.Error as exc:
        raise ExportRejected(f"{source.name} cannot be opened: {exc}") from None
    try:
        with closing(src):
            try:
                if _file_copy(src, source, dest):
                    return "file"
            except OSError as exc:
                if _full(exc):
                    raise
                log.info("file copy of %s failed (%s); using the backup API", source.name, exc)
            dest.unlink(missing_ok=True)
            with closing(connect(dest, Mode.CREATE)) as dst:
                for pragma in _BUILD_PRAGMAS:
                    dst.execute(pragma)
                src.backup(dst)
            return "backup"
    except sqlite3.Error as exc:
        dest.unlink(missing_ok=True)
        if _full(exc):
            raise StoreError(f"the snapshot store {dest.parent.parent} ran out of disk space "
                             "while copying; still serving the last good snapshot") from None
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
                             "while copying; still serving the last good snapshot") from None
        raise StoreError(f"cannot write a snapshot in {dest.parent}: "
                         f"{exc.strerror or exc}") from None


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')}


def verify(
    path: Path,
    specs: Sequence[IndexSpec],
    *,
    last_rows: int | None,
    min_row_ratio: float,
    required: Mapping[str, Sequence[str]] = REQUIRED_COLUMNS,
) -> int:
    """Check a copy before anyone sees it; the row count of production_records, or
    :class:`ExportRejected` with the exact reason."""
    try:
        with closing(connect(path, Mode.READ_ONLY)) as conn:
            problems = [row[0] for row in conn.execute("PRAGMA quick_check(5)")]
            if problems != ["ok"]:
                raise ExportRejected("the export is damaged: SQLite's quick_check says "
                                     + "; ".join(str(p) for p in problems))
            needed: dict[str, set[str]] = {t: set(c) for t, c in required.items()}
            extra: dict[str, set[str]] = {}
            for spec in specs:
                if spec.table not in needed:
                    extra.setdefault(spec.table, set()).update(spec.columns)
            for table, cols in sorted(needed.items()):
                have = _columns(conn, table)
                if not have:
                    raise ExportRejected(f"the export has no table {table}")
                absent = sorted(cols - have)
                if absent:
                    raise ExportRejected(
                        f"table {table} of the export has no column {', '.join(absent)}"
                    )
            rows = int(conn.execute("SELECT count(*) FROM production_records").fetchone()[0])
            for table, cols in sorted(extra.items()):
                have = _columns(conn, table)
                absent = sorted(cols - have)
                if not have or absent:
                    what = f"table {table}" + (f" (columns {', '.join(absent)})" if have else "")
                    raise ExportRejected(f"the export lacks {what}, which the index spec needs",
                                         forceable=True, rows=rows)
    except sqlite3.Error as exc:
        raise ExportRejected(f"the export cannot be read: {exc}") from None
    if last_rows and min_row_ratio > 0 and rows < last_rows * min_row_ratio:
        raise ExportRejected(
            f"the export has {rows:,} production records, {rows / last_rows:.0%} of the "
            f"{last_rows:,} last published (the minimum is {min_row_ratio:.0%}); "
            "publish it anyway if the drop is real",
            forceable=True, rows=rows,
        )
    return rows


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


def prepare(path: Path, cfg: HealConfig, *, serving_aids: bool = False) -> list[str]:
    """Give the copy the index spec (and with ``serving_aids`` the covering indexes of
    :data:`SERVING_INDEXES`) and statistics for what was added. Returns what was added."""
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
    _fsync(path)
    return added


def make_copy(
    source: Path,
    dest: Path,
    cfg: HealConfig,
    *,
    expected: DbLook,
    check_space: Callable[[int], None],
    last_rows: int | None,
    min_row_ratio: float,
    as_of: datetime | None = None,
) -> Copy:
    """Copy, verify and prepare one settled export of ``source`` at ``dest``.

    ``as_of`` is when the ERP wrote the export (default: the file's mtime; after an
    in-place heal that is the heal's time, so the hub passes the settled look's).
    Raises DbChanged if the file is not the settled one any more (settle again),
    ExportRejected (the copy is left at ``dest`` when there is one, for the store to
    hold), StoreError; DbMissing/DbUnreadable for a file that is gone or not whole.
    """
    started = time.perf_counter()
    try:
        before = check_readable(source)
    except DbUnreadable as exc:
        raise ExportRejected(str(exc)) from None
    if not before.same_content(expected):
        raise DbChanged(f"{source.name} changed since it settled")
    check_space(before.main.size)
    copy_database(source, dest, timeout=cfg.connect_timeout)
    after = look(source)
    if (after.main.dev, after.main.ino, after.main.size, after.change_counter) != (
        before.main.dev, before.main.ino, before.main.size, before.change_counter
    ):
        dest.unlink(missing_ok=True)
        raise DbChanged(f"{source.name} changed while it was copied")
    as_of = as_of or datetime.fromtimestamp(before.main.mtime_ns / 1e9, UTC)
    # The copy's bytes go to the disk (I/O) while verify reads them (CPU): verify only
    # reads, and prepare's own fsync at the end covers anything it writes.
    flushing = _Flush(dest)
    try:
        rows = verify(dest, cfg.indexes, last_rows=last_rows, min_row_ratio=min_row_ratio)
    finally:
        flushing.join()
    try:
        flushing.check()
        prepare(dest, cfg)
    except (sqlite3.Error, OSError) as exc:
        dest.unlink(missing_ok=True)
        if _full(exc):
            raise StoreError(f"the snapshot store {dest.parent.parent} ran out of disk space "
                             "while indexing the copy; still serving the last good "
                             "snapshot") from None
        raise
    return Copy(dest, after, rows, as_of, time.perf_counter() - started)
