"""What a page with the dashboard's elements costs in Streamlit itself, with no data and
no hub: ``python bench/bench_streamlit_floor.py [--loads 5]``.

The target is a warm dashboard load within 1.3 x a bare one-metric page. This
measures the floor under that target: one plain Streamlit script, served with the
dashboard's own flags, whose ``?parts=N`` query draws the first N groups of what the
default view draws, from constant in-memory data:

0. one ``st.metric`` (the bare page of bench/bench_dashboard.py)
1. the six KPIs (metrics with deltas) and the title
2. + the sidebar: language radio, date range, four multiselects, the status panel's
   eight markdown blocks and a toggle and button
3. + one Vega-Lite chart (30 points)
4. + three more charts (the daily trend, items, lines, Pareto)
5. + the records grid (``st.dataframe``, 100 rows x 15 columns) and the CSV button

Each level is loaded ``--loads`` times in new pages of one headless chromium (static
files cached), in turn with the others so all see the same machine; a load ends when
every element of the level is drawn and the script run has ended. Prints each level's
median and its ratio to level 0. Nothing is written to the repo.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import describe  # noqa: E402
from tests.browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.conftest import free_port  # noqa: E402

PAGE = r'''
import datetime as dt
import streamlit as st

parts = int(st.query_params.get("parts", "0"))
st.set_page_config(page_title="floor", layout="wide")
if parts == 0:
    st.metric("생산량", "1,234,567")
    st.stop()

st.title("생산 분석 대시보드")
cols = st.columns(6)
for i, col in enumerate(cols):
    col.metric(f"KPI {i}", f"{1234567 + i:,}", delta=f"{i - 2:+.1f}%")
if parts >= 2:
    with st.sidebar:
        st.radio("Language", ["한국어", "English"], horizontal=True)
        st.date_input("기간", (dt.date(2026, 3, 1), dt.date(2026, 3, 30)))
        for name in ("공장", "라인", "품목군", "품목"):
            st.multiselect(name, [f"{name} {i}" for i in range(20)])
        st.subheader("DB Auto-Management")
        for i in range(8):
            st.markdown(f"**Line {i}**  \nvalue {i}")
        st.toggle("Auto Mode", value=True)
        st.button("Run Check Now", type="primary")
if parts >= 3:
    days = [(dt.date(2026, 3, 1) + dt.timedelta(days=i)).isoformat() for i in range(30)]
    values = [{"day": d, "good": 1000 + 37 * i % 400, "defect": 20 + i % 9}
              for i, d in enumerate(days)]

    def chart(kind: str, x: str, y: str) -> dict:
        return {"mark": {"type": kind, "tooltip": True},
                "encoding": {"x": {"field": x, "type": "ordinal"},
                             "y": {"field": y, "type": "quantitative"}},
                "data": {"values": values}}

    st.vega_lite_chart(chart("line", "day", "good"), use_container_width=True)
    if parts >= 4:
        left, right = st.columns(2)
        left.vega_lite_chart(chart("bar", "day", "defect"), use_container_width=True)
        right.vega_lite_chart(chart("bar", "day", "good"), use_container_width=True)
        st.vega_lite_chart(chart("bar", "day", "defect"), use_container_width=True)
if parts >= 5:
    rows = [{f"col{c}": f"{r}-{c}" if c % 2 else r * c for c in range(15)} for r in range(100)]
    st.dataframe(rows, use_container_width=True)
    st.download_button("CSV", data="a,b\n1,2\n", file_name="records.csv")
'''

LEVELS = ["one metric (bare)", "6 KPIs + title", "+ sidebar filters and panel",
          "+ 1 chart", "+ 3 more charts", "+ records grid and CSV button"]
CHARTS = {0: 0, 1: 0, 2: 0, 3: 1, 4: 4, 5: 4}


def drawn(page: Any, parts: int) -> None:
    page.wait_for_selector('[data-testid="stMetric"]')
    if parts >= 2:
        page.get_by_text("Run Check Now").wait_for()
    if CHARTS[parts]:
        page.wait_for_function(
            "n => document.querySelectorAll('[data-testid=\"stVegaLiteChart\"] canvas,"
            " [data-testid=\"stVegaLiteChart\"] svg').length >= n", arg=CHARTS[parts])
    if parts >= 5:
        page.wait_for_selector('[data-testid="stDataFrame"]')
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]')


def load(context: Any, url: str, parts: int) -> float:
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        started = time.perf_counter()
        page.goto(f"{url}/?parts={parts}")
        drawn(page, parts)
        return time.perf_counter() - started
    finally:
        page.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, default=5, help="loads of each level")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    print(describe(), flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as scratch:
        script = Path(scratch) / "floor.py"
        script.write_text(PAGE, encoding="utf-8")
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(script), "--server.headless",
             "true", "--server.address", "127.0.0.1", "--server.port", str(port),
             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
             "--server.runOnSave", "false", "--client.toolbarMode", "viewer",
             "--theme.base", "light"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=scratch)
        url = f"http://127.0.0.1:{port}"
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=str(CHROMIUM),
                                             args=CHROMIUM_ARGS)
                context = browser.new_context(viewport={"width": 1400, "height": 1000},
                                              locale="ko-KR", timezone_id="Asia/Seoul")
                deadline = time.monotonic() + 60
                while True:  # the server's start, then every level once (static files)
                    try:
                        for parts in range(len(LEVELS)):
                            load(context, url, parts)
                        break
                    except Exception:
                        if proc.poll() is not None or time.monotonic() > deadline:
                            raise
                        time.sleep(0.5)
                times: dict[int, list[float]] = {p: [] for p in range(len(LEVELS))}
                for _ in range(args.loads):
                    for parts in range(len(LEVELS)):
                        times[parts].append(load(context, url, parts))
                browser.close()
        finally:
            proc.terminate()
            proc.wait(15)
    bare = statistics.median(times[0])
    print(f"{'level':<34}{'median s':>9}{'min':>7}{'max':>7}{'x bare':>8}")
    for parts, name in enumerate(LEVELS):
        t = times[parts]
        print(f"{parts} {name:<32}{statistics.median(t):>9.2f}{min(t):>7.2f}{max(t):>7.2f}"
              f"{statistics.median(t) / bare:>8.2f}")
    print(f"loads per level: {args.loads}, in turn; load average "
          f"{' '.join(Path('/proc/loadavg').read_text().split()[:3])} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
