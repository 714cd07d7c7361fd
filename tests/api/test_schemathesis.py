"""Bounded schemathesis runs against the live /openapi.json of a hub with the API, with
every check: no 5xx; every status, header, content type and body as the spec says;
schema-violating requests refused and schema-valid ones accepted.

Two runs side by side: every phase with a fixed seed (reproducible), and fuzzing with a
fresh random seed (printed as ``Seed:``; rerun with ``--seed`` to reproduce). Only
fuzzing draws on the seed: the coverage phase, most of the time, is the same in every
run. The repo's schemathesis.toml loads the hooks for the two rules a JSON Schema cannot
hold (see tests/api/schemathesis_hooks.py)."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import anyio
import pytest

from core.state import ServerState
from tests.api.conftest import build_api_hub, hub_config
from tests.conftest import wait_for

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "schemathesis.toml"
FIXED_SEED = 20261126
RUNS = {  # name: (phases, max examples per operation)
    "fixed": ("examples,coverage,fuzzing", 30),
    "random": ("fuzzing", 30),
}
BUDGET = 100  # seconds for both; about 25 side by side on 2 idle cores


def _schemathesis() -> str:
    beside = Path(sys.executable).with_name("schemathesis")
    found = str(beside) if beside.exists() else shutil.which("schemathesis")
    if found is None:
        pytest.fail("schemathesis is not installed (it is a dev dependency)")
    return found


def _start(url: str, name: str, seed: int, cwd: Path) -> subprocess.Popen[str]:
    phases, examples = RUNS[name]
    cwd.mkdir()  # its own crash cache, so a run replays nothing of another
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO),
                                                       os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen(
        [_schemathesis(), "--config-file", str(CONFIG), "run", url, "--checks", "all",
         "--max-examples", str(examples), "--phases", phases,
         "--seed", str(seed), "--request-timeout", "20", "--workers", "2", "--no-color"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd, env=env,
    )


def test_schemathesis_finds_nothing(tmp_path: Path, small_db: Path) -> None:
    assert CONFIG.is_file()
    config = hub_config(tmp_path, small_db)
    hub = build_api_hub(config)
    thread = threading.Thread(target=anyio.run, args=(hub.run,), daemon=True)
    thread.start()
    runs: dict[str, subprocess.Popen[str]] = {}
    try:
        wait_for(lambda: hub.known_version and hub.status().published is not None
                 and "api" in hub.status().servers
                 and hub.status().servers["api"].state is ServerState.RUNNING, 20,
                 message="hub with the API, serving a published snapshot")
        url = f"http://127.0.0.1:{config.api.port}/openapi.json"
        seeds = {"fixed": FIXED_SEED, "random": random.SystemRandom().getrandbits(64)}
        deadline = time.monotonic() + BUDGET
        runs = {name: _start(url, name, seed, tmp_path / name) for name, seed in seeds.items()}
        for name, proc in runs.items():
            try:
                output, _ = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pytest.fail(f"schemathesis ({name} seed {seeds[name]}) took over {BUDGET} s")
            where = f"{name} seed {seeds[name]}:\n{output[-6000:]}"
            assert proc.returncode == 0, where
            assert "No issues found" in output and "Server error" not in output, where
            for phase in RUNS[name][0].split(","):
                if phase != "examples":  # the spec has none: skipped
                    assert f"✅  {phase.capitalize()}" in output, where
    finally:
        for proc in runs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()  # a run left unread after a failure: no leaked pipe
        hub.channel.shutdown()
        thread.join(15)
    assert not thread.is_alive()
