"""The DB Auto-Management panel under AppTest, against a real hub with its real API
running in a background thread (as ``pdh run`` has them)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from streamlit.testing.v1 import AppTest

from agent.cli.store import cmd_status
from agent.tray.texts import tr
from agent.tray.view import present
from core.config import load_config
from core.hubapi import PREFIX
from core.state import HubState, StatusSnapshot
from core.status_text import status_line
from core.words import LANGUAGES, state_label
from dashboard.i18n import fmt_time
from tests.conftest import free_port, make_config, wait_for
from tests.dashboard.conftest import ThreadedHub, default_good_qty, metrics, texts

Page = Callable[..., AppTest]


def test_panel_shows_the_hub_and_its_controls_work(page: Page, tmp_path: Path,
                                                    small_db: Path) -> None:
    config = make_config(tmp_path, db=small_db, ui={"language": "en"},
                         api={"enabled": True, "port": free_port()})
    with ThreadedHub(config).running() as th:
        th.wait_at_rest()
        first = th.status().last_check
        assert first is not None and first.result == "healed"  # the demo DB has no indexes
        at = page(config)
        assert not at.exception, at.exception
        shown = texts(at)
        assert "DB Auto-Management" in shown and "Healthy" in shown
        # The last check's own line, not just a word the event list has too:
        assert f"**Last Index Check**  \n{fmt_time(first.at, 'en')} · healed" in shown
        assert "Healed: " + ", ".join(first.healed) in shown  # what was healed
        assert "idx_records_work_date" in first.healed
        assert "Indexes healed" in shown  # recent events, in the page's language
        assert not at.error
        assert metrics(at)["Good quantity"][0] == default_good_qty(small_db)

        # Run Check Now: the hub checks again.
        at.button(key="run_check").click().run()
        assert "Check requested." in texts(at)
        wait_for(lambda: th.status().last_check.at > first.at, 15, message="a new check")
        assert th.status().last_check.result == "ok"

        # Auto Mode off and on again, from the page.
        assert at.toggle(key="auto_mode_toggle").value is True
        at.toggle(key="auto_mode_toggle").set_value(False).run()
        wait_for(lambda: th.status().auto_mode is False, 5, message="auto mode off")
        assert th.status().state is HubState.PAUSED
        assert at.toggle(key="auto_mode_toggle").value is False
        assert "Paused" in texts(at)
        at.toggle(key="auto_mode_toggle").set_value(True).run()
        wait_for(lambda: th.status().auto_mode is True, 5, message="auto mode on")


def test_panel_in_korean(page: Page, tmp_path: Path, small_db: Path) -> None:
    config = make_config(tmp_path, db=small_db, ui={"language": "ko"},
                         api={"enabled": True, "port": free_port()})
    with ThreadedHub(config).running() as th:
        th.wait_at_rest()
        at = page(config)
        shown = texts(at)
        for label in ("DB 자동 관리", "최근 DB 업데이트", "최근 인덱스 점검", "다음 점검",
                      "복구함", "최근 이벤트"):
            assert label in shown, label
        assert at.button(key="run_check").label == "지금 점검"
        assert at.toggle(key="auto_mode_toggle").label == "자동 모드"


def test_hub_gone_mid_session_turns_into_api_down(page: Page, tmp_path: Path,
                                                  small_db: Path) -> None:
    config = make_config(tmp_path, db=small_db, ui={"language": "en"},
                         api={"enabled": True, "port": free_port()})
    with ThreadedHub(config).running() as th:
        th.wait_at_rest()
        at = page(config)
        assert not at.error
    at.run()
    assert "The hub's API is not answering" in " ".join(e.value for e in at.error)
    assert "Last saved state" in texts(at)  # the hub saved its state on the way out
    assert metrics(at)["Good quantity"][0] == default_good_qty(small_db)
    assert "run_check" not in [b.key for b in at.button]  # no control without the hub


def test_panel_shows_what_is_served_held_back_and_old(page: Page, tmp_path: Path,
                                                      small_db: Path) -> None:
    """A held-back export and old data, beside the data still served; Publish anyway
    from the page publishes it."""
    from core.erp.erpsim import ExportMode, simulate_export

    config = make_config(tmp_path, db=small_db, ui={"language": "en"},
                         api={"enabled": True, "port": free_port()},
                         freshness={"max_data_age": 86400})  # the demo data ends in March
    with ThreadedHub(config).running() as th:
        wait_for(lambda: th.status().published is not None
                 and th.status().freshness.state == "stale_data", 30,
                 message="published, and judged old")
        simulate_export(small_db, ExportMode.REPLACE, rows=600, seconds=0.0, seed=3, days=20)
        wait_for(lambda: th.status().held_back is not None and not th.hub.busy, 30,
                 message="the export held back")
        at = page(config)
        assert not at.exception, at.exception
        shown = texts(at)
        assert "Data served" in shown and "2,000 records" in shown
        warnings = " ".join(w.value for w in at.warning)
        assert "The data is old" in warnings and "newest production date is" in warnings
        assert "Latest export held back" in warnings and "600 production records" in warnings
        # the last good data, still shown (the snapshot's, not the held-back file's)
        assert metrics(at)["Good quantity"][0] == default_good_qty(
            th.hub.publisher.store.path_of(th.status().published))
        at.button(key="publish_anyway").click().run()
        wait_for(lambda: th.status().held_back is None, 15, message="published anyway")
        assert th.status().published is not None and th.status().published.rows == 600


def test_every_ui_shows_the_same_status_line(page: Page, tmp_path: Path, small_db: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """One hub, one moment: the tray's menu, the dashboard's panel, ``pdh status`` and
    /hub/status read the one line :func:`core.status_text.status_line` makes of its facts
    (in each language the UI has)."""
    port = free_port()
    folder = tmp_path.as_posix()
    cfg = tmp_path / "pdh.toml"
    cfg.write_text(f"""
[database]
path = "{small_db.as_posix()}"
[watch]
settle_interval = 0.2
settle_checks = 2
poll_interval = 0.2
[api]
port = {port}
[dashboard]
enabled = false
[ui]
notifications = false
language = "en"
[log]
dir = "{folder}/logs"
[state]
dir = "{folder}/state"
[store]
dir = "{folder}/store"
""", encoding="utf-8")
    config = load_config(cfg).config
    with ThreadedHub(config).running() as th:
        th.wait_at_rest()
        status = th.status()
        line = {lang: status_line(status, lang) for lang in LANGUAGES}
        assert line["en"].startswith("data as of ") and line["ko"].endswith("게시됨"), line
        answer = httpx.get(f"http://127.0.0.1:{port}{PREFIX}/hub/status", timeout=10)
        served = answer.json()
        assert answer.status_code == 200, served
        assert served["message"] == line["en"]
        assert status_line(StatusSnapshot.model_validate(served), "ko") == line["ko"]
        assert cmd_status(argparse.Namespace(config=cfg, db=None, json=False)) == 0
        assert f"state:            healthy ({line['en']})\n" in capsys.readouterr().out
        for lang in LANGUAGES:
            menu = present(status, lang, autostart_on=None).menu
            assert menu[0].text == f"{tr('status', lang, state=state_label(status.state, lang))}"\
                f": {line[lang]}"
            at = page(config, lang=lang)
            assert not at.exception, at.exception
            assert line[lang] in [str(c.value) for c in at.caption], (lang, texts(at))
