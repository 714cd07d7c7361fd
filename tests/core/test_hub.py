"""The hub end to end on its own loop: real SQLite files, real watchfiles events on a temp
folder, real exports by the ERP simulator, tiny intervals, waits on conditions."""

from __future__ import annotations

import itertools
import os
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest

from core.config import Config
from core.dbfile import look
from core.erp.erpsim import (
    ExportMode,
    simulate_export,
    write_empty,
    write_garbage,
    write_missing_table,
)
from core.heal import heal
from core.state import Activity, HubState, load_state
from tests.conftest import await_for, make_config, make_db
from tests.core.hubtools import (
    count,
    read_only_folder,
    running_hub,
    until_at_rest,
    until_event,
)

pytestmark = pytest.mark.anyio

# The settle window (0.3 s x 3 looks) is far longer than the exports' pauses (~0.1 s),
# so a slow CI machine cannot make a pause look like the end of a write.
FAST = {"watch": {"settle_interval": 0.3, "settle_checks": 3, "poll_interval": 0.2}}


def indexes_ok(db: Path, config: Config) -> bool:
    report = heal(db, config.heal, dry_run=True)
    return report.result == "ok"


def integrity(db: Path) -> str:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def heal_times(hub_events: list[dict[str, object]]) -> list[datetime]:
    return [
        datetime.fromisoformat(str(e["time"]).replace("Z", "+00:00"))
        for e in hub_events if e["event"] == "indexes_healed"
    ]


@pytest.mark.parametrize(
    ("mode", "transaction"),
    [
        (ExportMode.REPLACE, "one"),
        (ExportMode.COPY, "one"),
        (ExportMode.REBUILD, "one"),
        (ExportMode.REBUILD, "batches"),
        (ExportMode.DELETE, "one"),
    ],
)
async def test_each_export_mode_heals_exactly_once_after_the_write(
    tmp_path: Path, small_db: Path, mode: ExportMode, transaction: str
) -> None:
    config = make_config(tmp_path, **FAST)
    async with running_hub(config) as hub:
        await until_event(hub, "indexes_healed")  # the start-up heal of a fresh export
        await until_at_rest(hub)
        phases: list[tuple[str, datetime]] = []

        def export() -> None:
            simulate_export(
                small_db, mode, rows=1500, seconds=0.8, seed=7, days=30,
                transaction=transaction,  # type: ignore[arg-type]
                on_phase=lambda p: phases.append((p, datetime.now(UTC))),
            )

        await anyio.to_thread.run_sync(export)
        write_ended = phases[-1][1]
        await until_event(hub, "indexes_healed", 2)
        await until_at_rest(hub)
        events = hub.events.recent(50)
        times = heal_times(events)
        assert len(times) == 2, [e["event"] for e in events]
        assert times[1] >= write_ended  # none before the write ended
        if mode is ExportMode.DELETE:
            assert count(hub, "db_missing") == 1
        assert count(hub, "db_unreadable") == 0 and count(hub, "heal_failed") == 0
        assert hub.status().state is HubState.HEALTHY
    assert indexes_ok(small_db, config)
    assert integrity(small_db) == "ok"


async def test_slow_copy_with_short_pauses_is_not_healed_until_it_ends(
    tmp_path: Path, small_db: Path
) -> None:
    config = make_config(tmp_path, **FAST)
    async with running_hub(config) as hub:
        await until_event(hub, "indexes_healed")
        await until_at_rest(hub)
        heals_during: list[int] = []

        def on_phase(phase: str) -> None:
            if phase.startswith("chunk"):
                heals_during.append(count(hub, "indexes_healed"))

        await anyio.to_thread.run_sync(lambda: simulate_export(
            small_db, ExportMode.COPY, rows=3000, seconds=2.4, chunks=24, seed=3, days=30,
            on_phase=on_phase,
        ))
        assert set(heals_during) == {1}  # still only the start-up heal while copying
        await until_event(hub, "indexes_healed", 2)
        await until_at_rest(hub)
        assert count(hub, "indexes_healed") == 2
        assert count(hub, "db_unreadable") == 0
    assert indexes_ok(small_db, config) and integrity(small_db) == "ok"


async def test_three_exports_within_one_settle_window_give_one_heal(
    tmp_path: Path, small_db: Path
) -> None:
    config = make_config(tmp_path, watch={"settle_interval": 0.4, "settle_checks": 3})
    async with running_hub(config) as hub:
        await until_event(hub, "indexes_healed")
        await until_at_rest(hub)
        for seed in (11, 12, 13):
            await anyio.to_thread.run_sync(lambda s=seed: simulate_export(
                small_db, ExportMode.REPLACE, rows=800, seconds=0.0, seed=s, days=20))
        await until_event(hub, "indexes_healed", 2)
        await until_at_rest(hub)
        assert count(hub, "indexes_healed") == 2
        assert count(hub, "db_settled") == 2
    assert indexes_ok(small_db, config)


async def test_long_erp_write_transaction_is_waited_out(tmp_path: Path, small_db: Path) -> None:
    """The ERP holds its write transaction open well past the settle window, then
    commits: the hub heals exactly once, after the commit, and the ERP's writes all
    succeed (its own 5 s busy timeout)."""
    config = make_config(tmp_path, watch={"settle_interval": 0.2, "settle_checks": 2},
                         heal={"connect_timeout": 0.3, "retries": 3, "retry_backoff": 0.1})
    async with running_hub(config) as hub:
        await until_event(hub, "indexes_healed")
        await until_at_rest(hub)
        committed: list[datetime] = []

        journal = small_db.with_name(small_db.name + "-journal")
        journal_seen: list[bool] = []

        def erp_transaction() -> None:
            conn = sqlite3.connect(small_db, isolation_level=None, timeout=5)
            try:
                conn.execute("PRAGMA cache_size = 5")  # spill: the journal is on disk
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("DROP INDEX idx_records_lot_no")
                conn.execute("UPDATE production_records SET updated_at = '2026-04-01T00:00:00'")
                journal_seen.append(journal.exists())
                # The ERP's own pace: longer than the settle window (0.4 s) and than one
                # check's busy retries (about 1.2 s), shorter than three of them.
                time.sleep(2.5)
                conn.execute("UPDATE items SET spec = 'rev 3' WHERE rowid <= 60")
                conn.execute("COMMIT")
                committed.append(datetime.now(UTC))
            finally:
                conn.close()

        await anyio.to_thread.run_sync(erp_transaction)
        await until_event(hub, "indexes_healed", 2, within=30)
        await until_at_rest(hub)
        times = heal_times(hub.events.recent(50))
        assert journal_seen == [True]
        assert len(times) == 2 and times[1] >= committed[0]
        assert count(hub, "heal_failed") == 0  # a lock held by a writer is waited out
        assert hub.status().last_check is not None
        assert hub.status().last_check.result == "healed"
        assert "idx_records_lot_no" in hub.status().last_check.healed
    assert indexes_ok(small_db, config)


# case: (breaker, event, words in the reason). With a snapshot published, every one of
# them leaves the last good data served: amber, not red.
BROKEN = {
    "missing": (lambda p: p.unlink(), "db_missing", "missing"),
    "empty": (write_empty, "export_rejected", "empty (0 bytes)"),
    "garbage": (write_garbage, "export_rejected", "not an SQLite database"),
    "truncated": (
        lambda p: simulate_export(p, ExportMode.CORRUPT, rows=1500, seed=5, days=20),
        "export_rejected", "truncated",
    ),
    "missing_table": (
        lambda p: write_missing_table(p, "defect_records", rows=1500),
        "export_rejected", "lacks the table defect_records",
    ),
    "missing_column": (None, "export_rejected", "the column lot_no of production_records"),
    "mismatched_index": (None, "heal_failed", "the spec wants (item_code, work_date)"),
}


def drop_lot_no(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DROP INDEX IF EXISTS idx_records_lot_no")
    conn.execute("ALTER TABLE production_records DROP COLUMN lot_no")
    conn.close()


def wrong_index(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DROP INDEX IF EXISTS idx_records_item_date")
    conn.execute("CREATE INDEX idx_records_item_date ON production_records(work_date)")
    conn.close()


@pytest.mark.parametrize("case", list(BROKEN))
async def test_broken_file_is_reported_and_a_good_file_heals_with_no_restart(
    tmp_path: Path, small_db: Path, case: str
) -> None:
    breaker, event, message = BROKEN[case]
    heal_cfg = {"repair_mismatched": False} if case == "mismatched_index" else {}
    config = make_config(tmp_path, heal=heal_cfg, **FAST)
    if case == "missing_column":
        breaker = drop_lot_no
    elif case == "mismatched_index":
        breaker = wrong_index
    async with running_hub(config) as hub:
        await until_event(hub, "snapshot_published")
        await until_at_rest(hub)
        served = hub.status().published
        assert served is not None
        await anyio.to_thread.run_sync(breaker, small_db)
        await until_event(hub, event)
        await until_at_rest(hub) if case != "missing" else None
        status = hub.status()
        assert status.state is HubState.DEGRADED, status
        if event == "heal_failed":  # the data is good: published, its copy healed
            assert status.published is not None and status.published != served
        else:
            assert status.published == served  # readers keep the last good snapshot
        check_error = (status.last_check.error or "") if status.last_check else ""
        held = status.held_back.reason if status.held_back else ""
        shown = (status.db.error or "") + check_error + held
        assert message in shown or message in (status.message or ""), status
        if event == "export_rejected":
            assert message in held
        if case in ("empty", "garbage"):
            size = await anyio.to_thread.run_sync(lambda: small_db.stat().st_size)
            assert size in (0, 8192)  # never healed into a new database
        # The ERP's next, good export arrives; the same hub publishes it.
        await anyio.to_thread.run_sync(lambda: simulate_export(
            small_db, ExportMode.REPLACE, rows=1500, seconds=0.0, seed=21, days=20))
        await await_for(lambda: hub.status().state is HubState.HEALTHY, 20,
                        message="healthy again")
        await until_at_rest(hub)
        status = hub.status()
        assert status.held_back is None and status.published is not None
        assert status.published.version != served.version
        assert status.published.rows == 1500
    assert indexes_ok(small_db, config)


async def test_read_only_folder_reports_and_recovers(tmp_path: Path, small_db: Path) -> None:
    config = make_config(tmp_path, **FAST)
    async with running_hub(config) as hub:
        await until_event(hub, "indexes_healed")
        await until_at_rest(hub)
        conn = sqlite3.connect(small_db, isolation_level=None)
        conn.execute("DROP INDEX idx_records_lot_no")
        conn.close()
        with read_only_folder(small_db.parent):
            await until_event(hub, "heal_failed")
            await until_event(hub, "snapshot_published", 2)  # the copy is healed instead
            await await_for(lambda: not hub.busy, 10)
            status = hub.status()
            assert status.state is HubState.DEGRADED  # readers are served, the ERP's file
            #                                           could not be healed
            assert status.last_check is not None and "writable" in (status.last_check.error or "")
        hub.check_now()
        await await_for(lambda: hub.status().state is HubState.HEALTHY, 20)
    assert indexes_ok(small_db, config)


async def test_auto_mode_off_notes_the_update_and_only_check_now_heals(
    tmp_path: Path, small_db: Path
) -> None:
    config = make_config(tmp_path, **FAST)
    async with running_hub(config) as hub:
        await until_event(hub, "indexes_healed")
        await until_at_rest(hub)
        hub.set_auto_mode(False)
        assert hub.status().state is HubState.PAUSED
        await anyio.to_thread.run_sync(lambda: simulate_export(
            small_db, ExportMode.REPLACE, rows=1500, seconds=0.0, seed=4, days=20))
        await await_for(lambda: hub.status().update_pending, 10, message="update noted")
        status = hub.status()
        assert status.state is HubState.DEGRADED
        assert status.message == "update detected, auto mode off"
        assert count(hub, "indexes_healed") == 1
        assert not indexes_ok(small_db, config)
        hub.check_now()
        await until_event(hub, "indexes_healed", 2)
        await await_for(lambda: hub.status().state is HubState.PAUSED, 10)
        assert not hub.status().update_pending
    assert indexes_ok(small_db, config)
    assert load_state(config.state_file).auto_mode is False  # survives a restart


async def test_a_busy_checks_retry_follows_auto_mode_switched_off_meanwhile(
    tmp_path: Path, small_db: Path
) -> None:
    """An automatic check that finds the file locked asks for a retry; once Auto Mode is
    off, that retry is an automatic check like any other: it notes the update and waits
    for Check Now, it does not heal as if Check Now had been pressed."""
    config = make_config(tmp_path, watch={"settle_interval": 0.2, "settle_checks": 2},
                         heal={"connect_timeout": 2.0, "retries": 1, "retry_backoff": 0.0})
    async with running_hub(config) as hub:
        await until_event(hub, "indexes_healed")
        await until_at_rest(hub)
        await anyio.to_thread.run_sync(lambda: simulate_export(
            small_db, ExportMode.REPLACE, rows=1500, seconds=0.0, seed=4, days=20))
        erp = sqlite3.connect(small_db, isolation_level=None)
        try:
            erp.execute("BEGIN EXCLUSIVE")  # the ERP's long transaction: no reader gets in
            await await_for(lambda: hub.status().activity is Activity.CHECKING, 10,
                            message="the heal waiting for the lock")
            hub.set_auto_mode(False)
            await await_for(lambda: hub.status().update_pending, 10,
                            message="the retry noting the update, auto mode off")
            assert hub.status().message == "update detected, auto mode off"
            assert count(hub, "heal_failed") == 0  # no forced retries against the lock
        finally:
            erp.execute("ROLLBACK")
            erp.close()
        assert count(hub, "indexes_healed") == 1
        hub.check_now()
        await until_event(hub, "indexes_healed", 2)
        assert not hub.status().update_pending
    assert indexes_ok(small_db, config)


async def test_auto_mode_back_on_heals_the_waiting_update(tmp_path: Path, small_db: Path) -> None:
    config = make_config(tmp_path, watch={"auto_mode": False, "settle_interval": 0.2})
    async with running_hub(config) as hub:
        await await_for(lambda: hub.status().update_pending, 10)
        assert count(hub, "indexes_healed") == 0
        hub.set_auto_mode(True)
        await until_event(hub, "indexes_healed")
        assert count(hub, "auto_mode_changed") == 1


async def test_periodic_check_catches_what_events_miss(
    tmp_path: Path, small_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no file events at all (a share that sends none), the periodic check still
    notices the export and heals it."""
    async def no_events(*args: object, **kwargs: object) -> None:
        await anyio.sleep_forever()

    monkeypatch.setattr("core.hub.watch_db", no_events)
    config = make_config(tmp_path, watch={"check_interval": 0.5, "settle_interval": 0.1})
    async with running_hub(config) as hub:
        await until_event(hub, "indexes_healed")
        first_next = hub.status().next_check
        assert first_next is not None
        await anyio.to_thread.run_sync(lambda: simulate_export(
            small_db, ExportMode.REPLACE, rows=800, seconds=0.0, seed=9, days=20))
        await until_event(hub, "indexes_healed", 2)
        # The check counts the next one from its own end.
        await await_for(lambda: hub.status().next_check != first_next, 5,
                        message="Next Check moved on")


async def test_polling_mode_sees_a_replace(tmp_path: Path, small_db: Path) -> None:
    config = make_config(tmp_path, watch={"force_polling": True, "poll_interval": 0.1,
                                          "settle_interval": 0.2, "settle_checks": 2})
    async with running_hub(config) as hub:
        await until_event(hub, "indexes_healed")
        await until_at_rest(hub)
        await anyio.to_thread.run_sync(lambda: simulate_export(
            small_db, ExportMode.REPLACE, rows=800, seconds=0.0, seed=10, days=20))
        await until_event(hub, "indexes_healed", 2)


async def test_folder_missing_for_a_while(tmp_path: Path) -> None:
    folder = tmp_path / "share"
    db = folder / "production_analysis.db"
    config = make_config(tmp_path, db=db, **FAST)
    async with running_hub(config) as hub:
        await until_event(hub, "db_missing")
        assert hub.status().state is HubState.ERROR
        await anyio.to_thread.run_sync(lambda: make_db(db, rows=600, days=10))
        await until_event(hub, "indexes_healed")
        await until_at_rest(hub)
        # The whole folder goes away (a share unmounted) and comes back.
        await anyio.to_thread.run_sync(lambda: [p.unlink() for p in folder.iterdir()])
        folder.rmdir()
        await until_event(hub, "db_missing", 2)
        await anyio.to_thread.run_sync(lambda: make_db(db, rows=700, seed=2, days=10))
        await until_event(hub, "indexes_healed", 2)
    assert indexes_ok(db, config)


async def test_no_file_descriptor_on_the_db_while_idle(tmp_path: Path, small_db: Path) -> None:
    if not os.path.isdir("/proc/self/fd"):  # noqa: ASYNC240
        pytest.skip("needs /proc")
    config = make_config(tmp_path, **FAST)

    def open_on_db() -> list[str]:
        found = []
        for fd in os.listdir("/proc/self/fd"):
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                continue
            if target.startswith(str(small_db)):
                found.append(target)
        return found

    async with running_hub(config) as hub:
        await until_event(hub, "indexes_healed")
        await until_at_rest(hub)
        assert open_on_db() == []
        hub.check_now()
        await until_event(hub, "check_ok")
        await until_at_rest(hub)
        assert open_on_db() == []


async def test_state_survives_a_restart(tmp_path: Path, small_db: Path) -> None:
    config = make_config(tmp_path, **FAST)
    async with running_hub(config) as hub:
        await until_event(hub, "indexes_healed")
        await until_at_rest(hub)
        before = hub.status()
    saved = load_state(config.state_file)
    assert saved.last_check is not None and saved.last_check.result == "healed"
    async with running_hub(config) as hub:
        # Same file as before the restart: a plain check, no new "update".
        await until_event(hub, "check_ok")
        status = hub.status()
        assert status.last_db_update == before.last_db_update
        assert count(hub, "db_change_detected") == 1  # the one from the first run only


async def test_an_export_during_a_heal_goes_back_to_settle(tmp_path: Path) -> None:
    """A big file whose heal takes a while; the ERP replaces it mid-heal. The hub never
    reports the old file as healed for the new version, and heals the new one."""
    db = make_db(tmp_path / "data" / "production_analysis.db", rows=60_000, days=30)
    config = make_config(tmp_path, db=db, watch={"settle_interval": 0.1, "settle_checks": 2})
    staged = make_db(tmp_path / "staged" / "production_analysis.db", rows=900, days=10)
    seen: list[tuple[Activity, str]] = []
    async with running_hub(config) as hub:
        hub.channel.subscribe(lambda snapshot: seen.append((snapshot.activity, snapshot.message)))
        await await_for(lambda: hub.status().message == "checking indexes", 20,
                        message="the heal to start")
        os.replace(staged, db)  # the ERP's rename-over, at once: the heal is still running
        await await_for(lambda: hub.status().state is HubState.HEALTHY and not hub.busy
                        and hub.known_version == look(db).version, 30)
        # The heal itself saw the replace (not the copy after it, nor the next look): from
        # checking indexes straight back to settling.
        assert any(before == (Activity.CHECKING, "checking indexes")
                   and after[0] is Activity.SETTLING
                   for before, after in itertools.pairwise(seen)), seen
        # The mid-heal replace is a change to settle again, never a failure.
        assert count(hub, "heal_failed") == 0 and count(hub, "db_unreadable") == 0
    assert indexes_ok(db, config)
