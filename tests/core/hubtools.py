"""Helpers for tests that run a real Hub on the test's event loop."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from core.config import Config
from core.dbfile import look
from core.hub import Hub
from tests.conftest import await_for


@asynccontextmanager
async def running_hub(config: Config, **kwargs: Any) -> AsyncIterator[Hub]:
    """A real hub in a task group of the test; shut down (and state saved) on exit."""
    hub = Hub(config, **kwargs)
    async with anyio.create_task_group() as tg:
        await tg.start(hub.run)
        try:
            yield hub
        finally:
            hub.shutdown()


def event_names(hub: Hub) -> list[str]:
    return [e["event"] for e in hub.events.recent(50)]


def count(hub: Hub, name: str) -> int:
    return event_names(hub).count(name)


def at_rest(hub: Hub) -> bool:
    """Idle, and the file on disk is the version the hub last accepted."""
    return not hub.busy and hub.known_version == look(hub.path).version


async def until_at_rest(hub: Hub, within: float = 20.0) -> None:
    await await_for(lambda: at_rest(hub), within, message="the hub to come to rest")


async def until_event(hub: Hub, name: str, n: int = 1, within: float = 20.0) -> None:
    await await_for(lambda: count(hub, name) >= n, within, message=f"{n} x {name}")


@contextmanager
def read_only_folder(folder: Path) -> Any:
    """Make ``folder`` unwritable for this process (chmod, or chattr +i as root)."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    if shutil.which("chattr") is None:
        pytest.skip("running as root without chattr: cannot make a folder read-only")
    done = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"chattr +i not supported here: {done.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
