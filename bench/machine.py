"""The machine a benchmark ran on, printed the same way by every bench script."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
from datetime import datetime


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return platform.processor() or platform.machine()
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def describe() -> str:
    return (
        f"{cpu_model()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"{datetime.now().astimezone().isoformat(timespec='seconds')}"
    )


def loadavg() -> str:
    """The 1-, 5- and 15-minute load averages (``/proc/loadavg``), or "n/a"."""
    try:
        with open("/proc/loadavg", encoding="ascii") as fh:
            return " ".join(fh.read().split()[:3])
    except OSError:
        try:
            return " ".join(f"{x:.2f}" for x in os.getloadavg())
        except (AttributeError, OSError):
            return "n/a"
