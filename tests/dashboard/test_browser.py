"""End to end in a real headless browser: the hub (with its API) supervises the real
dashboard; Debian's chromium, driven by Playwright, reads what a person would see."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from core.erp.erpsim import ExportMode, simulate_export
from core.state import ServerState
from dashboard.i18n import fmt_time
from tests.browser import BROWSER_TZ, CHROMIUM, MISSING, chromium_page
from tests.conftest import free_port, make_config, wait_for
from tests.dashboard.conftest import ThreadedHub, expected_kpis, last_day

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=MISSING),
]


@pytest.fixture
def browser_page() -> Iterator[Any]:
    with chromium_page() as page:
        yield page


def wait_rendered(page: Any) -> None:
    """Until Streamlit has finished running the script and the KPIs are on the page."""
    page.wait_for_selector('[data-testid="stMetric"]')
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]')


def metric(page: Any, label: str, timeout: float = 30_000) -> str:
    box = page.locator('[data-testid="stMetric"]').filter(has_text=label).first
    try:
        value = box.locator('[data-testid="stMetricValue"]').inner_text(timeout=timeout)
    except Exception:  # mid-rerun, the metric may be gone for a moment
        return ""
    return str(value).strip()


def panel_value(page: Any, label: str) -> str:
    text = page.locator('[data-testid="stSidebar"]').inner_text()
    found = re.search(rf"{re.escape(label)}\s*\n\s*([^\n]+)", text)
    return found.group(1).strip() if found else ""


def period(db: Path) -> tuple[date, date]:
    end = last_day(db)
    return end - timedelta(days=29), end


def test_dashboard_in_a_browser_follows_an_export(browser_page: Any, tmp_path: Path,
                                                  small_db: Path) -> None:
    page = browser_page
    config = make_config(
        tmp_path, db=small_db, ui={"language": "en"},
        api={"enabled": True, "port": free_port()},
        dashboard={"enabled": True, "port": free_port(), "refresh_interval": 0.5},
    )
    tz = ZoneInfo(BROWSER_TZ)
    with ThreadedHub(config).running() as th:
        th.wait_at_rest()
        wait_for(lambda: th.status().servers["dashboard"].state is ServerState.RUNNING, 60,
                 message="the supervised dashboard to run")
        url = th.status().servers["dashboard"].url

        page.goto(url)
        wait_rendered(page)
        exp = expected_kpis(small_db, *period(small_db))
        assert metric(page, "Good quantity") == f"{exp['good']:,}"
        assert metric(page, "Defect quantity") == f"{exp['defect']:,}"
        status = th.status()
        first_update = fmt_time(status.last_db_update, "en", tz)
        assert panel_value(page, "Last DB Update") == first_update
        assert panel_value(page, "Last Index Check").startswith(
            fmt_time(status.last_check.at, "en", tz))

        # The ERP replaces the file with different data; the hub notices and heals it.
        simulate_export(small_db, ExportMode.REPLACE, rows=1500, seconds=0.2, seed=77, days=40)
        th.wait_at_rest()
        new = expected_kpis(small_db, *period(small_db))
        assert new["good"] != exp["good"]
        new_update = fmt_time(th.status().last_db_update, "en", tz)
        assert new_update != first_update

        # The open page notices by itself (the panel's refresh reruns the page)...
        wait_for(lambda: metric(page, "Good quantity", 500) == f"{new['good']:,}", 20,
                 message="the open page to show the new numbers")
        # ...and a reload shows the new numbers and the new Last DB Update.
        page.reload()
        wait_rendered(page)
        assert metric(page, "Good quantity") == f"{new['good']:,}"
        assert metric(page, "Defect quantity") == f"{new['defect']:,}"
        wait_for(lambda: panel_value(page, "Last DB Update") == new_update, 10,
                 message="the panel's new Last DB Update")

        # Run Check Now from the page.
        before = th.status().last_check.at
        page.get_by_role("button", name="Run Check Now").click()
        wait_for(lambda: th.status().last_check.at > before, 20,
                 message="the hub to run the check asked for from the page")
        page.get_by_text("Check requested.").wait_for()
        wait_for(lambda: panel_value(page, "Last Index Check").startswith(
            fmt_time(th.status().last_check.at, "en", tz)), 10,
            message="the panel's new Last Index Check")


def test_language_switch_in_the_browser(browser_page: Any, tmp_path: Path,
                                        small_db: Path) -> None:
    page = browser_page
    config = make_config(tmp_path, db=small_db, ui={"language": "ko"},
                         dashboard={"enabled": True, "port": free_port()})
    with ThreadedHub(config).running() as th:
        wait_for(lambda: th.status().servers.get("dashboard") is not None
                 and th.status().servers["dashboard"].state is ServerState.RUNNING, 60,
                 message="the supervised dashboard to run")
        page.goto(th.status().servers["dashboard"].url + "?line=P1-L02")
        wait_rendered(page)
        assert page.get_by_role("heading", name="생산 데이터 허브").is_visible()
        good_ko = metric(page, "양품 수량")
        page.locator('[data-testid="stSidebar"]').get_by_text("English", exact=True).click()
        page.get_by_role("heading", name="Production Data Hub").wait_for()
        wait_rendered(page)
        assert metric(page, "Good quantity") == good_ko
        wait_for(lambda: "lang=en" in page.url and "line=P1-L02" in page.url, 10,
                 message="the language and filter in the address")
