"""Saving the hub's state in the background: one save at a time, in order, each taking
the state as it is when its turn comes, so a later save never loses to an earlier one.

The hub asks with :meth:`StateSaver.soon` (from its loop, never waiting) or saves at once
with :meth:`StateSaver.save` (on the way out); :meth:`StateSaver.run` is the one task
that does the background saves, in the hub's task group.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import anyio

from core.state import PersistedState, save_state

log = logging.getLogger(__name__)


class StateSaver:
    """Writes ``state()`` to ``path`` (nothing when ``persist`` is off)."""

    def __init__(self, path: Path, state: Callable[[], PersistedState], *,
                 persist: bool = True) -> None:
        self.path = path
        self._state = state
        self._persist = persist
        self._lock = anyio.Lock()
        self._wanted: anyio.Event | None = None  # made in run(): it belongs to the loop

    async def save(self) -> None:
        """Persist the state as it is now (a failure is logged: the hub goes on)."""
        if not self._persist:
            return
        async with self._lock:
            state = self._state()
            try:
                await anyio.to_thread.run_sync(save_state, self.path, state)
            except OSError as exc:
                log.warning("cannot save state to %s: %s", self.path, exc)

    def soon(self) -> None:
        """Ask for a save; asks while one runs make one more save, of the state then."""
        if self._wanted is not None:
            self._wanted.set()

    async def run(self) -> None:
        """The background saves, until cancelled."""
        self._wanted = anyio.Event()
        while True:
            await self._wanted.wait()
            self._wanted = anyio.Event()
            await self.save()
