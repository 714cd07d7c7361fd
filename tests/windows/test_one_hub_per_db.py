"""One database, one hub, on Windows: two ERP files of one name in two folders
(``C:\\ERP\\Plant1`` and ``C:\\ERP\\Plant2``), every folder left at its default
(``%LOCALAPPDATA%``), keep their data apart; the same file named with other letter case
is the same database, so its second hub is refused."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import httpx
import pytest

from tests.windows.conftest import free_port
from tests.windows.wine import PDH, PY, Wine, WineProcess, wait_until, winpath

pytestmark = pytest.mark.slow


def _get(port: int, route: str) -> dict | None:
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/api/v1{route}", timeout=5,
                             trust_env=False)
    except httpx.HTTPError:
        return None
    return response.json() if response.status_code == 200 else None


def _config(folder: Path, db: str, port: int) -> Path:
    """A config that names only the database, its API port and small intervals."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pdh.toml"
    path.write_text(textwrap.dedent(f"""\
        [database]
        path = '{db}'
        [watch]
        settle_interval = 0.3
        settle_checks = 3
        check_interval = 3600
        [api]
        port = {port}
        [dashboard]
        enabled = false
        [ui]
        notifications = false
        [verify]
        min_row_ratio = 0
        """), encoding="utf-8")
    return path


def _published(port: int, rows: int) -> dict | None:
    status = _get(port, "/hub/status")
    if status and (status.get("published") or {}).get("rows") == rows:
        return status
    return None


def test_two_plants_keep_their_data_apart_and_letter_case_is_one_database(
        wine: Wine, wdir: Path) -> None:
    erp = f"ERP-{os.getpid()}-{wdir.name[-12:]}"  # the prefix outlives one run
    plants = {}
    for plant, rows in (("Plant1", 3000), ("Plant2", 4000)):
        (wine.prefix / "drive_c" / erp / plant).mkdir(parents=True)
        db = rf"C:\{erp}\{plant}\production_analysis.db"
        assert wine.run(PDH, "demo-db", db, "--rows", str(rows)).returncode == 0
        plants[plant] = (db, rows, free_port())
    hubs: dict[str, WineProcess] = {}
    try:
        for plant, (db, _rows, port) in plants.items():
            config = _config(wdir / plant, db, port)
            hubs[plant] = wine.start_process(PY, "-m", "agent", "run", "--headless",
                                             "--config", winpath(config), name=plant)
        for plant, (_db, rows, port) in plants.items():
            wait_until(lambda port=port, rows=rows: _published(port, rows),
                       f"{plant}'s first publish", timeout=120)
        for db, rows, _port in plants.values():
            out = wine.run(PDH, "erp-sim", db, "--mode", "replace", "--rows", str(rows + 500),
                           "--seconds", "0.3")
            assert out.returncode == 0, out.stdout
        for plant, (db, rows, port) in plants.items():
            status = wait_until(lambda port=port, rows=rows: _published(port, rows + 500),
                                f"{plant}'s export published", timeout=90)
            assert status["db"]["path"] == db
            kpis = _get(port, "/kpis")
            assert kpis is not None and kpis["records"] == rows + 500, (plant, kpis)

        # The same file, other letter case, another config: the same database.
        db, _rows, port = plants["Plant1"]
        other = _config(wdir / "Plant1-again", db.lower().replace("production_analysis",
                                                                  "PRODUCTION_ANALYSIS"),
                        free_port())
        second = wine.run(PY, "-m", "agent", "run", "--headless", "--config", winpath(other),
                          timeout=120)
        assert second.returncode == 2, second.stdout
        assert "a hub is already running for" in second.stdout, second.stdout
        assert f"pid {_get(port, '/hub/status')['pid']}" in second.stdout, second.stdout
    finally:
        for hub in hubs.values():
            hub.interrupt()
        for plant, hub in hubs.items():
            assert hub.wait(20) == 0, hub.output()[-3000:]
            assert "Traceback" not in hub.output(), (plant, hub.output()[-3000:])
