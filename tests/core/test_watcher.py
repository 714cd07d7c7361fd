"""The watcher on a real temp folder: OS events, polling, and what the poller misses."""

from __future__ import annotations

import os
import time
from functools import partial
from pathlib import Path

import anyio
import pytest

from core.watcher import watch_db
from tests.conftest import await_for

pytestmark = pytest.mark.anyio

UNRELATED_WINDOW_S = 0.8


async def _start_of_a_second() -> None:
    await anyio.sleep(1 - time.time() % 1 + 0.01)


@pytest.mark.parametrize("force_polling", [False, True])
async def test_a_write_in_the_same_second_is_noticed(tmp_path: Path, force_polling: bool) -> None:
    """watchfiles' own poller compares whole-second mtimes and misses this; ours doesn't."""
    db = tmp_path / "production_analysis.db"
    db.write_bytes(b"x")
    calls: list[float] = []
    async with anyio.create_task_group() as tg:
        await tg.start(partial(watch_db, db, lambda: calls.append(time.time()),
                               force_polling=force_polling, poll_interval=0.1))
        for attempt in range(5):
            await _start_of_a_second()
            seen = len(calls)
            db.write_bytes(b"a" * (100 + attempt))  # a new second: any poller sees this
            await await_for(lambda n=seen: len(calls) > n, 5, message="the first write")
            await anyio.sleep(0.15)  # let a late duplicate event of that write arrive
            second, before = int(os.stat(db).st_mtime), len(calls)
            db.write_bytes(b"b" * (200 + attempt))
            if int(os.stat(db).st_mtime) != second:
                continue  # a slow machine crossed into the next second: try again
            await await_for(lambda n=before: len(calls) > n, 5, message="the same-second write")
            break
        else:
            pytest.fail("could not make two writes within one second")
        tg.cancel_scope.cancel()


async def test_other_files_in_the_folder_are_ignored(tmp_path: Path) -> None:
    db = tmp_path / "production_analysis.db"
    db.write_bytes(b"x")
    calls: list[str] = []
    async with anyio.create_task_group() as tg:
        await tg.start(partial(watch_db, db, lambda: calls.append("change"), poll_interval=0.1))
        (tmp_path / "unrelated.txt").write_text("hello")
        (tmp_path / "other.db").write_bytes(b"another database")
        (tmp_path / "production_analysis.db.tmp").write_bytes(b"staged export")
        # An absence needs a window: several debounce periods (200 ms) and watcher wake-ups,
        # in which an unfiltered event would have been reported.
        await anyio.sleep(UNRELATED_WINDOW_S)
        assert calls == [], "a write to another file was reported"
        os.replace(tmp_path / "production_analysis.db.tmp", db)  # only this counts
        await await_for(lambda: calls, 5, message="the database replace")
        tg.cancel_scope.cancel()


async def test_a_folder_deleted_and_made_again_at_once_is_watched_anew(tmp_path: Path) -> None:
    # ext4 gives a new folder the inode just freed, so (device, inode) cannot tell the new
    # folder from the old one: the OS watch ended with the old folder and must be renewed.
    folder = tmp_path / "share"
    folder.mkdir()
    db = folder / "production_analysis.db"
    db.write_bytes(b"x")
    calls: list[float] = []
    async with anyio.create_task_group() as tg:
        await tg.start(partial(watch_db, db, lambda: calls.append(time.monotonic()),
                               poll_interval=0.2))
        db.unlink()
        folder.rmdir()
        folder.mkdir()  # before the guard's next look
        await await_for(lambda: bool(calls), 5, message="the folder's deletion")
        await anyio.sleep(0.5)  # the events of the deletion have all arrived
        seen = len(calls)
        db.write_bytes(b"the next export")
        await await_for(lambda: len(calls) > seen, 5, message="a write in the new folder")
        tg.cancel_scope.cancel()
