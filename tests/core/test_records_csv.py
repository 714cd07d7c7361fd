"""One CSV writer: the API's streamed records.csv and the dashboard's download are the
same bytes for the same rows."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from core import queries as q
from core.queries import RECORD_FIELDS, Record
from core.records_csv import csv_document, csv_header, csv_rows
from dashboard import data as dashboard_data


def _record(n: int, **changes: object) -> Record:
    base: dict[str, object] = dict(
        record_id=n, work_date="2026-03-02", shift="D", line_code="L1",
        line_name="조립 라인 1", item_code="A-100", item_name='볼트, "M8"', work_order=None,
        lot_no="LOT\n7", plan_qty=100, good_qty=95, defect_qty=5, run_minutes=412.5,
        downtime_minutes=None, updated_at="2026-03-02T08:00:00")
    base.update(changes)
    return Record(**base)  # type: ignore[arg-type]


def test_both_outputs_are_byte_identical_for_the_same_rows(small_db: Path) -> None:
    pages = [[_record(1), _record(2, item_name=None)], [_record(3, shift="N")]]
    streamed = csv_header() + b"".join(csv_rows(page) for page in pages)
    assert streamed == csv_document(pages)
    assert streamed.startswith("\ufeff".encode()) and b"\r\n" in streamed
    rows = list(csv.reader(io.StringIO(streamed.decode("utf-8-sig"), newline="")))
    assert tuple(rows[0]) == RECORD_FIELDS
    assert rows[1][RECORD_FIELDS.index("item_name")] == '볼트, "M8"'
    assert rows[1][RECORD_FIELDS.index("lot_no")] == "LOT\n7"
    assert rows[1][RECORD_FIELDS.index("work_order")] == ""  # None: an empty field
    assert len(rows) == 4

    # The real readers over one snapshot: the dashboard's file is the API's stream.
    filters = q.Filters()
    api_bytes = csv_header() + b"".join(
        csv_rows(page) for page in q.iter_records(small_db, filters, page_size=37))
    assert dashboard_data.records_csv(small_db, filters) == api_bytes
    assert api_bytes.count(b"\r\n") > 37
