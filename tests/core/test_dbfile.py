"""The DB version: more than mtime, and stable while nothing changes."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

from core.dbfile import look, read_header, watched_names


def test_version_is_stable_and_reads_the_header(small_db: Path) -> None:
    a, b = look(small_db), look(small_db)
    assert a == b and a.version == b.version and len(a.version) == 16
    assert a.header_valid and not a.writing
    header = read_header(small_db)
    assert header.expected_size() == small_db.stat().st_size


def test_same_size_and_mtime_still_changes_the_version(small_db: Path) -> None:
    """A re-export that keeps the size, with the old mtime carried over by a copy tool."""
    before = look(small_db)
    st = small_db.stat()
    conn = sqlite3.connect(small_db, isolation_level=None)
    conn.execute("UPDATE items SET unit = 'KG' WHERE rowid = 1")  # same size, new counter
    conn.close()
    os.utime(small_db, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = look(small_db)
    assert after.main.size == before.main.size and after.main.mtime_ns == before.main.mtime_ns
    assert after.version != before.version


def test_a_rename_over_changes_the_version(small_db: Path, tmp_path: Path) -> None:
    before = look(small_db)
    copy = tmp_path / "copy.db"
    shutil.copy2(small_db, copy)  # same bytes, same mtime, new inode
    os.replace(copy, small_db)
    assert look(small_db).version != before.version


def test_missing_file_and_sidecars(tmp_path: Path, small_db: Path) -> None:
    absent = look(tmp_path / "nope.db")
    assert not absent.exists and absent.version == ""
    without = look(small_db)
    journal = small_db.with_name(small_db.name + "-journal")
    journal.write_bytes(b"x" * 10)
    with_journal = look(small_db)
    # The same file, only a journal beside it: the look must tell the two apart.
    assert with_journal.writing and not without.writing
    assert with_journal != without
    assert watched_names(small_db) == {
        "production_analysis.db", "production_analysis.db-journal",
        "production_analysis.db-wal", "production_analysis.db-shm",
    }


def test_truncated_file_is_seen_from_its_header(small_db: Path, tmp_path: Path) -> None:
    whole = look(small_db)
    assert not whole.truncated and whole.expected_size == small_db.stat().st_size
    cut = tmp_path / "cut.db"
    cut.write_bytes(small_db.read_bytes()[:4096 * 3])
    assert look(cut).truncated


def test_windows_looks_open_the_file_only_when_its_stat_changed(
        small_db: Path, monkeypatch) -> None:  # noqa: ANN001
    """On Windows an open handle makes the ERP's rename-over fail: a file is opened only
    once its stat held still for one look (HEADERS is enabled there); every change is
    still seen."""
    from core import dbfile

    memo = dbfile._HeaderMemo(enabled=True)
    monkeypatch.setattr(dbfile, "HEADERS", memo)
    opened: list[Path] = []
    real = dbfile.read_header
    monkeypatch.setattr(dbfile, "read_header", lambda p: opened.append(p) or real(p))

    first = look(small_db)
    for _ in range(5):
        assert look(small_db).same_content(first)
    assert len(opened) == 1  # idle looks: stat only

    conn = sqlite3.connect(small_db)
    conn.execute("CREATE TABLE IF NOT EXISTS t_memo(x)")
    conn.commit()
    conn.close()
    changing = look(small_db)  # just changed: not opened yet, but seen to differ
    assert len(opened) == 1 and not changing.same_content(first)
    settled = look(small_db)  # held still for one look: read now
    assert len(opened) == 2 and settled.change_counter != first.change_counter
    look(small_db)
    assert len(opened) == 2

    journal = small_db.with_name(small_db.name + "-journal")
    journal.write_bytes(b"")  # a writer is in a transaction: always read
    look(small_db)
    look(small_db)
    journal.unlink()
    assert len(opened) == 4


def test_other_platforms_read_the_header_every_look(small_db: Path, monkeypatch) -> None:  # noqa: ANN001
    from core import dbfile

    monkeypatch.setattr(dbfile, "HEADERS", dbfile._HeaderMemo(enabled=False))
    opened: list[Path] = []
    real = dbfile.read_header
    monkeypatch.setattr(dbfile, "read_header", lambda p: opened.append(p) or real(p))
    look(small_db)
    look(small_db)
    assert len(opened) == 2
