"""Each simulated export reaches the file the way the ERP's does (see shared/erp/README.md).

Midway states are observed inside ``on_phase`` callbacks, which run at the exact moment
described, or from the test thread while the export thread is parked in a callback.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Literal

import pytest

from core.erp.demodb import create_demo_db
from core.erp.erpsim import (
    ExportMode,
    Journal,
    simulate_export,
    write_empty,
    write_garbage,
    write_missing_table,
)

ROWS = 2_000
FAST = {"rows": ROWS, "seconds": 0.2, "days": 20, "chunks": 4}
HUB_INDEXES = (
    "CREATE INDEX idx_records_work_date ON production_records(work_date)",
    "CREATE INDEX idx_records_item_date ON production_records(item_code, work_date)",
    "CREATE INDEX idx_records_line_date ON production_records(line_code, work_date)",
    "CREATE INDEX idx_records_lot_no ON production_records(lot_no)",
    "CREATE INDEX idx_defects_record_id ON defect_records(record_id)",
)
WAIT = 10.0  # seconds; generous, only reached when something is broken


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A previous export, as the hub finds it."""
    path = tmp_path / "production_analysis.db"
    create_demo_db(path, rows=1_000, days=10, seed=99, end_date=date(2026, 1, 31))
    return path


def query(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path, timeout=1)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def count(path: Path, table: str = "production_records") -> object:
    return query(path, f"SELECT count(*) FROM {table}")[0][0]


def records(path: Path) -> list[tuple[object, ...]]:
    return query(path, "SELECT * FROM production_records ORDER BY record_id")


def assert_complete_export(path: Path, rows: int = ROWS) -> None:
    assert query(path, "PRAGMA integrity_check") == [("ok",)]
    assert count(path) == rows
    assert count(path, "items") == 300


def secondary_indexes(path: Path) -> list[object]:
    return [
        r[0]
        for r in query(path, "SELECT name FROM sqlite_master WHERE type='index'")
        if not str(r[0]).startswith("sqlite_autoindex_")
    ]


class ParkedExport:
    """Runs an export in a thread that stops at one phase until the test releases it."""

    def __init__(self, target: Callable[[Callable[[str], None]], None], park_at: str) -> None:
        self.park_at = park_at
        self.parked = threading.Event()
        self.release = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(target,), daemon=True)

    def _on_phase(self, name: str) -> None:
        if name == self.park_at:
            self.parked.set()
            assert self.release.wait(WAIT), "test never released the export"

    def _run(self, target: Callable[[Callable[[str], None]], None]) -> None:
        try:
            target(self._on_phase)
        except BaseException as exc:  # reported by finish()
            self.error = exc

    def __enter__(self) -> ParkedExport:
        self._thread.start()
        assert self.parked.wait(WAIT), f"export never reached phase {self.park_at!r}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self._thread.join(WAIT)
        assert not self._thread.is_alive(), "export did not finish"
        if self.error is not None:
            raise self.error


def test_modes_are_the_readmes() -> None:
    assert [m.value for m in ExportMode] == ["replace", "copy", "rebuild", "delete", "corrupt"]
    assert ExportMode("copy") is ExportMode.COPY


def test_replace_renames_a_new_file_over_the_old(db_path: Path) -> None:
    old_inode, old_records = db_path.stat().st_ino, records(db_path)
    tmp = db_path.with_name(db_path.name + ".tmp")
    midway: dict[str, object] = {}
    phases: list[str] = []

    def on_phase(name: str) -> None:
        phases.append(name)
        if name == "batch 2/4":  # while the new file is being written beside the old one
            midway.update(tmp=tmp.exists(), inode=db_path.stat().st_ino, rows=records(db_path))

    simulate_export(db_path, ExportMode.REPLACE, seed=1, on_phase=on_phase, **FAST)

    assert midway == {"tmp": True, "inode": old_inode, "rows": old_records}
    batches = [f"batch {i}/4" for i in range(1, 5)]
    assert phases == ["writing", *batches, "renamed", "done"]
    assert db_path.stat().st_ino != old_inode
    assert not tmp.exists()
    assert_complete_export(db_path)
    assert records(db_path) != old_records


def test_copy_rewrites_in_place_and_is_partial_midway(db_path: Path) -> None:
    old_inode = db_path.stat().st_ino

    def export(on_phase: Callable[[str], None]) -> None:
        simulate_export(db_path, ExportMode.COPY, seed=2, on_phase=on_phase, **FAST)

    with ParkedExport(export, park_at="chunk 2/4"):
        mid_size = db_path.stat().st_size
        assert db_path.stat().st_ino == old_inode
        assert mid_size > 0
        with pytest.raises(sqlite3.DatabaseError):
            query(db_path, "SELECT count(*) FROM production_records")

    assert db_path.stat().st_ino == old_inode
    assert db_path.stat().st_size > mid_size
    assert_complete_export(db_path)
    assert not list(db_path.parent.glob("*.tmp"))


def test_copy_creates_the_file_when_missing(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    simulate_export(path, ExportMode.COPY, seed=3, **FAST)
    assert_complete_export(path)


def test_rebuild_holds_a_journal_and_drops_hub_indexes_and_stats(db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    for sql in HUB_INDEXES:
        conn.execute(sql)
    conn.execute("ANALYZE")
    conn.commit()
    conn.close()
    assert len(secondary_indexes(db_path)) == 5 and query(db_path, "SELECT * FROM sqlite_stat1")
    old_inode, old_count = db_path.stat().st_ino, count(db_path)
    journal = db_path.with_name(db_path.name + "-journal")
    midway: list[tuple[str, bool, object]] = []

    def on_phase(name: str) -> None:
        if name.startswith("batch"):
            # Readers still see the previous export until the one transaction commits.
            midway.append((name, journal.exists(), count(db_path)))

    simulate_export(db_path, ExportMode.REBUILD, seed=4, on_phase=on_phase, **FAST)

    assert [m[1:] for m in midway] == [(True, old_count)] * 4
    assert not journal.exists()
    assert db_path.stat().st_ino == old_inode
    assert secondary_indexes(db_path) == []
    assert query(db_path, "SELECT name FROM sqlite_master WHERE name LIKE 'sqlite_stat%'") == []
    assert query(db_path, "PRAGMA journal_mode") == [("delete",)]
    assert_complete_export(db_path)


def test_rebuild_in_short_transactions_commits_batch_by_batch(db_path: Path) -> None:
    journal = db_path.with_name(db_path.name + "-journal")
    midway: list[tuple[bool, object]] = []

    def on_phase(name: str) -> None:
        if name.startswith("batch"):
            midway.append((journal.exists(), count(db_path)))

    simulate_export(
        db_path, ExportMode.REBUILD, seed=5, on_phase=on_phase, transaction="batches", **FAST
    )
    assert midway == [(False, 500), (False, 1_000), (False, 1_500), (False, 2_000)]
    assert secondary_indexes(db_path) == []
    assert_complete_export(db_path)


def test_rebuild_waits_for_a_brief_hub_lock(db_path: Path) -> None:
    hub = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    hub.execute("BEGIN IMMEDIATE")  # the hub creating an index, briefly
    timer = threading.Timer(0.3, hub.rollback)
    timer.start()
    try:
        simulate_export(db_path, ExportMode.REBUILD, seed=6, **FAST)
    finally:
        timer.join(WAIT)
        hub.close()
    assert_complete_export(db_path)


def test_rebuild_creates_the_file_when_missing(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    simulate_export(path, ExportMode.REBUILD, seed=7, **FAST)
    assert_complete_export(path)


def test_delete_leaves_no_file_for_a_while(db_path: Path) -> None:
    old_records = records(db_path)
    db_path.with_name(db_path.name + "-journal").write_bytes(b"")
    seen: dict[str, list[str]] = {}

    def on_phase(name: str) -> None:
        if name == "deleted":
            seen["files"] = sorted(p.name for p in db_path.parent.iterdir())

    simulate_export(db_path, ExportMode.DELETE, seed=8, on_phase=on_phase, **FAST)
    assert seen["files"] == []
    # No inode check: the freed inode number is often handed straight to the new file.
    assert records(db_path) != old_records
    assert sorted(p.name for p in db_path.parent.iterdir()) == [db_path.name]
    assert_complete_export(db_path)


def test_delete_is_observable_from_another_thread(db_path: Path) -> None:
    def export(on_phase: Callable[[str], None]) -> None:
        simulate_export(db_path, ExportMode.DELETE, seed=9, on_phase=on_phase, **FAST)

    with ParkedExport(export, park_at="deleted"):
        assert not db_path.exists()
    assert_complete_export(db_path)


def test_corrupt_leaves_a_truncated_sqlite_file(db_path: Path) -> None:
    simulate_export(db_path, ExportMode.CORRUPT, seed=10, **FAST)
    data = db_path.read_bytes()
    assert data.startswith(b"SQLite format 3\x00") and len(data) > 100
    assert not db_path.with_name(db_path.name + ".tmp").exists()
    try:
        result = query(db_path, "PRAGMA integrity_check")
    except sqlite3.DatabaseError:
        return
    assert result != [("ok",)]


def test_explicit_seed_is_deterministic_and_none_differs(tmp_path: Path) -> None:
    a, b, c, d = (tmp_path / f"{n}.db" for n in "abcd")
    quick = {**FAST, "seconds": 0.0}
    simulate_export(a, ExportMode.REPLACE, seed=11, **quick)
    simulate_export(b, ExportMode.REPLACE, seed=11, **quick)
    simulate_export(c, ExportMode.REPLACE, **quick)
    simulate_export(d, ExportMode.REPLACE, **quick)
    assert records(a) == records(b)
    assert records(c) != records(d)


def test_garbage_and_empty_files(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    write_garbage(garbage)
    assert garbage.stat().st_size > 100
    assert not garbage.read_bytes().startswith(b"SQLite format 3")
    with pytest.raises(sqlite3.DatabaseError, match="not a database"):
        query(garbage, "SELECT count(*) FROM sqlite_master")

    empty = tmp_path / "empty.db"
    write_garbage(empty)
    inode = empty.stat().st_ino
    write_empty(empty)
    assert empty.stat().st_size == 0 and empty.stat().st_ino == inode
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        query(empty, "SELECT count(*) FROM production_records")


def test_missing_table(tmp_path: Path) -> None:
    path = tmp_path / "production_analysis.db"
    write_missing_table(path, "defect_records")
    tables = {r[0] for r in query(path, "SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"items", "lines", "production_records"}
    with pytest.raises(ValueError):
        write_missing_table(path, "sqlite_master")


# --- WAL-mode exports ------------------------------------------------------------------

SIDECARS = ("-journal", "-wal", "-shm")


def header_journal(path: Path) -> tuple[int, int]:
    """Bytes 18-19 of the header: (1, 1) rollback journal, (2, 2) WAL."""
    data = path.read_bytes()[18:20]
    return data[0], data[1]


def sidecars(path: Path) -> list[str]:
    return [s for s in SIDECARS if path.with_name(path.name + s).exists()]


def set_journal(path: Path, journal: Journal) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        assert conn.execute(f"PRAGMA journal_mode={journal}").fetchone() == (journal,)
    finally:
        conn.close()


@pytest.fixture
def private_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where copy and corrupt build their private export (the system temp dir, redirected)."""
    path = tmp_path / "private"
    path.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    return path


@pytest.mark.parametrize("journal", ["wal", "delete"])
@pytest.mark.parametrize("mode", ["replace", "copy", "delete", "rebuild"])
def test_export_writes_the_journal_mode_asked_for(
    db_path: Path, private_dir: Path, mode: str, journal: Journal
) -> None:
    # Start from the other mode, so the export itself must set the one asked for.
    set_journal(db_path, "delete" if journal == "wal" else "wal")
    simulate_export(db_path, ExportMode(mode), seed=20, journal=journal, **FAST)

    assert sidecars(db_path) == []  # checked before anything here opens the file
    assert list(private_dir.iterdir()) == []  # no -wal left beside the private copy either
    assert header_journal(db_path) == ((2, 2) if journal == "wal" else (1, 1))
    assert query(db_path, "PRAGMA journal_mode") == [(journal,)]
    assert_complete_export(db_path)
    assert sorted(p.name for p in db_path.parent.iterdir()) == sorted(
        [db_path.name, private_dir.name]
    )


@pytest.mark.parametrize("mode", ["replace", "copy", "delete", "rebuild"])
def test_wal_export_creates_the_file_when_missing(
    tmp_path: Path, private_dir: Path, mode: str
) -> None:
    path = tmp_path / "fresh.db"
    simulate_export(path, ExportMode(mode), seed=21, journal="wal", **FAST)
    assert sidecars(path) == []
    assert header_journal(path) == (2, 2)
    assert_complete_export(path)


@pytest.mark.parametrize(
    ("transaction", "expected"),
    [("one", [1_000] * 4), ("batches", [500, 1_000, 1_500, 2_000])],
)
def test_wal_rebuild_has_wal_sidecars_midway_and_none_after(
    db_path: Path, transaction: Literal["one", "batches"], expected: list[int]
) -> None:
    conn = sqlite3.connect(db_path)
    for sql in HUB_INDEXES:
        conn.execute(sql)
    conn.execute("ANALYZE")
    conn.commit()
    conn.close()
    old_inode = db_path.stat().st_ino
    midway: list[tuple[list[str], tuple[int, int], object]] = []

    def on_phase(name: str) -> None:
        if name.startswith("batch"):
            # A hub reader: WAL keeps its snapshot, so one transaction shows the old export.
            midway.append((sidecars(db_path), header_journal(db_path), count(db_path)))

    simulate_export(
        db_path, ExportMode.REBUILD, seed=22, on_phase=on_phase, journal="wal",
        transaction=transaction, **FAST,
    )  # fmt: skip

    assert midway == [(["-wal", "-shm"], (2, 2), n) for n in expected]
    assert sidecars(db_path) == []  # the ERP's close checkpointed and removed them
    assert db_path.stat().st_ino == old_inode
    assert header_journal(db_path) == (2, 2)
    assert secondary_indexes(db_path) == []
    assert query(db_path, "SELECT name FROM sqlite_master WHERE name LIKE 'sqlite_stat%'") == []
    assert_complete_export(db_path)


def test_wal_rebuild_waits_for_a_brief_hub_lock(db_path: Path) -> None:
    # Switching a rollback-journal file to WAL needs it to itself: SQLite's busy timeout
    # does not wait for that, the ERP must.
    hub = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    hub.execute("BEGIN IMMEDIATE")
    timer = threading.Timer(0.3, hub.rollback)
    timer.start()
    try:
        simulate_export(db_path, ExportMode.REBUILD, seed=23, journal="wal", **FAST)
    finally:
        timer.join(WAIT)
        hub.close()
    assert header_journal(db_path) == (2, 2)
    assert_complete_export(db_path)


def test_wal_rebuild_of_a_wal_file_again(db_path: Path) -> None:
    simulate_export(db_path, ExportMode.REBUILD, seed=24, journal="wal", **FAST)
    first = records(db_path)
    simulate_export(db_path, ExportMode.REBUILD, seed=25, journal="wal", **FAST)
    assert sidecars(db_path) == [] and header_journal(db_path) == (2, 2)
    assert records(db_path) != first
    assert_complete_export(db_path)


def test_wal_corrupt_is_a_truncated_wal_file(db_path: Path, private_dir: Path) -> None:
    simulate_export(db_path, ExportMode.CORRUPT, seed=26, journal="wal", **FAST)
    data = db_path.read_bytes()
    assert data.startswith(b"SQLite format 3\x00") and (data[18], data[19]) == (2, 2)
    assert not db_path.with_name(db_path.name + ".tmp").exists()
    assert list(private_dir.iterdir()) == []
    try:
        result = query(db_path, "PRAGMA integrity_check")
    except sqlite3.DatabaseError:
        return
    assert result != [("ok",)]


def test_unknown_journal_is_refused_before_touching_the_file(db_path: Path) -> None:
    before = db_path.read_bytes()
    with pytest.raises(ValueError, match="journal"):
        simulate_export(db_path, ExportMode.DELETE, journal="truncate", **FAST)  # type: ignore[arg-type]
    assert db_path.read_bytes() == before


def pdh(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("PDH_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "agent", *args], capture_output=True,
                          text=True, timeout=120, env=env)  # fmt: skip


def test_cli_journal_option(db_path: Path) -> None:
    quick = ("--rows", "700", "--seconds", "0")
    done = pdh("erp-sim", str(db_path), "--mode", "rebuild", "--journal", "wal", *quick)
    assert done.returncode == 0, done.stderr
    assert "erp-sim rebuild: committed" in done.stdout
    assert sidecars(db_path) == [] and header_journal(db_path) == (2, 2)
    assert_complete_export(db_path, rows=700)

    done = pdh("erp-sim", str(db_path), "--mode", "replace", *quick)  # default: delete
    assert done.returncode == 0, done.stderr
    assert header_journal(db_path) == (1, 1)

    bad = pdh("erp-sim", str(db_path), "--mode", "copy", "--journal", "truncate", *quick)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
    assert header_journal(db_path) == (1, 1)
