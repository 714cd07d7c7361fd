"""The dashboard's parts on their own: labels, formats, the URL's filters, the CSV, the
settings handed to the child process, and the hub API client against real servers."""

from __future__ import annotations

import csv
import http.server
import io
import threading
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from core import queries as q
from core.config import ConfigError
from core.hubapi import ApiDown, HubApi
from dashboard import data
from dashboard.filters import Catalog, parse_query
from dashboard.i18n import (
    delta_text,
    fmt_hours,
    fmt_int,
    fmt_pct,
    labels_complete,
    pick_language,
)
from dashboard.settings import (
    ENV_DASHBOARD_CONFIG,
    api_base_url,
    config_env,
    load_dashboard_config,
    parent_pid,
    streamlit_argv,
)
from tests.conftest import free_port, make_config
from tests.dashboard.conftest import sql_one


def test_every_label_has_both_languages_and_the_same_fields() -> None:
    assert labels_complete() == []  # both languages, the same {fields} in each


def test_language_choice() -> None:
    assert pick_language("en", "ko", "ko-KR") == "en"  # the URL wins
    assert pick_language(None, "en", "ko-KR") == "en"  # then the config
    assert pick_language("fr", "auto", "en-US") == "en"  # then the browser
    assert pick_language(None, "auto", "ko_KR") == "ko"
    assert pick_language(None, "auto", "de-DE") == "ko"  # the factory's language
    assert pick_language(None, "auto", None) == "ko"


def test_number_formats() -> None:
    assert fmt_int(1234567) == "1,234,567" and fmt_int(None) == "-"
    assert fmt_pct(0.01234, 2) == "1.23%" and fmt_pct(None) == "-"
    assert fmt_hours(90, "en") == "1.5 h" and fmt_hours(6000, "ko") == "100.0시간"
    assert delta_text(1200, 1000, kind="int", lang="en") == "+200"
    assert delta_text(900, 1000, kind="int", lang="en") == "-100"
    assert delta_text(0.015, 0.012, kind="pct", lang="ko", digits=2) == "+0.30%p"
    assert delta_text(0.95, 0.96, kind="pct", lang="en") == "-1.0 pp"
    assert delta_text(120, 60, kind="hours", lang="ko") == "+1.0시간"
    assert delta_text(1, None, kind="int", lang="en") is None


def catalog() -> Catalog:
    lines = [q.Line("P1-L01", "1공장 프레스 1라인", "P1", "프레스"),
             q.Line("P2-L01", "2공장 가공 1라인", "P2", "가공")]
    items = [q.Item("BR-1001", "브래킷 A형", "브래킷", None, "EA"),
             q.Item("GR-1001", "기어 A형", "기어", None, "EA")]
    return Catalog.build(q.DateRange(date(2026, 1, 1), date(2026, 3, 31), 10), items, lines)


def test_url_filters() -> None:
    cat = catalog()
    choice, problems = parse_query({}, cat)
    assert (choice.date_from, choice.date_to) == (date(2026, 3, 2), date(2026, 3, 31))
    assert problems == []
    choice, problems = parse_query({"date_from": ["2026-02-01"], "plant": ["P2"],
                                    "line": ["P1-L01", "P2-L01", "P2-L01"],
                                    "item": ["GR-1001"], "shift": ["N"]}, cat)
    assert choice.date_to == date(2026, 2, 1)  # one date: that day
    assert choice.line == ("P2-L01",)  # P1-L01 is not in plant P2
    assert problems == ["line='P1-L01' is not in the database"]
    f = choice.filters()
    assert f.plant == ("P2",) and f.item_code == ("GR-1001",) and f.shift == ("N",)
    assert choice.query() == {"date_from": "2026-02-01", "date_to": "2026-02-01",
                              "plant": ["P2"], "line": ["P2-L01"], "item": ["GR-1001"],
                              "shift": "N"}
    choice, problems = parse_query({"date_from": ["2026-03-10"], "date_to": ["2026-03-01"]}, cat)
    assert choice == cat.default() and "is after date_to" in problems[0]


def test_csv_export_is_excel_friendly_and_complete(small_db: Path) -> None:
    f = q.Filters(date_from=date(2026, 3, 1), date_to=date(2026, 3, 31), shift="D")
    raw = data.records_csv(small_db, f)
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert tuple(rows[0]) == q.RECORD_FIELDS
    expected = sql_one(small_db, "SELECT COUNT(*) FROM production_records WHERE work_date"
                                 " BETWEEN '2026-03-01' AND '2026-03-31' AND shift = 'D'")[0]
    assert len(rows) - 1 == expected > 0
    assert any("라인" in (row[4] or "") for row in rows[1:])  # Hangul intact


def test_config_reaches_the_child(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = make_config(tmp_path, ui={"language": "en"})
    env = config_env(config, parent_pid=4321)
    assert load_dashboard_config(env) == config
    assert parent_pid(env) == 4321 and parent_pid({}) is None
    with pytest.raises(ConfigError, match="watch.settle_checks"):
        load_dashboard_config({ENV_DASHBOARD_CONFIG: '{"watch": {"settle_checks": 0}}'})
    # Started by hand: the usual discovery, and PDH_DB.
    toml = tmp_path / "pdh.toml"
    toml.write_text('[ui]\nlanguage = "en"\n', "utf-8")
    monkeypatch.setenv("PDH_CONFIG", str(toml))
    loaded = load_dashboard_config({"PDH_DB": str(tmp_path / "x.db")})
    assert loaded.ui.language == "en" and loaded.db_path == (tmp_path / "x.db").resolve()
    argv = streamlit_argv("python", config, port=9999)
    assert argv[:3] == ["python", "-m", "dashboard.serve"]
    assert argv[argv.index("--server.port") + 1] == "9999"
    assert argv[argv.index("--server.headless") + 1] == "true"
    assert argv[argv.index("--browser.gatherUsageStats") + 1] == "false"


def test_api_address() -> None:
    cfg = make_config(Path("/tmp"), api={"host": "0.0.0.0", "port": 8123})
    assert api_base_url(cfg) == "http://127.0.0.1:8123"
    cfg = make_config(Path("/tmp"), api={"host": "::1", "port": 8123})
    assert api_base_url(cfg) == "http://[::1]:8123"


@pytest.fixture
def not_the_hub() -> Iterator[str]:
    """A real HTTP server on loopback that answers, but not like the hub."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<html>some other program</html>")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_api_client_says_what_is_wrong(not_the_hub: str) -> None:
    with pytest.raises(ApiDown, match="did not answer with the hub's status"):
        HubApi(not_the_hub).status()
    with pytest.raises(ApiDown, match="connection refused"):
        HubApi(f"http://127.0.0.1:{free_port()}").status()


