"""core.queries against an independent Python model of the same file."""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from core import queries as q
from core.dbfile import look
from tests.api.oracle import Oracle, group, pareto, totals

MARCH = {"date_from": date(2026, 3, 1), "date_to": date(2026, 3, 15)}


@pytest.fixture
def oracle(small_db: Path) -> Oracle:
    return Oracle(small_db)


def filter_cases(o: Oracle) -> list[dict[str, Any]]:
    first = o.rows[0]
    return [
        {},
        MARCH,
        {"item_code": first.item_code},
        {"line_code": first.line_code, **MARCH},
        {"shift": "N"},
        {"plant": "P2"},
        {"item_group": "브래킷", "shift": "D"},
        {"item_code": first.item_code, "line_code": first.line_code, "shift": first.shift},
        {"item_code": "' OR 1=1 --"},
        {"plant": "P1'; DROP TABLE production_records; --"},
    ]


def test_filters_validate_and_name_the_parameter() -> None:
    with pytest.raises(q.InvalidQuery) as err:
        q.Filters(date_from=date(2026, 3, 2), date_to=date(2026, 3, 1))
    assert err.value.param == "date_to"
    with pytest.raises(q.InvalidQuery) as err:
        q.Filters(shift="X")
    assert err.value.param == "shift"
    with pytest.raises(q.InvalidQuery) as err:
        q.Filters(date_from="2026-03-01")  # type: ignore[arg-type]
    assert err.value.param == "date_from"
    assert q.Filters(item_code=["B", "A"]).key() == q.Filters(item_code=("A", "B")).key()
    assert hash(q.Filters(**MARCH).key())


def test_previous_period_has_the_same_length() -> None:
    f = q.Filters(date_from=date(2026, 3, 1), date_to=date(2026, 3, 31), plant="P1")
    prev = f.previous_period()
    assert prev is not None
    assert (prev.date_from, prev.date_to) == (date(2026, 1, 29), date(2026, 2, 28))
    assert prev.plant == ("P1",)
    assert q.Filters().previous_period() is None


def test_master_data_and_date_range(small_db: Path, oracle: Oracle) -> None:
    items = q.items(small_db)
    assert [i.item_code for i in items] == sorted(oracle.items)
    assert items[0].item_name == oracle.items[items[0].item_code][1]
    lines = q.lines(small_db)
    assert [(ln.line_code, ln.plant) for ln in lines] == sorted(
        (c, r[2]) for c, r in oracle.lines.items())
    span = q.date_range(small_db)
    assert span == q.DateRange(date(2026, 1, 31), date(2026, 3, 31), len(oracle.rows))
    period = q.default_filters(span)
    assert (period.date_from, period.date_to) == (date(2026, 3, 2), date(2026, 3, 31))


def test_kpis_match_the_model_for_every_filter(small_db: Path, oracle: Oracle) -> None:
    for case in filter_cases(oracle):
        got = q.kpis(small_db, q.Filters(**case))
        assert q.as_dicts([got])[0] == totals(oracle.select(**case)), case


def test_summaries_match_the_model(small_db: Path, oracle: Oracle) -> None:
    for case in filter_cases(oracle):
        rows = oracle.select(**case)
        f = q.Filters(**case)
        daily = q.summary_daily(small_db, f)
        by_day = group(rows, "work_date")
        assert [d.work_date for d in daily] == sorted(by_day)
        for d in daily:
            assert q.as_dicts([d])[0] == {"work_date": d.work_date, **totals(by_day[d.work_date])}
        by_item = group(rows, "item_code")
        items = q.summary_items(small_db, f, sort="code", order="asc")
        assert [i.item_code for i in items] == sorted(by_item)
        for i in items:
            t = totals(by_item[i.item_code])
            assert (i.records, i.good_qty, i.defect_qty, i.defect_rate, i.achievement) == (
                t["records"], t["good_qty"], t["defect_qty"], t["defect_rate"], t["achievement"])
            assert i.item_name == oracle.items[i.item_code][1]
        by_line = group(rows, "line_code")
        lines = q.summary_lines(small_db, f)
        assert [ln.line_code for ln in lines] == sorted(by_line)
        for ln in lines:
            t = totals(by_line[ln.line_code])
            assert (ln.plan_qty, ln.good_qty, ln.run_minutes, ln.downtime_minutes) == (
                t["plan_qty"], t["good_qty"], t["run_minutes"], t["downtime_minutes"])
            assert ln.plant == oracle.lines[ln.line_code][2]
        shares = q.defects_pareto(small_db, f)
        assert [(s.defect_code, s.qty) for s in shares] == pareto(oracle, rows)
        if shares:
            assert shares[-1].cumulative_share == pytest.approx(1.0)
            cums = [s.cumulative_share or 0 for s in shares]
            assert cums == sorted(cums)


@pytest.mark.parametrize("sort", q.SORTS)
def test_top_n_by_every_sort(small_db: Path, oracle: Oracle, sort: str) -> None:
    everything = q.summary_items(small_db, q.Filters(**MARCH), sort=sort, order="desc")
    top = q.summary_items(small_db, q.Filters(**MARCH), sort=sort, order="desc", limit=5)
    assert top == everything[:5]
    if sort != "code":
        values = [getattr(i, sort) for i in everything if getattr(i, sort) is not None]
        assert values == sorted(values, reverse=True)
    asc = q.summary_items(small_db, q.Filters(**MARCH), sort=sort, order="asc")
    assert {i.item_code for i in asc} == {i.item_code for i in everything}


def test_sort_and_limit_are_whitelisted(small_db: Path) -> None:
    with pytest.raises(q.InvalidQuery) as err:
        q.summary_items(small_db, sort="good_qty; DROP TABLE items")
    assert err.value.param == "sort"
    with pytest.raises(q.InvalidQuery):
        q.summary_lines(small_db, order="desc; --")  # type: ignore[arg-type]
    with pytest.raises(q.InvalidQuery) as err:
        q.summary_items(small_db, limit=0)
    assert err.value.param == "limit"


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_keyset_pages_cover_everything_once(small_db: Path, oracle: Oracle, order: str) -> None:
    for case in ({}, {"shift": "D", **MARCH}, {"plant": "P1"}):
        expected = sorted(oracle.select(**case), key=lambda r: (r.work_date, r.record_id),
                          reverse=order == "desc")
        seen: list[int] = []
        cursor = None
        pages = 0
        while True:
            page = q.records(small_db, q.Filters(**case), 37, cursor, order)  # type: ignore[arg-type]
            seen += [r.record_id for r in page.records]
            pages += 1
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert seen == [r.record_id for r in expected]
        assert pages == max(1, -(-len(expected) // 37))


def test_iter_records_pages(small_db: Path, oracle: Oracle) -> None:
    pages = list(q.iter_records(small_db, page_size=300))
    assert [len(p) for p in pages] == [300] * 6 + [200]
    flat = [r.record_id for page in pages for r in page]
    assert flat == [r.record_id for r in sorted(oracle.rows,
                                                key=lambda r: (r.work_date, r.record_id))]
    night = [r.record_id for page in q.iter_records(small_db, q.Filters(shift="N"),
                                                    page_size=128, order="desc")
             for r in page]
    assert night == [r.record_id for r in sorted(oracle.select(shift="N"),
                                                 key=lambda r: (r.work_date, r.record_id),
                                                 reverse=True)]
    assert list(q.iter_records(small_db, q.Filters(item_code="NONE"))) == []


def test_bad_cursors_are_invalid_queries(small_db: Path) -> None:
    good = q.records(small_db, limit=2).next_cursor
    assert good is not None
    for bad in ("abc", "!!!", q.encode_cursor("x", 1, "asc")[:-3], "eyJhIjoxfQ", "W10",
                "WyIyMDI2LTAxLTMxIiwgdHJ1ZSwgImFzYyJd"):
        with pytest.raises(q.InvalidQuery) as err:
            q.records(small_db, cursor=bad)
        assert err.value.param == "cursor"
    with pytest.raises(q.InvalidQuery, match="order=asc"):
        q.records(small_db, cursor=good, order="desc")
    with pytest.raises(q.InvalidQuery):
        q.records(small_db, limit=1001)


def test_unavailable_files_say_why(tmp_path: Path, small_db: Path) -> None:
    missing = tmp_path / "nope" / "production_analysis.db"
    with pytest.raises(q.DataUnavailable) as err:
        q.kpis(missing)
    assert err.value.kind == "missing" and str(missing) in err.value.reason
    assert not missing.exists()  # mode=ro never creates the file
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(q.DataUnavailable, match="not a SQLite database") as err:
        q.items(garbage)
    assert err.value.kind == "unreadable"
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    with pytest.raises(q.DataUnavailable, match="tables"):
        q.items(empty)
    assert empty.stat().st_size == 0  # read, never written
    no_table = tmp_path / "no_table.db"
    shutil.copyfile(small_db, no_table)
    conn = sqlite3.connect(no_table)
    conn.execute("DROP TABLE defect_records")
    conn.commit()
    conn.close()
    with pytest.raises(q.DataUnavailable, match="defect_records"):
        q.defects_pareto(no_table)
    assert q.kpis(no_table).records == 2000  # the other tables still answer


def test_a_writer_lock_on_a_snapshot_neither_blocks_nor_fails_a_read(small_db: Path) -> None:
    """Snapshots are read ``immutable=1``: no locks taken, none waited for (a plain
    read-only connection would wait its busy timeout here, then fail)."""
    expected = q.kpis(small_db)
    writer = sqlite3.connect(small_db, isolation_level=None)
    writer.execute("BEGIN EXCLUSIVE")
    try:
        started = time.monotonic()
        assert q.kpis(small_db, q.Filters()) == expected
        assert len(q.records(small_db, limit=5).records) == 5
        assert time.monotonic() - started < 1.0
    finally:
        writer.execute("ROLLBACK")
        writer.close()


@pytest.fixture
def readers() -> Iterator[None]:
    """Put the process-wide reader pool back as it was (other tests publish too)."""
    saved = q.READERS._serving
    yield
    q.READERS._serving = saved


def test_pooled_connections_are_reused_and_retired(readers: None, small_db: Path,
                                                   tmp_path: Path) -> None:
    fd_dir = Path("/proc/self/fd")
    if not fd_dir.exists():
        pytest.skip("needs /proc")

    def open_fds(path: Path) -> int:
        n = 0
        for fd in os.listdir(fd_dir):
            try:
                if os.readlink(fd_dir / fd).startswith(str(path)):
                    n += 1
            except OSError:
                pass
        return n

    before = look(small_db)
    q.READERS.retire({small_db})  # small_db is the snapshot served
    q.kpis(small_db)
    q.records(small_db, limit=5)
    list(q.iter_records(small_db, page_size=500))
    with pytest.raises(q.InvalidQuery):
        q.summary_items(small_db, sort="nope")
    assert open_fds(small_db) == 1  # one connection, kept and shared by the calls
    assert look(small_db) == before  # reading wrote nothing, not even a sidecar
    other = tmp_path / "other.db"
    shutil.copyfile(small_db, other)
    q.READERS.retire({other})  # a new snapshot is served: the old one's readers close
    assert open_fds(small_db) == 0
    q.kpis(small_db)  # a slow reader of the old snapshot still gets its answer...
    assert open_fds(small_db) == 0  # ...and its connection is closed, not kept
    q.kpis(other)
    assert open_fds(other) == 1
    q.READERS.retire(set())
    assert open_fds(other) == 0
