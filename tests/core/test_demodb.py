"""The demo database is the ERP's export format, with believable and consistent data."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from core.erp.demodb import DemoStats, create_demo_db, erp_schema_statements, write_erp_data

CORE_SCHEMA = Path(__file__).resolve().parents[2] / "core" / "erp" / "erp_schema.sql"
SHARED_SCHEMA = Path(__file__).resolve().parents[3] / "shared" / "erp" / "schema.sql"
ERP_TABLES = ("items", "lines", "production_records", "defect_records")
HANGUL = re.compile("[\uac00-\ud7a3]")

ROWS, DAYS, SEED, END = 3_000, 60, 7, date(2026, 3, 11)


def dump(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every ERP table's rows, in a stable order."""
    conn = sqlite3.connect(path)
    try:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in ERP_TABLES}
    finally:
        conn.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemoStats]:
    path = tmp_path_factory.mktemp("demo") / "production_analysis.db"
    stats = create_demo_db(path, rows=ROWS, seed=SEED, days=DAYS, end_date=END)
    return path, stats


@pytest.fixture
def db(demo: tuple[Path, DemoStats]) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(demo[0])
    yield conn
    conn.close()


def scalar(conn: sqlite3.Connection, sql: str) -> object:
    return conn.execute(sql).fetchone()[0]


def test_shipped_schema_is_a_byte_copy_of_the_erps() -> None:
    if not SHARED_SCHEMA.exists():
        pytest.skip(f"{SHARED_SCHEMA} not present outside the dev checkout")
    assert CORE_SCHEMA.read_bytes() == SHARED_SCHEMA.read_bytes()


def test_schema_identical_to_the_erps(db: sqlite3.Connection, tmp_path: Path) -> None:
    reference = tmp_path / "reference.db"
    schema = SHARED_SCHEMA if SHARED_SCHEMA.exists() else CORE_SCHEMA
    ref = sqlite3.connect(reference)
    ref.executescript(schema.read_text(encoding="utf-8"))
    query = "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name"
    expected = ref.execute(query).fetchall()
    ref.close()
    assert db.execute(query).fetchall() == expected
    assert {row[1] for row in expected} >= set(ERP_TABLES)


def test_schema_statements_split_the_script_into_its_creates() -> None:
    statements = erp_schema_statements()
    assert len(statements) == 4
    assert all(sqlite3.complete_statement(s) for s in statements)


def test_no_secondary_indexes_and_no_statistics(db: sqlite3.Connection) -> None:
    indexes = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='index'")]
    assert all(name.startswith("sqlite_autoindex_") for name in indexes), indexes
    assert scalar(db, "SELECT count(*) FROM sqlite_master WHERE name LIKE 'sqlite_stat%'") == 0


def test_file_is_a_sound_rollback_journal_database(demo: tuple[Path, DemoStats]) -> None:
    path, _ = demo
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert scalar(conn, "PRAGMA journal_mode") == "delete"
    finally:
        conn.close()
    header = path.read_bytes()[:100]
    assert header[:16] == b"SQLite format 3\x00"
    assert header[18:20] == b"\x01\x01"  # legacy (rollback journal), not WAL
    # Nothing left beside it: no journal, no temp file from the atomic write.
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_counts_match_request_and_stats(
    db: sqlite3.Connection, demo: tuple[Path, DemoStats]
) -> None:
    _, stats = demo
    assert scalar(db, "SELECT count(*) FROM production_records") == ROWS == stats.rows
    assert scalar(db, "SELECT count(*) FROM defect_records") == stats.defect_rows > 0
    assert scalar(db, "SELECT count(*) FROM items") == stats.items == 300
    assert scalar(db, "SELECT count(*) FROM lines") == stats.lines == 16
    assert (stats.date_from, stats.date_to) == (END - timedelta(days=DAYS - 1), END)
    assert stats.seconds > 0


def test_defects_sum_exactly_to_each_records_defect_qty(db: sqlite3.Connection) -> None:
    mismatches = scalar(
        db,
        """SELECT count(*) FROM production_records p
           LEFT JOIN (SELECT record_id, sum(qty) AS total, min(qty) AS smallest
                      FROM defect_records GROUP BY record_id) d USING (record_id)
           WHERE coalesce(d.total, 0) != p.defect_qty OR d.smallest <= 0""",
    )
    assert mismatches == 0
    assert scalar(db, "SELECT count(*) FROM production_records WHERE defect_qty = 0") > 0
    # One breakdown row per defect kind: no code repeats within a record.
    assert scalar(
        db,
        "SELECT count(*) FROM (SELECT 1 FROM defect_records GROUP BY record_id, defect_code"
        " HAVING count(*) > 1)",
    ) == 0  # fmt: skip


def test_quantities_and_minutes_make_sense(db: sqlite3.Connection) -> None:
    defect_rate, achievement = db.execute(
        "SELECT 1.0 * sum(defect_qty) / sum(good_qty + defect_qty), 1.0 * sum(good_qty) /"
        " sum(plan_qty) FROM production_records"
    ).fetchone()
    assert 0.005 <= defect_rate <= 0.03
    assert 0.85 <= achievement <= 1.05
    assert scalar(db, "SELECT min(plan_qty) FROM production_records") > 0
    assert scalar(db, "SELECT min(good_qty) FROM production_records") >= 0
    # A few bad line-days stand out with low achievement.
    worst = scalar(
        db,
        "SELECT min(a) FROM (SELECT 1.0 * sum(good_qty) / sum(plan_qty) AS a"
        " FROM production_records GROUP BY work_date, line_code)",
    )
    assert worst < 0.8
    # Run time plus stoppages of a line's shift add up to a ~600-minute shift.
    low, high = db.execute(
        "SELECT min(m), max(m) FROM (SELECT sum(run_minutes + downtime_minutes) AS m"
        " FROM production_records GROUP BY work_date, line_code, shift)"
    ).fetchone()
    assert 595 <= low <= high <= 605


def test_master_data_is_korean_and_realistic(db: sqlite3.Connection) -> None:
    items = db.execute("SELECT item_code, item_name, item_group, spec, unit FROM items").fetchall()
    assert all(re.fullmatch(r"[A-Z]{2}-\d{4}", code) for code, *_ in items)
    assert all(HANGUL.search(name) and name.startswith(group) for _, name, group, _, _ in items)
    assert len({group for *_, group, _, _ in items}) >= 8
    specs = [spec for *_, spec, _ in items]
    assert 0 < specs.count(None) < len(specs) // 4
    units = [unit for *_, unit in items]
    assert units.count("EA") > 0.9 * len(units)

    lines = db.execute("SELECT line_code, line_name, plant, process FROM lines").fetchall()
    assert {plant for _, _, plant, _ in lines} == {"P1", "P2"}
    assert all(re.fullmatch(r"P[12]-L0[1-8]", code) for code, *_ in lines)
    assert all(re.fullmatch(r"[12]공장 \S+ \d라인", name) for _, name, *_ in lines)
    assert {process for *_, process in lines} <= {"프레스", "용접", "도장", "조립", "가공"}

    used = db.execute(
        "SELECT count(DISTINCT line_code), count(DISTINCT item_code) FROM production_records"
    ).fetchone()
    assert used[0] == 16 and used[1] > 200
    shifts = {r[0] for r in db.execute("SELECT DISTINCT shift FROM production_records")}
    assert shifts == {"D", "N"}
    names = [r[0] for r in db.execute("SELECT DISTINCT defect_name FROM defect_records")]
    assert all(HANGUL.search(n) for n in names) and "버(Burr)" in names


def test_record_fields_have_the_erps_formats(db: sqlite3.Connection) -> None:
    rows = db.execute(
        "SELECT work_date, work_order, lot_no, updated_at FROM production_records"
    ).fetchall()
    for work_date, work_order, lot_no, updated_at in rows:
        day = date.fromisoformat(work_date)
        assert re.fullmatch(r"WO-\d{4}-\d{6}", work_order)
        assert lot_no.startswith(f"L{day:%y%m%d}-") and re.fullmatch(r"L\d{6}-\d{4}", lot_no)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", updated_at)
        written = datetime.fromisoformat(updated_at)
        # Reported after the shift, never in the future of the export.
        assert day <= written.date() <= END


def test_every_day_in_range_has_rows(db: sqlite3.Connection) -> None:
    per_day = dict(db.execute("SELECT work_date, count(*) FROM production_records GROUP BY 1"))
    expected = {(END - timedelta(days=d)).isoformat() for d in range(DAYS)}
    assert set(per_day) == expected
    assert max(per_day.values()) - min(per_day.values()) <= 1  # spread evenly


def test_deterministic_for_seed_and_end_date(demo: tuple[Path, DemoStats], tmp_path: Path) -> None:
    same = tmp_path / "same.db"
    other = tmp_path / "other.db"
    create_demo_db(same, rows=ROWS, seed=SEED, days=DAYS, end_date=END)
    create_demo_db(other, rows=ROWS, seed=SEED + 1, days=DAYS, end_date=END)
    reference = dump(demo[0])
    assert dump(same) == reference
    different = dump(other)
    assert different["production_records"] != reference["production_records"]
    assert different["items"] != reference["items"]


def test_replaces_existing_file_atomically_and_reports_progress(tmp_path: Path) -> None:
    path = tmp_path / "production_analysis.db"
    path.write_bytes(b"old export")
    old_inode = path.stat().st_ino
    seen: list[int] = []
    stats = create_demo_db(path, rows=2_500, days=10, seed=3, end_date=END, progress=seen.append)
    assert sum(seen) == 2_500 == stats.rows
    assert path.stat().st_ino != old_inode
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
    assert dump(path)["production_records"][0][1] == (END - timedelta(days=9)).isoformat()


def test_write_erp_data_commits_each_batch_unless_caller_holds_a_transaction(
    tmp_path: Path,
) -> None:
    path = tmp_path / "erp.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in erp_schema_statements():
        conn.execute(statement)
    reader = sqlite3.connect(path)
    seen: list[object] = []

    def check() -> None:
        assert not conn.in_transaction
        seen.append(scalar(reader, "SELECT count(*) FROM production_records"))

    stats = write_erp_data(
        conn, rows=1_000, seed=1, days=5, end_date=END, batch_rows=300, between_batches=check
    )
    assert seen == [300, 600, 900, 1_000] and stats.rows == 1_000

    conn.execute("DELETE FROM defect_records")
    conn.execute("DELETE FROM production_records")
    conn.execute("DELETE FROM lines")
    conn.execute("DELETE FROM items")
    conn.execute("BEGIN")
    write_erp_data(
        conn, rows=600, seed=1, days=5, end_date=END, batch_rows=300,
        between_batches=lambda: seen.append(-1 if conn.in_transaction else 0),
    )  # fmt: skip
    assert seen[-2:] == [-1, -1]
    conn.rollback()
    assert scalar(reader, "SELECT count(*) FROM production_records") == 0
    reader.close()
    conn.close()


def test_rejects_nonsense_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        create_demo_db(tmp_path / "x.db", rows=10, days=0)
    assert list(tmp_path.iterdir()) == []
