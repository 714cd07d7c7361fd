"""A supervisor for one long-running child process (the Streamlit dashboard).

Generic over a command line: start the child in its own process group (session on
POSIX), call it ready when an HTTP health URL answers 200, restart it after a crash with
an exponential backoff that resets once it has stayed up for ``stable_after`` seconds,
give up after ``max_restarts`` restarts in a row that all crashed, and stop it gracefully
(terminate, wait, then kill the whole process tree). The child's stdout and stderr go to
a rotating log file. Restart, stop and start can be asked for at any time.

The supervisor knows nothing of the hub: it reports through two callbacks, ``on_status``
(a :class:`~core.state.ServerStatus` at every change) and ``on_event`` (an
:class:`~core.eventlog.EventName` and its fields: started, crashed, gave up).
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import httpx
import psutil
from anyio.abc import TaskStatus

from core.channel import CommandKind
from core.eventlog import EventName
from core.net import port_in_use
from core.proctree import (
    SIGKILL,
    SIGSTOP,
    ChildLog,
    descendants,
    group_options,
    reap,
    signal_group,
)
from core.state import ServerState, ServerStatus

log = logging.getLogger(__name__)

StatusCallback = Callable[[ServerStatus], None]
EventCallback = Callable[..., None]  # (EventName, **fields)


@dataclass(frozen=True)
class ChildSpec:
    """What to run and how to look after it. Times are in seconds."""

    name: str
    argv: Sequence[str]
    log_file: Path
    health_url: str | None = None  # None: ready as soon as the process runs
    url: str | None = None  # what the status shows people
    # (host, port) the child will listen on: checked free before each start, so an old
    # server still holding the port is reported, not mistaken for our child's health.
    listen: tuple[str, int] | None = None
    env: Mapping[str, str] = field(default_factory=dict)  # added to this process's env
    cwd: Path | None = None
    start_timeout: float = 60.0
    restart_backoff: float = 1.0
    restart_backoff_max: float = 60.0
    stable_after: float = 60.0
    max_restarts: int = 5
    stop_timeout: float = 10.0  # after terminate, before kill
    health_interval: float = 0.2
    log_max_bytes: int = 2_000_000
    log_backups: int = 3


class Outcome(StrEnum):
    EXITED = "exited"  # the child ended by itself: a crash
    NOT_READY = "not_ready"  # health never answered within start_timeout: a crash too
    STOP = "stop"  # asked to stop
    RESTART = "restart"  # asked to restart


class Supervisor:
    """Keeps one child process running; run it with ``await tg.start(sup.run)``."""

    def __init__(
        self,
        spec: ChildSpec,
        *,
        on_status: StatusCallback | None = None,
        on_event: EventCallback | None = None,
        autostart: bool = True,
    ) -> None:
        self.spec = spec
        self._on_status = on_status
        self._on_event = on_event
        self._want_up = autostart
        self._restart_wanted = False
        self._changed = anyio.Event()
        self._crashes = 0  # in a row, since the last stable run or request
        self._status = ServerStatus(state=ServerState.STOPPED, url=spec.url)
        self._proc: anyio.abc.Process | None = None
        self._log = ChildLog(spec.log_file, max_bytes=spec.log_max_bytes,
                             backups=spec.log_backups)
        self.starts = 0  # processes spawned, for tests and benchmarks

    # status --------------------------------------------------------------------------

    @property
    def status(self) -> ServerStatus:
        return self._status.model_copy()

    def _set(self, **changes: Any) -> None:
        self._status = self._status.model_copy(update=changes)
        if self._on_status is not None:
            try:
                self._on_status(self.status)
            except Exception:
                log.exception("status callback of %s failed", self.spec.name)

    def _emit(self, name: EventName, **fields: Any) -> None:
        if self._on_event is not None:
            try:
                self._on_event(name, server=self.spec.name, **fields)
            except Exception:
                log.exception("event callback of %s failed", self.spec.name)

    # requests (call on the loop; they return at once) -------------------------------

    def request_start(self) -> None:
        """Start the child (again); clears a give-up and the crash count."""
        self._want_up = True
        self._crashes = 0
        self._changed.set()

    def request_stop(self) -> None:
        self._want_up = False
        self._restart_wanted = False
        self._changed.set()

    def request_restart(self) -> None:
        """Stop the running child and start a new one (or start it if it is down)."""
        self._want_up = True
        self._crashes = 0
        self._restart_wanted = True
        self._changed.set()

    async def control(self, kind: CommandKind) -> None:
        """The hub's server command: restart, stop or start."""
        if kind is CommandKind.RESTART_SERVER:
            self.request_restart()
        elif kind is CommandKind.STOP_SERVER:
            self.request_stop()
        elif kind is CommandKind.START_SERVER:
            self.request_start()
        else:
            log.warning("%s: unknown server command %s", self.spec.name, kind)

    async def _wait_changed(self) -> None:
        await self._changed.wait()
        self._changed = anyio.Event()

    async def _wait_for_request(self) -> None:
        """Return once a stop or restart has been asked for."""
        while self._want_up and not self._restart_wanted:
            await self._wait_changed()

    # lifecycle -----------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[Supervisor] = anyio.TASK_STATUS_IGNORED
                  ) -> None:
        """Supervise until cancelled; the child is stopped on the way out."""
        task_status.started(self)
        try:
            await self._loop()
        finally:
            with anyio.CancelScope(shield=True):
                await self._stop_child()
                self._set(state=ServerState.STOPPED, pid=None)
                await anyio.to_thread.run_sync(self._log.close)

    async def _loop(self) -> None:
        spec = self.spec
        while True:
            if not self._want_up:
                if self._status.state is not ServerState.GAVE_UP:
                    self._set(state=ServerState.STOPPED, pid=None)
                await self._wait_changed()
                continue
            self._restart_wanted = False
            outcome, uptime, detail = await self._run_child()
            if outcome is Outcome.RESTART:
                self._set(restarts=self._status.restarts + 1)
                continue
            if outcome is Outcome.STOP:
                continue
            # A crash. A run that stayed up long enough was healthy: start counting anew.
            if uptime >= spec.stable_after:
                self._crashes = 0
            self._crashes += 1
            self._emit(EventName.SERVER_CRASHED, error=detail, uptime_s=round(uptime, 3),
                       crashes=self._crashes)
            if self._crashes > spec.max_restarts:
                message = f"{detail}; gave up after {self._crashes} crashes in a row"
                log.error("%s %s", spec.name, message)
                self._set(state=ServerState.GAVE_UP, pid=None, error=message)
                self._emit(EventName.SERVER_GAVE_UP, error=detail, crashes=self._crashes)
                self._want_up = False
                continue
            delay = min(spec.restart_backoff * 2 ** (self._crashes - 1), spec.restart_backoff_max)
            log.warning("%s %s; restarting in %.1f s", spec.name, detail, delay)
            self._set(state=ServerState.RESTARTING, pid=None, error=detail,
                      restarts=self._status.restarts + 1)
            with anyio.move_on_after(delay):
                # A stop, start or restart request cuts the wait short.
                await self._wait_changed()

    async def _run_child(self) -> tuple[Outcome, float, str]:
        """Spawn one child and watch it until it exits or a request ends it.

        Returns the outcome, how long the child was up (since ready) and a detail.
        """
        spec = self.spec
        self._set(state=ServerState.STARTING, pid=None)
        if spec.listen is not None and await anyio.to_thread.run_sync(port_in_use, *spec.listen):
            host, port = spec.listen
            return Outcome.EXITED, 0.0, f"port {port} on {host} is in use by another program"
        try:
            proc = await self._spawn()
        except OSError as exc:
            return Outcome.EXITED, 0.0, f"cannot start {spec.argv[0]}: {exc}"
        self._proc = proc
        self.starts += 1
        self._set(pid=proc.pid)
        await self._note(f"=== started pid {proc.pid}: {' '.join(spec.argv)}")
        ready_at: float | None = None
        pumped = anyio.Event()
        async with anyio.create_task_group() as pumps:
            assert proc.stdout is not None
            pumps.start_soon(self._pump, proc.stdout, pumped)
            try:
                outcome = await self._watch(proc)
                if outcome is None:  # ready
                    ready_at = time.monotonic()
                    log.info("%s running (pid %s) at %s", spec.name, proc.pid, spec.url)
                    self._set(state=ServerState.RUNNING, error=None)
                    self._emit(EventName.SERVER_STARTED, url=spec.url, pid=proc.pid)
                    ended = await _first_of(proc.wait, self._wait_for_request)
                    outcome = Outcome.EXITED if ended == 0 else self._requested()
            finally:
                with anyio.CancelScope(shield=True):
                    await self._stop_child()
                    # Output still in the pipe is worth keeping, but a grandchild that
                    # holds the pipe open must not hold us up.
                    with anyio.move_on_after(2):
                        await pumped.wait()
                    pumps.cancel_scope.cancel()
                    await proc.aclose()
                    # Also when the hub is stopping (cancelled): how the child ended.
                    await self._note(f"=== pid {proc.pid} ended with code {proc.returncode}")
        rc = proc.returncode
        uptime = 0.0 if ready_at is None else time.monotonic() - ready_at
        if outcome is Outcome.RESTART:
            log.info("%s restarting on request", spec.name)
            return outcome, uptime, "restart requested"
        if outcome is Outcome.STOP:
            log.info("%s stopped on request", spec.name)
            return outcome, uptime, "stop requested"
        if outcome is Outcome.NOT_READY:
            return outcome, 0.0, f"did not answer {spec.health_url} within {spec.start_timeout:g} s"
        when = "" if ready_at is not None else " while starting"
        return Outcome.EXITED, uptime, f"exited with code {rc}{when}"

    async def _watch(self, proc: anyio.abc.Process) -> Outcome | None:
        """Wait for the child to become ready (None) or for what ended its start."""
        first = await _first_of(
            self._wait_healthy,
            proc.wait,
            lambda: anyio.sleep(self.spec.start_timeout),
            self._wait_for_request,
        )
        if first == 0:
            return None
        if first == 1:
            return Outcome.EXITED
        if first == 2:
            return Outcome.NOT_READY
        return self._requested()

    def _requested(self) -> Outcome:
        return Outcome.RESTART if self._want_up and self._restart_wanted else Outcome.STOP

    async def _spawn(self) -> anyio.abc.Process:
        spec = self.spec
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **spec.env}
        return await anyio.open_process(
            list(spec.argv),
            # A pipe nobody writes to: the child sees end-of-file when we stop it or die,
            # the one stop request that reaches a child on every platform and console.
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=spec.cwd,
            env=env,
            **group_options(),
        )

    async def _pump(self, stream: anyio.abc.ByteReceiveStream, done: anyio.Event) -> None:
        """Copy the child's output, line by line, into the rotating log file."""
        rest = b""
        try:
            async for chunk in stream:
                rest += chunk
                *lines, rest = rest.split(b"\n")
                if lines:
                    text = [ln.decode("utf-8", "replace").rstrip("\r") for ln in lines]
                    await anyio.to_thread.run_sync(self._log.write, text)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass
        finally:
            if rest:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(
                        self._log.write, [rest.decode("utf-8", "replace")]
                    )
            done.set()

    async def _note(self, line: str) -> None:
        await anyio.to_thread.run_sync(self._log.write, [line])

    async def _wait_healthy(self) -> None:
        """Return once the health URL answers 200 (at once when there is none)."""
        url = self.spec.health_url
        if url is None:
            return
        async with httpx.AsyncClient(timeout=2.0, trust_env=False) as client:
            while True:
                try:
                    response = await client.get(url)
                    if response.status_code == 200:
                        return
                except httpx.HTTPError:
                    pass  # not listening yet
                await anyio.sleep(self.spec.health_interval)

    async def _stop_child(self) -> None:
        """Stop the child and its whole tree: ask (end of its stdin, and SIGTERM to its
        group on POSIX, CTRL_BREAK_EVENT to its process group on Windows), wait
        ``stop_timeout``, then kill the tree."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        tree: list[psutil.Process] = []
        if proc.returncode is None:
            tree = await anyio.to_thread.run_sync(descendants, proc.pid)
            if proc.stdin is not None:
                with contextlib.suppress(OSError, anyio.BrokenResourceError,
                                         anyio.ClosedResourceError):
                    await proc.stdin.aclose()
            signal_group(proc, SIGSTOP)
            with anyio.move_on_after(self.spec.stop_timeout):
                await proc.wait()
            if proc.returncode is None:
                log.warning("%s did not stop in %.0f s; killing it", self.spec.name,
                            self.spec.stop_timeout)
                signal_group(proc, SIGKILL)
                await proc.wait()
        else:
            # The leader is gone; anything left in its group is an orphan of the crash.
            signal_group(proc, SIGKILL)
        await anyio.to_thread.run_sync(reap, tree, self.spec.stop_timeout)


async def _first_of(*fns: Callable[[], Awaitable[Any]]) -> int:
    """Run the coroutines together; return the index of the first to finish (others end)."""
    winner: int | None = None
    async with anyio.create_task_group() as tg:

        async def race(index: int, fn: Callable[[], Awaitable[Any]]) -> None:
            nonlocal winner
            await fn()
            if winner is None:
                winner = index
            tg.cancel_scope.cancel()

        for index, fn in enumerate(fns):
            tg.start_soon(race, index, fn)
    assert winner is not None
    return winner
