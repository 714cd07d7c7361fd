"""How long the ERP's rename-over export is blocked while the hub heals the ERP's file in
place, and while it copies it into the store. Windows only (run it under Wine with the
Windows interpreter, or on a Windows PC): Windows refuses to rename over a file another
process holds open without FILE_SHARE_DELETE, which is how SQLite opens files.

    python bench/bench_windows_replace.py DIR [--rows N] [--interval S]

A child process (the ERP) replaces the file every ``--interval`` seconds without
retrying and records each failure; this process heals the file (the hub's own
``core.heal.heal``), then copies it (``core.snapshot.copy_database``). Prints the time
each step held the file and how many replaces failed in it, as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ERP = """
import os, shutil, sys, time
db, interval, stop = sys.argv[1], float(sys.argv[2]), sys.argv[3]
ok = failed = 0
first = last = None
while not os.path.exists(stop):
    if not os.path.exists(db + ".new"):  # the export, written under a temporary name
        shutil.copyfile(db + ".src", db + ".new")
    try:
        os.replace(db + ".new", db)  # the moment that fails while the hub holds `db`
        ok += 1
    except PermissionError:
        now = time.time()
        first, last, failed = first or now, now, failed + 1
    time.sleep(interval)
print(ok, failed, first or 0, last or 0, flush=True)
"""


def _erp(db: Path, interval: float, stop: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", ERP, str(db), str(interval), str(stop)],
                            stdout=subprocess.PIPE, text=True)


def _measure(db: Path, step: str, work, interval: float) -> dict[str, float]:  # noqa: ANN001
    stop = db.with_name(f"stop-{step}")
    stop.unlink(missing_ok=True)
    erp = _erp(db, interval, stop)
    time.sleep(interval * 5)  # the ERP is replacing: every replace passes here
    started = time.time()
    work()
    ended = time.time()
    time.sleep(interval * 5)
    stop.write_text("")
    ok, failed, first, last = erp.communicate(timeout=60)[0].split()
    stop.unlink()
    return {f"{step}_s": round(ended - started, 3), f"{step}_replaces_ok": int(ok),
            f"{step}_replaces_failed": int(failed),
            f"{step}_blocked_s": round(float(last) - float(first), 3) if int(failed) else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--interval", type=float, default=0.05)
    args = parser.parse_args()
    if sys.platform != "win32":
        sys.exit("bench_windows_replace: Windows only (the sharing rules are the point)")
    from core.config import HealConfig
    from core.erp.demodb import create_demo_db
    from core.errors import DbChanged
    from core.heal import heal
    from core.snapshot import copy_database

    args.dir.mkdir(parents=True, exist_ok=True)
    db = args.dir / "production_analysis.db"
    create_demo_db(db, rows=args.rows)
    conn = sqlite3.connect(db)  # an export: the ERP's file comes without our indexes
    for (name,) in conn.execute("select name from sqlite_master where type = 'index' "
                                "and sql is not null").fetchall():
        conn.execute(f'drop index "{name}"')
    conn.execute("drop table if exists sqlite_stat1")
    conn.commit()
    conn.close()
    shutil.copyfile(db, db.with_name(db.name + ".src"))

    cfg = HealConfig()
    figures: dict[str, object] = {"rows": args.rows, "bytes": db.stat().st_size,
                                  "interval_s": args.interval, "platform": sys.platform,
                                  "sqlite": sqlite3.sqlite_version}
    attempts = 0

    def heal_until_done() -> None:
        # The ERP keeps replacing with the un-indexed source, so every heal has work to
        # do, and a replace that lands between two of its steps restarts it (DbChanged),
        # as in the hub.
        nonlocal attempts
        for attempts in range(1, 51):  # noqa: B007
            try:
                heal(db, cfg)
                return
            except DbChanged:
                continue
        raise SystemExit("the heal never finished: every attempt met a replace")

    figures.update(_measure(db, "heal", heal_until_done, args.interval))
    figures["heal_attempts"] = attempts
    dest = args.dir / "copy.db"
    figures.update(_measure(db, "copy", lambda: copy_database(db, dest, timeout=10),
                            args.interval))
    dest.unlink(missing_ok=True)
    print(json.dumps(figures))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
