"""Running the API: inside the hub's task group (:func:`install`), or alone (``pdh api``).

We bind the listening socket ourselves, so a busy port is a clear message ("API port
8000 on 127.0.0.1 is already in use") instead of uvicorn's log line and ``sys.exit``;
inside the hub the API is then marked failed, binding is retried with backoff, and the
rest of the hub keeps running. uvicorn's ``SystemExit`` is still caught as a backstop.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Generator
from ctypes import c_byte
from functools import partial
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import uvicorn
from anyio.abc import TaskStatus
from fastapi import FastAPI
from uvicorn.supervisors import Multiprocess

from api.app import create_app
from api.data import DataSource, Query
from api.security import startup_problem
from core.config import Config
from core.eventlog import EventName
from core.logs import setup_logging
from core.state import ServerState, ServerStatus
from core.store import Published

if TYPE_CHECKING:
    from core.hub import Hub

log = logging.getLogger(__name__)

SERVER_NAME = "api"
BIND_RETRY_MAX = 60.0  # s: [api] bind_retry doubles up to this
GRACEFUL_SHUTDOWN = 3.0  # s for open requests (a long CSV) before they are cut
STOP_CHECK_S = 0.25  # s: how often a pdh api process looks at its stop flag and supervisor


class BindError(OSError):
    """The API's address cannot be used; the message says why, for a person."""


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket on (host, port), or :class:`BindError` (blocking)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise BindError(f"API host {host} is not a name or address of this machine "
                        f"({exc.strerror})") from None
    family, kind, proto, _, addr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        if os.name == "nt":  # Windows' SO_REUSEADDR would let us steal a port in use
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)  # type: ignore[attr-defined]
        else:  # rebinding over TIME_WAIT after a restart; never shares a listening port
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
    except OSError as exc:
        sock.close()
        if exc.errno in (errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", -1)):
            raise BindError(f"API port {port} on {host} is already in use "
                            "(another program, or another copy of the hub?)") from None
        if exc.errno in (errno.EACCES, getattr(errno, "WSAEACCES", -1)):
            raise BindError(f"no permission to use API port {port} on {host}") from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise BindError(f"API host {host} is not an address of this machine") from None
        raise BindError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(False)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


class HubServer(uvicorn.Server):
    """uvicorn that says when it listens; with ``own_signals=False`` it leaves SIGINT and
    SIGTERM to the hub (which owns them) instead of capturing them itself."""

    def __init__(self, config: uvicorn.Config, *, own_signals: bool = False) -> None:
        super().__init__(config)
        self.own_signals = own_signals
        self.listening: anyio.Event | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and self.listening is not None:
            self.listening.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if self.own_signals:
            with super().capture_signals():
                yield
        else:
            yield


def uvicorn_config(app: FastAPI | Callable[[], FastAPI], config: Config, *,
                   processes: int = 1) -> uvicorn.Config:
    """uvicorn's settings for ``app`` (an app, or with ``processes`` > 1 a picklable
    factory each process calls)."""
    return uvicorn.Config(
        app,
        factory=processes > 1,
        workers=processes,
        host=config.api.host,
        port=config.api.port,
        log_config=None,  # the hub's logging setup applies
        access_log=False,
        lifespan="on",
        proxy_headers=False,  # the TCP peer decides who is loopback, not a header
        server_header=False,
        timeout_graceful_shutdown=math.ceil(GRACEFUL_SHUTDOWN),
    )


async def serve_on(
    server: HubServer, sock: socket.socket, on_started: Callable[[], None] | None = None
) -> str | None:
    """Serve on ``sock`` until ``server.should_exit``; the error that ended it, or None.

    ``on_started`` runs once uvicorn listens. Cancellation asks uvicorn to shut down
    gracefully (open requests get :data:`GRACEFUL_SHUTDOWN` s) instead of abandoning it.
    """
    outcome: list[str] = []
    done = anyio.Event()
    server.listening = anyio.Event()

    async def run() -> None:
        with anyio.CancelScope(shield=True):
            try:
                await server.serve(sockets=[sock])
            except SystemExit as exc:  # uvicorn's way to report a failed start-up
                outcome.append(f"API server could not start (exit code {exc.code})")
            except Exception as exc:
                log.exception("API server failed")
                outcome.append(f"API server failed: {exc}")
            finally:
                sock.close()
                done.set()
                if server.listening is not None:
                    server.listening.set()  # wake the waiter also when start-up failed

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        try:
            await server.listening.wait()
            if server.started and on_started is not None:
                on_started()
            await done.wait()
        finally:
            server.should_exit = True
    return outcome[0] if outcome else None


async def api_service(
    hub: Hub,
    *,
    app: FastAPI,
    task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """The API as a hub service: status in ``servers['api']``; a busy port is retried.

    Reports started to the hub once listening, or once the first attempt has failed
    (the hub does not wait for a port that may never come free).
    """
    cfg = hub.config.api
    planned = f"http://{cfg.host}:{cfg.port}"
    problem = startup_problem(cfg)
    if problem is not None:
        log.error("API not started: %s", problem)
        hub.register_server(SERVER_NAME, ServerStatus(state=ServerState.FAILED, url=planned,
                                                      error=problem))
        hub.events.emit(EventName.SERVER_GAVE_UP, server=SERVER_NAME, error=problem)
        task_status.started()
        return
    hub.register_server(SERVER_NAME, ServerStatus(state=ServerState.STARTING, url=planned))
    delay, reported = cfg.bind_retry, ""
    started = False

    def report_started() -> None:
        nonlocal started
        if not started:
            started = True
            task_status.started()

    while True:
        try:
            sock = await anyio.to_thread.run_sync(bind_socket, cfg.host, cfg.port)
        except BindError as exc:
            error = str(exc)
        else:
            url = url_of(sock)

            def running(url: str = url) -> None:
                log.info("API listening on %s (docs at %s/docs)", url, url)
                hub.events.emit(EventName.SERVER_STARTED, server=SERVER_NAME, url=url)
                hub.set_server(SERVER_NAME, ServerStatus(state=ServerState.RUNNING, url=url))
                report_started()

            server = HubServer(uvicorn_config(app, hub.config))
            ended = await serve_on(server, sock, running)
            if ended is None:
                hub.set_server(SERVER_NAME, ServerStatus(state=ServerState.STOPPED, url=url))
                report_started()
                return
            error = ended
        if error != reported:
            log.error("%s; the rest of the hub keeps running; retrying in %g s", error, delay)
            hub.events.emit(EventName.SERVER_CRASHED, server=SERVER_NAME, error=error)
            reported = error
        hub.set_server(SERVER_NAME, ServerStatus(state=ServerState.FAILED, url=planned,
                                                 error=error))
        report_started()
        await anyio.sleep(delay)
        delay = min(delay * 2, BIND_RETRY_MAX)


def install(hub: Hub) -> None:
    """Add the API to the hub (if ``[api] enabled``); its cache is warmed on each new
    snapshot before the snapshot is published."""
    config = hub.config
    if not config.api.enabled:
        hub.register_server(SERVER_NAME, ServerStatus(state=ServerState.DISABLED))
        return
    if config.api.processes > 1:
        log.warning("[api] processes = %d is for pdh api alone; the hub's API serves in "
                    "its own process (docs/operations.md, \"Many readers\")",
                    config.api.processes)
    app = create_app(config, hub=hub)
    source: DataSource = app.state.source
    hub.add_service(partial(api_service, app=app))

    async def warm(published: Published, path: Path) -> None:
        # Two threads (the hub checks the copy in a third): the daily summary of all the
        # data is the one long answer, the rest together take about as long.
        source.cache.begin(published.version)
        first = source.first_queries(path)
        long, rest = first[:1], first[1:]
        added = [0, 0]

        async def run(n: int, queries: list[Query]) -> None:
            added[n] = await anyio.to_thread.run_sync(
                source.warm, published.version, path, queries)

        async with anyio.create_task_group() as tg:
            tg.start_soon(run, 0, long)
            tg.start_soon(run, 1, rest)
        log.debug("API cache warmed for snapshot %s (%d answers)", published.version,
                  sum(added))

    async def warm_later(published: Published, path: Path) -> None:
        added = await anyio.to_thread.run_sync(
            source.warm, published.version, path, source.later_queries())
        log.debug("API cache: %d more answers for snapshot %s", added, published.version)

    hub.add_before_publish(warm)
    hub.add_after_publish(warm_later)


def run_standalone(config: Config, on_listening: Callable[[str], None] | None = None
                   ) -> str | None:
    """``pdh api``: serve without a hub until Ctrl+C (uvicorn's own signal handling),
    in ``[api] processes`` processes.

    Returns None after a clean stop, or what went wrong; :class:`BindError` if the
    address cannot be used.
    """
    problem = startup_problem(config.api)
    if problem is not None:
        raise BindError(problem)
    sock = bind_socket(config.api.host, config.api.port)
    url = url_of(sock)

    def listening() -> None:
        log.info("API (standalone, %d process%s) listening on %s for %s",
                 config.api.processes, "" if config.api.processes == 1 else "es", url,
                 config.db_path)
        if on_listening is not None:
            on_listening(url)

    if config.api.processes > 1:
        return _run_processes(config, sock, listening)
    app = create_app(config)
    server = HubServer(uvicorn_config(app, config), own_signals=True)
    return anyio.run(serve_on, server, sock, listening, backend="asyncio")


def process_app(config: Config, stop: c_byte) -> FastAPI:
    """The app of one of ``pdh api``'s serving processes (each logs to its console). It
    stops gracefully when ``stop`` is set or its supervisor is gone (killed, say), so
    none is left holding the port."""
    setup_logging(None, config.log.level)
    parent = multiprocessing.parent_process()
    threading.Thread(target=_stop_when, args=(stop, parent), name="pdh-api-stop",
                     daemon=True).start()
    return create_app(config)


def _stop_when(stop: c_byte, parent: BaseProcess | None) -> None:
    while not stop.value:
        time.sleep(STOP_CHECK_S)
        if parent is not None and not parent.is_alive():
            log.warning("the pdh api supervisor (pid %s) is gone; this process stops",
                        parent.pid)
            break
    signal.raise_signal(signal.SIGTERM)  # uvicorn's graceful stop, in the main thread
    time.sleep(GRACEFUL_SHUTDOWN + 2)
    os._exit(1)


class _Processes(Multiprocess):
    """uvicorn's supervisor of processes that accept on one socket: it replaces a
    process that dies or hangs, and stops them all on Ctrl+C or SIGTERM. Here it also
    says when every process serves, and it stops them through ``stop``, a flag in
    shared memory they look at (uvicorn's own way on Windows, CTRL_BREAK_EVENT to the
    child's pid, fails: the child is in the parent's console process group, not one of
    its own; and a flag with a lock, as multiprocessing's Event, can be left locked
    for good by a process killed while it looked)."""

    def __init__(self, config: uvicorn.Config, sock: socket.socket, stop: c_byte,
                 on_started: Callable[[], None]) -> None:
        super().__init__(config, [sock])
        self.stop = stop
        self.on_started = on_started
        self.asked_to_stop = False

    def init_processes(self) -> None:
        super().init_processes()
        timeout = self.config.timeout_worker_healthcheck * 6
        if all(p.wait_until_ready(timeout, self.should_exit) for p in self.processes):
            self.on_started()

    def handle_signals(self) -> None:
        self.asked_to_stop = self.asked_to_stop or bool(self.signal_queue)
        super().handle_signals()

    def terminate_all(self) -> None:
        self.stop.value = 1

    def join_all(self) -> None:
        deadline = time.monotonic() + GRACEFUL_SHUTDOWN + 5
        for process in self.processes:
            process.process.join(max(0.0, deadline - time.monotonic()))
            if process.process.exitcode is None:
                log.warning("API process %s did not stop in time; killed", process.pid)
                process.kill()
                process.process.join(5)


def _run_processes(config: Config, sock: socket.socket,
                   on_started: Callable[[], None]) -> str | None:
    stop = multiprocessing.get_context("spawn").RawValue("b", 0)
    app = partial(process_app, config, stop)
    supervisor = _Processes(uvicorn_config(app, config, processes=config.api.processes),
                            sock, stop, on_started)
    try:
        supervisor.run()
    finally:
        sock.close()
    if supervisor.asked_to_stop:
        return None
    return "an API process could not start (its messages are above); the API stopped"
