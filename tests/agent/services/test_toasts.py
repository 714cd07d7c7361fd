"""Toasts: derived from snapshots, rate-limited and coalesced, delivered over a real
D-Bus session bus to a test org.freedesktop.Notifications service."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest

from agent.services.toasts import Coalescer, DesktopSender, Toast, ToastDeriver, install_toasts
from core.hub import Hub
from core.state import DbStatus, HubState, ServerState, ServerStatus, StatusSnapshot
from tests.agent.desktop import Desktop, missing_tools
from tests.conftest import await_for, make_config

T0 = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)


def snap(events: list[dict[str, Any]], servers: dict[str, ServerStatus] | None = None
         ) -> StatusSnapshot:
    return StatusSnapshot(state=HubState.HEALTHY, message="", db=DbStatus(path="/x.db"),
                          recent_events=events, servers=servers or {})


def ev(name: str, second: int, **fields: Any) -> dict[str, Any]:
    return {"time": f"2026-03-31T12:00:{second:02d}.000Z", "event": name, **fields}


def test_only_new_events_after_the_first_snapshot_toast() -> None:
    d = ToastDeriver("en")
    old = [ev("indexes_healed", 1, healed=["a", "statistics"], duration_s=1.0)]
    assert d.feed(snap(old)) == []  # from before the agent started: no toast
    assert d.feed(snap(old)) == []
    healed = ev("indexes_healed", 2, healed=["a", "b", "c", "statistics"], duration_s=2.4)
    toasts = d.feed(snap([*old, healed]))
    assert toasts == [Toast("healed", "Production Data Hub",
                            "Indexes restored after an ERP update (3 indexes, 2.4 s)")]
    assert d.feed(snap([*old, healed])) == []  # seen
    stats_only = ev("indexes_healed", 3, healed=["statistics"], duration_s=0.1)
    assert d.feed(snap([*old, healed, stats_only])) == []  # no news for a person


def test_each_kind_of_event_has_its_text_in_both_languages() -> None:
    events = [
        ev("heal_failed", 1, error="disk I/O error"),
        ev("db_missing", 2, path="/data/production_analysis.db"),
        ev("db_unreadable", 3, error="file is not a database"),
        ev("check_ok", 4, duration_s=0.1),
        ev("db_change_detected", 5),
    ]
    en, ko = ToastDeriver("en"), ToastDeriver("ko")
    en.feed(snap([]))
    ko.feed(snap([]))
    got = [(x.kind, x.body) for x in en.feed(snap(events))]
    assert got == [
        ("check_failed", "Index check failed: disk I/O error"),
        ("missing", "Database missing\n/data/production_analysis.db was not found. "
                    "The hub checks again when it returns."),
        ("unreadable", "Database unreadable: file is not a database"),
    ]
    bodies = [x.body for x in ko.feed(snap(events))]
    assert bodies[0] == "인덱스 점검 실패: disk I/O error"
    assert bodies[1].startswith("데이터베이스 파일이 없습니다\n")


def test_dashboard_restarted_and_gave_up_come_from_server_transitions() -> None:
    d = ToastDeriver("en")

    def feed(state: ServerState, restarts: int) -> list[str]:
        status = ServerStatus(state=state, restarts=restarts)
        return [x.body for x in d.feed(snap([], {"dashboard": status}))]

    assert feed(ServerState.STARTING, 0) == []
    assert feed(ServerState.RUNNING, 0) == []  # first start: no toast
    assert feed(ServerState.STARTING, 1) == []  # Restart from the menu: no toast
    assert feed(ServerState.RUNNING, 1) == []
    assert feed(ServerState.RESTARTING, 2) == []  # a crash
    assert feed(ServerState.STARTING, 2) == []
    assert feed(ServerState.RUNNING, 2) == ["Dashboard server restarted"]
    assert feed(ServerState.RUNNING, 2) == []
    assert feed(ServerState.STOPPED, 2) == []  # stopped from the menu: no toast
    assert feed(ServerState.RUNNING, 2) == []
    assert feed(ServerState.FAILED, 2) == []
    assert feed(ServerState.GAVE_UP, 5) == [
        "Dashboard server gave up after repeated crashes"]
    assert feed(ServerState.GAVE_UP, 5) == []


def test_one_toast_per_kind_per_window_then_one_summary() -> None:
    now = [0.0]
    c = Coalescer(window_s=60, language="en", clock=lambda: now[0])
    missing = Toast("missing", "PDH", "Database missing")
    healed = Toast("healed", "PDH", "Indexes restored")
    assert c.offer(missing) == missing
    assert c.offer(healed) == healed  # another kind is not held back
    now[0] = 10
    assert c.offer(missing) is None
    now[0] = 20
    assert c.offer(missing) is None
    assert c.due() == []
    assert c.next_due_in() == pytest.approx(40)
    now[0] = 60
    assert c.due() == [Toast("missing", "PDH",
                             "Database missing (2 more in the last minute)")]
    assert c.due() == [] and c.next_due_in() is None
    now[0] = 100
    assert c.offer(missing) is None  # the summary at 60 started a new window
    now[0] = 121
    assert c.offer(healed) == healed
    assert [x.body for x in c.due()] == ["Database missing (1 more in the last minute)"]
    ko = Coalescer(window_s=90, language="ko", clock=lambda: now[0])
    ko.offer(missing)
    ko.offer(missing)
    now[0] += 90
    assert ko.due()[0].body == "Database missing (최근 90초 동안 1번 더)"


def test_notifications_off_installs_nothing(tmp_path: Path) -> None:
    config = make_config(tmp_path, ui={"notifications": False})
    hub = Hub(config, persist=False)
    assert install_toasts(hub, config, language="en") is None


needs_bus = pytest.mark.skipif(
    bool(missing_tools(("dbus-daemon",))),
    reason="dbus-daemon is not installed (apt-get install dbus)",
)


@pytest.fixture
def bus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Desktop]:
    with Desktop(tmp_path / "bus", x=False, tray=False) as desktop:
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS",
                           desktop.env["DBUS_SESSION_BUS_ADDRESS"])
        yield desktop


@needs_bus
@pytest.mark.anyio
async def test_toasts_reach_the_session_bus_and_the_rate_limit_holds(
    tmp_path: Path, small_db: Path, bus: Desktop
) -> None:
    config = make_config(tmp_path, small_db, ui={"notifications": True, "language": "en"})
    hub = Hub(config)
    fallback: list[tuple[str, str]] = []
    # The window on a clock of the test's: the steps below take what they take, and
    # the window ends when the test says (a real 1.5 s window failed under load).
    now = [0.0]
    service = install_toasts(hub, config, language="en", window_s=60,
                             fallback=lambda title, body: fallback.append((title, body)),
                             clock=lambda: now[0])
    assert service is not None
    spare = tmp_path / "spare.db"
    shutil.copyfile(small_db, spare)

    def bodies() -> list[str]:
        return [n["body"] for n in bus.notifications() if n["method"] == "Notify"]

    async with anyio.create_task_group() as tg:
        await tg.start(hub.run)
        await await_for(lambda: len(bodies()) == 1, message="the first heal's toast")
        assert bodies()[0] == "Indexes restored after an ERP update (5 indexes, " \
            f"{hub.status().last_check.duration_s:.1f} s)"  # type: ignore[union-attr]
        note = bus.notifications()[0]
        assert note["app_name"] == note["summary"] == "Production Data Hub"

        os.unlink(small_db)
        hub.check_now()
        await await_for(lambda: len(bodies()) == 2, message="the missing toast")
        assert bodies()[1].startswith("Database missing\n")
        # Back, and gone again within the window: held back, then one summary.
        shutil.copyfile(spare, small_db)
        hub.check_now()
        await await_for(lambda: hub.status().state is HubState.HEALTHY, message="healed")
        os.unlink(small_db)
        hub.check_now()
        await await_for(lambda: hub.status().db.problem == "missing", message="missing again")
        assert [b.split("\n")[0] for b in bodies()].count("Database missing") == 1
        def summaries() -> list[str]:
            return [b for b in bodies() if "more in the last" in b]

        # The second heal within the window is held back too; each kind gets a summary
        # when the window ends (the next status the hub publishes wakes the service).
        assert summaries() == []
        now[0] += 60
        hub.check_now()
        await await_for(lambda: len(summaries()) == 2, message="the summaries")
        assert sorted(s.split("\n")[0].split(" (")[0] for s in summaries()) == [
            "Database missing", "Indexes restored after an ERP update"]
        assert all(s.endswith("(1 more in the last minute)") for s in summaries())
        hub.shutdown()
    assert fallback == []  # the desktop notifier delivered everything itself


@needs_bus
@pytest.mark.anyio
async def test_no_notification_service_falls_back_to_the_tray(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Desktop(tmp_path / "bus", x=False, tray=False, notifications=False) as desktop:
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", desktop.env["DBUS_SESSION_BUS_ADDRESS"])
        fallback: list[tuple[str, str]] = []
        sender = DesktopSender("PDH", fallback=lambda t, b: fallback.append((t, b)))
        try:
            assert await sender.send(Toast("missing", "PDH", "Database missing")) is True
        finally:
            await sender.aclose()
        assert fallback == [("PDH", "Database missing")]
