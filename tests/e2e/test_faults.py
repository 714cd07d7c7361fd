"""Faults, end to end against ``pdh run --headless``: each shows the right state and
message, nothing crashes, and the good file that follows is healed and served."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from core.config import HealConfig
from core.dbfile import look
from core.erp.erpsim import ExportMode, simulate_export
from core.heal import heal
from dashboard.i18n import fmt_int
from tests.conftest import make_db
from tests.core.hubtools import read_only_folder
from tests.e2e.conftest import (
    SETTLE_WINDOW,
    START_TIMEOUT,
    HubProcess,
    alive,
    assert_api_serves_file,
    default_filters,
    expected_kpis,
    in_order,
    names,
    running_hub,
    shown_kpis,
    shown_text,
    wait_until,
)

pytestmark = pytest.mark.slow

ROWS = 1500


@pytest.fixture
def hub(own_hub: HubProcess) -> HubProcess:
    """Each test's own hub, at rest on a fresh export."""
    return own_hub


def good_export(hub: HubProcess, seed: int, rows: int = ROWS) -> None:
    simulate_export(hub.db, ExportMode.REPLACE, rows=rows, seconds=0.2, seed=seed, days=40)


def assert_healed_and_served(hub: HubProcess, page: Any | None = None) -> dict[str, Any]:
    """At rest on the file on disk, its indexes whole, the API (and the page) serving it."""
    hub.wait_at_rest()
    assert heal(hub.db, HealConfig(), dry_run=True).result == "ok"  # nothing left to heal
    kpis = assert_api_serves_file(hub)
    if page is not None:
        assert shown_kpis(page, hub.dashboard_url)["Good quantity"] == fmt_int(kpis["good_qty"])
    return kpis


def assert_last_good_served(hub: HubProcess, published: dict[str, Any],
                            kpis: dict[str, Any], period: Any) -> None:
    """/kpis still answers 200 from the snapshot published before the trouble."""
    response = hub.get("/kpis", date_from=period.date_from.isoformat(),
                       date_to=period.date_to.isoformat())
    assert response.status_code == 200, response.text
    assert response.headers["X-DB-Version"] == published["version"]
    assert response.json() == kpis


def test_a_truncated_export_then_a_good_one(hub: HubProcess, page: Any) -> None:
    hub.wait_at_rest()
    good = assert_api_serves_file(hub)
    period = default_filters(hub.db)
    published = hub.status()["published"]
    since = len(hub.events())
    simulate_export(hub.db, ExportMode.CORRUPT, rows=ROWS, seed=11, days=40)

    status = hub.wait_status(
        lambda s: s["activity"] == "idle" and s["db"]["problem"] == "unreadable"
        and s["held_back"] is not None, "the hub to hold the export back")
    assert status["state"] == "degraded"  # readers keep the last good snapshot
    assert "truncated" in status["db"]["error"] and "truncated" in status["held_back"]["reason"]
    assert status["published"] == published
    events = hub.events()[since:]
    assert in_order(["db_change_detected", "db_settled", "db_unreadable", "export_rejected"],
                    names(events))
    assert "snapshot_published" not in names(events)
    assert_last_good_served(hub, published, good, period)
    health = hub.get("/health").json()["db"]
    assert health["available"] is True and health["version"] == published["version"]
    shown_text(page, hub.dashboard_url, "held back")

    good_export(hub, seed=12)
    assert_healed_and_served(hub, page)
    status = hub.status()
    assert status["db"]["problem"] is None and status["held_back"] is None


def test_the_db_deleted_for_a_while(hub: HubProcess, page: Any) -> None:
    hub.wait_at_rest()
    good = assert_api_serves_file(hub)
    period = default_filters(hub.db)
    published = hub.status()["published"]
    since = len(hub.events())
    hub.db.unlink()

    status = hub.wait_status(lambda s: s["db"]["problem"] == "missing",
                             "the hub to see the file gone")
    assert status["state"] == "degraded"
    assert status["message"] == "database missing"
    assert str(hub.db) in status["db"]["error"]
    missing = [e for e in hub.events()[since:] if e["event"] == "db_missing"]
    assert [e["path"] for e in missing] == [str(hub.db)]
    assert_last_good_served(hub, published, good, period)
    hub.assert_alive()

    good_export(hub, seed=21)
    assert_healed_and_served(hub, page)
    assert names(hub.events()[since:]).count("db_missing") == 1


def test_two_exports_back_to_back_are_healed_once(hub: HubProcess) -> None:
    hub.wait_at_rest()
    since, seen_log = len(hub.events()), len(hub.log_lines())
    # Two complete exports staged beside the file, then renamed over it one right after
    # the other, as an ERP re-export after a correction does: the second lands well
    # inside the first one's settle window however loaded the machine is.
    staged = [hub.db.with_name(f"export-{n}.tmp") for n in (1, 2)]
    for n, path in enumerate(staged):
        simulate_export(path, ExportMode.REPLACE, rows=500, seconds=0.0, seed=31 + n, days=40)
    first = expected_kpis(staged[0])
    started = time.monotonic()
    os.replace(staged[0], hub.db)
    os.replace(staged[1], hub.db)
    gap = time.monotonic() - started
    assert gap < SETTLE_WINDOW / 2, f"the exports were {gap:.2f} s apart"

    assert_healed_and_served(hub)
    events = names(hub.events()[since:])
    assert events.count("db_change_detected") == 1, events
    assert events.count("indexes_healed") == 1, events
    assert [line for line in hub.log_lines()[seen_log:] if "indexes restored" in line]
    assert expected_kpis(hub.db) != first  # what is served is the second export


@pytest.mark.parametrize("mode", [ExportMode.REPLACE, ExportMode.COPY], ids=str)
def test_an_export_that_starts_during_a_heal(hub: HubProcess, mode: ExportMode) -> None:
    """Replace: a new inode under the heal. Copy: the same file truncated and rewritten
    under it (the hub must neither finish into it nor write its pages into it)."""
    hub.wait_at_rest()
    since, seen_log = len(hub.events()), len(hub.log_lines())
    # A big export, so that its heal (five indexes and ANALYZE) takes about a second:
    # long enough for the second export to land inside it even on a loaded machine.
    simulate_export(hub.db, ExportMode.REPLACE, rows=600_000, seconds=0.0, chunks=1, seed=41)
    big = look(hub.db).version

    hub.wait_status(lambda s: s["activity"] == "checking" and s["db"]["version"] == big,
                    "the hub to start healing the big export", timeout=30, interval=0.005)
    simulate_export(hub.db, mode, rows=500, seconds=0.0, chunks=1, seed=42, days=40)

    assert_healed_and_served(hub)
    events = names(hub.events()[since:])
    assert "heal_failed" not in events and "db_unreadable" not in events, events
    # The heal of the big file was abandoned, never finished into the new one.
    assert events.count("indexes_healed") == 1, events
    assert events.count("db_change_detected") == 2, events
    log = hub.log_lines()[seen_log:]
    assert any("waiting for it to settle again" in line for line in log), "\n".join(log)
    conn = sqlite3.connect(f"file:{hub.db}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT COUNT(*) FROM production_records").fetchone()[0] == 500
    finally:
        conn.close()


def test_the_dashboard_child_killed_is_restarted(hub: HubProcess, page: Any) -> None:
    status = hub.wait_at_rest()
    since = len(hub.events())
    before = status["servers"]["dashboard"]
    old = psutil.Process(before["pid"])
    os.kill(before["pid"], signal.SIGKILL)

    events = hub.wait_events(lambda ev: "server_started" in names(ev), "the dashboard back",
                             since=since, timeout=START_TIMEOUT)
    crashed = [e for e in events if e["event"] == "server_crashed"]
    assert len(crashed) == 1 and crashed[0]["server"] == "dashboard", events
    assert "-9" in crashed[0]["error"] or "SIGKILL" in crashed[0]["error"], crashed
    assert in_order(["server_crashed", "server_started"], names(events))
    status = hub.wait_status(lambda s: s["servers"]["dashboard"]["state"] == "running",
                             "the dashboard running again", START_TIMEOUT)
    after = status["servers"]["dashboard"]
    assert after["pid"] != before["pid"] and after["restarts"] == before["restarts"] + 1
    assert not alive(old)
    hub.remember_dashboard(after["pid"])
    assert status["state"] == "healthy"
    assert_healed_and_served(hub, page)


def test_a_read_only_folder_fails_the_heal_until_fixed(hub: HubProcess) -> None:
    hub.wait_at_rest()
    since = len(hub.events())
    with read_only_folder(hub.db.parent):
        # Copy over in place: the folder's entries do not change, the file's content does.
        simulate_export(hub.db, ExportMode.COPY, rows=ROWS, seconds=0.2, seed=51, days=40)
        status = hub.wait_status(lambda s: s["activity"] == "idle"
                                 and (s["last_check"] or {}).get("result") == "failed",
                                 "the heal to fail")
        # The ERP's file cannot be healed, but its copy is: readers are served.
        assert status["state"] == "degraded"
        assert "writable" in status["last_check"]["error"], status["last_check"]
        failed = [e for e in hub.events()[since:] if e["event"] == "heal_failed"]
        assert len(failed) == 1 and "writable" in failed[0]["error"]
        hub.assert_alive()

    response = hub.client.post("/hub/check")
    assert response.status_code == 202, response.text
    assert_healed_and_served(hub)
    events = names(hub.events()[since:])
    assert in_order(["heal_failed", "indexes_healed"], events), events


def test_the_api_port_busy_at_start(tmp_path: Path, page: Any) -> None:
    db = make_db(tmp_path / "data" / "production_analysis.db", rows=2000)
    blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    try:
        with running_hub(tmp_path, db, api_port=port) as hub:
            said = f"API port {port} on 127.0.0.1 is already in use"
            wait_until(lambda: any(said in line for line in hub.log_lines()),
                       "the log line naming the busy port", START_TIMEOUT)
            events = hub.wait_events(lambda ev: "indexes_healed" in names(ev),
                                     "the first heal, without the API")
            crashed = [e for e in events if e["event"] == "server_crashed"]
            assert crashed and crashed[0]["server"] == "api" and said in crashed[0]["error"]

            # The hub keeps watching and healing...
            good_export(hub, seed=61)
            version = wait_until(lambda: _persisted_heal(hub), "the export healed")
            assert version == look(hub.db).version
            assert "server_started" not in [
                e["event"] for e in hub.events() if e.get("server") == "api"]
            # ...and the dashboard still shows the data, and that the API is not answering.
            hub.wait_events(lambda ev: any(e["event"] == "server_started"
                                           and e.get("server") == "dashboard" for e in ev),
                            "the dashboard to run", timeout=START_TIMEOUT)
            kpis = expected_kpis(hub.db)
            assert shown_kpis(page, hub.dashboard_url)["Good quantity"] == fmt_int(
                kpis["good_qty"])
            page.get_by_text("The hub's API is not answering").wait_for()

            blocker.close()  # the other program goes away: the API binds on its retry
            # Binding is tried again after [api] bind_retry (0.5 s here), doubling.
            hub.wait_at_rest(timeout=60)
            assert_api_serves_file(hub)
    finally:
        blocker.close()


def _persisted_heal(hub: HubProcess) -> str | None:
    """The version of the last heal in state.json, once it is of the file on disk."""
    try:
        state = json.loads((hub.state_dir / "state.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    check = state.get("last_check") or {}
    current = look(hub.db).version
    ok = check.get("result") == "healed" and check.get("version") == current
    return current if ok else None
