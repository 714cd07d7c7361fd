"""The tray agent at rest: ``python bench/bench_agent.py --seconds 300``.

Starts a private X desktop (Xvfb, a session bus, a test notification service, trayer),
then ``pdh run`` (tray + core; API and dashboard off, so no children) on a small demo
database, waits until the icon is docked and green, and measures the idle agent for
``--seconds``: RSS (max and at the end) and CPU % (process CPU time / wall time).
Target: RSS <= 80 MB, CPU <= 0.5 %.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout too

import psutil  # noqa: E402

from core.state import HubState  # noqa: E402
from tests.agent.desktop import Desktop, missing_tools  # noqa: E402
from tests.conftest import make_db  # noqa: E402


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300.0, help="idle time measured")
    parser.add_argument("--backend", default="gtk", help="PYSTRAY_BACKEND (gtk, xorg, ...)")
    parser.add_argument("--sample", type=float, default=5.0, help="s between RSS samples")
    args = parser.parse_args(argv)
    if missing := missing_tools():
        print(f"missing tools: {', '.join(missing)}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="pdh-bench-agent-") as tmp:
        work = Path(tmp)
        db = make_db(work / "data" / "production_analysis.db", rows=20_000)
        config = work / "pdh.toml"
        config.write_text(
            f'[database]\npath = "{db}"\n[api]\nenabled = false\n[dashboard]\nenabled = false\n'
            f'[ui]\nlanguage = "en"\n[log]\ndir = "{work / "logs"}"\n'
            f'[state]\ndir = "{work / "state"}"\n'
        )
        with Desktop(work / "desktop") as desktop:
            env = dict(desktop.env, PYSTRAY_BACKEND=args.backend)
            with (work / "agent.log").open("wb") as log:
                agent = subprocess.Popen(
                    [sys.executable, "-m", "agent", "run", "--config", str(config)],
                    cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
            try:
                started = time.monotonic()
                desktop.wait_tray_state(HubState.HEALTHY, timeout=60)
                ready_s = time.monotonic() - started
                time.sleep(5)  # let the first heal's toast and writes finish
                proc = psutil.Process(agent.pid)
                children = proc.children(recursive=True)
                threads = proc.num_threads()
                cpu0, wall0 = sum(proc.cpu_times()[:2]), time.monotonic()
                rss = [proc.memory_info().rss]
                while time.monotonic() - wall0 < args.seconds:
                    time.sleep(min(args.sample, args.seconds - (time.monotonic() - wall0)))
                    rss.append(proc.memory_info().rss)
                cpu1, wall1 = sum(proc.cpu_times()[:2]), time.monotonic()
                uss = proc.memory_full_info().uss  # private: without shared GTK/X libraries
                still_green = desktop.tray_state() is HubState.HEALTHY
            finally:
                agent.terminate()
                code = agent.wait(30)
    cpu_pct = 100.0 * (cpu1 - cpu0) / (wall1 - wall0)
    mb = 1024 * 1024
    print(f"machine:       {os.cpu_count()} CPUs, {_cpu_model()}, {platform.platform()}")
    print(f"date:          {datetime.now().isoformat(timespec='seconds')}")
    print(f"backend:       pystray {args.backend}, Python {platform.python_version()}")
    print(f"docked+green:  {ready_s:.1f} s after start; children: {len(children)}; "
          f"threads: {threads}")
    print(f"idle for:      {wall1 - wall0:.0f} s ({len(rss)} RSS samples)")
    print(f"RSS:           max {max(rss) / mb:.1f} MB, end {rss[-1] / mb:.1f} MB "
          f"(target <= 80 MB); private (USS) at the end {uss / mb:.1f} MB")
    print(f"CPU:           {cpu_pct:.3f} % of one core ({cpu1 - cpu0:.2f} s CPU) "
          f"(target <= 0.5 %)")
    print(f"icon green at the end: {still_green}; exit code after SIGTERM: {code}")
    ok = max(rss) <= 80 * mb and cpu_pct <= 0.5 and still_green and code == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
