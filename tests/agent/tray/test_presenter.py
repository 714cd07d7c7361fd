"""The pure side of the tray: snapshot + language -> colour, tooltip, menu; icon art."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from importlib import resources

import pytest
from PIL import Image

from agent.tray.icons import ICON_SIZES, state_icon
from agent.tray.view import Action, MenuEntry, TrayView, docs_url, present
from core.language import resolve_language, system_language
from core.state import (
    CheckResult,
    DbStatus,
    HubState,
    ServerState,
    ServerStatus,
    StatusSnapshot,
)
from core.words import STATE_COLOURS
from tests.icon_colours import nearest_state

NOW = datetime(2026, 3, 31, 14, 30, tzinfo=UTC)


def snap(state: HubState = HubState.HEALTHY, **kw: object) -> StatusSnapshot:
    data: dict[str, object] = {
        "state": state,
        "message": "all indexes in place",
        "db": DbStatus(path="/data/production_analysis.db", exists=True),
        "last_db_update": NOW - timedelta(minutes=28),
        "last_check": CheckResult(at=NOW - timedelta(minutes=27), result="healed",
                                  healed=["idx_a", "idx_b", "idx_c", "statistics"],
                                  duration_s=2.4),
        "next_check": NOW + timedelta(minutes=33),
    }
    data.update(kw)
    return StatusSnapshot.model_validate(data)


def entry(view: TrayView, action: Action) -> MenuEntry:
    def walk(entries: tuple[MenuEntry, ...]) -> MenuEntry | None:
        for e in entries:
            if e.action is action:
                return e
            found = walk(e.children)
            if found:
                return found
        return None

    found = walk(view.menu)
    assert found is not None, action
    return found


@pytest.mark.parametrize("state", list(HubState))
def test_each_state_has_its_own_colour_and_icon(state: HubState) -> None:
    view = present(snap(state), "en", autostart_on=False, now=NOW, tz=UTC)
    assert view.state is state
    img = state_icon(state)
    assert img.size == (64, 64) and img.mode == "RGBA"
    # The body of the glyph (centre, between the bands) is the state colour itself.
    assert img.getpixel((32, 26))[:3] == STATE_COLOURS[state].rgb
    assert nearest_state(img.getpixel((32, 26))[:3]) is state
    assert img.getpixel((0, 0))[3] == 0  # transparent around the glyph


def test_colours_are_far_apart_so_a_screenshot_can_tell_them() -> None:
    colours = [colour.rgb for colour in STATE_COLOURS.values()]
    for i, a in enumerate(colours):
        for b in colours[i + 1:]:
            assert sum((x - y) ** 2 for x, y in zip(a, b, strict=True)) ** 0.5 > 80


def test_art_exists_at_every_size_and_in_the_ico() -> None:
    for size in ICON_SIZES:
        assert state_icon(HubState.ERROR, size).size == (size, size)
    # The Windows icon the zip and the MSI ship (icons/pdh.ico, made by icons/make_icons.py).
    with Image.open(str(resources.files("icons").joinpath("pdh.ico"))) as ico:
        assert set(ico.info["sizes"]) == {(s, s) for s in ICON_SIZES}
    with pytest.raises(ValueError, match="no icon art at 20 px"):
        state_icon(HubState.ERROR, 20)


def test_tooltip_in_english() -> None:
    view = present(snap(), "en", autostart_on=False, now=NOW, tz=UTC)
    assert view.tooltip == (
        "Production Data Hub: Healthy\n"
        "No data published yet\n"
        "Last DB Update: 14:02\n"
        "Last Index Check: 14:03 (3 restored)\n"
        "Next Check: 15:03"
    )


def test_tooltip_in_korean_with_older_dates_and_a_failed_check() -> None:
    s = snap(HubState.ERROR, last_db_update=NOW - timedelta(days=1),
             last_check=CheckResult(at=NOW - timedelta(days=1), result="failed", error="x"),
             next_check=None)
    view = present(s, "ko", autostart_on=False, now=NOW, tz=UTC)
    assert view.tooltip == (
        "생산 데이터 허브: 오류\n"
        "게시된 데이터 없음\n"
        "마지막 DB 업데이트: 03-30 14:30\n"
        "마지막 인덱스 점검: 03-30 14:30 (실패)"
    )
    assert view.menu[0].text == "상태: 오류: 인덱스 점검 실패: x"  # the failed check, why
    assert [e.text for e in view.menu if not e.separator][1:5] == [
        "지금 점검", "자동 모드", "보류된 내보내기 게시", "대시보드 열기"]


def test_tooltip_before_any_check_and_within_the_windows_limit() -> None:
    view = present(snap(last_check=None, last_db_update=None), "en", autostart_on=None,
                   now=NOW, tz=UTC)
    assert "Last DB Update: never" in view.tooltip
    assert "Last Index Check: never (-)" in view.tooltip
    assert len(view.tooltip) <= 127
    stats_only = snap(last_check=CheckResult(at=NOW, result="healed", healed=["statistics"]))
    assert "(statistics refreshed)" in present(stats_only, "en", autostart_on=None,
                                               now=NOW, tz=UTC).tooltip


def test_menu_before_the_hub_has_spoken() -> None:
    view = present(None, "en", autostart_on=None, now=NOW)
    assert view.state is HubState.WORKING
    assert view.tooltip == "Production Data Hub: Starting"
    assert entry(view, Action.CHECK_NOW).enabled is False
    assert entry(view, Action.AUTO_MODE).enabled is False
    assert entry(view, Action.AUTOSTART).enabled is False  # not available
    assert entry(view, Action.QUIT).enabled is True


def test_menu_layout_and_checkable_items() -> None:
    view = present(snap(auto_mode=False, state=HubState.PAUSED), "en", autostart_on=True,
                   now=NOW, tz=UTC)
    texts = [("-" if e.separator else e.text) for e in view.menu]
    assert texts == [
        "Status: Paused: indexes restored", "-", "Check Now", "Auto Mode",
        "Publish Anyway", "-",
        "Open Dashboard", "Open API Docs", "Dashboard Server", "Open Log Folder",
        "Start at Login", "-", "Quit",
    ]
    assert view.menu[0].enabled is False and view.menu[0].action is None
    assert entry(view, Action.AUTO_MODE).checked is False
    assert entry(view, Action.PUBLISH_ANYWAY).enabled is False  # nothing held back
    assert entry(view, Action.AUTOSTART).checked is True
    assert entry(view, Action.OPEN_DASHBOARD).default is True
    assert entry(view, Action.CHECK_NOW).checked is None
    working = present(snap(HubState.WORKING), "en", autostart_on=True, now=NOW)
    assert entry(working, Action.CHECK_NOW).enabled is False


@pytest.mark.parametrize(
    ("state", "restart", "stop", "start", "open_"),
    [
        (ServerState.RUNNING, True, True, False, True),
        (ServerState.STARTING, False, True, False, False),
        (ServerState.STOPPED, False, False, True, False),
        (ServerState.FAILED, True, False, True, False),
        (ServerState.GAVE_UP, True, False, True, False),
    ],
)
def test_dashboard_items_follow_the_server_state(
    state: ServerState, restart: bool, stop: bool, start: bool, open_: bool
) -> None:
    servers = {"dashboard": ServerStatus(state=state, url="http://127.0.0.1:8501/")}
    view = present(snap(servers=servers), "en", autostart_on=False, now=NOW)
    assert entry(view, Action.DASHBOARD_RESTART).enabled is restart
    assert entry(view, Action.DASHBOARD_STOP).enabled is stop
    assert entry(view, Action.DASHBOARD_START).enabled is start
    assert entry(view, Action.OPEN_DASHBOARD).enabled is open_
    assert view.dashboard_url == ("http://127.0.0.1:8501/" if open_ else None)


def test_no_dashboard_server_disables_its_items_and_api_docs_follow_the_api() -> None:
    view = present(snap(), "en", autostart_on=False, now=NOW)
    server_menu = next(e for e in view.menu if e.text == "Dashboard Server")
    assert server_menu.enabled is False
    assert entry(view, Action.OPEN_API_DOCS).enabled is False
    servers = {"api": ServerStatus(state=ServerState.RUNNING, url="http://127.0.0.1:8000/api/v1")}
    view = present(snap(servers=servers), "en", autostart_on=False, now=NOW)
    assert view.api_docs_url == "http://127.0.0.1:8000/docs"
    assert docs_url("http://[::1]:9000") == "http://[::1]:9000/docs"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"LANG": "ko_KR.UTF-8"}, "ko"),
        ({"LC_ALL": "ko_KR.eucKR", "LANG": "en_US.UTF-8"}, "ko"),
        ({"LANG": "en_US.UTF-8"}, "en"),
        ({"LANG": "C.UTF-8"}, "en"),
        ({"LANGUAGE": "Korean_Korea"}, "ko"),
    ],
)
def test_auto_language_follows_the_locale(env: dict[str, str], expected: str) -> None:
    assert system_language(env) == expected
    assert resolve_language("auto", env) == expected
    assert resolve_language("en", {"LANG": "ko_KR.UTF-8"}) == "en"
    assert resolve_language("ko", {"LANG": "en_US.UTF-8"}) == "ko"


def test_tooltip_says_what_is_served_held_back_and_overdue() -> None:
    from core.freshness import Freshness
    from core.store import HeldBack, Published

    pub = Published(version="v1", source_version="s", as_of=NOW - timedelta(hours=2),
                    published_at=NOW - timedelta(hours=2), rows=10, file="f")
    s = snap(HubState.DEGRADED, published=pub,
             held_back=HeldBack(at=NOW, reason="a third of the rows", version="s2",
                                forceable=True),
             freshness=Freshness(state="overdue", message="ERP export overdue: ..."))
    view = present(s, "en", autostart_on=None, now=NOW, tz=UTC)
    lines = view.tooltip.split("\n")
    assert lines[1:4] == [f"Data as of: {pub.as_of:%H:%M}", "Latest export held back",
                          "ERP export overdue"]
    assert len(view.tooltip) <= 127
    assert entry(view, Action.PUBLISH_ANYWAY).enabled is True
    ko = present(s, "ko", autostart_on=None, now=NOW, tz=UTC).tooltip
    assert "최신 내보내기 보류됨" in ko and "ERP 내보내기 지연" in ko
