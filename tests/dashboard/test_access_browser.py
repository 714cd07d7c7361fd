"""The dashboard on the office network, in a real browser: the hub supervises the real
dashboard bound to every interface; chromium reaches it directly (this computer) and
through relays that connect onward from 127.0.0.2 (another computer) and 127.0.0.3 (a
reverse proxy the config trusts)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from streamlit.proto.BackMsg_pb2 import BackMsg

from core.state import ServerState
from tests.browser import CHROMIUM, MISSING, chromium, new_page
from tests.conftest import free_port, make_config, wait_for
from tests.dashboard.conftest import ThreadedHub, sql_one
from tests.netrelay import Relay

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=MISSING),
]

TOKEN = "office-test-token"  # a test value, not a secret
PASSWORD = "managers-only"  # likewise
STARTUP = 60.0
REMOTE, PROXY = "127.0.0.2", "127.0.0.3"
STREAM = re.compile(r".*/_stcore/stream")


@pytest.fixture
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


def office_config(tmp_path: Path, db: Path, **dashboard: Any) -> Any:
    return make_config(
        tmp_path, db=db, ui={"language": "en"},
        api={"enabled": True, "port": free_port()},  # on loopback, as installed
        dashboard={"enabled": True, "host": "0.0.0.0", "port": free_port(),
                   "refresh_interval": 1.0, "local_addresses": ["127.0.0.1"],
                   "trusted_proxies": [PROXY], **dashboard},
    )


def dashboard_port(th: ThreadedHub) -> int:
    wait_for(lambda: (s := th.status().servers.get("dashboard")) is not None
             and s.state is ServerState.RUNNING, STARTUP, message="the dashboard to run")
    return th.config.dashboard.port


def settled(page: Any) -> None:
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]')


def wait_page(page: Any) -> None:
    """Until the page, KPIs and panel included, has been drawn."""
    page.wait_for_selector('[data-testid="stMetric"]')
    page.get_by_text("DB Auto-Management").wait_for()
    settled(page)


def sidebar(page: Any) -> str:
    return str(page.locator('[data-testid="stSidebar"]').inner_text())


def shows(page: Any, wanted: str | re.Pattern[str], timeout: float = 10) -> None:
    """Until the sidebar shows ``wanted`` (a refresh of the panel may be under way)."""
    def found() -> bool:
        text = sidebar(page)
        return bool(wanted.search(text)) if isinstance(wanted, re.Pattern) else wanted in text

    wait_for(found, timeout, interval=0.2, message=f"the sidebar to show {wanted}")


def enter_token(page: Any, token: str) -> None:
    form = page.locator('[data-testid="stForm"]')
    form.get_by_label("Control token").fill(token)
    form.get_by_role("button", name="Unlock controls").click()


def has_controls(page: Any) -> bool:
    return (page.get_by_role("button", name="Run Check Now").count() > 0
            or page.get_by_text("Auto Mode", exact=True).locator(
                "xpath=ancestor::label").count() > 0)


def shows_controls(page: Any, timeout: float = 10) -> None:
    """Until the panel draws Run Check Now. A status call that timed out on a loaded
    machine draws the panel without the hub's state (and so without controls) until its
    next refresh; the sidebar says what was drawn instead."""
    button = page.get_by_role("button", name="Run Check Now")
    try:
        button.wait_for(timeout=timeout * 1000)
    except PlaywrightTimeout:
        pytest.fail(f"no controls after {timeout} s; the sidebar shows: {sidebar(page)!r}")


def back_messages(page: Any) -> list[BackMsg]:
    """The messages this page's browser sends to the dashboard, from now on."""
    sent: list[BackMsg] = []

    def on_socket(ws: Any) -> None:
        if STREAM.match(ws.url):
            ws.on("framesent", lambda payload: sent.append(_parse(payload)))

    page.on("websocket", on_socket)
    return sent


def _parse(payload: str | bytes) -> BackMsg:
    msg = BackMsg()
    if isinstance(payload, bytes):
        msg.ParseFromString(payload)
    return msg


def widget_states(sent: list[BackMsg], key: str) -> list[Any]:
    """The states of the widget with user key ``key`` in the reruns sent."""
    return [w for m in sent if m.WhichOneof("type") == "rerun_script"
            for w in m.rerun_script.widget_states.widgets if w.id.endswith(f"-{key}")]


def first_sent(page: Any, sent: list[BackMsg], key: str, wanted: Callable[[Any], bool],
               timeout: float = 10.0) -> tuple[BackMsg, Any]:
    """The first message the page sent with a state of widget ``key`` that ``wanted``
    accepts, and that state. Waits through Playwright: its sync API hands over a frame's
    event only while one of its own calls runs, so the hub can react to a click before
    the test has seen the frame that carried it."""
    deadline = time.monotonic() + timeout
    while True:
        for message in list(sent):
            for state in widget_states([message], key):
                if wanted(state):
                    return message, state
        if time.monotonic() > deadline:
            raise AssertionError(f"the page sent no such {key} state within {timeout} s")
        page.wait_for_timeout(50)


def pumping(page: Any, condition: Callable[[], bool], timeout: float, message: str) -> None:
    """``wait_for`` that keeps Playwright working meanwhile: a page whose WebSocket is
    routed through the test (:class:`ServerSide`) sends nothing while the test waits
    outside Playwright's calls."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        page.wait_for_timeout(50)


class ServerSide:
    """The page's WebSocket to the dashboard, routed through the test: the test can send
    the dashboard messages of its own making on the page's connection (session)."""

    def __init__(self, page: Any) -> None:
        self.server: Any = None

        def route(ws: Any) -> None:
            self.server = ws.connect_to_server()  # the page's own traffic flows on

        page.route_web_socket(STREAM, route)

    def send(self, msg: BackMsg) -> None:
        wait_for(lambda: self.server is not None, 10, message="the page's socket")
        self.server.send(msg.SerializeToString())


def test_office_viewers_read_only_token_unlocks_local_has_controls(
        browser: Any, tmp_path: Path, small_db: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = office_config(tmp_path, small_db, admin_token=TOKEN)
    with ThreadedHub(config).running() as th:
        th.wait_at_rest()
        port = dashboard_port(th)
        said = [r.getMessage() for r in caplog.records if r.name == "agent.services.dashboard"
                and r.getMessage().startswith("dashboard listens on")]
        assert said == [f"dashboard listens on every interface (0.0.0.0:{port}): anyone who "
                        "can reach it reads the data with no password; controls "
                        "remote-enabled with [dashboard] admin_token; local viewers: "
                        f"127.0.0.1; X-Forwarded-For believed from: {PROXY}"]
        checks, autos = th.count_calls("check_now"), th.count_calls("set_auto_mode")

        # On the hub's computer: the controls at once. A forged X-Forwarded-For that
        # names another computer changes nothing (Streamlit's server would believe it
        # from loopback, if the dashboard let it).
        local = new_page(browser, headers={"X-Forwarded-For": "10.20.30.40"})
        sent = back_messages(local)
        local.goto(f"http://127.0.0.1:{port}/")
        wait_page(local)
        shows_controls(local)
        assert "read-only" not in sidebar(local)
        log_file = config.log_dir / "dashboard.log"

        def logged(text: str) -> bool:
            return log_file.exists() and text in log_file.read_text("utf-8")

        wait_for(lambda: logged("sent X-Forwarded-For 10.20.30.40, which is ignored"), 10,
                 message="the dashboard's warning about a header from a local viewer")
        # What a click sends: the engineer's messages, to forge on another session.
        local.get_by_role("button", name="Run Check Now").click()
        wait_for(lambda: len(checks) == 1, 15, message="the local check to reach the hub")
        local.get_by_text("Check requested.").wait_for()
        click, run_check = first_sent(local, sent, "run_check", lambda w: w.trigger_value)
        toggle = local.get_by_text("Auto Mode", exact=True)
        toggle.click()
        wait_for(lambda: th.status().auto_mode is False, 10, message="auto mode off")
        _, auto_off = first_sent(local, sent, "auto_mode_toggle",
                                 lambda w: w.bool_value is False)
        settled(local)
        toggle.click()
        wait_for(lambda: th.status().auto_mode is True, 10, message="auto mode on again")
        local.locator('[data-testid="stSidebar"]').get_by_text("한국어", exact=True).click()
        local.get_by_role("heading", name="생산 데이터 허브").wait_for()
        _, korean = first_sent(local, sent, "lang",
                               lambda w: list(w.string_array_value.data) == ["한국어"])
        checks.clear()
        autos.clear()

        # Another computer (127.0.0.2) that claims, in X-Forwarded-For, to be this one.
        with Relay(("127.0.0.1", port), source=REMOTE) as relay:
            remote = new_page(browser, headers={"X-Forwarded-For": "127.0.0.1"})
            socket = ServerSide(remote)
            remote.goto(relay.url)
            wait_page(remote)
            shows(remote, f"Viewing from {REMOTE}: read-only")
            shows(remote, re.compile(r"Auto Mode\s*\n\s*on"))  # the state, as text
            assert not has_controls(remote)
            # The data itself is for everyone: KPIs, charts, records, CSV.
            # (a rerun may be drawing them again: wait for all six, as for any change)
            wait_for(lambda: remote.locator('[data-testid="stMetric"]').count() == 6, 10,
                     message="the six KPIs on the remote viewer's page")
            assert remote.get_by_role("button", name="Download CSV").count() == 1

            # A forged control message on the remote session: the engineer's click on
            # Run Check Now, Auto Mode off, and (to see that it was run) Korean.
            forged = BackMsg()
            forged.CopyFrom(click)
            forged.rerun_script.fragment_id = ""  # a whole run, wherever the panel is
            del forged.rerun_script.widget_states.widgets[:]
            for state in (run_check, auto_off, korean):
                forged.rerun_script.widget_states.widgets.add().CopyFrom(state)
            socket.send(forged)
            remote.get_by_role("heading", name="생산 데이터 허브").wait_for()
            settled(remote)
            # Callbacks run before the script body: had one acted, the hub had heard.
            assert checks == [] and autos == []
            assert th.status().auto_mode is True
            assert "점검을 요청했습니다" not in sidebar(remote)
            remote.goto(relay.url)  # a new session, in English again (not ?lang=ko)
            wait_page(remote)

            # A wrong token: refused, with a back-off; then the right one.
            enter_token(remote, "not-the-token")
            remote.get_by_text("Wrong token. You can try again in 1 s.").wait_for()
            wait_for(lambda: logged(f"wrong token entered on the dashboard by {REMOTE}"), 10,
                     message="the wrong token in dashboard.log")
            assert not has_controls(remote)
            # Again at once: refused as too soon, or (after the second) as wrong with
            # the back-off doubled; either way it says how long to wait.
            enter_token(remote, "still-not-it")
            remote.get_by_text(re.compile(r"Too soon after a wrong try: wait \d s|"
                                          r"Wrong token\. You can try again in 2 s\.")
                               ).wait_for()
            assert not has_controls(remote)

            form = remote.locator('[data-testid="stForm"]')

            def unlocked() -> bool:
                if form.count() == 0:
                    return True
                enter_token(remote, TOKEN)
                try:
                    form.wait_for(state="detached", timeout=2000)
                except PlaywrightTimeout:
                    return False  # still within the back-off
                return True

            wait_for(unlocked, 20, interval=0.5, message="the token to unlock the controls")
            remote.get_by_role("button", name="Run Check Now").wait_for()
            assert checks == [] and autos == []  # unlocking is not itself a control
            shows(remote, f"{REMOTE}: controls unlocked for this session")
            remote.get_by_role("button", name="Run Check Now").click()
            pumping(remote, lambda: len(checks) == 1, 15, "the remote check to reach the hub")
            remote.get_by_text("Check requested.").wait_for()

            # Locked again: the controls are gone.
            remote.get_by_role("button", name="Lock controls").click()
            remote.get_by_text(f"Viewing from {REMOTE}: read-only").wait_for()
            # The run that drew that line may still be under way: until it ends, Streamlit
            # keeps the last run's elements (the controls) on the page, greyed out.
            pumping(remote, lambda: not has_controls(remote), 10, "the controls to go")


def received_frames(page: Any) -> list[bytes]:
    """Everything the dashboard sends this page over its WebSocket, from now on."""
    frames: list[bytes] = []

    def on_socket(ws: Any) -> None:
        if STREAM.match(ws.url):
            ws.on("framereceived", lambda payload: frames.append(
                payload if isinstance(payload, bytes) else payload.encode()))

    page.on("websocket", on_socket)
    return frames


def enter_password(page: Any, password: str) -> None:
    form = page.locator('[data-testid="stForm"]')
    form.get_by_label("Password", exact=True).fill(password)
    form.get_by_role("button", name="Open").click()


def test_page_password_before_any_data_and_a_trusted_proxy(
        browser: Any, tmp_path: Path, small_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PDH_TEST_PAGE_PASSWORD", PASSWORD)  # the child inherits it
    config = office_config(tmp_path, small_db, password_env="PDH_TEST_PAGE_PASSWORD")
    line_name = sql_one(small_db, "SELECT line_name FROM lines ORDER BY line_code")[0]
    item_name = sql_one(small_db, "SELECT item_name FROM items ORDER BY item_code")[0]
    markers = [s.encode() for s in (line_name, item_name, "DB Auto-Management",
                                    "Good quantity", "2,000 records")]
    with ThreadedHub(config).running() as th:
        th.wait_at_rest()
        port = dashboard_port(th)

        # On the hub's computer: no password, the page and its controls.
        local = new_page(browser)
        local.goto(f"http://127.0.0.1:{port}/")
        wait_page(local)
        shows_controls(local)

        # A viewer behind the reverse proxy the config trusts (127.0.0.3): its
        # X-Forwarded-For is believed, so the viewer is 10.9.8.7, asked for the password.
        with Relay(("127.0.0.1", port), source=PROXY) as proxy:
            viewer = new_page(browser, headers={"X-Forwarded-For": "10.9.8.7"})
            frames = received_frames(viewer)
            viewer.goto(proxy.url)
            viewer.get_by_text("This dashboard needs a password").wait_for()
            settled(viewer)
            assert frames, "the page's own messages were recorded"
            assert viewer.locator('[data-testid="stMetric"]').count() == 0
            sent = b"".join(frames)
            assert not [m for m in markers if m in sent], "data sent before the password"

            enter_password(viewer, "guess")
            viewer.get_by_text("Wrong password. You can try again in 1 s.").wait_for()
            assert not [m for m in markers if m in b"".join(frames)]

            asked = viewer.get_by_text("This dashboard needs a password")

            def opened() -> bool:
                if asked.count() == 0:
                    return True
                enter_password(viewer, PASSWORD)
                try:
                    asked.wait_for(state="detached", timeout=2000)
                except PlaywrightTimeout:
                    return False  # within the back-off
                return True

            wait_for(opened, 20, interval=0.5, message="the password to open the page")
            wait_page(viewer)
            assert all(m in b"".join(frames) for m in markers)  # (the markers are real)
            shows(viewer, "Viewing from 10.9.8.7: read-only")
            shows(viewer, "No token is set, so only the hub's PC can control it.")
            assert not has_controls(viewer)

            # The same proxy forwarding someone on the hub's computer: local, no password.
            engineer = new_page(browser, headers={"X-Forwarded-For": "127.0.0.1"})
            engineer.goto(proxy.url)
            wait_page(engineer)
            shows_controls(engineer)
