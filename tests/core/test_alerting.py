"""The alert policy: what becomes a message, when, and its recovery. A fake clock and a
list for a channel here; real channels in test_alerts.py and the hub test below."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest

from core.alerts import Alert
from core.alerts.policy import AlertPolicy
from core.config import AlertsConfig
from core.erp.erpsim import ExportMode, simulate_export
from core.state import HubState
from tests.conftest import await_for, make_config
from tests.core.hubtools import running_hub, until_at_rest, until_event

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


class Harness:
    def __init__(self, **cfg: float) -> None:
        self.sent: list[Alert] = []
        self.now = T0
        self.policy = AlertPolicy(AlertsConfig(**cfg), self.sent.append, self.make)

    def make(self, kind: str, recovered: bool, message: str, suppressed: int,
             since: datetime | None) -> Alert:
        return Alert(kind=kind, recovered=recovered, state="degraded", message=message,
                     db="/x.db", time=self.now, host="h", suppressed=suppressed,
                     suppressed_since=since)

    def event(self, name: str, after: float = 0.0, **fields: str) -> None:
        self.now += timedelta(seconds=after)
        self.policy.on_event({"event": name, **fields}, self.now)

    def wait(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        self.policy.tick(self.now)

    def summary(self) -> list[tuple[str, bool, int]]:
        return [(a.kind, a.recovered, a.suppressed) for a in self.sent]


def test_a_failed_heal_is_sent_at_once_and_its_recovery_too() -> None:
    h = Harness()
    h.event("heal_failed", error="index idx_x: table t is missing")
    assert h.summary() == [("heal_failed", False, 0)]
    assert h.sent[0].message == "index idx_x: table t is missing"
    h.event("check_ok", after=5)
    assert h.summary() == [("heal_failed", False, 0), ("heal_failed", True, 0)]
    h.event("check_ok", after=5)  # nothing more to recover from
    assert len(h.sent) == 2


def test_a_missing_file_is_news_only_after_the_grace_period() -> None:
    h = Harness(problem_grace=300)
    h.event("db_missing", path="/x.db")
    h.event("db_settled", after=20)  # the ERP's delete-then-write: back within the grace
    assert h.sent == []
    h.event("db_missing", after=60, path="/x.db")
    h.wait(299)
    assert h.sent == []
    assert h.policy.tick(h.now) == h.now + timedelta(seconds=1)  # when to look again
    h.wait(1)
    assert h.summary() == [("db_missing", False, 0)]
    assert h.sent[0].message == "database file not found: /x.db"
    h.event("snapshot_published", after=100)
    assert h.summary()[-1] == ("db_missing", True, 0)


def test_the_rate_limit_counts_and_sums_up() -> None:
    h = Harness(min_interval=900)
    h.event("export_rejected", reason="a third of the rows")
    h.event("export_rejected", after=60, reason="a third again")
    h.event("export_rejected", after=60, reason="and again")
    assert h.summary() == [("export_rejected", False, 0)]
    h.wait(900 - 120)  # the interval is over and the problem is still there: a summary
    assert h.summary() == [("export_rejected", False, 0), ("export_rejected", False, 2)]
    assert h.sent[-1].message == "and again" and h.sent[-1].suppressed_since == T0
    h.event("snapshot_published", after=10)
    assert h.summary()[-1] == ("export_rejected", True, 0)


def test_kinds_are_limited_apart_and_overdue_clears_by_resumed() -> None:
    h = Harness(min_interval=900)
    h.event("export_overdue", message="ERP export overdue: last export 26 h ago")
    h.event("server_gave_up", after=1, server="dashboard", error="crashed 5 times")
    assert h.summary() == [("export_overdue", False, 0), ("server_gave_up", False, 0)]
    assert h.sent[1].message == "dashboard: crashed 5 times"
    h.event("export_resumed", after=1)
    h.event("server_started", after=1, server="dashboard")
    assert [a.recovered for a in h.sent] == [False, False, True, True]


# --- the hub, a real webhook receiver on loopback ------------------------------------------


class Receiver:
    """An HTTP server on a free loopback port that keeps the JSON bodies it is sent."""

    def __init__(self) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        bodies = self.bodies = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", 0))
                bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.anyio
async def test_the_hub_alerts_a_held_back_export_and_its_recovery(
    tmp_path: Path, small_db: Path
) -> None:
    with Receiver() as receiver:
        config = make_config(tmp_path, alerts={"webhook": [{"url": receiver.url}],
                                               "retry_backoff": 0.1},
                             watch={"settle_interval": 0.1, "settle_checks": 2})
        async with running_hub(config) as hub:
            await until_event(hub, "snapshot_published")
            await until_at_rest(hub)
            await anyio.to_thread.run_sync(lambda: simulate_export(
                small_db, ExportMode.REPLACE, rows=500, seconds=0.0, seed=5, days=20))
            await await_for(lambda: receiver.bodies, 10, message="the alert")
            alert = receiver.bodies[0]
            assert alert["event"] == "export_rejected" and alert["recovered"] is False
            assert "500 production records" in alert["message"]
            assert alert["db"] == str(small_db) and alert["state"] in ("degraded", "working")
            await anyio.to_thread.run_sync(lambda: simulate_export(
                small_db, ExportMode.REPLACE, rows=2000, seconds=0.0, seed=6, days=20))
            await await_for(lambda: len(receiver.bodies) >= 2, 10, message="the recovery")
            assert receiver.bodies[1]["event"] == "export_rejected"
            assert receiver.bodies[1]["recovered"] is True
            status = hub.status().alerts
            assert list(status) and all(s["last_ok"] for s in status.values())


@pytest.mark.anyio
async def test_a_failing_channel_is_reported_and_the_hub_stays_healthy(
    tmp_path: Path, small_db: Path
) -> None:
    from tests.conftest import free_port

    refused = f"http://127.0.0.1:{free_port()}/hook"  # nobody listens there
    with Receiver() as receiver:
        config = make_config(tmp_path, alerts={
            "webhook": [{"url": refused, "timeout": 1.0}, {"url": receiver.url}],
            "retries": 2, "retry_backoff": 0.05,
        }, watch={"settle_interval": 0.1, "settle_checks": 2})
        async with running_hub(config) as hub:
            await until_event(hub, "snapshot_published")
            await until_at_rest(hub)
            await anyio.to_thread.run_sync(lambda: simulate_export(
                small_db, ExportMode.REPLACE, rows=500, seconds=0.0, seed=7, days=20))
            await await_for(lambda: receiver.bodies, 10, message="the working channel")
            await await_for(lambda: any(s["last_error"] for s in hub.status().alerts.values()),
                            10, message="the failing channel reported")
            errors = [s["last_error"] for s in hub.status().alerts.values() if s["last_error"]]
            assert errors == ["connection refused"], errors
            await hub.publish_anyway()  # the engineer accepts the export
            await await_for(lambda: hub.status().state is HubState.HEALTHY, 10,
                            message="healthy, whatever the channel")
