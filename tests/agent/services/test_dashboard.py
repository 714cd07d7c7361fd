"""The dashboard as the hub runs it: a real ``streamlit`` child under the supervisor,
controlled through the hub's server commands; and ``pdh dashboard`` in the foreground."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import psutil
import pytest

from agent.services.dashboard import HEALTH_PATH, dashboard_spec, install
from core.channel import Command, CommandKind
from core.hub import Hub
from core.state import ServerState
from dashboard.settings import config_env, streamlit_argv
from tests.conftest import free_port, make_config, wait_for
from tests.dashboard.conftest import ThreadedHub

pytestmark = pytest.mark.slow  # real streamlit processes (a few seconds each)

STARTUP = 60.0


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def state_is(th: ThreadedHub, state: ServerState) -> bool:
    server = th.status().servers.get("dashboard")
    return server is not None and server.state is state


def test_hub_supervises_the_dashboard(tmp_path: Path, small_db: Path) -> None:
    port = free_port()
    config = make_config(tmp_path, db=small_db, dashboard={"enabled": True, "port": port})
    spec = dashboard_spec(config)
    assert spec.health_url == f"http://127.0.0.1:{port}{HEALTH_PATH}"
    with ThreadedHub(config).running() as th:
        wait_for(lambda: state_is(th, ServerState.RUNNING), STARTUP, message="dashboard up")
        server = th.status().servers["dashboard"]
        assert server.url == f"http://127.0.0.1:{port}/" and server.restarts == 0
        first = server.pid
        assert first is not None and healthy(spec.health_url or "")
        assert "server_started" in [e["event"] for e in th.status().recent_events]
        log_file = config.log_dir / "dashboard.log"
        wait_for(lambda: log_file.exists() and f":{port}" in log_file.read_text("utf-8"), 10,
                 message="streamlit's own output in dashboard.log")

        # The hub's server commands, as the tray and the API send them.
        assert th.hub is not None
        th.hub.channel.post(Command(CommandKind.STOP_SERVER, "dashboard"))
        wait_for(lambda: state_is(th, ServerState.STOPPED), 20, message="dashboard stopped")
        wait_for(lambda: gone(first), 5, message="first dashboard process gone")
        assert not healthy(spec.health_url or "")
        th.hub.channel.post(Command(CommandKind.START_SERVER, "dashboard"))
        wait_for(lambda: state_is(th, ServerState.RUNNING), STARTUP, message="started again")
        second = th.status().servers["dashboard"].pid
        assert second not in (None, first)
        th.hub.channel.post(Command(CommandKind.RESTART_SERVER, "dashboard"))
        wait_for(lambda: state_is(th, ServerState.RUNNING)
                 and th.status().servers["dashboard"].pid not in (None, second), STARTUP,
                 message="restarted")  # (a status of the restart can name no pid yet)
        third = th.status().servers["dashboard"].pid
        assert th.status().servers["dashboard"].restarts == 1
        tree = [third, *(p.pid for p in psutil.Process(third).children(recursive=True))]
    # The hub shut down: no dashboard process is left behind.
    for pid in tree:
        wait_for(lambda pid=pid: gone(pid), 10, message=f"pid {pid} gone after shutdown")


def test_a_crashed_dashboard_is_restarted(tmp_path: Path, small_db: Path) -> None:
    config = make_config(tmp_path, db=small_db, dashboard={
        "enabled": True, "port": free_port(), "restart_backoff": 0.2})
    with ThreadedHub(config).running() as th:
        wait_for(lambda: state_is(th, ServerState.RUNNING), STARTUP, message="dashboard up")
        pid = th.status().servers["dashboard"].pid
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: state_is(th, ServerState.RUNNING)
                 and th.status().servers["dashboard"].pid != pid, STARTUP,
                 message="dashboard back after a crash")
        status = th.status()
        assert status.servers["dashboard"].restarts == 1
        crashed = [e for e in status.recent_events if e["event"] == "server_crashed"]
        assert crashed and crashed[-1]["server"] == "dashboard"
        assert "code -9" in crashed[-1]["error"]


def test_disabled_dashboard_is_not_installed(tmp_path: Path) -> None:
    hub = Hub(make_config(tmp_path), persist=False)  # dashboard.enabled = false in tests
    install(hub)
    assert hub._services == [] and "dashboard" not in hub.status().servers
    enabled = Hub(make_config(tmp_path, dashboard={"enabled": True}), persist=False)
    install(enabled)
    assert len(enabled._services) == 1


def test_dashboard_ends_itself_when_its_starter_is_killed(tmp_path: Path,
                                                          small_db: Path) -> None:
    """A hub killed outright cannot stop its dashboard; the dashboard notices and ends."""
    port = free_port()
    config = make_config(tmp_path, db=small_db, dashboard={"port": port})
    starter = textwrap.dedent(f"""
        import os, subprocess, sys, time
        argv = {streamlit_argv(sys.executable, config)!r}
        env = {{**os.environ, **{config_env(config)!r}, "PDH_PARENT_PID": str(os.getpid())}}
        # Output to a pipe the starter holds, as the supervisor does: it breaks when the
        # starter dies, and Streamlit's shutdown message must not trip over it.
        child = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, start_new_session=True)
        print(child.pid, flush=True)
        time.sleep(600)
    """)
    proc = subprocess.Popen([sys.executable, "-c", starter], stdout=subprocess.PIPE, text=True)
    child = 0
    try:
        assert proc.stdout is not None
        child = int(proc.stdout.readline())
        wait_for(lambda: healthy(f"http://127.0.0.1:{port}{HEALTH_PATH}"), STARTUP,
                 message="dashboard up")
        proc.kill()
        proc.wait()
        # Well within serve.GRACE_S: Streamlit's own clean shutdown, not the last resort.
        wait_for(lambda: gone(child), 6, message="the orphaned dashboard to end itself")
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()  # type: ignore[union-attr]
        if child and not gone(child):
            os.kill(child, signal.SIGKILL)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_pdh_dashboard_runs_in_the_foreground(tmp_path: Path, small_db: Path,
                                              stop: signal.Signals) -> None:
    port = free_port()
    script = textwrap.dedent("""
        import sys
        from agent.cli.main import main
        sys.exit(main(sys.argv[1:]))
    """)
    cmd = [sys.executable, "-c", script, "dashboard", "--db", str(small_db), "--port", str(port)]
    env = {**os.environ, "PDH_CONFIG": str(tmp_path / "none.toml")}
    (tmp_path / "none.toml").write_text(f'[log]\ndir = "{tmp_path / "logs"}"\n', "utf-8")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        wait_for(lambda: healthy(f"http://127.0.0.1:{port}{HEALTH_PATH}")
                 or proc.poll() is not None, STARTUP, message="pdh dashboard up")
        assert proc.poll() is None
        children = psutil.Process(proc.pid).children(recursive=True)
        assert children, "streamlit runs as a child"
        # The signal goes to pdh alone (not a terminal's Ctrl+C to the whole group): it
        # must pass it on, and the child stop cleanly, well before the 10 s kill.
        asked = time.monotonic()
        proc.send_signal(stop)
        out, _ = proc.communicate(timeout=20)
        took = time.monotonic() - asked
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert f"on http://127.0.0.1:{port}/" in out and str(small_db) in out
    assert proc.returncode == 0, out
    assert "killing it" not in out
    assert took < 5.0, f"stopped in {took:.1f} s"  # 0.8-1.2 s here; the kill comes at 10 s
    assert all(gone(c.pid) for c in children)
    bad = subprocess.run([*cmd[:-1], "70000"], env=env, capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1, bad.stderr
    assert "--port" in bad.stderr and "65535" in bad.stderr and "70000" in bad.stderr
