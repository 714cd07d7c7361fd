"""Who may control the hub from the page, under AppTest against a real hub and its API.
AppTest has no connection, so the viewer's address is given (``page(..., peer=...)``);
the browser tests (test_access_browser.py) take it from real connections."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import access
from dashboard.access import GRANT_KEY
from dashboard.visitors import Throttle
from tests.conftest import free_port, make_config, wait_for
from tests.dashboard.conftest import ThreadedHub, default_good_qty, metrics, texts

Page = Callable[..., AppTest]
OFFICE_PC = "192.168.1.7"
TOKEN = "office-test-token"  # a test value, not a secret


@pytest.fixture
def now(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The back-off's clock, the test's to move (the page's one Throttle, on it)."""
    clock = [0.0]
    throttle = Throttle(clock=lambda: clock[0])
    monkeypatch.setattr(access, "_throttle", lambda: throttle)
    return clock


def office(tmp_path: Path, db: Path, lang: str = "en", **dashboard: object) -> object:
    return make_config(tmp_path, db=db, ui={"language": lang},
                       api={"enabled": True, "port": free_port()},
                       dashboard={"host": "0.0.0.0", **dashboard})


def controls(at: AppTest) -> set[str]:
    keys = {b.key for b in at.button} | {t.key for t in at.toggle}
    return keys & {"run_check", "publish_anyway", "auto_mode_toggle"}


def submit_token(at: AppTest, token: str) -> AppTest:
    at.text_input(key="control_token").input(token)
    return at.button(key="FormSubmitter:control_token_form-Unlock controls").click().run()


def test_a_viewer_on_another_pc_reads_but_has_no_controls(page: Page, tmp_path: Path,
                                                          small_db: Path) -> None:
    config = office(tmp_path, small_db)  # no token anywhere
    with ThreadedHub(config).running() as th:
        th.wait_at_rest()
        at = page(config, peer=OFFICE_PC)
        assert not at.exception, at.exception
        assert metrics(at)["Good quantity"][0] == default_good_qty(small_db)  # the KPIs...
        shown = texts(at)
        assert "DB Auto-Management" in shown and "Last Index Check" in shown  # ...the panel
        assert controls(at) == set()
        assert f"Viewing from {OFFICE_PC}: read-only" in shown
        assert "No token is set, so only the hub's PC can control it." in shown
        assert not at.text_input  # no token to enter
        local = page(config)  # the same page on the hub's PC
        assert controls(local) == {"run_check", "auto_mode_toggle"}
        assert "read-only" not in texts(local)


def test_an_unknown_viewer_is_remote(page: Page, tmp_path: Path, small_db: Path) -> None:
    config = office(tmp_path, small_db, admin_token=TOKEN)
    with ThreadedHub(config).running() as th:
        th.wait_at_rest()
        at = page(config, peer=None)
        assert controls(at) == set()
        assert "Viewing from ?: read-only" in texts(at)
        assert not at.text_input  # cannot be told apart from the next unknown one


def test_the_token_unlocks_for_the_session_and_the_callbacks_ask_again(
        page: Page, tmp_path: Path, small_db: Path, now: list[float]) -> None:
    config = office(tmp_path, small_db, admin_token=TOKEN)
    with ThreadedHub(config).running() as th:
        th.wait_at_rest()
        checks = th.count_calls("check_now")
        at = page(config, peer=OFFICE_PC)
        assert controls(at) == set()
        submit_token(at, "wrong")
        assert "Wrong token. You can try again in 1 s." in [e.value for e in at.error]
        assert controls(at) == set()
        # Within the back-off even the right token waits (the throttle's clock is ours).
        submit_token(at, TOKEN)
        assert controls(at) == set()
        assert "Too soon after a wrong try: wait 1 s and try again." in [e.value for e in at.error]
        now[0] += 1.0
        assert controls(submit_token(at, TOKEN)) == {"run_check", "auto_mode_toggle"}
        assert f"{OFFICE_PC}: controls unlocked for this session" in texts(at)
        at.button(key="run_check").click().run()
        wait_for(lambda: len(checks) == 1, 10, message="the check to reach the hub")
        assert "Check requested." in texts(at)

        # The control is on the page, but the session's grant is gone (as after
        # "Lock controls" in another run): the callback itself refuses.
        del at.session_state[GRANT_KEY]
        at.button(key="run_check").click().run()
        assert "Not allowed from this page: enter the control token first." in [
            e.value for e in at.error]
        assert len(checks) == 1
        assert controls(at) == set()

        # A new session starts locked again.
        assert controls(page(config, peer=OFFICE_PC)) == set()


def test_the_api_token_unlocks_when_there_is_no_admin_token(
        page: Page, tmp_path: Path, small_db: Path) -> None:
    config = office(tmp_path, small_db)
    config = config.model_copy(
        update={"api": config.api.model_copy(update={"token": "api-test-token"})})
    with ThreadedHub(config).running() as th:
        th.wait_at_rest()
        at = page(config, peer=OFFICE_PC)
        submit_token(at, "api-test-token")
        assert controls(at) == {"run_check", "auto_mode_toggle"}
        at.toggle(key="auto_mode_toggle").set_value(False).run()
        wait_for(lambda: th.status().auto_mode is False, 5, message="auto mode off")
        at.button(key="lock_controls").click().run()
        assert controls(at) == set()


def test_read_only_in_korean(page: Page, tmp_path: Path, small_db: Path) -> None:
    config = office(tmp_path, small_db, lang="ko", admin_token=TOKEN)
    with ThreadedHub(config).running() as th:
        th.wait_at_rest()
        at = page(config, peer=OFFICE_PC)
        shown = texts(at)
        assert f"{OFFICE_PC}에서 보는 중: 읽기 전용입니다." in shown
        assert "자동 모드" in shown and "켜짐" in shown  # Auto Mode, as text
        assert at.text_input(key="control_token").label == "제어 토큰"
        submit_token_ko = at.button(key="FormSubmitter:control_token_form-제어 잠금 해제")
        at.text_input(key="control_token").input("wrong")
        submit_token_ko.click().run()
        assert "토큰이 틀렸습니다. 1초 후에 다시 시도할 수 있습니다." in [e.value for e in at.error]


def test_page_password_before_anything(page: Page, tmp_path: Path, small_db: Path,
                                       monkeypatch: pytest.MonkeyPatch,
                                       now: list[float]) -> None:
    monkeypatch.setenv("PDH_TEST_PAGE_PASSWORD", "managers-only")
    config = office(tmp_path, small_db, password_env="PDH_TEST_PAGE_PASSWORD")
    with ThreadedHub(config).running() as th:
        th.wait_at_rest()
        at = page(config, peer=OFFICE_PC)
        assert not at.exception, at.exception
        assert [s.value for s in at.subheader] == ["This dashboard needs a password"]
        assert not at.metric and "DB Auto-Management" not in texts(at)
        at.text_input(key="page_password").input("guess")
        at.button(key="FormSubmitter:page_password_form-Open").click().run()
        assert "Wrong password. You can try again in 1 s." in [e.value for e in at.error]
        assert not at.metric

        def open_with(password: str) -> bool:
            at.text_input(key="page_password").input(password)
            at.button(key="FormSubmitter:page_password_form-Open").click().run()
            return bool(at.metric)

        assert not open_with("managers-only")  # within the back-off: still shut
        now[0] += 1.0
        assert open_with("managers-only")
        assert "DB Auto-Management" in texts(at) and controls(at) == set()
        assert at.metric and page(config).metric  # no password on the hub's PC


def test_a_password_variable_gone_shows_nothing(page: Page, tmp_path: Path,
                                                small_db: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The dashboard process checks the variable again: unset, the page is an error."""
    monkeypatch.setenv("PDH_TEST_PAGE_PASSWORD", "managers-only")
    config = office(tmp_path, small_db, password_env="PDH_TEST_PAGE_PASSWORD")
    monkeypatch.delenv("PDH_TEST_PAGE_PASSWORD")
    at = page(config, peer=OFFICE_PC)
    assert "PDH_TEST_PAGE_PASSWORD is not set" in " ".join(e.value for e in at.error)
    assert not at.metric and not at.text_input
