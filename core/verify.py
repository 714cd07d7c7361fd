"""Verify a copy of an export before anyone sees it: SQLite's quick_check, the tables
and columns the queries and the index spec need, and the row count against the last
published snapshot. A copy that fails is rejected (:class:`ExportRejected`) with the
exact reason. Every function here blocks.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from contextlib import closing
from pathlib import Path

from core.config import IndexSpec
from core.errors import ExportRejected
from core.queries import REQUIRED_COLUMNS
from core.sqlite import Mode, connect


def _quick_check(conn: sqlite3.Connection) -> None:
    problems = [row[0] for row in conn.execute("PRAGMA quick_check(5)")]
    if problems != ["ok"]:
        raise ExportRejected("the export is damaged: SQLite's quick_check says "
                             + "; ".join(str(p) for p in problems))


def check_damage(path: Path) -> None:
    """SQLite's quick_check of a copy (every page read): ExportRejected if damaged."""
    try:
        with closing(connect(path, Mode.READ_ONLY)) as conn:
            _quick_check(conn)
    except sqlite3.Error as exc:
        raise ExportRejected(f"the export cannot be read: {exc}") from None


def damage_first(path: Path, rejected: ExportRejected) -> ExportRejected:
    """A damaged file is rejected as damaged, whatever else was found first."""
    try:
        check_damage(path)
    except ExportRejected as damaged:
        return damaged
    return rejected


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')}


def _missing(conn: sqlite3.Connection, needed: Mapping[str, set[str]]) -> str:
    """Every table and column of ``needed`` the file lacks, in one phrase ('' if none):
    "the tables defect_records, items; the column lot_no of production_records"."""
    tables: list[str] = []
    columns: list[str] = []
    for table, cols in sorted(needed.items()):
        have = _columns(conn, table)
        if not have:
            tables.append(table)
        elif absent := sorted(cols - have):
            noun = "column" if len(absent) == 1 else "columns"
            columns.append(f"the {noun} {', '.join(absent)} of {table}")
    parts = []
    if tables:
        parts.append(("the table " if len(tables) == 1 else "the tables ") + ", ".join(tables))
    return "; ".join([*parts, *columns])


def verify(
    path: Path,
    specs: Sequence[IndexSpec],
    *,
    last_rows: int | None,
    min_row_ratio: float,
    required: Mapping[str, Sequence[str]] = REQUIRED_COLUMNS,
    thorough: bool = True,
) -> int:
    """Check a copy before anyone sees it; the row count of production_records, or
    :class:`ExportRejected` with the exact reason. ``thorough=False`` leaves out SQLite's
    quick_check (the one check that reads every page: :func:`check_damage`)."""
    try:
        with closing(connect(path, Mode.READ_ONLY)) as conn:
            if thorough:
                _quick_check(conn)
            needed: dict[str, set[str]] = {t: set(c) for t, c in required.items()}
            extra: dict[str, set[str]] = {}
            for spec in specs:
                if spec.table not in needed:
                    extra.setdefault(spec.table, set()).update(spec.columns)
            missing = _missing(conn, needed)
            if missing:
                raise ExportRejected(f"the export lacks {missing}")
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
