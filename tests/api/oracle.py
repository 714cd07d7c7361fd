"""An independent model of the data: rows loaded with plain sqlite3, sums done in Python.

The API and core.queries aggregate in SQL; the tests compare them with this.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any


@dataclass
class Row:
    record_id: int
    work_date: str
    shift: str
    line_code: str
    item_code: str
    plan_qty: int
    good_qty: int
    defect_qty: int
    run_minutes: float | None
    downtime_minutes: float | None


class Oracle:
    def __init__(self, db: Path) -> None:
        conn = sqlite3.connect(db)
        try:
            self.rows = [Row(*r) for r in conn.execute(
                "SELECT record_id, work_date, shift, line_code, item_code, plan_qty, good_qty,"
                " defect_qty, run_minutes, downtime_minutes FROM production_records")]
            self.items = {r[0]: r for r in conn.execute("SELECT * FROM items")}
            self.lines = {r[0]: r for r in conn.execute("SELECT * FROM lines")}
            self.defects = conn.execute("SELECT * FROM defect_records").fetchall()
        finally:
            conn.close()

    def select(self, date_from: date | None = None, date_to: date | None = None,
               item_code: str | None = None, line_code: str | None = None,
               shift: str | None = None, plant: str | None = None,
               item_group: str | None = None) -> list[Row]:
        out = []
        for r in self.rows:
            if date_from and r.work_date < date_from.isoformat():
                continue
            if date_to and r.work_date > date_to.isoformat():
                continue
            if item_code is not None and r.item_code != item_code:
                continue
            if line_code is not None and r.line_code != line_code:
                continue
            if shift is not None and r.shift != shift:
                continue
            if plant is not None and self.lines[r.line_code][2] != plant:
                continue
            if item_group is not None and self.items[r.item_code][2] != item_group:
                continue
            out.append(r)
        return out


def rate(num: float, den: float) -> float | None:
    return round(num / den, 6) if den else None


def totals(rows: list[Row]) -> dict[str, Any]:
    plan = sum(r.plan_qty for r in rows)
    good = sum(r.good_qty for r in rows)
    defect = sum(r.defect_qty for r in rows)
    return {
        "records": len(rows), "plan_qty": plan, "good_qty": good, "defect_qty": defect,
        "defect_rate": rate(defect, good + defect), "achievement": rate(good, plan),
        "run_minutes": round(sum(r.run_minutes or 0 for r in rows), 1),
        "downtime_minutes": round(sum(r.downtime_minutes or 0 for r in rows), 1),
    }


def group(rows: list[Row], key: str) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        out[getattr(r, key)].append(r)
    return out


def pareto(oracle: Oracle, rows: list[Row]) -> list[tuple[str, int]]:
    """(defect_code, qty) by qty desc then code, over the given records."""
    ids = {r.record_id for r in rows}
    qty: dict[str, int] = defaultdict(int)
    for record_id, code, _name, q in oracle.defects:
        if record_id in ids:
            qty[code] += q
    return sorted(qty.items(), key=lambda kv: (-kv[1], kv[0]))
