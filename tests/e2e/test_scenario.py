"""The product plan's scenario, end to end, for each way the ERP writes its export: the
servers run; the ERP replaces the file; the hub logs "DB update detected", waits out the
settle window, logs "indexes restored"; a reload of the dashboard in a real browser and
the API both show the new data, labelled with the new file's version."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from core.dbfile import look
from core.erp.erpsim import ExportMode, simulate_export
from core.heal import STATISTICS
from dashboard.i18n import fmt_int
from tests.e2e.conftest import (
    INDEXES,
    SETTLE_WINDOW,
    HubProcess,
    assert_api_serves_file,
    event_time,
    in_order,
    names,
    settled_hub,
    shown_kpis,
)

pytestmark = pytest.mark.slow

SEEDS = {ExportMode.REPLACE: 101, ExportMode.COPY: 202, ExportMode.REBUILD: 303,
         ExportMode.DELETE: 404}


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    with settled_hub(tmp_path_factory, "scenario") as running:
        yield running


def test_servers_run_and_serve_the_first_heal(hub: HubProcess, page: Any) -> None:
    status = hub.wait_at_rest()
    assert status["servers"]["api"]["url"] == f"http://127.0.0.1:{hub.api_port}"
    assert status["servers"]["dashboard"]["url"] == hub.dashboard_url
    assert status["last_check"]["result"] == "healed"  # the ERP's file came without indexes
    assert set(status["last_check"]["healed"]) == INDEXES | {STATISTICS}
    kpis = assert_api_serves_file(hub)
    assert shown_kpis(page, hub.dashboard_url)["Good quantity"] == fmt_int(kpis["good_qty"])


@pytest.mark.parametrize("mode", list(SEEDS), ids=str)
def test_an_export_is_noticed_settled_healed_and_served(hub: HubProcess, page: Any,
                                                        mode: ExportMode) -> None:
    hub.wait_at_rest()
    before = assert_api_serves_file(hub)
    seen_events, seen_log = len(hub.events()), len(hub.log_lines())

    simulate_export(hub.db, mode, rows=1500, seconds=0.3, seed=SEEDS[mode], days=40)
    status = hub.wait_at_rest()

    # The log a person reads: the update, then (after the settle window) the heal.
    log = hub.log_lines()[seen_log:]
    detected = [i for i, line in enumerate(log) if "DB update detected" in line]
    restored = [i for i, line in enumerate(log) if "indexes restored" in line]
    assert detected and restored and detected[0] < restored[-1], "\n".join(log)

    events = hub.events()[seen_events:]
    assert in_order(["db_change_detected", "db_settled", "indexes_healed", "snapshot_published"],
                    names(events)), events
    assert not {"heal_failed", "db_unreadable"} & set(names(events)), events
    first = {e["event"]: e for e in reversed(events)}  # the first of each name
    waited = event_time(first["db_settled"]) - event_time(first["db_change_detected"])
    assert waited >= SETTLE_WINDOW - 0.01, f"settled after {waited:.3f} s"
    healed = [e for e in events if e["event"] == "indexes_healed"][-1]
    assert set(healed["healed"]) == INDEXES | {STATISTICS}
    assert status["last_check"]["version"] == look(hub.db).version

    # The API and a reloaded dashboard show the new export, not the old one.
    after = assert_api_serves_file(hub)
    assert after != before
    assert shown_kpis(page, hub.dashboard_url) == {
        "Good quantity": fmt_int(after["good_qty"]),
        "Defect quantity": fmt_int(after["defect_qty"]),
    }
