"""Benchmark the data API on a 1M-row file, against Datasette 0.65.5 on the same file.

    .venv/bin/python bench/bench_api.py                 # 1M rows, 10 s per load run
    .venv/bin/python bench/bench_api.py --rows 200000 --seconds 5 --no-datasette

What it measures (printed as a table, nothing is written to the repo):
- the records query (one item, one month, 100 rows, JSON) under the same load (wrk,
  8 connections) on our API (``pdh api``, one uvicorn process) and on Datasette:
  distinct queries (every request a different item/month/shift/order: cache misses)
  and one repeated query; requests/s and p99 latency; the throughput ratio.
- the daily summary of a whole year: the first request after an update (a new export,
  healed, renamed into place) and warm (answered from the cache).

Needs ``wrk`` (``apt-get install wrk``). Datasette runs from a throwaway venv
(``--datasette-venv``, created with ``pip install datasette==0.65.5`` if missing).
Traffic goes to 127.0.0.1 only; every run is bounded by ``--seconds``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.checkonce import check_once  # noqa: E402
from core.config import parse_config  # noqa: E402
from core.demodb import create_demo_db  # noqa: E402

END_DATE = date(2026, 3, 31)
DATASETTE_VERSION = "0.65.5"
YEAR_SQL = (
    "select work_date, count(*), sum(plan_qty), sum(good_qty), sum(defect_qty),"
    " total(run_minutes), total(downtime_minutes) from production_records"
    " where work_date between '2025-04-01' and '2026-03-31'"
    " group by work_date order by work_date"
)

_LUA = """
local items = {%(items)s}
local months = {%(months)s}
local shifts = {"", "&shift=D", "&shift=N"}
local template = %(template)s
local threads = 0
function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end
function init(args)
  n = id * 7919
end
function request()
  n = n + 1
  local i = n %% #items + 1
  local rest = math.floor(n / #items)
  local m = months[rest %% #months + 1]
  rest = math.floor(rest / #months)
  local shift = shifts[rest %% 3 + 1]
  local desc = math.floor(rest / 3) %% 2 == 1
  local path = template
  path = string.gsub(path, "{item}", items[i])
  path = string.gsub(path, "{from}", m[1])
  path = string.gsub(path, "{to}", m[2])
  path = string.gsub(path, "{shift}", shift)
  if desc then
    path = string.gsub(path, "{asc}", "%(desc)s")
  else
    path = string.gsub(path, "{asc}", "%(asc)s")
  end
  return wrk.format("GET", path)
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def machine() -> str:
    model = ""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        model = next((ln.split(":", 1)[1].strip() for ln in out.splitlines()
                      if ln.startswith("Model name")), "")
    except OSError:
        pass
    return (f"{os.cpu_count()} cores, {model or platform.processor()}, Python "
            f"{platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
            f"{time.strftime('%Y-%m-%d %H:%M %Z')}")


def wait_http(port: int, path: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status < 500:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"nothing answered on port {port} within {timeout:g} s")


def get(port: int, path: str) -> tuple[int, bytes, float]:
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request("GET", path)
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, body, time.perf_counter() - started


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- load ------------------------------------------------------------------------------


def wrk(url: str, *, seconds: float, connections: int, threads: int,
        script: Path | None = None) -> dict[str, Any]:
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency",
           "--timeout", "10s"]
    if script is not None:
        cmd += ["-s", str(script)]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)\b", out)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    total = re.search(r"(\d+) requests in", out)

    def ms(m: re.Match[str] | None) -> float:
        if m is None:
            return float("nan")
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
        return float(m.group(1)) * scale

    return {"rps": rps, "p50_ms": ms(p50), "p99_ms": ms(p99),
            "errors": int(bad.group(1)) if bad else 0,
            "requests": int(total.group(1)) if total else 0}


def lua_script(path: Path, template: str, items: list[str], months: list[tuple[str, str]],
               asc: str, desc: str) -> Path:
    path.write_text(_LUA % {
        "items": ", ".join(json.dumps(i) for i in items),
        "months": ", ".join(f"{{{json.dumps(a)}, {json.dumps(b)}}}" for a, b in months),
        "template": json.dumps(template),
        "asc": asc, "desc": desc,
    }, encoding="utf-8")
    return path


# --- servers ---------------------------------------------------------------------------


def start_ours(db: Path, work: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    toml = work / "pdh.toml"
    toml.write_text(f'[database]\npath = "{db}"\n[log]\ndir = "{work / "logs"}"\n'
                    f'level = "WARNING"\n[api]\nport = {port}\n', encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "agent", "api", "--config", str(toml)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    wait_http(port, "/api/v1/health")
    return proc, port


def datasette_bin(venv: Path, install: bool) -> Path | None:
    exe = venv / "bin" / "datasette"
    if exe.exists():
        return exe
    if not install:
        return None
    print(f"creating {venv} with datasette=={DATASETTE_VERSION} ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q",
                    f"datasette=={DATASETTE_VERSION}"], check=True)
    return exe


def start_datasette(exe: Path, db: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen([str(exe), "serve", str(db), "-p", str(port), "-h", "127.0.0.1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_http(port, "/-/versions.json")
    return proc, port


# --- main ------------------------------------------------------------------------------


def make_file(path: Path, rows: int, seed: int) -> float:
    """A new ERP export (no indexes), then one heal; returns the heal's seconds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    create_demo_db(path, rows=rows, seed=seed, days=365, end_date=END_DATE)
    config = parse_config({"database": {"path": str(path)},
                           "log": {"dir": str(path.parent / "logs")}},
                          source="<bench>", base=path.parent)
    outcome = check_once(config)
    if not outcome["ok"]:
        raise RuntimeError(outcome["summary"])
    return float(outcome["duration_s"])


def months_of(db: Path) -> list[tuple[str, str]]:
    out = []
    first = END_DATE.replace(day=1)
    for _ in range(12):
        last = (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        out.append((first.isoformat(), last.isoformat()))
        first = (first - timedelta(days=1)).replace(day=1)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=10.0, help="per load run")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--datasette-venv", type=Path, default=Path("/tmp/dsvenv"))
    parser.add_argument("--no-datasette", action="store_true")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench_api: needs wrk (apt-get install wrk)", file=sys.stderr)
        return 2

    work = args.workdir or Path(tempfile.mkdtemp(prefix="pdh-bench-api-"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / "data" / "production_analysis.db"
    print(f"machine: {machine()}")
    t0 = time.perf_counter()
    heal_s = make_file(db, args.rows, seed=1)
    print(f"file: {args.rows:,} rows, {db.stat().st_size / 1e6:.0f} MB, built in "
          f"{time.perf_counter() - t0:.1f} s (heal {heal_s:.2f} s)")

    conn = sqlite3.connect(db)
    items = [r[0] for r in conn.execute("SELECT item_code FROM items ORDER BY item_code")]
    conn.close()
    months = months_of(db)
    load = {"seconds": args.seconds, "connections": args.connections, "threads": args.threads}
    results: dict[str, dict[str, Any]] = {}

    item, (d_from, d_to) = items[0], months[0]
    ours_path = (f"/api/v1/records?item_code={item}&date_from={d_from}&date_to={d_to}"
                 "&limit=100&order=asc")
    ours_tpl = ("/api/v1/records?item_code={item}&date_from={from}&date_to={to}&limit=100"
                "{shift}&order={asc}")
    ds_path = (f"/production_analysis/production_records.json?item_code={item}"
               f"&work_date__gte={d_from}&work_date__lte={d_to}&_size=100&_sort=work_date")
    ds_tpl = ("/production_analysis/production_records.json?item_code={item}"
              "&work_date__gte={from}&work_date__lte={to}&_size=100{shift}&{asc}=work_date")

    url_of = "http://127.0.0.1:{}".format
    proc, port = start_ours(db, work)
    try:
        status, body, _ = get(port, ours_path)
        ours_ids = [r["record_id"] for r in json.loads(body)["records"]]
        assert status == 200 and ours_ids, (status, body[:200])
        script = lua_script(work / "ours.lua", ours_tpl, items, months, "asc", "desc")
        wrk(url_of(port) + ours_path, seconds=2, connections=args.connections,
            threads=args.threads)  # warm-up
        results["ours distinct"] = wrk(url_of(port), script=script, **load)
        results["ours repeated"] = wrk(url_of(port) + ours_path, **load)
    finally:
        stop(proc)

    same = None
    exe = None if args.no_datasette else datasette_bin(args.datasette_venv, install=True)
    if exe is not None:
        proc, port = start_datasette(exe, db)
        try:
            status, body, _ = get(port, ds_path)
            ds_ids = [row[0] for row in json.loads(body)["rows"]]
            assert status == 200 and ds_ids, (status, body[:300])
            same = ours_ids == ds_ids
            script = lua_script(work / "ds.lua", ds_tpl, items, months, "_sort",
                                "_sort_desc")
            wrk(url_of(port) + ds_path, seconds=2, connections=args.connections,
                threads=args.threads)  # warm-up
            results["datasette distinct"] = wrk(url_of(port), script=script, **load)
            results["datasette repeated"] = wrk(url_of(port) + ds_path, **load)
            status, body, seconds = get(port, f"/production_analysis.json?sql={quote(YEAR_SQL)}")
            results["datasette daily year"] = {"status": status, "ms": seconds * 1000,
                                               "says": body[:200].decode(errors="replace")}
        finally:
            stop(proc)

    # Daily summary of the whole year: the first request after an update, then warm.
    proc, port = start_ours(db, work)
    try:
        year = "/api/v1/summary/daily?date_from=2025-04-01&date_to=2026-03-31"
        assert get(port, year)[0] == 200  # the old version, cached
        update = work / "export" / "production_analysis.db"
        make_file(update, args.rows, seed=2)  # a new export, healed as the hub would
        os.replace(update, db)
        status, body, first_s = get(port, year)
        assert status == 200 and len(json.loads(body)["days"]) == 365, (status, body[:200])
        warm = []
        for _ in range(300):
            status, _, seconds = get(port, year)
            assert status == 200
            warm.append(seconds)
        warm.sort()
        results["daily year"] = {"first_ms": first_s * 1000,
                                 "warm_p50_ms": statistics.median(warm) * 1000,
                                 "warm_p99_ms": warm[int(len(warm) * 0.99) - 1] * 1000}
    finally:
        stop(proc)

    print()
    print(f"load: wrk -t{args.threads} -c{args.connections} -d{args.seconds:g}s, loopback; "
          "records query = one item, one month, 100 rows, JSON")
    print(f"{'run':<22}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'requests':>10}{'non-2xx':>9}")
    for name in ("ours distinct", "ours repeated", "datasette distinct", "datasette repeated"):
        r = results.get(name)
        if r:
            print(f"{name:<22}{r['rps']:>10.0f}{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}"
                  f"{r['requests']:>10}{r['errors']:>9}")
    if "datasette distinct" in results:
        for kind in ("distinct", "repeated"):
            ratio = results[f"ours {kind}"]["rps"] / results[f"datasette {kind}"]["rps"]
            print(f"throughput ratio, {kind}: {ratio:.1f}x Datasette {DATASETTE_VERSION}")
        print(f"same 100 record ids from both: {same}")
    d = results["daily year"]
    print(f"daily summary, whole year ({args.rows:,} rows): first request after an update "
          f"{d['first_ms']:.0f} ms; warm p50 {d['warm_p50_ms']:.2f} ms, "
          f"p99 {d['warm_p99_ms']:.2f} ms")
    if "datasette daily year" in results:
        r = results["datasette daily year"]
        print(f"Datasette, same SQL: HTTP {r['status']} in {r['ms']:.0f} ms: {r['says']!r}")
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
