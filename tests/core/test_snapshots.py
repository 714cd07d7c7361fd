"""Snapshots: what the hub publishes, what it holds back, and what readers are given.
Real files, a real hub on the test's loop, real exports by the ERP simulator."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import threading
from contextlib import closing
from pathlib import Path

import anyio
import pytest

from core import queries, snapshot
from core.erp.erpsim import ExportMode, simulate_export
from core.hub import Hub
from core.publisher import PublishRefused
from core.serving import serving
from core.state import HubState
from core.store import Published, Store
from tests.conftest import await_for, make_config, published_config
from tests.core.hubtools import count, running_hub, until_at_rest, until_event

pytestmark = pytest.mark.anyio

FAST = {"watch": {"settle_interval": 0.1, "settle_checks": 2, "check_interval": 3600.0}}


def served_rows(store: Store) -> int:
    return queries.kpis(serving(store).path).records


async def test_a_wal_export_is_published_once_and_the_hub_stays_quiet(
    tmp_path: Path, small_db: Path
) -> None:
    config = make_config(tmp_path, watch={"settle_interval": 0.1, "settle_checks": 2,
                                          "check_interval": 0.3})
    async with running_hub(config) as hub:
        await until_event(hub, "snapshot_published")
        await until_at_rest(hub)
        await anyio.to_thread.run_sync(lambda: simulate_export(
            small_db, ExportMode.REBUILD, rows=1500, seconds=0.3, seed=3, days=20,
            journal="wal"))
        await until_event(hub, "snapshot_published", 2)
        await until_at_rest(hub)
        changes, published = count(hub, "db_change_detected"), count(hub, "snapshot_published")
        checks = count(hub, "check_ok")
        # Periodic checks open the file read-write (and the copy read-only): sidecars come
        # and go, none of which is a new export.
        await await_for(lambda: count(hub, "check_ok") >= checks + 4, 20,
                        message="four periodic checks")
        assert count(hub, "db_change_detected") == changes
        assert count(hub, "snapshot_published") == published
        assert hub.status().published is not None and hub.status().published.rows == 1500


async def test_a_row_count_drop_is_held_back_and_can_be_published_anyway(
    tmp_path: Path, small_db: Path
) -> None:
    config = make_config(tmp_path, **FAST)
    async with running_hub(config) as hub:
        await until_event(hub, "snapshot_published")
        await until_at_rest(hub)
        first = hub.status().published
        assert first is not None and first.rows == 2000
        await anyio.to_thread.run_sync(lambda: simulate_export(
            small_db, ExportMode.REPLACE, rows=600, seconds=0.0, seed=8, days=20))
        await until_event(hub, "export_rejected")
        await until_at_rest(hub)
        status = hub.status()
        assert status.state is HubState.DEGRADED and status.published == first
        assert status.held_back is not None and status.held_back.forceable
        assert "600 production records" in status.held_back.reason
        assert served_rows(hub.publisher.store) == 2000  # readers keep the last good data
        await hub.publish_anyway()
        status = hub.status()
        assert status.published is not None and status.published.forced
        assert status.published.rows == 600 and status.held_back is None
        assert status.state is HubState.HEALTHY
        assert served_rows(hub.publisher.store) == 600
        with pytest.raises(PublishRefused, match="no export is held back"):
            await hub.publish_anyway()


async def test_a_garbage_export_cannot_be_forced(tmp_path: Path, small_db: Path) -> None:
    from core.erp.erpsim import write_garbage

    config = make_config(tmp_path, **FAST)
    async with running_hub(config) as hub:
        await until_event(hub, "snapshot_published")
        await until_at_rest(hub)
        await anyio.to_thread.run_sync(write_garbage, small_db)
        await until_event(hub, "export_rejected")
        with pytest.raises(PublishRefused, match="cannot be published even by force"):
            await hub.publish_anyway()
        assert served_rows(hub.publisher.store) == 2000


def test_a_restarted_hub_serves_its_last_snapshot_before_any_look(
    tmp_path: Path, small_db: Path
) -> None:
    config = published_config(tmp_path, small_db)
    from core.erp.erpsim import write_garbage

    write_garbage(small_db)  # whatever the ERP's file is now
    hub = Hub(config)  # not running yet: no look taken
    assert hub.status().published is not None
    assert served_rows(hub.publisher.store) == 2000


def test_readers_never_hold_the_erps_file(tmp_path: Path, small_db: Path) -> None:
    """Readers busy in several threads: no descriptor of this process names the ERP's
    file, only the snapshot (Windows could not replace a file held open)."""
    config = published_config(tmp_path, small_db)
    store = Store(config.store_dir)
    stop = threading.Event()
    errors: list[BaseException] = []

    def read() -> None:
        try:
            while not stop.is_set():
                path = serving(store).path
                queries.kpis(path)
                queries.records(path, limit=100)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        seen: set[str] = set()
        for _ in range(50):
            for fd in os.listdir("/proc/self/fd"):
                try:
                    seen.add(os.readlink(f"/proc/self/fd/{fd}"))
                except OSError:
                    continue
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert not errors, errors
    snapshot = str(serving(store).path)
    assert snapshot in seen
    assert not {s for s in seen if s.startswith(str(small_db))}, seen


@pytest.fixture
def small_disk(tmp_path: Path) -> Path:
    """A 20 MB tmpfs for the store (root only; skipped where mounting is not allowed)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


async def test_a_full_store_disk_is_reported_and_the_last_snapshot_stays_served(
    tmp_path: Path, small_db: Path, small_disk: Path
) -> None:
    config = make_config(tmp_path, store={"dir": str(small_disk / "store")}, **FAST)
    async with running_hub(config) as hub:
        await until_event(hub, "snapshot_published")
        await until_at_rest(hub)
        first = hub.status().published
        ballast = small_disk / "ballast"

        def fill() -> None:
            free = shutil.disk_usage(small_disk).free
            with open(ballast, "wb") as fh:
                fh.truncate(0)
                fh.write(b"\0" * (free - 512 * 1024))

        await anyio.to_thread.run_sync(fill)
        await anyio.to_thread.run_sync(lambda: simulate_export(
            small_db, ExportMode.REPLACE, rows=1800, seconds=0.0, seed=12, days=20))
        await until_event(hub, "publish_failed")
        await until_at_rest(hub)
        status = hub.status()
        assert status.store_error is not None
        assert str(small_disk / "store") in status.store_error
        assert "bytes needed" in status.store_error
        assert status.state is HubState.DEGRADED and status.published == first
        assert served_rows(hub.publisher.store) == 2000
        await anyio.to_thread.run_sync(ballast.unlink)
        hub.check_now()  # room again: the waiting export is published
        await until_event(hub, "snapshot_published", 2)
        await await_for(lambda: hub.status().state is HubState.HEALTHY, 10)
        assert served_rows(hub.publisher.store) == 1800


# --- the copy -----------------------------------------------------------------------------


def _rows(path: Path) -> int:
    with closing(sqlite3.connect(path)) as conn:
        return int(conn.execute("SELECT count(*) FROM production_records").fetchone()[0])


def test_a_rollback_journal_export_is_copied_byte_for_byte_under_a_shared_lock(
    tmp_path: Path, small_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = tmp_path / "copy.db"
    tried: list[str] = []

    def a_writer_tries() -> None:
        # Mid-copy (the copy asks its ``stop`` before each slice), the ERP tries to
        # commit: it must find the file locked.
        if tried:
            return
        with closing(sqlite3.connect(small_db, timeout=0, isolation_level=None)) as erp:
            try:
                erp.execute("DELETE FROM defect_records")
                tried.append("committed")
            except sqlite3.OperationalError as exc:
                tried.append(str(exc))

    assert snapshot.copy_database(small_db, dest, timeout=2, stop=a_writer_tries) == "file"
    assert tried == ["database is locked"]
    assert dest.read_bytes() == small_db.read_bytes()
    with closing(sqlite3.connect(dest)) as conn:
        assert conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"


def test_a_wal_export_with_commits_still_in_the_wal_is_copied_with_them(
    tmp_path: Path, small_db: Path
) -> None:
    before = _rows(small_db)
    erp = sqlite3.connect(small_db, isolation_level=None)
    try:
        erp.execute("PRAGMA journal_mode=WAL")
        erp.execute("PRAGMA wal_autocheckpoint=0")  # the commit stays in -wal
        erp.execute("DELETE FROM production_records WHERE record_id % 2 = 0")
        wal = small_db.with_name(small_db.name + "-wal")
        assert wal.stat().st_size > 0
        expected = _rows(small_db)
        assert expected < before
        dest = tmp_path / "copy.db"
        how = snapshot.copy_database(small_db, dest, timeout=2)
        assert _rows(dest) == expected
        assert how == "backup"
    finally:
        erp.close()


def test_prepare_adds_the_index_spec_and_no_covering_indexes(
    tmp_path: Path, small_db: Path
) -> None:
    from core.config import HealConfig
    from core.heal import STATISTICS

    copy = tmp_path / "copy.db"
    shutil.copyfile(small_db, copy)
    cfg = HealConfig()
    added = snapshot.prepare(copy, cfg)
    spec = sorted(s.name for s in cfg.indexes)
    assert sorted(a for a in added if a != STATISTICS) == spec
    with closing(sqlite3.connect(copy)) as conn:
        names = sorted(r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"))
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert names == spec  # the ERP's own and the spec's, no pdh_serve_* ones


def _damage_the_freelist(db: Path) -> None:
    """A new export of ``db`` (already healed: nothing to write in place) whose header
    claims three free pages it does not have: every read works, SQLite's quick_check
    says the file is damaged (and a write would fail)."""
    data = bytearray(db.read_bytes())
    assert int.from_bytes(data[36:40], "big") == 0
    data[36:40] = (3).to_bytes(4, "big")  # freelist page count
    counter = int.from_bytes(data[24:28], "big") + 1  # a new export's change counter
    data[24:28] = data[92:96] = counter.to_bytes(4, "big")
    staged = db.with_name(db.name + ".new")
    staged.write_bytes(bytes(data))
    os.replace(staged, db)


async def test_damage_only_quick_check_finds_is_held_back_though_the_cache_was_warmed(
    tmp_path: Path, small_db: Path
) -> None:
    """The readers' caches are warmed beside the copy's last check (quick_check): a copy
    that fails it is held back as damaged, and nothing warmed from it is ever served."""
    config = make_config(tmp_path, **FAST)
    warmed: list[tuple[str, str | None, int]] = []

    async def warm(candidate: Published, path: Path) -> None:
        served = hub.publisher.store.current()
        rows = await anyio.to_thread.run_sync(lambda: queries.kpis(path).records)
        warmed.append((candidate.version, served.version if served else None, rows))

    hub = Hub(config)
    hub.add_before_publish(warm)
    async with anyio.create_task_group() as tg:
        await tg.start(hub.run)
        await until_event(hub, "snapshot_published")
        await until_at_rest(hub)
        first = hub.status().published
        assert first is not None and [w[0] for w in warmed] == [first.version]
        await anyio.to_thread.run_sync(_damage_the_freelist, small_db)
        await until_event(hub, "export_rejected")
        await until_at_rest(hub)
        status = hub.status()
        assert status.held_back is not None and not status.held_back.forceable
        assert "damaged" in status.held_back.reason and "freelist" in status.held_back.reason
        assert status.published == first and served_rows(hub.publisher.store) == 2000
        # The damaged copy was warmed (its reads work) while it was being checked, as a
        # candidate that was not served then and is not served now.
        assert len(warmed) == 2 and warmed[1][0] != first.version
        assert warmed[1][1:] == (first.version, 2000)
        assert serving(hub.publisher.store).version == first.version
        hub.shutdown()


class _Stop(Exception):
    pass


@pytest.mark.parametrize("journal", ["delete", "wal"])
def test_a_copy_ends_when_asked_to_stop_and_leaves_nothing(
    tmp_path: Path, small_db: Path, journal: str
) -> None:
    """The copy asks ``stop`` every few MB (the hub's Interrupter when it shuts down):
    a copy stopped part-way leaves no file; one never stopped is whole."""
    if journal == "wal":
        with closing(sqlite3.connect(small_db)) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
    calls: list[int] = []

    def stop_at_second_call() -> None:
        calls.append(1)
        if len(calls) >= 2:
            raise _Stop

    dest = tmp_path / "store" / "copy.db"
    dest.parent.mkdir()
    # A slice of one page, so even the small file takes several.
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(snapshot, "_COPY_BUFFER", 4096)
        mp.setattr(snapshot, "_BACKUP_PAGES", 1)
        with pytest.raises(_Stop):
            snapshot.copy_database(small_db, dest, timeout=1.0, stop=stop_at_second_call)
        assert not dest.exists()
        how = snapshot.copy_database(small_db, dest, timeout=1.0, stop=lambda: None)
    assert how == ("backup" if journal == "wal" else "file")
    assert _rows(dest) == _rows(small_db)
