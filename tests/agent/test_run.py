"""`pdh run` as a real child process without a display: headless, single instance,
signals, and `--demo` with its exporter."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest

from agent.services import demo
from agent.stopping import EXIT_FORCED
from core.eventlog import read_events
from core.hub import Hub
from tests.conftest import await_for, free_port, make_config, wait_for


def write_config(tmp_path: Path, db: Path, **extra: str) -> Path:
    config = tmp_path / "pdh.toml"
    sections = {
        "database": f'path = "{db}"',
        "watch": "settle_interval = 0.2\nsettle_checks = 2\npoll_interval = 0.2",
        "api": "enabled = false",
        "dashboard": "enabled = false",
        "ui": 'language = "en"',
        "log": f'dir = "{tmp_path / "logs"}"',
        "state": f'dir = "{tmp_path / "state"}"',
        "store": f'dir = "{tmp_path / "store"}"',
        **extra,
    }
    config.write_text("".join(f"[{k}]\n{v}\n" for k, v in sections.items()))
    return config


def headless_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "PDH_CONFIG")}
    env["LANG"] = "C.UTF-8"
    return env


class Agent:
    """A `pdh run` child; its stderr is read on a thread so it never blocks."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "agent", "run", *args], cwd=cwd,
                                     env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.err: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.err.append(line)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(20)
        self._reader.join(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        return code


@pytest.fixture
def agents() -> Iterator[list[Agent]]:
    started: list[Agent] = []
    yield started
    for agent in started:
        if agent.proc.poll() is None:
            agent.proc.kill()
        agent.stop()


def events(tmp_path: Path) -> list[str]:
    return [e["event"] for e in read_events(tmp_path / "logs" / "events.jsonl")]


def test_no_display_runs_headless_once_per_config(tmp_path: Path, small_db: Path,
                                                  agents: list[Agent]) -> None:
    config = write_config(tmp_path, small_db,
                          dashboard="enabled = false\nport = 8765")
    first = Agent(["--config", str(config)], tmp_path, headless_env())
    agents.append(first)
    wait_for(lambda: "indexes_healed" in events(tmp_path), timeout=20, message="first heal")
    assert any("no display/tray available; running headless" in x for x in first.err)

    second = subprocess.run([sys.executable, "-m", "agent", "run", "--config", str(config)],
                            cwd=tmp_path, env=headless_env(), capture_output=True, text=True,
                            timeout=30)
    assert second.returncode == 2
    assert second.stderr.strip() == (
        f"pdh: a hub is already running for {small_db} (pid {first.proc.pid}, "
        f"config {config}, dashboard off)")

    assert first.stop(signal.SIGTERM) == 0
    state = json.loads((tmp_path / "state" / "state.json").read_text())
    assert state["last_check"]["result"] == "healed"
    lock_info = list((tmp_path / "state").glob("hub-*.json"))
    assert lock_info == []  # released on the way out

    # After a crash (SIGKILL: no clean-up), a new agent starts at once.
    crashed = Agent(["--config", str(config), "--headless"], tmp_path, headless_env())
    agents.append(crashed)
    wait_for(lambda: events(tmp_path).count("check_ok") == 1, timeout=20,
             message="the crashing agent's check")
    crashed.proc.kill()
    crashed.stop()
    again = Agent(["--config", str(config), "--headless"], tmp_path, headless_env())
    agents.append(again)
    wait_for(lambda: events(tmp_path).count("check_ok") == 2, timeout=20,
             message="the new agent's check")
    assert not any("already running" in x for x in again.err)
    assert again.stop(signal.SIGINT) == 0


def test_demo_creates_its_database_and_exports_on_a_timer(tmp_path: Path,
                                                          agents: list[Agent]) -> None:
    config = write_config(
        tmp_path, tmp_path / "unused.db",
        demo='export_interval = 0.8\nmode = "replace"\nrows = 300\nseconds = 0.1',
    )
    agent = Agent(["--config", str(config), "--demo", "--headless"], tmp_path, headless_env())
    agents.append(agent)
    demo_db = tmp_path / "demo" / "production_analysis.db"
    # Created at start, then healed after each simulated export.
    wait_for(lambda: events(tmp_path).count("indexes_healed") >= 3, timeout=40,
             message="three heals: the new demo file and two exports")
    assert demo_db.is_file()
    assert agent.stop() == 0
    assert not (tmp_path / "unused.db").exists()


@pytest.mark.anyio
async def test_demo_exporter_service_in_a_hub(tmp_path: Path, small_db: Path) -> None:
    config = make_config(tmp_path, small_db,
                         demo={"export_interval": 0.8, "rows": 200, "seconds": 0.05})
    hub = Hub(config)
    demo.install(hub)
    async with anyio.create_task_group() as tg:
        await tg.start(hub.run)
        await await_for(lambda: [e["event"] for e in hub.events.recent(50)].count(
            "indexes_healed") >= 3, timeout=20, message="heals after two exports")
        hub.shutdown()
    assert hub.status().last_check is not None


def dashboard_child(agent: subprocess.Popen[Any], timeout: float = 30) -> psutil.Process:
    """The agent's Streamlit child, once it runs."""
    def find() -> psutil.Process | None:
        for child in psutil.Process(agent.pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if "dashboard.serve" in child.cmdline():
                    return child
        return None

    wait_for(lambda: find() is not None, timeout, message="the dashboard child")
    found = find()
    assert found is not None
    return found


def second_signal_forces(proc: subprocess.Popen[Any], log: Callable[[], str]) -> None:
    """With the dashboard child hung (stopped), a stop waits ``stop_timeout`` (10 s) for
    it; a second SIGTERM must end the process at once, with the forced exit code."""
    child = dashboard_child(proc)
    child.suspend()
    try:
        proc.send_signal(signal.SIGTERM)
        wait_for(lambda: "received SIGTERM; shutting down (again to force it)" in log(), 10,
                 message="the first SIGTERM taken")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(5) == EXIT_FORCED
        assert "received SIGTERM again; exiting now" in log()
    finally:
        with contextlib.suppress(psutil.Error):
            child.kill()


def test_a_second_signal_forces_the_exit_of_a_stuck_stop(tmp_path: Path, small_db: Path,
                                                        agents: list[Agent]) -> None:
    config = write_config(tmp_path, small_db,
                          dashboard=f"enabled = true\nport = {free_port()}")
    agent = Agent(["--config", str(config)], tmp_path, headless_env())
    agents.append(agent)
    second_signal_forces(agent.proc, lambda: "".join(agent.err))
