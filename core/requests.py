"""Requests for a check cycle, merged: whatever asks while a cycle runs (a file event, the
periodic check, Check Now, a retry) makes one more cycle, never a queue of them.

A request says whether to check even if nothing changed (``check``) and whether to heal
even with Auto Mode off (``forced``: Check Now, and the retries of a cycle it started).
The worker :meth:`CycleRequests.take`s them all at once; ``forced`` counts only with
``check``.
"""

from __future__ import annotations

from dataclasses import dataclass

import anyio


@dataclass(frozen=True, slots=True)
class Wanted:
    """What the requests merged since the last cycle ask for."""

    check: bool
    forced: bool


class CycleRequests:
    """Merged requests, and the wake-up of the one worker that takes them."""

    def __init__(self) -> None:
        self._cycle = self._check = self._forced = False
        self._wake: anyio.Event | None = None  # made by the worker: it belongs to the loop

    @property
    def pending(self) -> bool:
        return self._cycle

    def ask(self, *, check: bool = False, forced: bool = False) -> None:
        """One more cycle (callable before the worker runs: it finds the request)."""
        self._cycle = True
        if check:
            self._check = True
            self._forced = self._forced or forced
        if self._wake is not None:
            self._wake.set()

    def take(self) -> Wanted | None:
        """The merged requests, cleared; None when there are none."""
        if not self._cycle:
            return None
        wanted = Wanted(check=self._check, forced=self._forced and self._check)
        self._cycle = self._check = self._forced = False
        return wanted

    async def next(self) -> Wanted:
        """Wait for requests and take them."""
        while True:
            wanted = self.take()
            if wanted is not None:
                return wanted
            self._wake = anyio.Event()
            await self._wake.wait()
