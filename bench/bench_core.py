"""Core engine benchmarks on a 1M-row export (``python bench/bench_core.py``).

1. Index build: the hub's heal (one short transaction per index, analyze off) against
   bare sqlite3 creating the same five indexes on a copy of the same file, alternating,
   median of ``--repeat`` runs each. Target: ratio <= 1.15.
2. Update-to-healed latency for a ``replace`` export with the default settle window
   (5 s x 3 looks): from the rename to the ``indexes_healed`` event. Target: <= settle
   window + 1 s + the index build time.
3. Idle core: ``pdh run --headless`` on a healed file for ``--idle`` seconds: CPU % and RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import describe  # noqa: E402
from core.config import HealConfig, default_indexes  # noqa: E402
from core.demodb import create_demo_db  # noqa: E402
from core.heal import heal  # noqa: E402


def bare_sqlite(path: Path) -> float:
    started = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    for spec in default_indexes():
        conn.execute(spec.create_sql())
    conn.close()
    return time.perf_counter() - started


def hub_heal(path: Path) -> float:
    cfg = HealConfig(analyze=False)
    report = heal(path, cfg)
    assert report.created and report.result == "healed", report.problems
    return report.duration_s


def bench_build(template: Path, work: Path, repeat: int) -> tuple[float, float]:
    ours, bare = [], []
    for i in range(repeat):
        for fn, out in ((hub_heal, ours), (bare_sqlite, bare)) if i % 2 == 0 else (
            (bare_sqlite, bare), (hub_heal, ours)
        ):
            target = work / "copy.db"
            shutil.copyfile(template, target)
            out.append(fn(target))
            target.unlink()
    return statistics.median(ours), statistics.median(bare)


def write_config(folder: Path, db: Path, settle_interval: float, settle_checks: int) -> Path:
    cfg = folder / "pdh.toml"
    cfg.write_text(
        f'[database]\npath = "{db.as_posix()}"\n'
        f"[watch]\nsettle_interval = {settle_interval}\nsettle_checks = {settle_checks}\n"
        '[api]\nenabled = false\n[dashboard]\nenabled = false\n'
        '[log]\ndir = "logs"\n[state]\ndir = "state"\n',
        encoding="utf-8",
    )
    return cfg


def wait_event(events: Path, name: str, n: int, timeout: float) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if events.exists():
            found = [json.loads(line) for line in events.read_text("utf-8").splitlines()]
            hits = [e for e in found if e["event"] == name]
            if len(hits) >= n:
                return hits[n - 1]
        time.sleep(0.05)
    raise TimeoutError(f"no {name} #{n} within {timeout} s")


def bench_latency_and_idle(
    folder: Path, template: Path, fresh: Path, settle_interval: float, settle_checks: int,
    idle_seconds: float,
) -> dict[str, float]:
    import psutil

    db = folder / "live" / "production_analysis.db"
    db.parent.mkdir()
    shutil.copyfile(template, db)
    cfg = write_config(folder, db, settle_interval, settle_checks)
    events = folder / "logs" / "events.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent", "run", "--headless", "--config", str(cfg)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_event(events, "indexes_healed", 1, 600)
        # The export: a complete new file renamed over the old one.
        staged = db.with_name(db.name + ".tmp")
        shutil.copyfile(fresh, staged)
        renamed_at = time.time()
        os.replace(staged, db)
        healed = wait_event(events, "indexes_healed", 2, 600)
        stamp = str(healed["time"]).replace("Z", "+00:00")
        latency = datetime.fromisoformat(stamp).timestamp() - renamed_at
        heal_s = float(healed["duration_s"])  # type: ignore[arg-type]
        # Idle: nothing happens; measure CPU over the window and RSS at the end.
        p = psutil.Process(proc.pid)
        time.sleep(2)
        cpu0 = sum(p.cpu_times()[:2])
        t0 = time.monotonic()
        time.sleep(idle_seconds)
        cpu = (sum(p.cpu_times()[:2]) - cpu0) / (time.monotonic() - t0) * 100
        rss = p.memory_info().rss / 1e6
    finally:
        proc.terminate()
        proc.wait(30)
    return {"latency": latency, "heal_s": heal_s, "idle_cpu_pct": cpu, "rss_mb": rss}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="core engine benchmarks")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--settle-interval", type=float, default=5.0)
    parser.add_argument("--settle-checks", type=int, default=3)
    parser.add_argument("--idle", type=float, default=60.0, help="idle window, s")
    args = parser.parse_args(argv)
    print(f"machine  {describe()}")
    with tempfile.TemporaryDirectory(prefix="bench-core-") as scratch:
        folder = Path(scratch)
        template = folder / "template.db"
        fresh = folder / "fresh.db"
        create_demo_db(template, rows=args.rows, seed=1)
        create_demo_db(fresh, rows=args.rows, seed=2)
        size = template.stat().st_size / 1e6
        print(f"file     {args.rows:,} records, {size:.0f} MB")
        ours, bare = bench_build(template, folder, args.repeat)
        print(f"index build (5 indexes, median of {args.repeat}): hub {ours:.2f} s, "
              f"bare sqlite3 {bare:.2f} s, ratio {ours / bare:.3f} (target <= 1.15)")
        r = bench_latency_and_idle(folder, template, fresh, args.settle_interval,
                                   args.settle_checks, args.idle)
        window = args.settle_interval * args.settle_checks
        print(f"update-to-healed (replace): {r['latency']:.2f} s; settle window {window:.1f} s + "
              f"heal {r['heal_s']:.2f} s (incl. ANALYZE) + 1 s = bound "
              f"{window + 1 + r['heal_s']:.2f} s")
        print(f"idle core over {args.idle:.0f} s: CPU {r['idle_cpu_pct']:.2f} %, "
              f"RSS {r['rss_mb']:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
