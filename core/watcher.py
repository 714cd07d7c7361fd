"""Notice changes to the database: watchfiles on its FOLDER (an atomic rename puts a new
inode there, which a watch on the old file would never see), filtered to the database
and its sidecars. Polling for network shares; survives the folder going away.

The watcher only says "something changed" (``on_change``); the hub decides what it
means by looking at the file, so a missed or duplicated event costs nothing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import anyio
from anyio.abc import TaskStatus
from watchfiles import Change, awatch

from core.dbfile import look, watched_names

log = logging.getLogger(__name__)


def _folder_id(folder: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(folder)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


async def _guard_folder(folder: Path, folder_id: tuple[int, int], stop: anyio.Event,
                        interval: float) -> None:
    """Set ``stop`` once ``folder`` is gone or is another folder (checked every
    ``interval``), or return when ``stop`` is set by someone else."""
    while not stop.is_set():
        with anyio.move_on_after(interval):
            await stop.wait()
        if stop.is_set():
            return
        if await anyio.to_thread.run_sync(_folder_id, folder) != folder_id:
            stop.set()


class DbFilter:
    """A watchfiles filter passing only the database file, its sidecars and the folder
    itself (its deletion ends the OS watch)."""

    def __init__(self, path: Path) -> None:
        self.names = watched_names(path)
        self.folder = os.path.normpath(path.parent)

    def __call__(self, change: Change, path: str) -> bool:
        return os.path.basename(path) in self.names or self.is_folder(path)

    def is_folder(self, path: str) -> bool:
        return os.path.normpath(path) == self.folder


async def watch_db(
    path: Path,
    on_change: Callable[[], None],
    *,
    force_polling: bool = False,
    poll_interval: float = 2.0,
    debounce_ms: int = 200,
    task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Call ``on_change`` whenever the database or a sidecar may have changed; forever.
    Started (``await tg.start(watch_db, ...)``) once the folder is being watched, or,
    when it is missing, once it is being waited for.

    When the folder is missing, wait for it (looking every ``poll_interval``) and report
    a change when it returns. The folder's identity is re-checked every
    ``poll_interval`` too, so a folder deleted and re-created is watched anew.
    """
    folder = path.parent
    watch_filter = DbFilter(path)
    wake_ms = max(200, int(poll_interval * 1000))
    started = False

    def watching() -> None:
        nonlocal started
        if not started:
            started = True
            task_status.started()

    while True:
        folder_id = await anyio.to_thread.run_sync(_folder_id, folder)
        if folder_id is None:
            log.warning("database folder %s is missing; waiting for it", folder)
            watching()
            while folder_id is None:
                await anyio.sleep(poll_interval)
                folder_id = await anyio.to_thread.run_sync(_folder_id, folder)
            log.info("database folder %s is back", folder)
            on_change()
        last_look = await anyio.to_thread.run_sync(look, path)
        # The folder's identity is checked by a task of its own: when the folder is
        # deleted under it, the OS watcher may simply stop yielding (seen once in CI), so
        # the check must not wait for it. It stops the watcher through `stop_event`.
        stop = anyio.Event()
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(_guard_folder, folder, folder_id, stop, poll_interval)
                async for changes in awatch(
                    folder,
                    watch_filter=watch_filter,
                    stop_event=stop,
                    force_polling=force_polling,
                    poll_delay_ms=int(poll_interval * 1000),
                    debounce=debounce_ms,
                    rust_timeout=wake_ms,
                    yield_on_timeout=True,
                    recursive=False,
                    ignore_permission_denied=True,
                ):
                    watching()  # the first yield (a timeout at the latest): the OS watch is on
                    if stop.is_set() or any(watch_filter.is_folder(p) for _, p in changes):
                        # The folder itself was deleted or moved (or the guard saw it so):
                        # the OS watch ended with it. Watch anew, also when a new folder
                        # with the old one's identity is already there (ext4 reuses a
                        # freed inode at once), which the guard cannot tell apart.
                        stop.set()
                        continue
                    changed = bool(changes)
                    if force_polling:
                        # The OS-independent poller compares mtimes in whole seconds, so
                        # an export landing in the same second as the last write can slip
                        # by; our own look (inode, size, mtime_ns, change counter) cannot.
                        current = await anyio.to_thread.run_sync(look, path)
                        changed = changed or current != last_look
                        last_look = current
                    if changed:
                        log.debug("%s may have changed: %s", path.name, changes or "polled")
                        on_change()
                # Stopped by the guard (it saw the folder gone or replaced, if only for a
                # moment) or above; else the watcher ended by itself: end the guard too.
                stopped = stop.is_set()
                stop.set()
            if stopped or await anyio.to_thread.run_sync(_folder_id, folder) != folder_id:
                log.warning("database folder %s went away or was replaced", folder)
                on_change()
        except (OSError, RuntimeError) as exc:
            # The OS watcher died (folder removed under it, too many watches, a share
            # dropped): report a possible change and start over.
            log.warning("watching %s failed (%s); retrying", folder, exc)
            on_change()
            await anyio.sleep(poll_interval)
