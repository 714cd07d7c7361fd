"""`pdh service`: what the Windows service runs (the Windows side runs under Wine in
tests/windows/test_service.py); elsewhere the command says it is for Windows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path, PureWindowsPath

from agent.windows.service import service_command


def test_the_service_runs_the_console_interpreter_with_an_absolute_config(
        tmp_path: Path) -> None:
    python = str(PureWindowsPath(r"C:\Programs\ProductionDataHub\python\pythonw.exe"))
    command = service_command(tmp_path / "pdh.toml", python=python)
    assert command[0].endswith("python.exe") and not command[0].endswith("pythonw.exe")
    assert command[1:] == ["-m", "agent", "service", "run", "--config",
                           str(tmp_path / "pdh.toml")]
    assert service_command(None, python="python.exe")[-1] == "run"


def test_pdh_service_elsewhere_says_it_is_for_windows(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "agent", "service", "status"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 2
    assert "`pdh service` is for Windows" in done.stderr
