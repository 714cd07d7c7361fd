"""Soak: ERP exports every ~20 s for 30 minutes under a steady API load, on snapshots.

``python bench/soak.py --minutes 30 --every 20``

Runs ``pdh run --headless`` (API and dashboard child) as a real process on a small
export, its log, state and snapshot store (``[store] dir``) in the run's temp folder.
An ``erp-sim`` export is written every ``--every`` seconds, in turn replace, copy,
rebuild, replace+wal and rebuild+wal, always with ``--rows`` rows (so verification's
row-count check holds nothing back) and a new seed (so each export's data differs).
``--clients`` threads load the API the whole time. It reports:

- status codes: every answer after the first publish must be 200 or 304 (readers are
  served the last published snapshot while an export settles; 503 only before the
  first publish, and the load starts after it);
- stale responses: an ``X-DB-Version`` older than the snapshot that was already
  published when the request was sent (publish times from the ``snapshot_published``
  events in events.jsonl, written after the pointer switch; ``/hub/status`` is polled
  too, as a cross-check), which must be zero; also one version answered with two
  different /kpis bodies or two ``X-Data-As-Of`` values (mixed data), which must be zero;
- exports published and held back (``snapshot_published`` / ``export_rejected``), the
  time from an export's end to its publish, and every published version seen by clients;
- RSS and open fds of the hub and of the dashboard child: every 5 minutes and at the
  quarters of the run (sampled every 30 s; quarter means too), with the load average.

With ``--viewer`` a headless chromium keeps the dashboard open the whole time (it redraws
itself after each publish) and opens it in a new page every ``--viewer-reload`` seconds,
so the dashboard child reads every snapshot too; without it the child serves no session.

Traffic goes to 127.0.0.1 only; every loop is bounded by the run's duration.

At ~540 lines this script is long on purpose: one run, one timeline (ERP exports,
clients, an optional browser, the samplers) whose parts share the run's clock, its
stop and its records; each part is one section below.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import hashlib
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import describe  # noqa: E402
from core.erp.demodb import create_demo_db  # noqa: E402
from core.erp.erpsim import ExportMode, simulate_export  # noqa: E402
from tests.conftest import free_port  # noqa: E402

MODES: list[tuple[ExportMode, str]] = [
    (ExportMode.REPLACE, "delete"), (ExportMode.COPY, "delete"),
    (ExportMode.REBUILD, "delete"), (ExportMode.REPLACE, "wal"), (ExportMode.REBUILD, "wal"),
]
V1 = "/api/v1"
SAMPLE_EVERY = 30.0
# A request sent this long after the publish event's (millisecond, truncated) time is
# certainly after the pointer switch, which happens before the event is written.
EVENT_SLACK = 0.002


def mode_name(mode: ExportMode, journal: str) -> str:
    return mode.value + ("+wal" if journal == "wal" else "")


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def parse_time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class Observations:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.codes: collections.Counter[int] = collections.Counter()
        self.bad: list[tuple[float, int, str, str]] = []  # (sent, code, path, body head)
        self.errors: collections.Counter[str] = collections.Counter()
        self.sent_by_version: dict[str, list[float]] = collections.defaultdict(list)
        self.kpis_by_version: dict[str, set[str]] = collections.defaultdict(set)
        self.as_of_by_version: dict[str, set[str]] = collections.defaultdict(set)
        self.no_version = 0

    def record(self, sent: float, path: str, r: httpx.Response) -> None:
        version = r.headers.get("x-db-version")
        as_of = r.headers.get("x-data-as-of")
        digest = None
        if r.status_code == 200 and path.endswith("/kpis"):
            digest = hashlib.blake2b(r.content, digest_size=8).hexdigest()
        with self.lock:
            self.codes[r.status_code] += 1
            if r.status_code not in (200, 304):
                self.bad.append((sent, r.status_code, path, r.text[:200]))
                return
            if not version:
                self.no_version += 1
                return
            self.sent_by_version[version].append(sent)
            if as_of:
                self.as_of_by_version[version].add(as_of)
            if digest:
                self.kpis_by_version[version].add(digest)


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
            sent = time.time()
            try:
                r = client.get(path, headers=headers)
            except httpx.HTTPError as exc:
                with obs.lock:
                    obs.errors[type(exc).__name__] += 1
                time.sleep(0.2)
                continue
            if r.status_code == 200 and "etag" in r.headers:
                etags[path] = r.headers["etag"]
            obs.record(sent, path, r)


@dataclass
class StatusLog:
    """What /hub/status said, polled about once a second."""

    published: list[tuple[float, str]] = field(default_factory=list)  # first seen
    held: list[tuple[float, str]] = field(default_factory=list)
    dashboard_pids: list[int] = field(default_factory=list)
    states: collections.Counter[str] = field(default_factory=collections.Counter)
    failures: int = 0
    last: dict[str, Any] = field(default_factory=dict)


def poll_status(base: str, stop: threading.Event, log: StatusLog) -> None:
    with httpx.Client(base_url=base, timeout=10) as client:
        while not stop.wait(1.0):
            try:
                status = client.get(f"{V1}/hub/status").json()
            except (httpx.HTTPError, ValueError):
                log.failures += 1
                continue
            now = time.time()
            log.last = status
            log.states[status.get("state", "?")] += 1
            pub = (status.get("published") or {}).get("version")
            if pub and (not log.published or log.published[-1][1] != pub):
                log.published.append((now, pub))
            held = status.get("held_back")
            if held and (not log.held or log.held[-1][1] != held.get("version")):
                log.held.append((now, held.get("version")))
            pid = ((status.get("servers") or {}).get("dashboard") or {}).get("pid")
            if pid and (not log.dashboard_pids or log.dashboard_pids[-1] != pid):
                log.dashboard_pids.append(pid)


@dataclass
class Sample:
    t: float  # s since the load started
    hub_rss: float  # MB
    hub_fds: int
    dash_rss: float | None
    dash_fds: int | None
    load: str


def sample(hub: psutil.Process, dash_pid: int | None, t: float) -> Sample:
    dash_rss = dash_fds = None
    if dash_pid:
        with contextlib.suppress(psutil.Error):  # restarting, or gone
            dash = psutil.Process(dash_pid)
            dash_rss, dash_fds = dash.memory_info().rss / 1e6, dash.num_fds()
    return Sample(t, hub.memory_info().rss / 1e6, hub.num_fds(), dash_rss, dash_fds,
                  loadavg())


def sampler(hub: psutil.Process, status: StatusLog, started: float, marks: list[float],
            stop: threading.Event, out: list[Sample]) -> None:
    for mark in marks:
        if stop.wait(max(0.0, started + mark - time.monotonic())):
            return
        pid = status.dashboard_pids[-1] if status.dashboard_pids else None
        try:
            s = sample(hub, pid, mark)
        except psutil.Error:
            return
        out.append(s)
        if mark % 300 < 1e-6 or mark in marks[-1:]:
            print(f"  [{mark / 60:4.1f} min] hub {s.hub_rss:.0f} MB {s.hub_fds} fds, dashboard "
                  f"{_mb(s.dash_rss)} {s.dash_fds} fds, load {s.load}", flush=True)


def _mb(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} MB"


def _mean(values: list[float | None]) -> str:
    got = [v for v in values if v is not None]
    return f"{statistics.mean(got):.1f}" if got else "-"


@dataclass
class Viewer:
    """What the dashboard viewer saw."""

    loads: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def view_dashboard(url: str, stop: threading.Event, reload_every: float, out: Viewer) -> None:
    """Keep the dashboard open in headless chromium; a new page every ``reload_every`` s."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    from bench.bench_dashboard import drawn
    from tests.browser import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000},
                                      locale="ko-KR", timezone_id="Asia/Seoul")
        page = None
        try:
            while not stop.is_set():
                new = context.new_page()
                new.set_default_timeout(60_000)
                t0 = time.perf_counter()
                try:
                    new.goto(url)
                    drawn(new)
                    out.loads.append(time.perf_counter() - t0)
                except PlaywrightError as exc:
                    out.failures.append(str(exc).splitlines()[0][:160])
                if page is not None:
                    page.close()
                page = new
                stop.wait(reload_every)
        finally:
            context.close()
            browser.close()


def wait_first_publish(base: str, hub: subprocess.Popen[bytes], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if hub.poll() is not None:
            raise SystemExit(f"the hub exited with {hub.returncode} before publishing")
        with contextlib.suppress(httpx.HTTPError, ValueError):
            status = httpx.get(f"{base}{V1}/hub/status", timeout=5).json()
            published = status.get("published")
            dash = (status.get("servers") or {}).get("dashboard")
            ready = dash is None or dash.get("state") in ("running", "disabled")
            if (published and ready
                    and httpx.get(f"{base}{V1}/kpis", timeout=10).status_code == 200):
                return str(published["version"])
        time.sleep(0.5)
    raise SystemExit(f"nothing published within {timeout:g} s")


def wait_caught_up(base: str, last_end: float, timeout: float) -> None:
    """Until the hub is idle with the ERP's last export published or held back."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
            s = httpx.get(f"{base}{V1}/hub/status", timeout=5).json()
            pub = (s.get("published") or {}).get("published_at")
            held = (s.get("held_back") or {}).get("at")
            done = [parse_time(t) for t in (pub, held) if t]
            if s.get("activity") == "idle" and any(t >= last_end for t in done):
                return
        time.sleep(0.5)
    print(f"  (the hub had not caught up with the last export after {timeout:g} s)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="30-minute soak of the whole hub")
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--every", type=float, default=20.0, help="s between exports")
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rate", type=float, default=25.0,
                        help="requests/s per client (0: as fast as possible)")
    parser.add_argument("--no-dashboard", action="store_true")
    parser.add_argument("--viewer", action="store_true",
                        help="keep the dashboard open in headless chromium meanwhile")
    parser.add_argument("--viewer-reload", type=float, default=60.0,
                        help="s between new dashboard pages with --viewer")
    args = parser.parse_args(argv)
    if args.viewer and args.no_dashboard:
        parser.error("--viewer needs the dashboard")
    print(f"machine  {describe()}")
    print(f"load     {loadavg()} at the start", flush=True)
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
            f'[api]\nhost = "127.0.0.1"\nport = {api_port}\n'
            f"[dashboard]\nenabled = {'false' if args.no_dashboard else 'true'}\n"
            f"port = {dash_port}\n"
            '[ui]\nnotifications = false\n[log]\ndir = "logs"\n[state]\ndir = "state"\n'
            '[store]\ndir = "store"\n',
            encoding="utf-8",
        )
        events_file = folder / "logs" / "events.jsonl"
        hub = subprocess.Popen(
            [sys.executable, "-m", "agent", "run", "--headless", "--config", str(cfg)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{api_port}"
        obs = Observations()
        status_log = StatusLog()
        stop = threading.Event()
        samples: list[Sample] = []
        viewer = Viewer()
        viewer_thread: threading.Thread | None = None
        exports: list[tuple[str, float, float]] = []  # (mode, start, end) wall times
        loads: list[str] = []
        duration = args.minutes * 60
        try:
            first_version = wait_first_publish(base, hub, 180)
            ps = psutil.Process(hub.pid)
            poller = threading.Thread(target=poll_status, args=(base, stop, status_log))
            poller.start()
            time.sleep(1.5)  # the dashboard's pid
            if args.viewer:
                dash_url = status_log.last["servers"]["dashboard"]["url"]
                viewer_thread = threading.Thread(
                    target=view_dashboard, args=(dash_url, stop, args.viewer_reload, viewer))
                viewer_thread.start()
            clients = [threading.Thread(target=load_client,
                                        args=(base, stop, obs, n, args.rate))
                       for n in range(args.clients)]
            load_started_wall = time.time()
            for t in clients:
                t.start()
            started = time.monotonic()
            quarters = [duration * q / 4 for q in range(5)]
            marks = sorted({*(i * SAMPLE_EVERY for i in range(int(duration // SAMPLE_EVERY) + 1)),
                            *quarters})
            sampler_thread = threading.Thread(
                target=sampler, args=(ps, status_log, started, marks, stop, samples))
            sampler_thread.start()
            end = started + duration
            k = 0
            while time.monotonic() < end:
                mode, journal = MODES[k % len(MODES)]
                t0 = time.time()
                simulate_export(db, mode, rows=args.rows, seconds=2.0, seed=100 + k, days=90,
                                journal=journal)  # type: ignore[arg-type]
                exports.append((mode_name(mode, journal), t0, time.time()))
                k += 1
                if k % 5 == 0:
                    loads.append(loadavg())
                pause_until = time.monotonic() + args.every
                while time.monotonic() < min(pause_until, end):
                    time.sleep(0.25)
            sampler_thread.join(SAMPLE_EVERY + 30)
            # Let the last export be published (or held back) under load, then stop.
            wait_caught_up(base, exports[-1][2] if exports else 0.0, 120)
            time.sleep(2)
            stop.set()
            for t in clients:
                t.join(60)
            poller.join(15)
            if viewer_thread is not None:
                viewer_thread.join(90)
            final_status = status_log.last
        finally:
            stop.set()
            hub.terminate()
            try:
                hub.wait(60)
            except subprocess.TimeoutExpired:
                hub.kill()
        events = [json.loads(line) for line in events_file.read_text("utf-8").splitlines()
                  if line.strip()]
    return report(args, obs, status_log, samples, exports, events, first_version,
                  load_started_wall, final_status, loads, viewer)


def report(args: argparse.Namespace, obs: Observations, status_log: StatusLog,
           samples: list[Sample], exports: list[tuple[str, float, float]],
           events: list[dict[str, Any]], first_version: str, load_started: float,
           final_status: dict[str, Any], loads: list[str],
           viewer: Viewer | None = None) -> int:
    published = [(parse_time(e["time"]), e["version"], e) for e in events
                 if e["event"] == "snapshot_published"]
    rejected = [(parse_time(e["time"]), e) for e in events if e["event"] == "export_rejected"]
    publish_times = [t for t, _v, _e in published]
    order = {v: i for i, (_t, v, _e) in enumerate(published)}
    during = [p for p in published if p[0] >= load_started]

    # Stale: a response of version v for a request sent after the next version's publish.
    stale = 0
    stale_worst = 0.0
    stale_versions: set[str] = set()
    unknown = 0
    for version, sents in obs.sent_by_version.items():
        i = order.get(version)
        if i is None:
            unknown += len(sents)
            continue
        if i + 1 >= len(published):
            continue
        superseded = published[i + 1][0] + EVENT_SLACK
        late = [s - superseded for s in sents if s > superseded]
        if late:
            stale += len(late)
            stale_worst = max(stale_worst, max(late))
            stale_versions.add(version)
    mixed = {v: len(d) for v, d in obs.kpis_by_version.items() if len(d) > 1}
    as_of_mixed = {v: sorted(d) for v, d in obs.as_of_by_version.items() if len(d) > 1}
    seen = set(obs.sent_by_version)
    during_versions = [v for _t, v, _e in during]
    seen_during = [v for v in during_versions if v in seen]

    # Each export: its first publish or rejection after it ended (before the next ended).
    per_mode: dict[str, list[float]] = collections.defaultdict(list)
    unresolved: list[str] = []
    held_modes: list[str] = []
    extra_publishes = 0
    for n, (name, _t0, t1) in enumerate(exports):
        nxt = exports[n + 1][1] if n + 1 < len(exports) else float("inf")
        pubs = [t for t in publish_times if t1 < t <= nxt]
        # A copy/rebuild may be noticed while it is written: count from its start too.
        pubs_all = [t for t in publish_times if exports[n][1] < t <= nxt]
        rej = [t for t, _e in rejected if exports[n][1] < t <= nxt]
        if pubs:
            per_mode[name].append(pubs[0] - t1)
            extra_publishes += len(pubs_all) - 1
        elif rej:
            held_modes.append(name)
        else:
            unresolved.append(name)
    latencies = [x for xs in per_mode.values() for x in xs]

    bad_codes = sum(n for code, n in obs.codes.items() if code not in (200, 304))
    total = sum(obs.codes.values())
    print(f"run      {args.minutes:g} min, {len(exports)} exports every {args.every:g} s "
          f"({', '.join(mode_name(m, j) for m, j in MODES)} in turn, {args.rows:,} rows "
          f"each), {args.clients} API clients at {args.rate:g} req/s each, "
          f"dashboard {'off' if args.no_dashboard else 'on'}")
    print(f"requests {total:,}: " + ", ".join(
        f"{code}: {n:,}" for code, n in sorted(obs.codes.items())))
    print(f"not 200/304 after the first publish: {bad_codes}  (target 0)")
    for sent, code, path, body in obs.bad[:5]:
        print(f"    {code} {path} at +{sent - load_started:.1f} s: {body!r}")
    print(f"errors   {dict(obs.errors) or 'none'} (client side: connection, timeout)")
    print(f"stale    {stale} responses (of {len(stale_versions)} versions) older than the "
          f"snapshot published when sent  (target 0)"
          + (f"; worst sent {stale_worst * 1000:.0f} ms after the next publish" if stale else ""))
    print(f"mixed    {len(mixed)} versions with two /kpis bodies, {len(as_of_mixed)} with two "
          f"X-Data-As-Of; {unknown} responses of a version never published, "
          f"{obs.no_version} without X-DB-Version")
    print(f"exports  {len(exports)} made: {sum(len(x) for x in per_mode.values())} published, "
          f"{len(held_modes)} held back{f' {held_modes}' if held_modes else ''}, "
          f"{len(unresolved)} neither{f' {unresolved}' if unresolved else ''}; "
          f"{extra_publishes} extra publishes of one export")
    print(f"events   {len(published)} snapshot_published ({len(during)} during the load, "
          f"the first {first_version}), {len(rejected)} export_rejected, "
          + ", ".join(f"{k} {v}" for k, v in sorted(collections.Counter(
              e["event"] for e in events).items())
                      if k not in ("snapshot_published", "export_rejected")))
    print(f"served   {len(seen_during)} of {len(during_versions)} versions published during "
          f"the load seen by clients; /hub/status saw {len(status_log.published)} published "
          f"versions, {len(status_log.held)} held back, states "
          f"{dict(status_log.states)}, {status_log.failures} poll failures")
    if latencies:
        print("publish  export end -> snapshot_published: median "
              f"{statistics.median(latencies):.2f} s, max {max(latencies):.2f} s; "
              + ", ".join(f"{m} {statistics.median(v):.2f}" for m, v in per_mode.items()))
    pids = status_log.dashboard_pids
    print(f"dashboard pid {pids[0] if pids else '-'}"
          f"{f', restarted as {pids[1:]}' if len(pids) > 1 else ', no restart'}; final "
          f"state {final_status.get('state')}, held_back "
          f"{(final_status.get('held_back') or {}).get('reason')}")
    if samples:
        quarter = max(1, len(samples) // 4)
        first, last = samples[:quarter], samples[-quarter:]
        print(f"RSS MB   hub first quarter {_mean([s.hub_rss for s in first])}, last quarter "
              f"{_mean([s.hub_rss for s in last])}; dashboard first quarter "
              f"{_mean([s.dash_rss for s in first])}, last quarter "
              f"{_mean([s.dash_rss for s in last])}")
        print(f"fds      hub first quarter {_mean([s.hub_fds for s in first])}, last quarter "
              f"{_mean([s.hub_fds for s in last])}; dashboard first quarter "
              f"{_mean([s.dash_fds for s in first])}, last quarter "
              f"{_mean([s.dash_fds for s in last])}")
        duration = args.minutes * 60
        marks = {*(m for m in (s.t for s in samples) if m % 300 < 1e-6),
                 *(duration * q / 4 for q in range(5))}
        print("at 5-min marks and quarters (hub RSS MB/fds, dashboard RSS MB/fds, load):")
        for s in samples:
            if s.t in marks:
                print(f"  {s.t / 60:5.2f} min  hub {s.hub_rss:.0f}/{s.hub_fds}  dashboard "
                      f"{_mb(s.dash_rss)}/{s.dash_fds if s.dash_fds is not None else '-'}  "
                      f"load {s.load}")
        print(f"RSS MB   hub min {min(s.hub_rss for s in samples):.0f}, max "
              f"{max(s.hub_rss for s in samples):.0f}; fds hub min "
              f"{min(s.hub_fds for s in samples)}, max {max(s.hub_fds for s in samples)}")
    if args.viewer and viewer is not None:
        got = viewer.loads
        print(f"viewer   {len(got)} dashboard pages drawn (new page every "
              f"{args.viewer_reload:g} s, one always open), "
              + (f"median {statistics.median(got):.2f} s, max {max(got):.2f} s; " if got else "")
              + f"{len(viewer.failures)} failures {viewer.failures[:3] or ''}")
    print(f"load     every 5th export: {', '.join(loads) or '-'}; at the end {loadavg()}")
    print(f"finished {datetime.now().astimezone().isoformat(timespec='seconds')}")
    ok = (bad_codes == 0 and stale == 0 and not mixed and not as_of_mixed
          and not obs.errors and not held_modes and not unresolved
          and (viewer is None or not viewer.failures))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
