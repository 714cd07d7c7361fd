"""A bounded schemathesis run against the live /openapi.json of a hub with the API:
no 5xx, every status, header, content type and body as the spec says."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from pathlib import Path

import anyio
import pytest

from core.state import ServerState
from tests.api.conftest import build_api_hub, hub_config
from tests.conftest import wait_for

CHECKS = ",".join([
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
])


def _schemathesis() -> str:
    beside = Path(sys.executable).with_name("schemathesis")
    found = str(beside) if beside.exists() else shutil.which("schemathesis")
    if found is None:
        pytest.fail("schemathesis is not installed (it is a dev dependency)")
    return found


def test_schemathesis_finds_nothing(tmp_path: Path, small_db: Path) -> None:
    config = hub_config(tmp_path, small_db)
    hub = build_api_hub(config)
    thread = threading.Thread(target=anyio.run, args=(hub.run,), daemon=True)
    thread.start()
    try:
        wait_for(lambda: hub.known_version and "api" in hub.status().servers
                 and hub.status().servers["api"].state is ServerState.RUNNING, 20,
                 message="hub with the API")
        url = f"http://127.0.0.1:{config.api.port}/openapi.json"
        proc = subprocess.run(
            [_schemathesis(), "run", url, "--checks", CHECKS, "--max-examples", "40",
             "--phases", "examples,coverage,fuzzing", "--seed", "20261126",
             "--request-timeout", "20", "--workers", "2"],
            capture_output=True, text=True, timeout=100, cwd=tmp_path,
        )
        output = proc.stdout + proc.stderr
        assert proc.returncode == 0, output[-6000:]
        assert "Server error" not in output
    finally:
        hub.channel.shutdown()
        thread.join(15)
    assert not thread.is_alive()
