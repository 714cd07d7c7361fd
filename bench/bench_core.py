"""Core engine benchmarks on a 1M-row export (``python bench/bench_core.py``).

1. Index build: the hub's heal (one short transaction per index, analyze off) against
   bare sqlite3 creating the same five indexes on a copy of the same file, alternating,
   median of ``--repeat`` runs each. Target: ratio <= 1.15.
2. The snapshot copy: ``core.snapshot.copy_database`` (as the hub copies an export into
   its store: byte for byte under a SHARED lock for a rollback-journal file, SQLite's
   backup API for WAL; the method is printed) of the healed file against a plain file copy
   (``shutil.copyfile``, the same file onto the same disk, source in the page cache),
   alternating, median of ``--repeat``. Target: ratio <= 1.5. The copy's ``verify``
   (quick_check, tables, row count) and ``prepare`` (index spec, covering indexes,
   ANALYZE, and the snapshot's one fsync) are timed separately on each copy. A copyfile
   followed by ``fsync`` is printed too, against ``copy_database`` + fsync (a durable
   copy; the hub's fsync of the snapshot is at the end of ``prepare``).
3. Update-to-published latency for a ``replace`` export with the default settle window
   (5 s x 3 looks): from the rename to the ``snapshot_published`` event of
   ``pdh run --headless`` (API on, as by default, so the publish includes warming its
   cache; ``--no-api`` for without; dashboard off). Bound: settle window + the in-place
   heal (``indexes_healed.duration_s`` of that export, from the hub's events) + the copy
   (item 2, same run) + 1 s. The hub's own phases (settled, healed, published) are
   printed as offsets from the rename.
4. Idle core: ``pdh run --headless`` with a published snapshot, for ``--idle`` seconds:
   CPU % and RSS.

Every file, the config, the store, logs and state live in one temp folder, removed at
the end. The load average (``/proc/loadavg``) is printed with each figure.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import describe, loadavg  # noqa: E402
from core.config import HealConfig, default_indexes  # noqa: E402
from core.erp.demodb import create_demo_db  # noqa: E402
from core.eventlog import read_events  # noqa: E402
from core.heal import heal  # noqa: E402
from core.snapshot import copy_database, prepare, verify  # noqa: E402
from tests.conftest import free_port  # noqa: E402


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
    ours: list[float] = []
    bare: list[float] = []
    for i in range(repeat):
        for fn, out in ((hub_heal, ours), (bare_sqlite, bare)) if i % 2 == 0 else (
            (bare_sqlite, bare), (hub_heal, ours)
        ):
            target = work / "copy.db"
            shutil.copyfile(template, target)
            out.append(fn(target))
            target.unlink()
    return statistics.median(ours), statistics.median(bare)


# --- the snapshot copy ------------------------------------------------------------------


def _timed(fn: Callable[[], object]) -> float:
    os.sync()  # earlier runs' dirty pages are not written back during this one
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _read_all(path: Path) -> None:
    with path.open("rb") as fh:
        while fh.read(8 << 20):
            pass


def _copy_fsync(source: Path, dest: Path) -> None:
    shutil.copyfile(source, dest)
    fd = os.open(dest, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def bench_copy(source: Path, work: Path, repeat: int) -> dict[str, Any]:
    """copy_database vs copyfile on ``source`` (warm cache), then verify and prepare."""
    cfg = HealConfig()
    _read_all(source)  # the source in the page cache, as after the hub's in-place heal
    dest = work / "snapshot.db"
    plain = work / "plain.db"
    runs: dict[str, list[float]] = {k: [] for k in ("backup", "cp", "cp_fsync", "verify",
                                                    "prepare", "ours_fsync")}
    rows = 0
    how: list[str] = []

    def copy_fsync() -> None:
        how.append(copy_database(source, dest, timeout=10))
        fd = os.open(dest, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    for i in range(repeat):
        def ours() -> None:
            runs["backup"].append(_timed(lambda: how.append(
                copy_database(source, dest, timeout=10))))
            dest.unlink()
            runs["ours_fsync"].append(_timed(copy_fsync))

        def peer() -> None:
            runs["cp"].append(_timed(lambda: shutil.copyfile(source, plain)))
            plain.unlink()
            runs["cp_fsync"].append(_timed(lambda: _copy_fsync(source, plain)))
            plain.unlink()

        for step in (ours, peer) if i % 2 == 0 else (peer, ours):
            step()
        found: list[int] = []
        runs["verify"].append(_timed(lambda out=found: out.append(  # type: ignore[misc]
            verify(dest, cfg.indexes, last_rows=None, min_row_ratio=0.5)
        )))
        rows = found[0]
        added: list[list[str]] = []
        runs["prepare"].append(_timed(
            lambda out=added: out.append(prepare(dest, cfg))  # type: ignore[misc]
        ))
        snapshot_mb = dest.stat().st_size / 1e6
        dest.unlink()
    out: dict[str, Any] = {k: statistics.median(v) for k, v in runs.items()}
    out.update(rows=rows, snapshot_mb=snapshot_mb, prepared=", ".join(added[0]),
               how="/".join(sorted(set(how))))
    return out


# --- the running hub ----------------------------------------------------------------------


def write_config(folder: Path, db: Path, settle_interval: float, settle_checks: int,
                 api: bool) -> Path:
    cfg = folder / "pdh.toml"
    api_section = f"port = {free_port()}" if api else "enabled = false"
    cfg.write_text(
        f'[database]\npath = "{db.as_posix()}"\n'
        f"[watch]\nsettle_interval = {settle_interval}\nsettle_checks = {settle_checks}\n"
        f'[api]\n{api_section}\n[dashboard]\nenabled = false\n'
        '[log]\ndir = "logs"\n[state]\ndir = "state"\n[store]\ndir = "store"\n',
        encoding="utf-8",
    )
    return cfg


def wait_event(events: Path, name: str, n: int, timeout: float,
               proc: subprocess.Popen[bytes] | None = None) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        hits = [e for e in read_events(events) if e["event"] == name]
        if len(hits) >= n:
            return hits[n - 1]
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the hub exited ({proc.returncode}) before {name} #{n}")
        time.sleep(0.05)
    raise TimeoutError(f"no {name} #{n} within {timeout} s")


def stamp(event: dict[str, object]) -> float:
    return datetime.fromisoformat(str(event["time"]).replace("Z", "+00:00")).timestamp()


def bench_latency_and_idle(
    folder: Path, template: Path, fresh: Path, settle_interval: float, settle_checks: int,
    idle_seconds: float, api: bool,
) -> dict[str, float]:
    import psutil

    db = folder / "live" / "production_analysis.db"
    db.parent.mkdir()
    shutil.copyfile(template, db)
    cfg = write_config(folder, db, settle_interval, settle_checks, api)
    events = folder / "logs" / "events.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent", "run", "--headless", "--config", str(cfg)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        wait_event(events, "snapshot_published", 1, 600, proc)
        time.sleep(1.0)  # the hub's own look after publishing
        before = len(read_events(events))
        # The export: a complete new file renamed over the old one.
        staged = db.with_name(db.name + ".tmp")
        shutil.copyfile(fresh, staged)
        os.sync()
        load_at_rename = loadavg()
        renamed_at = time.time()
        os.replace(staged, db)
        published = wait_event(events, "snapshot_published", 2, 600, proc)
        after = read_events(events)[before:]

        def at(name: str) -> float:
            hit = next((e for e in after if e["event"] == name), None)
            return stamp(hit) - renamed_at if hit else float("nan")

        healed = next((e for e in after if e["event"] == "indexes_healed"), None)
        if healed is None:
            raise RuntimeError(f"no indexes_healed for the export: {after}")
        result = {
            "latency": stamp(published) - renamed_at,
            "heal_s": float(healed["duration_s"]),  # type: ignore[arg-type]
            "publish_s": float(published["seconds"]),  # type: ignore[arg-type]
            "detected": at("db_change_detected"), "settled": at("db_settled"),
            "healed": at("indexes_healed"), "rows": float(published["rows"]),  # type: ignore[arg-type]
        }
        load_latency = loadavg()
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
    return {**result, "idle_cpu_pct": cpu, "rss_mb": rss,
            "load_rename": load_at_rename, "load_latency": load_latency,  # type: ignore[dict-item]
            "load_idle": loadavg()}  # type: ignore[dict-item]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="core engine benchmarks")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--settle-interval", type=float, default=5.0)
    parser.add_argument("--settle-checks", type=int, default=3)
    parser.add_argument("--idle", type=float, default=60.0, help="idle window, s")
    parser.add_argument("--no-api", action="store_true",
                        help="the hub without its API (so without the cache warming)")
    args = parser.parse_args(argv)
    print(f"machine  {describe()}")
    print(f"load avg {loadavg()} (1, 5, 15 min) at the start")
    with tempfile.TemporaryDirectory(prefix="bench-core-") as scratch:
        folder = Path(scratch)
        template = folder / "template.db"
        fresh = folder / "fresh.db"
        create_demo_db(template, rows=args.rows, seed=1)
        create_demo_db(fresh, rows=args.rows, seed=2)
        size = template.stat().st_size / 1e6
        print(f"file     {args.rows:,} records, {size:.0f} MB (as exported, no indexes)",
              flush=True)

        ours, bare = bench_build(template, folder, args.repeat)
        print(f"index build (5 indexes, median of {args.repeat}): hub {ours:.2f} s, "
              f"bare sqlite3 {bare:.2f} s, ratio {ours / bare:.3f} (target <= 1.15) "
              f"[load {loadavg()}]", flush=True)

        healed = folder / "healed.db"  # what the hub copies: the export healed in place
        shutil.copyfile(template, healed)
        heal(healed, HealConfig())
        c = bench_copy(healed, folder, args.repeat)
        copy_ratio = c["backup"] / c["cp"]
        print(f"snapshot copy of the healed file ({healed.stat().st_size / 1e6:.0f} MB, median "
              f"of {args.repeat}): copy_database ({c['how']}) {c['backup']:.2f} s, copyfile "
              f"{c['cp']:.2f} s, ratio {copy_ratio:.2f} (target <= 1.5); with an fsync each: "
              f"{c['ours_fsync']:.2f} s against {c['cp_fsync']:.2f} s, ratio "
              f"{c['ours_fsync'] / c['cp_fsync']:.2f} [load {loadavg()}]")
        print(f"  verify {c['verify']:.2f} s ({int(c['rows']):,} rows); prepare "
              f"{c['prepare']:.2f} s (added {c['prepared']}; snapshot "
              f"{c['snapshot_mb']:.0f} MB)", flush=True)
        healed.unlink()

        r = bench_latency_and_idle(folder, template, fresh, args.settle_interval,
                                   args.settle_checks, args.idle, not args.no_api)
        window = args.settle_interval * args.settle_checks
        bound = window + r["heal_s"] + c["backup"] + 1
        print(f"update-to-published (replace, settle {args.settle_interval:g} s x "
              f"{args.settle_checks}, API {'off' if args.no_api else 'on, its cache warmed'}): "
              f"{r['latency']:.2f} s from the rename to "
              f"snapshot_published; bound {bound:.2f} s = settle window {window:.1f} s + "
              f"heal in place {r['heal_s']:.2f} s + copy {c['backup']:.2f} s + 1 s: "
              f"{'met' if r['latency'] <= bound else 'MISSED'} "
              f"[load {r['load_rename']} at the rename, {r['load_latency']} at publish]")
        print(f"  hub phases after the rename: change detected +{r['detected']:.2f} s, "
              f"settled +{r['settled']:.2f} s, healed +{r['healed']:.2f} s, published "
              f"+{r['latency']:.2f} s (copy + verify + prepare + switch "
              f"{r['publish_s']:.2f} s; {int(r['rows']):,} rows); the bound plus verify "
              f"and prepare as timed above: {bound + c['verify'] + c['prepare']:.2f} s")
        print(f"idle core over {args.idle:.0f} s: CPU {r['idle_cpu_pct']:.2f} %, "
              f"RSS {r['rss_mb']:.0f} MB [load {r['load_idle']}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
