"""``pdh run --demo``: a demo database and a simulated ERP export every few minutes, so a
new user sees the whole cycle (blue, a toast, green, new numbers in the dashboard).
"""

from __future__ import annotations

import logging
from pathlib import Path

import anyio
from anyio.abc import TaskStatus

from core.config import Config
from core.erp.erpsim import ExportMode, simulate_export
from core.hub import Hub

log = logging.getLogger(__name__)

DEMO_DB = Path("demo") / "production_analysis.db"
DEMO_DB_ROWS = 50_000  # what `make run` creates


def prepare_demo_db(config: Config, *, rows: int = DEMO_DB_ROWS) -> Path:
    """Create the demo database if it is missing; returns its path."""
    from core.erp.demodb import create_demo_db

    path = config.db_path
    if not path.exists():
        log.info("creating the demo database %s (%d rows)", path, rows)
        path.parent.mkdir(parents=True, exist_ok=True)
        create_demo_db(path, rows=rows, seed=1)
    return path


class DemoExporter:
    """Runs ``simulate_export`` on the hub's database every ``demo.export_interval`` s."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.exports = 0

    def export_once(self) -> None:
        """One export (blocking; run in a worker thread)."""
        demo = self.config.demo
        simulate_export(self.config.db_path, ExportMode(demo.mode), rows=demo.rows,
                        seconds=demo.seconds)
        self.exports += 1

    async def run(self, hub: Hub, *,
                  task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        demo = self.config.demo
        log.info("demo: an ERP export (%s, %d rows) every %g s", demo.mode, demo.rows,
                 demo.export_interval)
        task_status.started()
        while True:
            await anyio.sleep(demo.export_interval)
            log.info("demo: simulating an ERP export (%s)", demo.mode)
            try:
                # Not abandoned on cancel: shutdown waits for the export (a few seconds)
                # rather than leave a half-copied demo file behind.
                await anyio.to_thread.run_sync(self.export_once)
            except OSError as exc:
                log.warning("demo export failed: %s", exc)


def install(hub: Hub) -> None:
    """Add the demo exporter to ``hub`` (an :data:`agent.hub_app.ServiceInstaller`)."""
    hub.add_service(DemoExporter(hub.config).run)
