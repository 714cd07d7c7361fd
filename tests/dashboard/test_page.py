"""The page under AppTest against a small known DB: filters, KPI values (checked against
our own SQL), the language switch, paging, and every state that is not plain data."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.checkonce import check_once
from core.erp.erpsim import ExportMode, simulate_export, write_garbage, write_missing_table
from core.state import CheckResult, PersistedState, save_state
from dashboard.i18n import tr
from tests.conftest import free_port, make_config, published_config
from tests.dashboard.conftest import (
    default_good_qty,
    default_period,
    expected_kpis,
    metrics,
    sql_one,
    texts,
)

Page = Callable[..., AppTest]


def fmt(n: float) -> str:
    return f"{round(n):,}"


def assert_kpis(at: AppTest, exp: dict[str, object], prev: dict[str, object] | None,
                lang: str = "ko") -> None:
    shown = metrics(at)
    good = shown[tr("good_qty", lang)]
    assert good[0] == fmt(exp["good"])  # type: ignore[arg-type]
    assert shown[tr("defect_qty", lang)][0] == fmt(exp["defect"])  # type: ignore[arg-type]
    assert shown[tr("defect_rate", lang)][0] == f"{exp['rate'] * 100:.2f}%"  # type: ignore[operator]
    assert shown[tr("achievement", lang)][0] == f"{exp['achievement'] * 100:.1f}%"  # type: ignore[operator]
    assert shown[tr("run_hours", lang)][0] == tr("hours", lang, value=f"{exp['run_h']:,.1f}")
    assert shown[tr("downtime_hours", lang)][0] == tr(
        "hours", lang, value=f"{exp['down_h']:,.1f}")
    if prev is None:
        assert good[1] is None
    else:
        assert good[1] == f"{round(exp['good'] - prev['good']):+,}"  # type: ignore[operator]
        delta_pp = (exp["achievement"] - prev["achievement"]) * 100  # type: ignore[operator]
        unit = "%p" if lang == "ko" else " pp"
        assert shown[tr("achievement", lang)][1] == f"{delta_pp:+,.1f}{unit}"


def test_default_view_shows_the_last_30_days_with_deltas(page: Page, tmp_path: Path,
                                                          small_db: Path) -> None:
    config = published_config(tmp_path, db=small_db, ui={"language": "ko"})
    at = page(config)
    assert not at.exception, at.exception
    start, end = default_period(small_db)
    exp = expected_kpis(small_db, start, end)
    prev = expected_kpis(small_db, start - timedelta(days=30), end - timedelta(days=30))
    assert exp["records"] > 0 and prev["records"] > 0
    assert_kpis(at, exp, prev)
    assert at.title[0].value == "생산 데이터 허브"
    assert dict(at.query_params) == {"lang": "ko"}  # the default period follows the data
    assert at.date_input(key="f_dates").value == (start, end)
    assert f"{fmt(exp['records'])}건" in texts(at)  # the records count by the pager
    table = at.dataframe[0].value
    assert len(table) == 50 and table["work_date"].min() >= start.isoformat()
    assert len(at.get("vega_lite_chart")) == 4  # trend, lines, items, pareto


def test_filters_come_from_the_url(page: Page, tmp_path: Path, small_db: Path) -> None:
    config = published_config(tmp_path, db=small_db)
    start, end = date(2026, 3, 1), date(2026, 3, 15)
    at = page(config, date_from=start.isoformat(), date_to=end.isoformat(),
              line=["P1-L01", "P1-L03"], shift="D", lang="en")
    assert not at.exception, at.exception
    where = "line_code IN ('P1-L01', 'P1-L03') AND shift = 'D'"
    exp = expected_kpis(small_db, start, end, where)
    prev = expected_kpis(small_db, start - timedelta(days=15), end - timedelta(days=15), where)
    assert 0 < exp["records"] < 200
    assert_kpis(at, exp, prev, lang="en")
    assert at.multiselect(key="f_line").value == ["P1-L01", "P1-L03"]
    assert at.selectbox(key="f_shift").value == "D"
    assert at.query_params["line"] == ["P1-L01", "P1-L03"]


def test_changing_a_filter_updates_kpis_and_url(page: Page, tmp_path: Path,
                                                 small_db: Path) -> None:
    config = published_config(tmp_path, db=small_db, ui={"language": "en"})
    at = page(config)
    at.multiselect(key="f_plant").set_value(["P2"]).run()
    at.multiselect(key="f_group").set_value(["기어"]).run()
    assert not at.exception, at.exception
    start, end = default_period(small_db)
    where = ("line_code IN (SELECT line_code FROM lines WHERE plant = 'P2')"
             " AND item_code IN (SELECT item_code FROM items WHERE item_group = '기어')")
    exp = expected_kpis(small_db, start, end, where)
    assert exp["records"] > 0
    assert metrics(at)["Good quantity"][0] == fmt(exp["good"])
    assert metrics(at)["Defect quantity"][0] == fmt(exp["defect"])
    assert at.query_params["plant"] in ("P2", ["P2"])
    assert at.query_params["item_group"] in ("기어", ["기어"])
    # Only P2's lines and the gear family's items are offered now.
    assert at.multiselect(key="f_line").options
    assert all("(P2-" in option for option in at.multiselect(key="f_line").options)
    assert all(" 기어 " in option for option in at.multiselect(key="f_item").options)
    at.button(key="reset_filters").click().run()
    assert "plant" not in at.query_params
    assert metrics(at)["Good quantity"][0] == fmt(expected_kpis(small_db, start, end)["good"])


def test_bad_url_values_are_dropped_with_a_note(page: Page, tmp_path: Path,
                                                small_db: Path) -> None:
    config = published_config(tmp_path, db=small_db, ui={"language": "en"})
    at = page(config, date_from="2026-13-45", line="NOPE-1", shift="X")
    assert not at.exception, at.exception
    notes = " ".join(w.value for w in at.warning)
    assert "date_from='2026-13-45' is not a date" in notes
    assert "line='NOPE-1' is not in the database" in notes
    assert "shift='X' is not D or N" in notes
    start, end = default_period(small_db)
    assert metrics(at)["Good quantity"][0] == fmt(expected_kpis(small_db, start, end)["good"])


def test_an_empty_selection_says_so(page: Page, tmp_path: Path, small_db: Path) -> None:
    config = published_config(tmp_path, db=small_db, ui={"language": "en"})
    at = page(config, date_from="2020-01-01", date_to="2020-01-31")
    assert not at.exception, at.exception
    assert not at.metric
    assert tr("no_records", "en") in texts(at)


def test_language_switch_keeps_the_filters(page: Page, tmp_path: Path, small_db: Path) -> None:
    config = published_config(tmp_path, db=small_db, ui={"language": "auto"})
    at = page(config, line="P1-L02")
    assert at.title[0].value == "생산 데이터 허브"  # auto with no browser word: Korean
    korean = metrics(at)
    at.sidebar.button_group[0].set_value("en").run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Production Data Hub"
    english = metrics(at)
    assert english["Good quantity"][0] == korean["양품 수량"][0]
    assert at.multiselect(key="f_line").value == ["P1-L02"]
    assert at.query_params["lang"] == "en"
    assert "DB Auto-Management" in texts(at)
    at.sidebar.button_group[0].set_value("ko").run()
    assert at.title[0].value == "생산 데이터 허브" and "DB 자동 관리" in texts(at)


def test_config_language_and_url_language(page: Page, tmp_path: Path, small_db: Path) -> None:
    config = published_config(tmp_path, db=small_db, ui={"language": "en"})
    assert page(config).title[0].value == "Production Data Hub"
    assert page(config, lang="ko").title[0].value == "생산 데이터 허브"


def test_records_paging(page: Page, tmp_path: Path, small_db: Path) -> None:
    config = published_config(tmp_path, db=small_db, ui={"language": "en"})
    at = page(config)
    first = at.dataframe[0].value
    at.button(key="page_next").click().run()
    second = at.dataframe[0].value
    assert "Page 2" in texts(at)
    assert set(first["record_id"]).isdisjoint(second["record_id"])
    assert (second["work_date"].iloc[0], second["record_id"].iloc[0]) > (
        first["work_date"].iloc[-1], first["record_id"].iloc[-1])
    at.button(key="page_prev").click().run()
    assert list(at.dataframe[0].value["record_id"]) == list(first["record_id"])
    at.selectbox(key="rows_per_page").set_value(500).run()
    assert len(at.dataframe[0].value) == 500 and "Page 1" in texts(at)


def test_the_default_period_follows_a_new_export(page: Page, tmp_path: Path,
                                                small_db: Path) -> None:
    config = published_config(tmp_path, db=small_db, ui={"language": "en"})
    at = page(config)
    picked = page(config, date_from="2026-03-01", date_to="2026-03-10")
    simulate_export(small_db, ExportMode.REPLACE, rows=1500, seconds=0, seed=5, days=20)
    assert check_once(config).publish == "published"
    new_start, new_end = default_period(small_db)
    assert new_end != date(2026, 3, 31)
    at.run()
    assert at.date_input(key="f_dates").value == (new_start, new_end)
    assert metrics(at)["Good quantity"][0] == fmt(expected_kpis(small_db, new_start,
                                                                 new_end)["good"])
    picked.run()  # a period someone chose stays as chosen
    assert picked.date_input(key="f_dates").value == (date(2026, 3, 1), date(2026, 3, 10))
    assert picked.query_params["date_from"] == "2026-03-01"


def test_new_export_invalidates_every_cache(page: Page, tmp_path: Path, small_db: Path) -> None:
    config = published_config(tmp_path, db=small_db, ui={"language": "en"})
    at = page(config, date_from="2026-01-01", date_to="2026-12-31")
    before = metrics(at)["Good quantity"][0]
    simulate_export(small_db, ExportMode.REPLACE, rows=1500, seconds=0, seed=99, days=20)
    assert check_once(config).publish == "published"
    at.run()
    good = sql_one(small_db, "SELECT SUM(good_qty) FROM production_records "
                             "WHERE work_date BETWEEN '2026-01-01' AND '2026-12-31'")[0]
    assert metrics(at)["Good quantity"][0] == fmt(good) != before


# --- states that are not plain data ------------------------------------------------------


def test_no_database_yet(page: Page, tmp_path: Path) -> None:
    config = make_config(tmp_path, ui={"language": "en"})
    at = page(config)
    assert not at.exception, at.exception
    shown = texts(at)
    assert "No database yet" in shown and str(config.db_path) in shown
    assert not at.metric
    assert "DB Auto-Management" in shown  # the panel is still there


@pytest.mark.parametrize("damage", ["garbage", "empty", "missing_table"])
def test_unreadable_database(page: Page, tmp_path: Path, small_db: Path, damage: str) -> None:
    """The first export is bad: nothing to show, and the held-back reason says why."""
    if damage == "garbage":
        write_garbage(small_db)
        reason = "not an SQLite database"
    elif damage == "empty":
        small_db.write_bytes(b"")
        reason = "is empty"
    else:
        write_missing_table(small_db)
        reason = "lacks the table defect_records"
    config = make_config(tmp_path, db=small_db, ui={"language": "en"})
    assert check_once(config).publish == "held_back"
    at = page(config)
    assert not at.exception, at.exception
    errors = " ".join(e.value for e in at.error)
    assert "The database cannot be read" in errors and reason in errors
    assert not at.metric


def test_a_bad_export_leaves_the_last_good_data(page: Page, tmp_path: Path,
                                                small_db: Path) -> None:
    config = published_config(tmp_path, db=small_db, ui={"language": "en"})
    at = page(config)
    good_before = metrics(at)["Good quantity"][0]
    write_garbage(small_db)
    assert check_once(config).publish == "held_back"
    at.run()
    assert not at.exception, at.exception
    assert metrics(at)["Good quantity"][0] == good_before
    warning = " ".join(w.value for w in at.warning)
    assert "held back" in warning and "not an SQLite database" in warning


def test_an_export_being_written_never_reaches_the_page(page: Page, tmp_path: Path,
                                                        small_db: Path) -> None:
    config = published_config(tmp_path, db=small_db, ui={"language": "en"})
    at = page(config)
    good_before = metrics(at)["Good quantity"][0]
    # The ERP rebuilding in place: a write transaction holds a rollback journal.
    writer = sqlite3.connect(small_db, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE production_records SET good_qty = good_qty + 1000")
        at.run()
        assert not at.exception, at.exception
        assert metrics(at)["Good quantity"][0] == good_before
        fresh = page(config, line="P1-L05")  # a view nobody looked at: from the snapshot
        assert fresh.metric and not fresh.exception
        writer.execute("COMMIT")
    finally:
        writer.close()
    at.run()
    assert metrics(at)["Good quantity"][0] == good_before  # not published yet
    assert check_once(config).publish == "published"
    at.run()
    assert metrics(at)["Good quantity"][0] != good_before


def test_the_note_beside_the_data() -> None:
    from datetime import UTC, datetime, timedelta

    from core.state import Activity, DbStatus, HubState, StatusSnapshot
    from core.store import HeldBack, Published
    from dashboard.data import Note, _note

    now = datetime.now(UTC)
    pub = Published(version="v", source_version="s", as_of=now, published_at=now, rows=1,
                    file="f")
    base = StatusSnapshot(state=HubState.HEALTHY, message="m", db=DbStatus(path="x"),
                          published=pub)
    assert _note(None) == (Note.NONE, "")
    assert _note(base)[0] is Note.NONE
    settling = base.model_copy(update={"activity": Activity.SETTLING})
    assert _note(settling)[0] is Note.UPDATING
    newer = base.model_copy(update={"activity": Activity.CHECKING,
                                    "last_db_update": now + timedelta(seconds=1)})
    assert _note(newer)[0] is Note.UPDATING
    routine = base.model_copy(update={"activity": Activity.CHECKING,
                                      "last_db_update": now - timedelta(seconds=1)})
    assert _note(routine)[0] is Note.NONE  # a periodic check of the same export
    held = base.model_copy(update={"held_back": HeldBack(at=now, reason="r", version="x")})
    assert _note(held) == (Note.HELD_BACK, "r")


def test_api_down_is_shown_and_data_still_served(page: Page, tmp_path: Path,
                                                 small_db: Path) -> None:
    config = published_config(tmp_path, db=small_db, ui={"language": "en"},
                         api={"enabled": True, "port": free_port()})
    save_state(config.state_file, PersistedState(
        last_check=CheckResult(at="2026-03-31T22:00:00Z", result="healed",
                               healed=["idx_records_work_date"])))
    at = page(config)
    assert not at.exception, at.exception
    errors = " ".join(e.value for e in at.error)
    assert "The hub's API is not answering" in errors and "connection refused" in errors
    # the data does not depend on the API
    assert metrics(at)["Good quantity"][0] == default_good_qty(small_db)
    shown = texts(at)
    assert "Last saved state" in shown and "idx_records_work_date" in shown


def test_api_turned_off(page: Page, tmp_path: Path, small_db: Path) -> None:
    config = published_config(tmp_path, db=small_db, ui={"language": "ko"})
    at = page(config)
    assert "api.enabled = false" in texts(at)


def test_bad_config_is_a_message(page: Page, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 small_db: Path) -> None:
    config = published_config(tmp_path, db=small_db)
    at = page(config, run=False)
    monkeypatch.setenv("PDH_DASHBOARD_CONFIG", '{"watch": {"settle_checks": 0}}')
    at.run()
    assert not at.exception, at.exception
    error = at.error[0].value
    assert "Configuration error" in error and "watch.settle_checks" in error


def test_the_page_reads_a_copy_on_a_share_without_writing(page: Page, tmp_path: Path,
                                                          small_db: Path) -> None:
    """With ``[heal] in_place = false`` (a read-only share) the hub only copies the file
    (mode=ro: nothing written, nothing left beside it) and the page reads the copy."""
    copy = tmp_path / "share" / "production_analysis.db"
    copy.parent.mkdir()
    shutil.copyfile(small_db, copy)
    before = copy.read_bytes()
    copy.parent.chmod(0o555)
    try:
        at = page(published_config(tmp_path, db=copy, ui={"language": "en"},
                                   heal={"in_place": False}))
        assert not at.exception
        assert metrics(at)["Good quantity"][0] == default_good_qty(copy)
    finally:
        copy.parent.chmod(0o755)
    assert copy.read_bytes() == before
    assert sorted(p.name for p in copy.parent.iterdir()) == ["production_analysis.db"]
