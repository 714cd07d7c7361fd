"""Settle: wait until the ERP has finished writing.

Look at the file and its sidecars every ``interval``; a look that differs from the
previous one restarts the count; ``checks`` unchanged looks in a row mean the write is
done. A write that goes on for an hour is waited out, never cut short.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio

from core.dbfile import DbLook, look

Looker = Callable[[Path], DbLook]


async def settle(
    path: Path,
    *,
    interval: float,
    checks: int,
    first: DbLook | None = None,
    looker: Looker = look,
    on_still_writing: Callable[[DbLook, int], Awaitable[None]] | None = None,
) -> DbLook:
    """Return the settled look of ``path`` (which may say the file is missing).

    ``on_still_writing(look, changes)`` is awaited each time a look differs from the
    previous one, so the caller can show that the ERP is still writing.
    """
    previous = first if first is not None else await anyio.to_thread.run_sync(looker, path)
    unchanged = 0
    changes = 0
    while unchanged < checks:
        await anyio.sleep(interval)
        current = await anyio.to_thread.run_sync(looker, path)
        if current == previous:
            unchanged += 1
        else:
            unchanged = 0
            changes += 1
            if on_still_writing is not None:
                await on_still_writing(current, changes)
        previous = current
    return previous
