"""Shared fixtures: small real SQLite files, a config with tiny intervals, waiting on
conditions (never sleep-and-hope), free loopback ports."""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from core.config import Config, parse_config

FIXED_END = date(2026, 3, 31)

# The platform's app folders (the per-database defaults, the hub locks) in a folder of
# this run's, never the user's, for this process and every child it starts.
_APP_HOME = Path(tempfile.mkdtemp(prefix="pdh-test-home-"))
atexit.register(shutil.rmtree, _APP_HOME, ignore_errors=True)
for _name in ("XDG_DATA_HOME", "XDG_STATE_HOME"):
    os.environ[_name] = str(_APP_HOME / _name.lower())


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def make_config(tmp_path: Path, db: Path | None = None, **sections: dict[str, Any]) -> Config:
    """A config for tests: DB in tmp_path/data, logs and state in tmp_path, tiny intervals."""
    data: dict[str, Any] = {
        "database": {"path": str(db or tmp_path / "data" / "production_analysis.db")},
        "watch": {
            "settle_interval": 0.2,
            "settle_checks": 2,
            "check_interval": 3600.0,
            "poll_interval": 0.2,
        },
        "heal": {"connect_timeout": 2.0, "retries": 3, "retry_backoff": 0.1},
        "api": {"enabled": False},
        "dashboard": {"enabled": False},
        "ui": {"notifications": False},
        "log": {"dir": str(tmp_path / "logs")},
        "state": {"dir": str(tmp_path / "state")},
        "store": {"dir": str(tmp_path / "store")},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return parse_config(data, source="<test>", base=tmp_path)


def published_config(tmp_path: Path, db: Path | None = None,
                     **sections: dict[str, Any]) -> Config:
    """:func:`make_config` with ``db`` published into its store by the real pipeline (the
    one ``pdh check`` runs), so readers have a snapshot to serve."""
    from core.checkonce import check_once

    config = make_config(tmp_path, db, **sections)
    outcome = check_once(config)
    assert outcome.publish in ("published", "unchanged"), outcome
    return config


@pytest.fixture
def config_factory(tmp_path: Path) -> Callable[..., Config]:
    def factory(**sections: dict[str, Any]) -> Config:
        return make_config(tmp_path, **sections)

    return factory


def make_db(path: Path, *, rows: int = 2000, seed: int = 1, days: int = 60) -> Path:
    from core.erp.demodb import create_demo_db

    path.parent.mkdir(parents=True, exist_ok=True)
    create_demo_db(path, rows=rows, seed=seed, days=days, end_date=FIXED_END)
    return path


@pytest.fixture(scope="session")
def small_db_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small demo DB per session; copy it rather than regenerating it."""
    return make_db(tmp_path_factory.mktemp("template") / "template.db")


@pytest.fixture
def small_db(tmp_path: Path, small_db_template: Path) -> Path:
    import shutil

    target = tmp_path / "data" / "production_analysis.db"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(small_db_template, target)
    return target


def wait_for(condition: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02,
             message: str = "condition") -> Any:
    """Poll ``condition`` until truthy (returned) or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


async def await_for(condition: Callable[[], Any], timeout: float = 10.0,  # noqa: ASYNC109
                    interval: float = 0.02, message: str = "condition") -> Any:
    """The async twin of :func:`wait_for`, for tests running on the event loop."""
    import anyio

    with anyio.move_on_after(timeout):
        while True:
            value = condition()
            if value:
                return value
            await anyio.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {message}")


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A loopback port nobody listens on, never the same twice in one process (two
    servers given ports in a row would otherwise be able to get the same one)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port
