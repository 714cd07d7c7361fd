"""Start at login on Windows: the HKCU Run value, read back with ``reg query``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.windows.conftest import write_config
from tests.windows.wine import PDH, Wine, winpath

pytestmark = pytest.mark.slow

RUN_KEY = r"HKCU\Software\Microsoft\Windows\CurrentVersion\Run"


def test_autostart_writes_reads_back_and_removes_the_run_value(wine: Wine, wdir: Path) -> None:
    write_config(wdir)
    config = winpath(wdir / "pdh.toml")
    for _ in range(2):  # enabling twice leaves one value, the same
        enabled = wine.run(PDH, "autostart", "enable", "--config", config)
        assert enabled.returncode == 0, enabled.stdout
    value = wine.reg_query(RUN_KEY, "ProductionDataHub")
    assert value.count("ProductionDataHub") == 1, value
    # pythonw (no console window at login), and the config path exactly as given
    assert r"C:\py311\pythonw.exe -m agent run --config" in value, value
    assert config in value, value
    status = wine.run(PDH, "autostart", "status", "--config", config)
    # Ours, this command: not "enabled for another command" (another config's value).
    assert status.returncode == 0, status.stdout
    assert f"start at login enabled: {RUN_KEY}\\ProductionDataHub" in status.stdout, (
        status.stdout)
    (wdir / "other.toml").write_text((wdir / "pdh.toml").read_text("utf-8"), "utf-8")
    other = wine.run(PDH, "autostart", "status", "--config", winpath(wdir / "other.toml"))
    assert "enabled for another command" in other.stdout, other.stdout

    assert wine.run(PDH, "autostart", "disable", "--config", config).returncode == 0
    assert "ProductionDataHub" not in wine.reg_query(RUN_KEY, "ProductionDataHub")
    again = wine.run(PDH, "autostart", "disable", "--config", config)
    assert again.returncode == 0, again.stdout  # nothing to remove is not an error
