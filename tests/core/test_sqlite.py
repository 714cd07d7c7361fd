"""The one SQLite access layer: errors named by code, every read bounded in time, and no
other module of the engine opening SQLite by itself."""

from __future__ import annotations

import ast
import sqlite3
import time
from pathlib import Path

import pytest

from core import queries as q
from core.errors import DbBusy, DbMissing, DbUnreadable
from core.queries import readers
from core.sqlite import Mode, connect, hub_error

ROOT = Path(__file__).resolve().parents[2]
# The ERP-side tools (core/erp) write the ERP's files as the ERP would: not the engine.
ERP_SIDE = ROOT / "core" / "erp"


def test_only_core_sqlite_opens_connections() -> None:
    offenders = []
    for source in sorted((ROOT / "core").rglob("*.py")):
        if source.name == "sqlite.py" or ERP_SIDE in source.parents:
            continue
        for node in ast.walk(ast.parse(source.read_text("utf-8"))):
            if (isinstance(node, ast.Attribute) and node.attr == "connect"
                    and isinstance(node.value, ast.Name) and node.value.id == "sqlite3"):
                offenders.append(f"{source.name}:{node.lineno}")
    assert offenders == []


def test_errors_are_named_by_code_not_by_wording(small_db: Path) -> None:
    """A table whose name says "busy" is a schema problem, not a lock."""
    with pytest.raises(q.DataUnavailable) as err:
        readers._read(small_db, lambda c: c.execute("SELECT * FROM busy_lines").fetchall())
    assert err.value.kind == "unreadable" and "busy_lines" in err.value.reason


def test_hub_errors_from_real_failures(tmp_path: Path, small_db: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not sqlite" * 500)
    with connect(garbage, Mode.READ_ONLY) as conn, pytest.raises(sqlite3.DatabaseError) as exc:
        conn.execute("SELECT * FROM sqlite_master").fetchall()
    assert isinstance(hub_error(exc.value, garbage, "reading it"), DbUnreadable)

    missing = tmp_path / "missing.db"
    with pytest.raises(sqlite3.OperationalError) as exc:
        connect(missing, Mode.READ_ONLY)
    assert isinstance(hub_error(exc.value, missing, "opening it"), DbMissing)

    erp = sqlite3.connect(small_db, isolation_level=None)
    erp.execute("BEGIN EXCLUSIVE")
    try:
        reader = connect(small_db, Mode.READ_ONLY, busy_timeout=0.05)
        with pytest.raises(sqlite3.OperationalError) as exc:
            reader.execute("SELECT count(*) FROM items").fetchone()
        reader.close()
    finally:
        erp.execute("ROLLBACK")
        erp.close()
    assert isinstance(hub_error(exc.value, small_db, "reading it"), DbBusy)


def test_a_runaway_read_is_stopped(small_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readers, "READ_TIME_LIMIT_S", 0.2)
    runaway = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
               "WHERE x < 50000000) SELECT count(*) FROM c")
    started = time.monotonic()
    with pytest.raises(q.DataUnavailable) as err:
        readers._read(small_db, lambda c: c.execute(runaway).fetchone())
    assert time.monotonic() - started < 2
    assert err.value.kind == "busy" and "longer than 0.2 s" in err.value.reason
    # The pooled connection still works for the next read.
    assert q.items(small_db)
