"""Export freshness: overdue exports and old data, judged from the published snapshot.
Real files, a real hub, tiny intervals; every wait is on a condition."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import anyio
import pytest

from core.checkonce import check_once
from core.config import FreshnessConfig
from core.erp.erpsim import ExportMode, simulate_export
from core.eventlog import utcnow
from core.freshness import assess, next_change
from core.state import HubState
from core.store import Published, Store
from tests.conftest import await_for, make_config, published_config, wait_for
from tests.core.hubtools import count, running_hub, until_at_rest, until_event

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def published(at: datetime, newest: date | None = date(2026, 11, 30)) -> Published:
    return Published(version="v", source_version="s", as_of=at, published_at=at, rows=1,
                     file="f", newest_work_date=newest)


def test_assess_overdue_stale_ok_and_unknown() -> None:
    daily = FreshnessConfig(expect_every=86400)  # grace: a quarter, 6 h
    assert assess(daily, None, NOW).state == "unknown"
    fresh = assess(daily, published(NOW - timedelta(hours=29)), NOW)
    assert fresh.state == "ok" and fresh.expected_by == NOW + timedelta(hours=1)
    late = assess(daily, published(NOW - timedelta(hours=31)), NOW)
    assert late.state == "overdue"
    assert late.message == "ERP export overdue: last export 31 h ago (expected every 24 h)"
    old = FreshnessConfig(max_data_age=2 * 86400)
    stale = assess(old, published(NOW, newest=date(2026, 11, 27)), NOW)
    assert stale.state == "stale_data"
    assert stale.message == "newest production date is 2026-11-27, 4 days old"
    assert assess(old, published(NOW, newest=date(2026, 11, 30)), NOW).state == "ok"
    assert assess(FreshnessConfig(), published(NOW - timedelta(days=99)), NOW).state == "ok"
    assert next_change(daily, published(NOW), NOW) == NOW + timedelta(hours=30)
    assert next_change(FreshnessConfig(), published(NOW), NOW) is None


@pytest.mark.anyio
async def test_an_overdue_export_degrades_and_a_new_one_clears_it(
    tmp_path: Path, small_db: Path
) -> None:
    config = make_config(tmp_path, freshness={"expect_every": 0.8, "grace": 0.2},
                         watch={"settle_interval": 0.1, "settle_checks": 2})
    async with running_hub(config) as hub:
        await until_event(hub, "snapshot_published")
        await until_at_rest(hub)
        assert hub.status().freshness.state == "ok"
        await until_event(hub, "export_overdue")
        status = hub.status()
        assert status.state is HubState.DEGRADED
        assert status.freshness.state == "overdue"
        assert status.freshness.message.startswith("ERP export overdue: last export ")
        assert status.freshness.last_export_at == status.published.published_at
        await anyio.to_thread.run_sync(lambda: simulate_export(
            small_db, ExportMode.REPLACE, rows=1500, seconds=0.0, seed=3, days=20))
        await until_event(hub, "export_resumed")
        await await_for(lambda: hub.status().state is HubState.HEALTHY, 10,
                        message="healthy after the new export")
        assert count(hub, "export_overdue") == 1


@pytest.mark.anyio
async def test_old_data_is_a_warning(tmp_path: Path, small_db: Path) -> None:
    # The demo data ends on 2026-03-31: months old by any clock this test runs on.
    config = make_config(tmp_path, freshness={"max_data_age": 86400})
    async with running_hub(config) as hub:
        await until_event(hub, "export_overdue")
        await until_at_rest(hub)
        status = hub.status()
        assert status.state is HubState.DEGRADED
        assert status.freshness.state == "stale_data"
        assert status.freshness.newest_work_date == date(2026, 3, 31)
        assert status.freshness.message.startswith("newest production date is 2026-03-31, ")


@pytest.mark.anyio
async def test_a_restart_keeps_the_clock(tmp_path: Path, small_db: Path) -> None:
    config = await anyio.to_thread.run_sync(lambda: published_config(
        tmp_path, small_db, freshness={"expect_every": 0.3, "grace": 0.0}))
    last = Store(config.store_dir).current()
    assert last is not None
    await await_for(lambda: utcnow() > last.published_at + timedelta(seconds=0.3), 5,
                    message="the export to fall due")
    async with running_hub(config) as hub:  # no new export: overdue at once
        await until_event(hub, "export_overdue", within=5)
        assert hub.status().freshness.last_export_at == last.published_at


def test_pdh_check_fails_while_overdue(tmp_path: Path, small_db: Path) -> None:
    config = published_config(tmp_path, small_db,
                              freshness={"expect_every": 0.2, "grace": 0.0})
    last = Store(config.store_dir).current()
    assert last is not None
    wait_for(lambda: utcnow() > last.published_at + timedelta(seconds=0.2), 5,
             message="the export to fall due")
    outcome = check_once(config)
    assert outcome.publish == "unchanged" and outcome.ok is False
    assert outcome.freshness["state"] == "overdue"
    assert any("ERP export overdue" in p for p in outcome.problems)
