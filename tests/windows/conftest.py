"""The Windows suite: real Windows CPython under Wine (see tests/windows/wine.py).

Skipped, with the reason, unless ``PDH_WINE_ENV`` names a prepared environment
(``make test-windows`` makes one and sets it). Each test gets its own folder on the Linux
side, which the Windows processes see through Wine's Z: drive.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.conftest import free_port
from tests.windows.wine import Wine, wine_available, wine_session, winpath

ENV_DIR = os.environ.get("PDH_WINE_ENV")
SKIP_REASON = wine_available(ENV_DIR)
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not SKIP_REASON:
        return
    skip = pytest.mark.skip(reason=SKIP_REASON)
    for item in items:
        if HERE in Path(str(item.path)).parents:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def wine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wine]:
    assert ENV_DIR
    # Absolute: Wine refuses a relative WINEPREFIX, and the tests run Wine elsewhere.
    with wine_session(Path(ENV_DIR).absolute(), tmp_path_factory.mktemp("wine")) as session:
        yield session


@pytest.fixture
def wdir(wine: Wine, tmp_path: Path) -> Path:
    """This test's folder, where the Windows processes run and write their logs."""
    wine.workdir = tmp_path
    return tmp_path


def write_config(folder: Path, *, db: str = "hub.db", api_port: int | None = None,
                 dashboard_port: int | None = None, extra: str = "") -> Path:
    """A pdh.toml with small intervals, the API on a free loopback port."""
    api = f"port = {api_port}" if api_port else "enabled = false"
    dash = (f"enabled = true\nport = {dashboard_port}\nstart_timeout = 120"
            if dashboard_port else "enabled = false")
    text = textwrap.dedent(f"""\
        [database]
        path = '{db}'
        [watch]
        settle_interval = 0.3
        settle_checks = 3
        check_interval = 3600
        [api]
        {api}
        [dashboard]
        {dash}
        [log]
        dir = "logs"
        [state]
        dir = "state"
        [store]
        dir = "snapshots"
        [ui]
        notifications = false
        """) + textwrap.dedent(extra)
    path = folder / "pdh.toml"
    path.write_text(text, encoding="utf-8")
    return path


__all__ = ["free_port", "winpath", "write_config"]


def processes_with(*parts: str) -> list[psutil.Process]:
    """(The Linux view of) the running processes whose command line holds every one of
    ``parts`` (gone and zombie ones left out: their command line cannot be read)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            cmdline = " ".join(proc.info["cmdline"] or [])
        except psutil.Error:
            continue
        if cmdline and all(part in cmdline for part in parts):
            found.append(proc)
    return found


def dashboard_process(port: int) -> psutil.Process | None:
    """The (Linux view of the) Windows process serving a dashboard on ``port``, if any."""
    return next(iter(processes_with("dashboard.serve", f"--server.port {port}")), None)
