"""The thread-safe bridge between the hub's event loop and another thread (the tray).

Other threads post commands without blocking; the hub publishes state snapshots, and a
reader gets the latest one (latest wins: nothing queues up behind a slow reader).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from core.state import StatusSnapshot

log = logging.getLogger(__name__)


class CommandKind(StrEnum):
    CHECK_NOW = "check_now"
    PUBLISH_ANYWAY = "publish_anyway"
    SET_AUTO_MODE = "set_auto_mode"
    SHUTDOWN = "shutdown"
    RESTART_SERVER = "restart_server"
    STOP_SERVER = "stop_server"
    START_SERVER = "start_server"


@dataclass(frozen=True, slots=True)
class Command:
    kind: CommandKind
    value: bool | str | None = None


Listener = Callable[[StatusSnapshot], None]


class Channel:
    """Commands in, snapshots out; safe to use from any thread."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._seq = 0
        self._latest: StatusSnapshot | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._deliver: Callable[[Command], None] | None = None
        self._listeners: list[Listener] = []

    # hub side ----------------------------------------------------------------------

    def bind(self, deliver: Callable[[Command], None]) -> None:
        """Called by the hub on its event loop: commands will be delivered there."""
        loop = asyncio.get_running_loop()
        with self._cond:
            self._loop, self._deliver = loop, deliver

    def unbind(self) -> None:
        with self._cond:
            self._loop, self._deliver = None, None

    def publish(self, snapshot: StatusSnapshot) -> None:
        """Replace the latest snapshot and wake readers; listeners must be quick."""
        with self._cond:
            self._seq += 1
            self._latest = snapshot
            listeners = list(self._listeners)
            self._cond.notify_all()
        for listener in listeners:
            try:
                listener(snapshot)
            except Exception:
                log.exception("state listener failed")

    # any thread --------------------------------------------------------------------

    def post(self, command: Command) -> bool:
        """Hand a command to the hub without waiting; False if the hub is not running."""
        with self._cond:
            loop, deliver = self._loop, self._deliver
        if loop is None or deliver is None or loop.is_closed():
            return False
        try:
            loop.call_soon_threadsafe(deliver, command)
        except RuntimeError:  # the loop closed between the check and the call
            return False
        return True

    def check_now(self) -> bool:
        return self.post(Command(CommandKind.CHECK_NOW))

    def set_auto_mode(self, on: bool) -> bool:
        return self.post(Command(CommandKind.SET_AUTO_MODE, on))

    def shutdown(self) -> bool:
        return self.post(Command(CommandKind.SHUTDOWN))

    def latest(self) -> tuple[int, StatusSnapshot | None]:
        with self._cond:
            return self._seq, self._latest

    def wait_newer(self, seen: int, timeout: float | None = None) -> tuple[int, StatusSnapshot]:
        """Block until a snapshot newer than sequence ``seen`` exists; TimeoutError if not."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._seq > seen, timeout):
                raise TimeoutError("no new hub state")
            assert self._latest is not None
            return self._seq, self._latest

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` (on the hub's thread) with each snapshot; returns unsubscribe."""
        with self._cond:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._cond:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe
