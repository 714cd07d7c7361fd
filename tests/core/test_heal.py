"""Heal against real SQLite files: inspect, create, rebuild, ANALYZE, busy retries, and
every broken-file case."""

from __future__ import annotations

import sqlite3
import threading
from contextlib import closing
from pathlib import Path

import pytest

from core.config import HealConfig
from core.dbfile import look
from core.erp.erpsim import write_empty, write_garbage, write_missing_table
from core.errors import DbBusy, DbChanged, DbMissing, DbUnreadable
from core.heal import STATISTICS, heal

FIVE = [
    "idx_records_work_date",
    "idx_records_item_date",
    "idx_records_line_date",
    "idx_records_lot_no",
    "idx_defects_record_id",
]


def cfg(**kw: object) -> HealConfig:
    base: dict[str, object] = {"connect_timeout": 1.0, "retries": 3, "retry_backoff": 0.05}
    base.update(kw)
    return HealConfig.model_validate(base)


def index_columns(db: Path) -> dict[str, list[str]]:
    conn = sqlite3.connect(db)
    try:
        names = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='index' AND name NOT LIKE 'sqlite_%'")]
        return {n: [r[2] for r in conn.execute(f"PRAGMA index_info('{n}')")] for n in names}
    finally:
        conn.close()


def stats_rows(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(db)
    try:
        return {idx: int(stat.split()[0]) for idx, stat in
                conn.execute("SELECT idx, stat FROM sqlite_stat1 WHERE idx IS NOT NULL")}
    finally:
        conn.close()


def test_heals_a_fresh_export_and_then_finds_nothing(small_db: Path) -> None:
    report = heal(small_db, cfg())
    assert report.result == "healed"
    assert report.created == FIVE
    assert report.healed == [*FIVE, STATISTICS]
    assert index_columns(small_db) == {
        "idx_records_work_date": ["work_date"],
        "idx_records_item_date": ["item_code", "work_date"],
        "idx_records_line_date": ["line_code", "work_date"],
        "idx_records_lot_no": ["lot_no"],
        "idx_defects_record_id": ["record_id"],
    }
    conn = sqlite3.connect(small_db)
    records = conn.execute("SELECT count(*) FROM production_records").fetchone()[0]
    defects = conn.execute("SELECT count(*) FROM defect_records").fetchone()[0]
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    stats = stats_rows(small_db)
    assert stats["idx_records_work_date"] == records
    assert stats["idx_defects_record_id"] == defects
    # The look the heal leaves is the file as it is now: nothing changed after it.
    assert report.after is not None and report.after.version == look(small_db).version

    again = heal(small_db, cfg())
    assert again.result == "ok" and again.healed == []


def test_dry_run_reports_but_changes_nothing(small_db: Path) -> None:
    before = look(small_db).version
    report = heal(small_db, cfg(), dry_run=True)
    assert report.result == "failed"
    assert any("idx_records_lot_no is missing" in p for p in report.problems)
    assert look(small_db).version == before
    assert index_columns(small_db) == {}


def test_a_check_of_an_unchanged_file_reads_no_table(small_db: Path) -> None:
    """The check runs on every export and every hour: it must not scan the ERP's tables
    (each scan of the big table makes an ERP commit wait)."""
    first = heal(small_db, cfg())
    assert first.after is not None
    statements: list[str] = []
    real_connect = sqlite3.connect

    def traced(*args: object, **kwargs: object) -> sqlite3.Connection:
        conn = real_connect(*args, **kwargs)  # type: ignore[call-overload]
        conn.set_trace_callback(statements.append)
        return conn  # type: ignore[no-any-return]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sqlite3, "connect", traced)
        again = heal(small_db, cfg(), stats_version=first.after.version)
    assert again.result == "ok"
    assert statements, "the trace saw nothing"
    data_tables = ("production_records", "defect_records")
    scans = [s for s in statements if any(t in s and "LIMIT 1" not in s and "PRAGMA" not in s
                                          and "sqlite_stat1" not in s for t in data_tables)]
    assert scans == []


def test_stale_statistics_are_refreshed(small_db: Path) -> None:
    first = heal(small_db, cfg())
    assert first.after is not None
    conn = sqlite3.connect(small_db, isolation_level=None)
    conn.execute("DELETE FROM production_records WHERE record_id % 2 = 0")
    conn.close()
    report = heal(small_db, cfg(), stats_version=first.after.version)
    assert report.result == "healed" and report.healed == [STATISTICS]
    conn = sqlite3.connect(small_db)
    count = conn.execute("SELECT count(*) FROM production_records").fetchone()[0]
    conn.close()
    assert stats_rows(small_db)["idx_records_work_date"] == count


def test_same_named_index_with_other_columns_is_rebuilt(small_db: Path) -> None:
    conn = sqlite3.connect(small_db, isolation_level=None)
    conn.execute("CREATE INDEX idx_records_item_date ON production_records(work_date, item_code)")
    conn.execute("CREATE INDEX idx_records_lot_no ON defect_records(defect_code)")
    conn.close()
    report = heal(small_db, cfg())
    assert sorted(report.rebuilt) == ["idx_records_item_date", "idx_records_lot_no"]
    assert report.result == "healed"
    cols = index_columns(small_db)
    assert cols["idx_records_item_date"] == ["item_code", "work_date"]
    assert cols["idx_records_lot_no"] == ["lot_no"]


def test_mismatch_is_reported_not_touched_when_repair_is_off(small_db: Path) -> None:
    conn = sqlite3.connect(small_db, isolation_level=None)
    conn.execute("CREATE INDEX idx_records_item_date ON production_records(work_date)")
    conn.close()
    report = heal(small_db, cfg(repair_mismatched=False))
    assert report.result == "failed"
    assert report.problems == [
        "index idx_records_item_date is on (work_date), the spec wants (item_code, work_date)"
    ]
    assert index_columns(small_db)["idx_records_item_date"] == ["work_date"]


def test_missing_table_and_column_name_the_cause(small_db: Path) -> None:
    write_missing_table(small_db, "defect_records", rows=300)
    report = heal(small_db, cfg())
    assert report.result == "failed"
    assert report.problems == ["index idx_defects_record_id: table defect_records is missing"]
    assert "idx_records_work_date" in report.created  # what can be built still is

    conn = sqlite3.connect(small_db, isolation_level=None)
    conn.execute("DROP INDEX idx_records_lot_no")
    conn.execute("ALTER TABLE production_records DROP COLUMN lot_no")
    conn.close()
    report = heal(small_db, cfg())
    assert "index idx_records_lot_no: table production_records has no column lot_no" in (
        report.problems
    )


def test_missing_empty_garbage_truncated(tmp_path: Path, small_db: Path) -> None:
    with pytest.raises(DbMissing, match="not found"):
        heal(tmp_path / "absent.db", cfg())
    empty = tmp_path / "empty.db"
    write_empty(empty)
    with pytest.raises(DbUnreadable, match="empty"):
        heal(empty, cfg())
    assert empty.stat().st_size == 0  # never "healed" into a new empty database
    garbage = tmp_path / "garbage.db"
    write_garbage(garbage)
    with pytest.raises(DbUnreadable, match="not an SQLite database"):
        heal(garbage, cfg())
    data = small_db.read_bytes()
    truncated = tmp_path / "truncated.db"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(DbUnreadable, match="truncated"):
        heal(truncated, cfg())


def test_refuses_a_file_that_differs_from_the_settled_look(small_db: Path) -> None:
    settled = look(small_db)
    conn = sqlite3.connect(small_db, isolation_level=None)
    conn.execute("UPDATE items SET spec = 'x' WHERE rowid = 1")
    conn.close()
    with pytest.raises(DbChanged):
        heal(small_db, cfg(), expected=settled)
    assert index_columns(small_db) == {}


def _erp_holding_the_lock(db: Path, *, write: bool) -> sqlite3.Connection:
    erp = sqlite3.connect(db, isolation_level=None, timeout=5, check_same_thread=False)
    erp.execute("BEGIN IMMEDIATE")
    if write:
        erp.execute("UPDATE items SET spec = 'ERP wrote this' WHERE rowid = 1")
    return erp


def test_waits_for_a_lock_holder_then_succeeds(small_db: Path) -> None:
    """Another program holds the write lock (and writes nothing); the heal backs off,
    retries, and succeeds once the lock is released."""
    erp = _erp_holding_the_lock(small_db, write=False)
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 2:
            erp.execute("ROLLBACK")  # released during our second back-off

    report = heal(small_db, cfg(connect_timeout=0.1), sleep=sleep)
    erp.close()
    assert report.result == "healed" and report.created == FIVE
    assert slept == [0.05, 0.1]


def test_erp_commit_while_we_wait_stops_the_heal(small_db: Path) -> None:
    """The ERP commits a change while we wait for the lock: the file is no longer the one
    that settled, so nothing is written and DbChanged sends the hub back to settle."""
    settled = look(small_db)
    erp = _erp_holding_the_lock(small_db, write=True)

    def sleep(seconds: float) -> None:
        erp.execute("COMMIT")

    with pytest.raises(DbChanged, match="another program wrote"):
        heal(small_db, cfg(connect_timeout=0.1), expected=settled, sleep=sleep)
    erp.close()
    assert index_columns(small_db) == {}


def test_gives_up_with_a_clear_message_when_locked_through_every_retry(small_db: Path) -> None:
    erp = sqlite3.connect(small_db, isolation_level=None)
    erp.execute("BEGIN IMMEDIATE")
    slept: list[float] = []
    try:
        with pytest.raises(DbBusy, match="stayed locked by another program through 3 attempts"):
            heal(small_db, cfg(connect_timeout=0.1), sleep=slept.append)
    finally:
        erp.execute("ROLLBACK")
        erp.close()
    assert slept == [0.05, 0.1]  # doubling backoff between the three attempts


def test_erp_writer_with_its_own_busy_timeout_never_fails_during_a_heal(small_db: Path) -> None:
    """An ERP connection writing in a loop (5 s busy timeout) while we heal: every one of
    its writes succeeds."""
    stop = threading.Event()
    errors: list[Exception] = []
    writes = {"n": 0}

    def erp_writer() -> None:
        conn = sqlite3.connect(small_db, isolation_level=None, timeout=5)
        try:
            while not stop.is_set():
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    conn.execute("UPDATE items SET spec = ? WHERE rowid = 1", (str(writes["n"]),))
                    conn.execute("COMMIT")
                    writes["n"] += 1
                except sqlite3.Error as exc:
                    errors.append(exc)
                    return
        finally:
            conn.close()

    t = threading.Thread(target=erp_writer)
    t.start()
    try:
        created: list[list[str]] = []  # per heal that got through: the indexes it made
        for _ in range(5):
            try:
                report = heal(small_db, cfg(connect_timeout=5.0))
            except DbChanged:
                continue  # the ERP committed under us: we backed off, wrote nothing more
            assert report.result in ("healed", "ok"), report.problems
            created.append(report.created)
    finally:
        stop.set()
        t.join(10)
    assert errors == []
    assert writes["n"] > 0
    # A heal that got through made every index: none is made twice.
    assert all(c == [] for c in created[1:]), created
    final = heal(small_db, cfg())
    assert final.result in ("healed", "ok")
    assert set(FIVE) <= set(index_columns(small_db))
    assert final.created == [] or created == []


def test_waits_when_even_reading_is_locked(small_db: Path) -> None:
    """A writer with the exclusive lock (its cache spilled) blocks reads too: opening and
    inspecting are retried with the same doubling backoff."""
    erp = sqlite3.connect(small_db, isolation_level=None, timeout=5, check_same_thread=False)
    erp.execute("BEGIN EXCLUSIVE")
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 2:
            erp.execute("ROLLBACK")

    report = heal(small_db, cfg(connect_timeout=0.1), sleep=sleep)
    erp.close()
    assert report.result == "healed" and slept == [0.05, 0.1]

    erp = sqlite3.connect(small_db, isolation_level=None)
    erp.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(DbBusy, match="stayed locked by another program while opening it"):
            heal(small_db, cfg(connect_timeout=0.1), sleep=lambda s: None)
    finally:
        erp.execute("ROLLBACK")
        erp.close()


# What another program holds, and the heal's wait that it causes (as logged).
HEAL_WAITS = {
    "exclusive": (["BEGIN EXCLUSIVE"], "while reading its indexes"),
    "immediate": (["BEGIN IMMEDIATE"], "while creating index idx_records_work_date"),
    # A reader's SHARED lock: our COMMIT waits for it to let go.
    "reader": (["BEGIN", "SELECT count(*) FROM items"],
               "while creating index idx_records_work_date"),
}


@pytest.mark.parametrize("holder", sorted(HEAL_WAITS))
def test_an_interrupt_ends_a_heal_waiting_for_a_lock(
    small_db: Path, holder: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The hub stops while the heal waits out another program's lock (here it would wait
    ~30 s): to read the indexes (EXCLUSIVE), to begin a write (IMMEDIATE) or to commit
    it (a reader): the heal ends at once with Interrupted and writes nothing."""
    import time

    from core.errors import Interrupted
    from core.sqlite import Interrupter
    from tests.conftest import wait_for

    statements, wait = HEAL_WAITS[holder]
    erp = sqlite3.connect(small_db, isolation_level=None)
    for statement in statements:
        erp.execute(statement)
    interrupter = Interrupter()
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            heal(small_db, cfg(connect_timeout=10.0, retries=3, retry_backoff=1.0),
                 interrupter=interrupter)
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    def waiting() -> bool:
        return any("still waiting for it " + wait in r.getMessage() for r in caplog.records)

    worker = threading.Thread(target=run)
    with caplog.at_level("INFO", logger="core.sqlite"):
        worker.start()
        try:
            wait_for(waiting, timeout=10, message=f"the heal waiting {wait}")
            started = time.monotonic()
            interrupter.interrupt()
            worker.join(5)
            took = time.monotonic() - started
        finally:
            erp.execute("ROLLBACK")
            erp.close()
            worker.join(60)
    assert outcome and isinstance(outcome[0], Interrupted), outcome
    assert took < 1.0
    assert index_columns(small_db) == {}
    with closing(sqlite3.connect(small_db)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
