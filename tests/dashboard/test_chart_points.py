"""The default view's charts get only the points they draw: in real headless chromium,
every message Streamlit sends the page is kept (a hook on the page's WebSocket, set
before the page's own scripts), the four Vega-Lite charts are taken out of them, and
their rows are counted against what each chart draws, by our own SQL: one point per day
of the period, one bar per line, the ten top items, one bar per defect type."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from core.state import ServerState
from dashboard.data import TOP_ITEMS
from tests.browser import CHROMIUM, MISSING, chromium_page
from tests.conftest import free_port, make_config, wait_for
from tests.dashboard.conftest import ThreadedHub, default_period, sql_one

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=MISSING),
]

# Every binary message the page receives, base64, in arrival order.
KEEP_MESSAGES = """
(() => {
  const kept = window.__kept = [];
  const Real = window.WebSocket;
  const keep = (buf) => {
    const bytes = new Uint8Array(buf);
    let bin = '';
    for (let i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    kept.push(btoa(bin));
  };
  window.WebSocket = function (...args) {
    const ws = new Real(...args);
    ws.addEventListener('message', (ev) => {
      if (ev.data instanceof ArrayBuffer) keep(ev.data);
    });
    return ws;
  };
  window.WebSocket.prototype = Real.prototype;
  Object.assign(window.WebSocket, Real);
})();
"""
CHARTS_DRAWN = """() => document.querySelectorAll(
  '[data-testid="stVegaLiteChart"] canvas, [data-testid="stVegaLiteChart"] svg.marks'
).length >= 4"""


@pytest.fixture
def browser_page() -> Iterator[Any]:
    with chromium_page() as page:
        yield page


def charts_sent(raw: list[str]) -> list[tuple[dict[str, Any], list[int], int]]:
    """Each Vega-Lite chart the page was sent: its spec, the rows of each dataset, and
    the rows of its top-level data (none expected)."""
    out = []
    for b64 in raw:
        msg = ForwardMsg()
        msg.ParseFromString(base64.b64decode(b64))
        if msg.WhichOneof("type") != "delta" or msg.delta.WhichOneof("type") != "new_element":
            continue
        element = msg.delta.new_element
        if element.WhichOneof("type") != "vega_lite_chart":
            continue
        chart = element.vega_lite_chart
        rows = [pa.ipc.open_stream(d.data.data).read_all().num_rows for d in chart.datasets]
        top = (pa.ipc.open_stream(chart.data.data).read_all().num_rows
               if chart.HasField("data") and chart.data.data else 0)
        out.append((json.loads(chart.spec), rows, top))
    return out


def test_default_view_charts_receive_only_the_points_they_draw(
        browser_page: Any, tmp_path: Path, small_db: Path) -> None:
    page = browser_page
    config = make_config(tmp_path, db=small_db, ui={"language": "en"},
                         api={"enabled": True, "port": free_port()},
                         dashboard={"enabled": True, "port": free_port()})
    with ThreadedHub(config).running() as th:
        wait_for(lambda: th.status().servers.get("dashboard") is not None
                 and th.status().servers["dashboard"].state is ServerState.RUNNING
                 and th.status().published is not None, 60,
                 message="the supervised dashboard and a published snapshot")
        page.add_init_script(KEEP_MESSAGES)
        page.goto(th.status().servers["dashboard"].url)
        page.wait_for_selector('[data-testid="stMetric"]')
        page.wait_for_function(CHARTS_DRAWN)
        page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]')
        sent = charts_sent(page.evaluate("() => window.__kept"))

    start, end = (d.isoformat() for d in default_period(small_db))
    period = "FROM production_records WHERE work_date BETWEEN ? AND ?"
    days = sql_one(small_db, f"SELECT COUNT(DISTINCT work_date) {period}", (start, end))[0]
    lines = sql_one(small_db, f"SELECT COUNT(DISTINCT line_code) {period}", (start, end))[0]
    items = sql_one(small_db, f"SELECT COUNT(DISTINCT item_code) {period}", (start, end))[0]
    defects = sql_one(
        small_db,
        "SELECT COUNT(DISTINCT d.defect_code) FROM defect_records d JOIN production_records r"
        " ON r.record_id = d.record_id WHERE r.work_date BETWEEN ? AND ?", (start, end))[0]
    records = sql_one(small_db, f"SELECT COUNT(*) {period}", (start, end))[0]
    assert days == 30 and lines > 1 and items > TOP_ITEMS and defects > 1  # a real test
    drawn = [days, lines, TOP_ITEMS, defects]  # trend, by line, top items, Pareto

    assert len(sent) == 4, f"expected the four charts, got {len(sent)}"
    for (spec, rows, top), marks in zip(sent, drawn, strict=True):
        assert top == 0, "a chart got rows outside its named datasets"
        assert "values" not in json.dumps(spec.get("data", {})), "rows inline in the spec"
        assert sum(rows) == marks, (spec.get("layer") or spec.get("mark"), rows, marks)
    # Against the raw rows they summarise: a few dozen points, never the records.
    assert sum(sum(rows) for _, rows, _ in sent) < records / 10
