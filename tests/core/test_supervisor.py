"""The supervisor with real child processes: a tiny Python HTTP server as the child."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest

from core.channel import CommandKind
from core.eventlog import EventName
from core.state import ServerState, ServerStatus
from core.supervisor import ChildSpec, Supervisor
from tests.conftest import await_for, free_port

pytestmark = pytest.mark.anyio

CHILD = r'''
import http.server, os, subprocess, sys, time, signal
args = sys.argv[1:]
port = int(args[0])
flags = set(args[1:])
crash_flag = os.environ.get("CRASH_IF_EXISTS")
if crash_flag and os.path.exists(crash_flag):
    print("crashing at start", flush=True)
    sys.exit(3)
if "--ignore-term" in flags:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if "--grandchild" in flags:
    g = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    with open(os.environ["GRANDCHILD_PID_FILE"], "w") as fh:
        fh.write(str(g.pid))
if "--escaped-grandchild" in flags:
    # In a session of its own and orphaned at once: outside the child's group and tree,
    # still holding the child's stdout.
    subprocess.run([sys.executable, "-c",
                    "import os, subprocess, sys; g = subprocess.Popen([sys.executable, '-c', "
                    "'import time; time.sleep(600)'], start_new_session=True); "
                    "open(os.environ['GRANDCHILD_PID_FILE'], 'w').write(str(g.pid))"],
                   check=True)
if "--never-ready" in flags:
    time.sleep(600)

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *a):
        pass

print("child listening on", port, "with hangul 한글", flush=True)
print("to stderr", file=sys.stderr, flush=True)
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
'''


class Recorder:
    """Collects status changes and events, with monotonic times."""

    def __init__(self) -> None:
        self.statuses: list[tuple[float, ServerStatus]] = []
        self.events: list[tuple[EventName, dict[str, Any]]] = []

    def on_status(self, status: ServerStatus) -> None:
        self.statuses.append((time.monotonic(), status))

    def on_event(self, name: EventName, **fields: Any) -> None:
        self.events.append((name, fields))

    def names(self) -> list[EventName]:
        return [name for name, _ in self.events]

    def times_of(self, state: ServerState) -> list[float]:
        out: list[float] = []
        previous: ServerState | None = None
        for at, status in self.statuses:
            if status.state is state and previous is not state:
                out.append(at)
            previous = status.state
        return out


def make_spec(tmp_path: Path, *flags: str, **overrides: Any) -> ChildSpec:
    script = tmp_path / "child.py"
    script.write_text(CHILD, encoding="utf-8")
    port = free_port()
    settings: dict[str, Any] = dict(
        name="child",
        argv=[sys.executable, str(script), str(port), *flags],
        log_file=tmp_path / "logs" / "child.log",
        health_url=f"http://127.0.0.1:{port}/health",
        url=f"http://127.0.0.1:{port}/",
        env={"GRANDCHILD_PID_FILE": str(tmp_path / "grandchild.pid"),
             "CRASH_IF_EXISTS": str(tmp_path / "crash")},
        start_timeout=10.0,
        restart_backoff=0.2,
        restart_backoff_max=5.0,
        stable_after=30.0,
        max_restarts=5,
        stop_timeout=2.0,
        health_interval=0.05,
    )
    settings.update(overrides)
    return ChildSpec(**settings)


def gone(pid: int) -> bool:
    """No such process, or only a zombie left for init to reap."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def running(sup: Supervisor) -> bool:
    return sup.status.state is ServerState.RUNNING


async def test_start_ready_and_output_logged(tmp_path: Path) -> None:
    rec = Recorder()
    spec = make_spec(tmp_path)
    async with anyio.create_task_group() as tg:
        sup = await tg.start(Supervisor(spec, on_status=rec.on_status, on_event=rec.on_event).run)
        await await_for(lambda: running(sup), 15, message="child running")
        status = sup.status
        assert status.pid is not None and psutil.pid_exists(status.pid)
        assert status.url == spec.url and status.restarts == 0
        assert rec.names() == [EventName.SERVER_STARTED]
        assert [s.state for _, s in rec.statuses][:2] == [ServerState.STARTING] * 2
        log_file = spec.log_file
        await await_for(lambda: log_file.exists() and "to stderr" in log_file.read_text("utf-8"),
                        5, message="child output in the log")
        text = log_file.read_text("utf-8")
        assert "child listening on" in text and "한글" in text
        assert f"=== started pid {status.pid}" in text
        tg.cancel_scope.cancel()
    assert gone(status.pid)
    assert sup.status.state is ServerState.STOPPED and sup.status.pid is None


async def test_crash_restarts_with_growing_delay_that_resets_when_stable(tmp_path: Path) -> None:
    rec = Recorder()
    spec = make_spec(tmp_path, restart_backoff=0.3, stable_after=1.5)
    async with anyio.create_task_group() as tg:
        sup = await tg.start(Supervisor(spec, on_status=rec.on_status, on_event=rec.on_event).run)
        pids = []
        for n in range(3):
            await await_for(lambda: running(sup), 15, message=f"child running ({n})")
            pid = sup.status.pid
            assert pid is not None and pid not in pids
            pids.append(pid)
            os.kill(pid, signal.SIGKILL)
            await await_for(lambda: sup.status.state is not ServerState.RUNNING, 5)
        await await_for(lambda: running(sup), 15)
        crashed_at = rec.times_of(ServerState.RESTARTING)
        restarted_at = rec.times_of(ServerState.STARTING)[1:]
        delays = [b - a for a, b in zip(crashed_at, restarted_at, strict=True)]
        assert len(delays) == 3
        for n, delay in enumerate(delays):
            assert delay >= 0.3 * 2**n * 0.95, delays
        assert delays[0] < delays[1] < delays[2]
        assert sup.status.restarts == 3
        crashes = [f for name, f in rec.events if name is EventName.SERVER_CRASHED]
        assert [c["crashes"] for c in crashes] == [1, 2, 3]
        assert "code -9" in crashes[0]["error"]

        # Up for longer than stable_after: the next crash starts the backoff anew.
        await anyio.sleep(spec.stable_after + 0.1)
        os.kill(sup.status.pid or 0, signal.SIGKILL)
        await await_for(lambda: len(rec.times_of(ServerState.STARTING)) == 5, 10)
        last = rec.times_of(ServerState.STARTING)[-1] - rec.times_of(ServerState.RESTARTING)[-1]
        assert 0.3 * 0.95 <= last < 0.3 * 2, last
        crashes = [f for name, f in rec.events if name is EventName.SERVER_CRASHED]
        assert crashes[-1]["crashes"] == 1
        tg.cancel_scope.cancel()
    assert all(gone(p) for p in pids)


async def test_crash_loop_gives_up_then_start_on_request(tmp_path: Path) -> None:
    rec = Recorder()
    (tmp_path / "crash").touch()
    spec = make_spec(tmp_path, restart_backoff=0.05, max_restarts=2)
    async with anyio.create_task_group() as tg:
        sup = Supervisor(spec, on_status=rec.on_status, on_event=rec.on_event)
        await tg.start(sup.run)
        await await_for(lambda: sup.status.state is ServerState.GAVE_UP, 15, message="give up")
        assert sup.starts == 3  # the first start and max_restarts restarts
        assert rec.names() == [EventName.SERVER_CRASHED] * 3 + [EventName.SERVER_GAVE_UP]
        status = sup.status
        assert status.down and status.pid is None
        assert "exited with code 3 while starting" in (status.error or "")
        assert "gave up after 3 crashes in a row" in (status.error or "")
        await anyio.sleep(0.3)
        assert sup.starts == 3, "a supervisor that gave up must not start the child again"

        # The cause goes away; a start request brings it back.
        (tmp_path / "crash").unlink()
        await sup.control(CommandKind.START_SERVER)
        await await_for(lambda: running(sup), 15, message="running after start request")
        assert sup.status.error is None
        tg.cancel_scope.cancel()
    assert "crashing at start" in spec.log_file.read_text("utf-8")


def _pipe_of(pid: int, fd: int) -> str:
    return os.readlink(f"/proc/{pid}/fd/{fd}")


def _our_fds_on(target: str) -> list[int]:
    fds = []
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/self/fd/{name}") == target:
                fds.append(int(name))
    return fds


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc (Linux)")
async def test_a_stopped_child_leaves_no_pipe_open_even_if_its_output_never_ends(
    tmp_path: Path,
) -> None:
    # A process that left the child's tree keeps the child's stdout open, so end-of-file
    # never comes: the supervisor must still let go of its end of the pipe (else one
    # descriptor per restart is lost, and asyncio's transport is left for the collector).
    spec = make_spec(tmp_path, "--escaped-grandchild")
    pid_file = tmp_path / "grandchild.pid"
    try:
        async with anyio.create_task_group() as tg:
            sup = await tg.start(Supervisor(spec).run)
            await await_for(lambda: running(sup), 15)
            grandchild = int(pid_file.read_text())
            pipe = _pipe_of(grandchild, 1)
            assert pipe.startswith("pipe:") and _our_fds_on(pipe), "test set-up: shared pipe"
            await sup.control(CommandKind.STOP_SERVER)
            await await_for(lambda: sup.status.state is ServerState.STOPPED, 10)
            await await_for(lambda: not _our_fds_on(pipe), 5, message="our end of the pipe closed")
            assert not gone(grandchild)  # still holding the pipe: EOF never came
            tg.cancel_scope.cancel()
    finally:
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)


async def test_stop_kills_the_whole_tree_and_start_brings_it_back(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, "--grandchild")
    async with anyio.create_task_group() as tg:
        sup = await tg.start(Supervisor(spec).run)
        await await_for(lambda: running(sup), 15)
        pid = sup.status.pid
        assert pid is not None
        grandchild = int((tmp_path / "grandchild.pid").read_text())
        assert psutil.Process(grandchild).ppid() == pid
        await sup.control(CommandKind.STOP_SERVER)
        await await_for(lambda: sup.status.state is ServerState.STOPPED, 10, message="stopped")
        await await_for(lambda: gone(pid) and gone(grandchild), 5, message="tree gone")
        assert sup.status.pid is None

        await sup.control(CommandKind.START_SERVER)
        await await_for(lambda: running(sup), 15)
        assert sup.status.pid != pid
        tg.cancel_scope.cancel()


async def test_stop_kills_a_child_that_ignores_terminate(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, "--ignore-term", "--grandchild", stop_timeout=0.5)
    async with anyio.create_task_group() as tg:
        sup = await tg.start(Supervisor(spec).run)
        await await_for(lambda: running(sup), 15)
        pid = sup.status.pid or 0
        grandchild = int((tmp_path / "grandchild.pid").read_text())
        started = time.monotonic()
        sup.request_stop()
        await await_for(lambda: sup.status.state is ServerState.STOPPED, 10)
        assert time.monotonic() - started >= 0.5
        assert gone(pid) and gone(grandchild)
        tg.cancel_scope.cancel()
    assert "ended with code -9" in spec.log_file.read_text("utf-8")


async def test_cancelling_the_supervisor_leaves_no_orphan(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, "--grandchild")
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            sup = await tg.start(Supervisor(spec).run)
            await await_for(lambda: running(sup), 15)
            pid = sup.status.pid or 0
            grandchild = int((tmp_path / "grandchild.pid").read_text())
            tg.cancel_scope.cancel()
    assert gone(pid)
    await await_for(lambda: gone(grandchild), 5, message="grandchild gone")


async def test_a_crash_takes_its_orphans_with_it(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, "--grandchild", restart_backoff=5.0)
    async with anyio.create_task_group() as tg:
        sup = await tg.start(Supervisor(spec).run)
        await await_for(lambda: running(sup), 15)
        grandchild = int((tmp_path / "grandchild.pid").read_text())
        os.kill(sup.status.pid or 0, signal.SIGKILL)
        await await_for(lambda: sup.status.state is ServerState.RESTARTING, 5)
        await await_for(lambda: gone(grandchild), 5, message="orphan of the crash gone")
        tg.cancel_scope.cancel()


async def test_not_ready_in_time_counts_as_a_crash(tmp_path: Path) -> None:
    rec = Recorder()
    spec = make_spec(tmp_path, "--never-ready", start_timeout=0.5, max_restarts=0)
    async with anyio.create_task_group() as tg:
        sup = await tg.start(Supervisor(spec, on_status=rec.on_status, on_event=rec.on_event).run)
        await await_for(lambda: sup.status.state is ServerState.GAVE_UP, 10)
        assert f"did not answer {spec.health_url} within 0.5 s" in (sup.status.error or "")
        assert rec.names() == [EventName.SERVER_CRASHED, EventName.SERVER_GAVE_UP]
        pids = {s.pid for _, s in rec.statuses if s.pid}
        assert len(pids) == 1 and all(gone(p) for p in pids)
        tg.cancel_scope.cancel()


async def test_restart_on_request(tmp_path: Path) -> None:
    rec = Recorder()
    spec = make_spec(tmp_path)
    async with anyio.create_task_group() as tg:
        sup = await tg.start(Supervisor(spec, on_status=rec.on_status, on_event=rec.on_event).run)
        await await_for(lambda: running(sup), 15)
        first = sup.status.pid or 0
        await sup.control(CommandKind.RESTART_SERVER)
        await await_for(lambda: running(sup) and sup.status.pid != first, 15)
        assert gone(first)
        assert sup.status.restarts == 1
        assert EventName.SERVER_CRASHED not in rec.names()
        tg.cancel_scope.cancel()


async def test_a_command_that_cannot_start_is_reported(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, max_restarts=1, restart_backoff=0.05)
    spec = replace(spec, argv=[str(tmp_path / "no-such-program")])
    async with anyio.create_task_group() as tg:
        sup = await tg.start(Supervisor(spec).run)
        await await_for(lambda: sup.status.state is ServerState.GAVE_UP, 10)
        assert "cannot start" in (sup.status.error or "")
        assert "no-such-program" in (sup.status.error or "")
        tg.cancel_scope.cancel()


async def test_not_autostarted_waits_for_a_start(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    async with anyio.create_task_group() as tg:
        sup = await tg.start(Supervisor(spec, autostart=False).run)
        await anyio.sleep(0.2)
        assert sup.status.state is ServerState.STOPPED and sup.starts == 0
        sup.request_start()
        await await_for(lambda: running(sup), 15)
        tg.cancel_scope.cancel()


async def test_a_port_held_by_another_program_is_reported_not_mistaken(tmp_path: Path) -> None:
    """An old server still on the port would answer the health check for our child."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    spec = make_spec(tmp_path, restart_backoff=0.1, restart_backoff_max=0.2)
    spec = replace(spec, listen=("127.0.0.1", port), argv=[*spec.argv[:2], str(port)],
                   health_url=f"http://127.0.0.1:{port}/health")
    async with anyio.create_task_group() as tg:
        sup = await tg.start(Supervisor(spec).run)
        await await_for(lambda: "in use by another program" in (sup.status.error or ""), 5)
        assert f"port {port} on 127.0.0.1" in (sup.status.error or "")
        assert sup.starts == 0 and sup.status.state is not ServerState.RUNNING
        holder.close()  # the old program goes away: ours starts
        await await_for(lambda: running(sup), 15, message="running once the port is free")
        tg.cancel_scope.cancel()
