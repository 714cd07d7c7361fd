"""Time demo-data generation: ``python bench/bench_demodb.py --rows 1000000``.

Prints rows, seconds, rows/s, file size and the machine it ran on, so figures from
different machines can be compared.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from datetime import date, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout too

from core.erp.demodb import create_demo_db  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Generate one demo database and print the timing."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="production_records rows")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="folder (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-demodb-") as scratch:
        folder = args.out or Path(scratch)
        path = folder / "production_analysis.db"
        started = time.perf_counter()
        stats = create_demo_db(
            path, rows=args.rows, seed=args.seed, days=args.days, end_date=date(2026, 3, 11)
        )
        seconds = time.perf_counter() - started
        size_mb = path.stat().st_size / 1e6
        print(f"rows          {stats.rows:,} (+{stats.defect_rows:,} defect rows)")
        print(f"seconds       {seconds:.2f}")
        print(f"rows/s        {stats.rows / seconds:,.0f}")
        print(f"file size     {size_mb:.1f} MB  ({path})")
        print(f"platform      {platform.platform()}")
        print(f"processor     {platform.processor() or platform.machine()}")
        print(f"cpu count     {os.cpu_count()}")
        print(f"python        {platform.python_version()} ({platform.python_implementation()})")
        print(f"sqlite        {__import__('sqlite3').sqlite_version}")
        print(f"date          {datetime.now().astimezone().isoformat(timespec='seconds')}")
        if args.out is not None and not args.keep:
            path.unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
