"""Soak: ERP exports every ~20 s for 30 minutes under a steady API load.

``python bench/soak.py --minutes 30 --every 20``

Runs ``pdh run --headless`` (API and dashboard child) as a real process on a small
export, makes an ``erp-sim`` export every ``--every`` seconds (replace, copy, rebuild in
turn; each with a distinct row count, so its data can be recognised), and loads the API
from ``--clients`` threads the whole time. It reports:

- status codes (5xx must be zero);
- stale responses: a response whose data does not match its ``X-DB-Version`` (one
  version seen with two different record counts), which must be zero;
- exports healed (an ``indexes_healed`` event for each, and the API serving each
  export's record count at some point);
- RSS and open file descriptors of the hub process, first and last quarter of the run.

Traffic goes to 127.0.0.1 only; every loop is bounded by the run's duration.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import describe  # noqa: E402
from core.demodb import create_demo_db  # noqa: E402
from core.erpsim import ExportMode, simulate_export  # noqa: E402
from tests.conftest import free_port  # noqa: E402

MODES = [ExportMode.REPLACE, ExportMode.COPY, ExportMode.REBUILD]
V1 = "/api/v1"


class Observations:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.codes: collections.Counter[int] = collections.Counter()
        self.counts_by_version: dict[str, set[int]] = collections.defaultdict(set)
        self.counts_seen: set[int] = set()
        self.errors: collections.Counter[str] = collections.Counter()

    def record(self, code: int, version: str | None, records: int | None) -> None:
        with self.lock:
            self.codes[code] += 1
            if version and records is not None:
                self.counts_by_version[version].add(records)
                self.counts_seen.add(records)


def load_client(base: str, stop: threading.Event, obs: Observations, n: int,
                rate: float) -> None:
    paths = [f"{V1}/kpis", f"{V1}/summary/daily", f"{V1}/records?limit=100",
             f"{V1}/summary/lines", f"{V1}/defects/pareto"]
    etags: dict[str, str] = {}
    i = n
    gap = 1.0 / rate if rate > 0 else 0.0
    with httpx.Client(base_url=base, timeout=30) as client:
        while not stop.wait(gap):
            path = paths[i % len(paths)]
            i += 1
            headers = {"If-None-Match": etags[path]} if path in etags and i % 3 == 0 else {}
            try:
                r = client.get(path, headers=headers)
            except httpx.HTTPError as exc:
                with obs.lock:
                    obs.errors[type(exc).__name__] += 1
                time.sleep(0.2)
                continue
            records = None
            if r.status_code == 200 and path.endswith("/kpis"):
                records = int(r.json()["records"])
            if r.status_code == 200 and "etag" in r.headers:
                etags[path] = r.headers["etag"]
            obs.record(r.status_code, r.headers.get("x-db-version"), records)
            if r.status_code == 503:
                time.sleep(0.1)


def sample(proc: psutil.Process) -> tuple[float, int, float]:
    """RSS (MB) and open fds of the hub, and RSS of its children (the dashboard)."""
    children = 0.0
    for child in proc.children(recursive=True):
        with contextlib.suppress(psutil.Error):  # a child may exit between the calls
            children += child.memory_info().rss / 1e6
    return proc.memory_info().rss / 1e6, proc.num_fds(), children


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="30-minute soak of the whole hub")
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--every", type=float, default=20.0, help="s between exports")
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rate", type=float, default=25.0,
                        help="requests/s per client (0: as fast as possible)")
    parser.add_argument("--no-dashboard", action="store_true")
    args = parser.parse_args(argv)
    print(f"machine  {describe()}")
    with tempfile.TemporaryDirectory(prefix="soak-") as scratch:
        folder = Path(scratch)
        db = folder / "share" / "production_analysis.db"
        db.parent.mkdir()
        create_demo_db(db, rows=args.rows, seed=1, days=90)
        api_port, dash_port = free_port(), free_port()
        cfg = folder / "pdh.toml"
        cfg.write_text(
            f'[database]\npath = "{db.as_posix()}"\n'
            "[watch]\nsettle_interval = 1.0\nsettle_checks = 3\n"
            f"[api]\nport = {api_port}\n"
            f"[dashboard]\nenabled = {'false' if args.no_dashboard else 'true'}\n"
            f"port = {dash_port}\n"
            '[ui]\nnotifications = false\n[log]\ndir = "logs"\n[state]\ndir = "state"\n',
            encoding="utf-8",
        )
        events = folder / "logs" / "events.jsonl"
        hub = subprocess.Popen(
            [sys.executable, "-m", "agent", "run", "--headless", "--config", str(cfg)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{api_port}"
        obs = Observations()
        stop = threading.Event()
        samples: list[tuple[float, float, int, float]] = []
        expected_counts = [args.rows]
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{base}{V1}/kpis", timeout=5).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.5)
            ps = psutil.Process(hub.pid)
            clients = [threading.Thread(target=load_client,
                                        args=(base, stop, obs, n, args.rate))
                       for n in range(args.clients)]
            for t in clients:
                t.start()
            started = time.monotonic()
            end = started + args.minutes * 60
            k = 0
            next_sample = started
            while time.monotonic() < end:
                rows = args.rows + 7 * (k + 1)  # a distinct count per export
                mode = MODES[k % len(MODES)]
                simulate_export(db, mode, rows=rows, seconds=2.0, seed=100 + k, days=90)
                expected_counts.append(rows)
                k += 1
                pause_until = time.monotonic() + args.every
                while time.monotonic() < min(pause_until, end):
                    if time.monotonic() >= next_sample:
                        rss, fds, kids = sample(ps)
                        samples.append((time.monotonic() - started, rss, fds, kids))
                        next_sample += 30
                    time.sleep(0.5)
            # Let the last export settle and be served before stopping the load.
            time.sleep(args.every)
            stop.set()
            for t in clients:
                t.join(60)
        finally:
            stop.set()
            hub.terminate()
            try:
                hub.wait(60)
            except subprocess.TimeoutExpired:
                hub.kill()
        healed = sum(1 for line in events.read_text("utf-8").splitlines()
                     if json.loads(line)["event"] == "indexes_healed")
        stale = {v: sorted(c) for v, c in obs.counts_by_version.items() if len(c) > 1}
        served = sorted(set(expected_counts) & obs.counts_seen)
        quarter = max(1, len(samples) // 4)
        first, last = samples[:quarter], samples[-quarter:]
        # 503 + Retry-After while an export settles is the contract; anything else 5xx is a bug.
        five_xx = sum(n for code, n in obs.codes.items() if code >= 500 and code != 503)
        print(f"run      {args.minutes:g} min, {k} exports every {args.every:g} s "
              f"({', '.join(m.value for m in MODES)} in turn), {args.clients} API clients "
              f"at {args.rate:g} req/s each, "
              f"dashboard {'off' if args.no_dashboard else 'on'}")
        print(f"requests {sum(obs.codes.values()):,}: " + ", ".join(
            f"{code}: {n:,}" for code, n in sorted(obs.codes.items())))
        print(f"5xx      {five_xx} (other than the contract's 503 while an export settles)")
        print(f"errors   {dict(obs.errors) or 'none'}")
        print(f"stale    {len(stale)} versions with mixed data {stale or ''}")
        print(f"healed   {healed} indexes_healed events for {k} exports + the first file")
        print(f"served   {len(served)} of {len(expected_counts)} exports' data seen by clients")
        print(f"RSS MB   first quarter {statistics.mean(s[1] for s in first):.0f}, "
              f"last quarter {statistics.mean(s[1] for s in last):.0f}")
        print(f"child RSS MB (dashboard) first quarter {statistics.mean(s[3] for s in first):.0f}, "
              f"last quarter {statistics.mean(s[3] for s in last):.0f}")
        series = [f"{t / 60:.0f}m {rss:.0f}" for t, rss, _fds, _kids in samples[::10]]
        print(f"RSS MB every 5 min: {', '.join(series)}")
        print(f"fds      first quarter {statistics.mean(s[2] for s in first):.1f}, "
              f"last quarter {statistics.mean(s[2] for s in last):.1f}")
    return 0 if five_xx == 0 and not stale else 1


if __name__ == "__main__":
    raise SystemExit(main())
