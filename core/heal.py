"""Heal the ERP's file: compare its indexes with the index spec, create what is missing,
refresh the planner statistics, and never heal into a file that changed meanwhile.

Every function here blocks (sqlite3): the hub calls them through ``anyio.to_thread``.
The connection is short-lived (opened for one check, closed after); the indexes are read
in one short read transaction and every write is its own short ``BEGIN IMMEDIATE``
transaction, so the ERP's own writes wait briefly at worst and never fail because of
the hub. Every wait for the ERP's lock goes through :class:`core.sqlite.LockWait`, in
slices, so a stop ends it at once.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Literal

from core.config import HealConfig, IndexSpec
from core.dbfile import DbLook, FileStat, look
from core.errors import DbBusy, DbChanged, DbMissing, DbUnreadable, HubError
from core.sqlite import (
    BUSY_CODES,
    LOCK_SLICE_S,
    NEVER,
    Interrupter,
    LockWait,
    Mode,
    connect,
    error_code,
    hub_error,
)

log = logging.getLogger(__name__)

STATISTICS = "statistics"


class IndexStatus(StrEnum):
    OK = "ok"
    MISSING = "missing"
    MISMATCHED = "mismatched"
    BLOCKED = "blocked"  # its table or a column is missing: nothing to build it on


@dataclass(frozen=True, slots=True)
class IndexFinding:
    spec: IndexSpec
    status: IndexStatus
    detail: str = ""


@dataclass(slots=True)
class Inspection:
    findings: list[IndexFinding]
    stats_fresh: bool

    @property
    def problems(self) -> list[str]:
        return [f.detail for f in self.findings if f.status is IndexStatus.BLOCKED]

    def needing(self, *statuses: IndexStatus) -> list[IndexFinding]:
        return [f for f in self.findings if f.status in statuses]


@dataclass(slots=True)
class HealReport:
    """What one check found and did."""

    inspection: Inspection
    created: list[str] = field(default_factory=list)
    rebuilt: list[str] = field(default_factory=list)
    analyzed: bool = False
    duration_s: float = 0.0
    after: DbLook | None = None
    dry_run: bool = False

    @property
    def healed(self) -> list[str]:
        return self.created + self.rebuilt + ([STATISTICS] if self.analyzed else [])

    @property
    def problems(self) -> list[str]:
        out = list(self.inspection.problems)
        if self.dry_run:
            out += [
                f.detail
                for f in self.inspection.needing(IndexStatus.MISSING, IndexStatus.MISMATCHED)
            ]
            if not self.inspection.stats_fresh:
                out.append("planner statistics (sqlite_stat1) are missing or stale")
        else:
            out += [f.detail for f in self.inspection.needing(IndexStatus.MISMATCHED)
                    if f.spec.name not in self.rebuilt]
        return out

    @property
    def result(self) -> Literal["ok", "healed", "failed"]:
        if self.problems:
            return "failed"
        return "healed" if self.healed else "ok"


def check_readable(path: Path) -> DbLook:
    """Raise DbMissing/DbUnreadable unless ``path`` looks like a whole SQLite file."""
    current = look(path)
    if not current.exists:
        raise DbMissing(f"database file not found: {path}")
    size = current.main.size
    if size == 0:
        raise DbUnreadable(f"{path.name} is empty (0 bytes): the export did not write it")
    if not current.header_valid:
        raise DbUnreadable(f"{path.name} is not an SQLite database (its header is wrong)")
    if current.truncated:
        raise DbUnreadable(
            f"{path.name} is truncated: its header promises {current.expected_size:,} bytes, "
            f"the file has {size:,}"
        )
    return current


def _table_columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')]


def _index_columns(conn: sqlite3.Connection, name: str) -> list[str | None]:
    # index_xinfo lists key columns (key=1) in order, then auxiliary ones; cid -2 is an
    # expression, which a spec of plain columns never matches.
    rows = conn.execute(f'PRAGMA index_xinfo("{name}")').fetchall()
    return [row[2] if row[1] >= 0 else None for row in rows if row[5] == 1]


def inspect(conn: sqlite3.Connection, specs: Sequence[IndexSpec]) -> Inspection:
    """Compare the file's indexes with the spec, using index_list and index_xinfo."""
    findings: list[IndexFinding] = []
    table_cols: dict[str, list[str]] = {}
    index_lists: dict[str, set[str]] = {}
    for spec in specs:
        if spec.table not in table_cols:
            table_cols[spec.table] = _table_columns(conn, spec.table)
            index_lists[spec.table] = {
                row[1] for row in conn.execute(f'PRAGMA index_list("{spec.table}")')
            }
        cols = table_cols[spec.table]
        if not cols:
            findings.append(IndexFinding(
                spec, IndexStatus.BLOCKED, f"index {spec.name}: table {spec.table} is missing"
            ))
            continue
        absent = [c for c in spec.columns if c not in cols]
        if absent:
            findings.append(IndexFinding(spec, IndexStatus.BLOCKED, (
                f"index {spec.name}: table {spec.table} has no column {', '.join(absent)}"
            )))
            continue
        if spec.name in index_lists[spec.table]:
            actual = _index_columns(conn, spec.name)
            if actual == list(spec.columns):
                findings.append(IndexFinding(spec, IndexStatus.OK))
            else:
                shown = ", ".join(c or "<expression>" for c in actual)
                findings.append(IndexFinding(spec, IndexStatus.MISMATCHED, (
                    f"index {spec.name} is on ({shown}), "
                    f"the spec wants ({', '.join(spec.columns)})"
                )))
            continue
        other = conn.execute(
            "SELECT tbl_name FROM sqlite_master WHERE type = 'index' AND name = ?", (spec.name,)
        ).fetchone()
        if other is not None:
            findings.append(IndexFinding(spec, IndexStatus.MISMATCHED, (
                f"index {spec.name} is on table {other[0]}, the spec wants {spec.table}"
            )))
        else:
            detail = f"index {spec.name} is missing"
            findings.append(IndexFinding(spec, IndexStatus.MISSING, detail))
    return Inspection(findings, _stats_fresh(conn, specs, findings))


def _stats_fresh(
    conn: sqlite3.Connection, specs: Sequence[IndexSpec], findings: list[IndexFinding]
) -> bool:
    """Statistics are fresh when sqlite_stat1 has a row for every index of the spec that
    exists on a non-empty table. No table is counted: an export drops the statistics with
    the indexes, and a file changed since its statistics were made is told by its header
    (see ``stats_version`` of :func:`heal`), so a check never scans the ERP's tables."""
    usable = [f.spec for f in findings if f.status is IndexStatus.OK]
    if not usable:
        return True
    has_stat = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'"
    ).fetchone()
    if not has_stat:
        return False
    for spec in usable:
        row = conn.execute(
            "SELECT stat FROM sqlite_stat1 WHERE tbl = ? AND idx = ?", (spec.table, spec.name)
        ).fetchone()
        rows_then = int(str(row[0]).split()[0]) if row is not None else 0
        if rows_then == 0 and _has_rows(conn, spec.table):
            return False
    return True


def _has_rows(conn: sqlite3.Connection, table: str) -> bool:
    return conn.execute(f'SELECT 1 FROM "{table}" LIMIT 1').fetchone() is not None


class _Healer:
    """One heal on one short-lived connection; raises DbChanged if the file moves under it."""

    def __init__(
        self, path: Path, cfg: HealConfig, expected: DbLook, sleep: Callable[[float], None],
        interrupter: Interrupter,
    ) -> None:
        self.path = path
        self.cfg = cfg
        self.expected = expected
        self.sleep = sleep
        self.interrupter = interrupter
        self.waits = LockWait(path, cfg.connect_timeout, interrupter.check)
        self.conn = connect(path, Mode.READ_WRITE, busy_timeout=LOCK_SLICE_S)
        self.data_version = 0  # set by read_indexes(), under its read lock
        # The inode our connection writes to; if the path stops naming it, every later
        # write would land in a file the ERP has already replaced.
        self.identity = (expected.main.dev, expected.main.ino)
        self.last_own = expected.main

    def read_indexes(self) -> Inspection:
        """The file's indexes, read under one read lock; notes the file's data_version
        there, which every later look compares with."""
        with self.waits.reading(self.conn, "reading its indexes"):
            self.data_version = self._data_version()
            if self.moved_on():
                raise DbChanged(f"{self.path.name} changed before the heal could start")
            return inspect(self.conn, self.cfg.indexes)

    def moved_on(self) -> bool:
        """True if the file at the path is no longer the one as we last left it."""
        now = FileStat.of(self.path)
        return (now.dev, now.ino) != self.identity or now != self.last_own

    def _data_version(self) -> int:
        return int(self.conn.execute("PRAGMA data_version").fetchone()[0])

    def _assert_unchanged(self) -> None:
        # data_version moves when another connection commits; the stat catches a rename
        # or a copy over the file, which SQLite cannot see.
        if self._data_version() != self.data_version:
            raise DbChanged(f"another program wrote to {self.path.name} during the heal")
        if self.moved_on():
            raise DbChanged(f"{self.path.name} was replaced or rewritten during the heal")

    @contextmanager
    def write(self, what: str) -> Iterator[sqlite3.Connection]:
        """One short write transaction, retried with doubling backoff while busy."""
        attempts = self.cfg.retries
        for attempt in range(1, attempts + 1):
            self.interrupter.check()  # no new write once the hub stops, lock free or not
            try:
                self.waits.begin_immediate(self.conn, what)
            except sqlite3.OperationalError as exc:
                if error_code(exc) in BUSY_CODES and attempt < attempts:
                    delay = self.cfg.retry_backoff * 2 ** (attempt - 1)
                    log.info("%s: database busy (%s); retry %d/%d in %.1f s",
                             what, exc, attempt, attempts - 1, delay)
                    self.sleep(delay)
                    continue
                if error_code(exc) in BUSY_CODES:
                    raise DbBusy(
                        f"{what}: {self.path.name} stayed locked by another program through "
                        f"{attempts} attempts ({self.cfg.connect_timeout:g} s busy timeout each)"
                    ) from None
                raise hub_error(exc, self.path, what) from exc
            try:
                self._assert_unchanged()
                yield self.conn
                self.waits.commit(self.conn, what)
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise
            now = FileStat.of(self.path)
            if (now.dev, now.ino) != self.identity:
                raise DbChanged(f"{self.path.name} was replaced during the heal")
            self.last_own = now
            return

    def final_look(self) -> DbLook:
        """The file as the heal leaves it, checked under a shared lock so no SQLite writer
        can commit between the check and the look."""
        with self.waits.reading(self.conn, "taking its last look after the heal"):
            self._assert_unchanged()
            return look(self.path)

    def close(self) -> None:
        self.conn.close()


def heal(
    path: Path,
    cfg: HealConfig,
    *,
    expected: DbLook | None = None,
    dry_run: bool = False,
    stats_version: str | None = None,
    sleep: Callable[[float], None] | None = None,
    interrupter: Interrupter = NEVER,
) -> HealReport:
    """Check ``path`` against ``cfg.indexes`` and (unless ``dry_run``) heal it.

    ``stats_version`` is the file's version when its statistics were last made or found
    fresh: a file whose version moved on since then gets them again (its rows may have
    changed); None trusts statistics that are there.

    ``expected`` is the settled look; if the file differs from it, or changes during the
    heal, DbChanged is raised and nothing more is written. Raises DbMissing,
    DbUnreadable, DbBusy, DbReadOnly; schema problems (a missing table or column) are
    reported in the result, not raised, and the indexes that can be built still are.
    """
    started = time.perf_counter()
    current = check_readable(path)
    if expected is not None and not current.same_content(expected):
        raise DbChanged(f"{path.name} changed since it settled")
    pause = sleep or interrupter.sleep
    healer, inspection = _open_and_inspect(path, cfg, expected or current, pause, interrupter)
    if stats_version is not None and current.version != stats_version:
        inspection.stats_fresh = inspection.stats_fresh and not inspection.needing(
            IndexStatus.OK)
    with closing(healer), interrupter.watching(healer.conn):
        try:
            report = _heal_with(healer, inspection, cfg, dry_run)
            healer.final_look()  # raises DbChanged if another program wrote meanwhile
        except DbChanged:
            raise
        except (sqlite3.Error, HubError) as exc:
            # An error because the file was renamed over or rewritten under us (SQLite
            # says "readonly database" for a moved file) is a change, not a failure.
            if healer.moved_on():
                raise DbChanged(f"{path.name} was replaced during the heal ({exc})") from exc
            if isinstance(exc, HubError):
                raise
            raise hub_error(exc, path, "healing it") from exc
    # Taken after our connection closed: closing checkpoints a WAL-mode file and removes
    # its -wal and -shm, and that is the file as we leave it, not a new export.
    report.after = look(path)
    report.duration_s = time.perf_counter() - started
    return report


def _open_and_inspect(
    path: Path, cfg: HealConfig, expected: DbLook, sleep: Callable[[float], None],
    interrupter: Interrupter,
) -> tuple[_Healer, Inspection]:
    """Open the file and read its indexes, retried with doubling backoff while a writer
    holds the exclusive lock (even reads wait for it)."""
    for attempt in range(1, cfg.retries + 1):
        healer: _Healer | None = None
        try:
            healer = _Healer(path, cfg, expected, sleep, interrupter)
            with interrupter.watching(healer.conn):
                return healer, healer.read_indexes()
        except sqlite3.Error as exc:
            if healer is not None:
                healer.close()
            if error_code(exc) not in BUSY_CODES or attempt == cfg.retries:
                raise hub_error(exc, path, "opening it") from exc
            delay = cfg.retry_backoff * 2 ** (attempt - 1)
            log.info("%s is locked by another program; retry %d/%d in %.1f s",
                     path.name, attempt, cfg.retries - 1, delay)
            sleep(delay)
        except BaseException:
            if healer is not None:
                healer.close()
            raise
    raise AssertionError("unreachable")  # pragma: no cover


def _heal_with(
    healer: _Healer, inspection: Inspection, cfg: HealConfig, dry_run: bool
) -> HealReport:
    report = HealReport(inspection, dry_run=dry_run)
    if dry_run:
        return report
    if cfg.repair_mismatched:
        for finding in inspection.needing(IndexStatus.MISMATCHED):
            spec = finding.spec
            log.warning("%s; rebuilding it", finding.detail)
            with healer.write(f"rebuilding index {spec.name}") as conn:
                conn.execute(f'DROP INDEX IF EXISTS "{spec.name}"')
                conn.execute(spec.create_sql())
            report.rebuilt.append(spec.name)
    for finding in inspection.needing(IndexStatus.MISSING):
        spec = finding.spec
        with healer.write(f"creating index {spec.name}") as conn:
            conn.execute(spec.create_sql())
        report.created.append(spec.name)
    if cfg.analyze and (report.created or report.rebuilt or not inspection.stats_fresh):
        tables = sorted({f.spec.table for f in inspection.findings
                         if f.status is not IndexStatus.BLOCKED})
        for table in tables:
            with healer.write(f"refreshing statistics of {table}") as conn:
                conn.execute(f'ANALYZE "{table}"')
        report.analyzed = bool(tables)
    return report
