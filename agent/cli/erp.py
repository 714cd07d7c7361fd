"""``pdh demo-db`` and ``pdh erp-sim``: the ERP's side, for trying the hub and for tests
(a demo database in the ERP's format; one simulated export onto it)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _progress_bar(total: int, desc: str) -> tuple[Callable[[int], None], Callable[[], None]]:
    """A tqdm bar on a terminal; nothing when output is piped (logs, CI)."""
    if not sys.stderr.isatty():
        return (lambda n: None), (lambda: None)
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit="rows", unit_scale=True, leave=False)
    return bar.update, bar.close


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, got {text}")
    return value


def register_demo_db(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "demo-db", parents=[common], help="create a demo database in the ERP's format"
    )
    p.add_argument("path", type=Path, metavar="PATH")
    p.add_argument("--rows", type=_positive_int, default=50_000, help="production records")
    p.add_argument("--seed", type=int, default=1, help="random seed (same seed, same data)")
    p.add_argument("--days", type=_positive_int, default=365, help="days of history")
    p.set_defaults(handler=cmd_demo_db)


def register_erp_sim(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "erp-sim", parents=[common], help="simulate one ERP export onto a database file"
    )
    p.add_argument("path", type=Path, metavar="PATH")
    p.add_argument(
        "--mode", required=True, choices=["replace", "copy", "rebuild", "delete", "corrupt"]
    )
    p.add_argument("--rows", type=_positive_int, default=20_000)
    p.add_argument("--seconds", type=_non_negative_float, default=2.0, help="how long it takes")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: new data)")
    p.add_argument(
        "--journal", choices=["delete", "wal"], default="delete", help="journal mode the ERP writes"
    )
    p.set_defaults(handler=cmd_erp_sim)


def cmd_demo_db(args: argparse.Namespace) -> int:
    from core.erp.demodb import create_demo_db

    path: Path = args.path
    update, close = _progress_bar(args.rows, "demo-db")
    try:
        stats = create_demo_db(
            path, rows=args.rows, seed=args.seed, days=args.days, progress=update
        )
    except OSError as exc:
        close()
        print(f"pdh: cannot write {path}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    close()
    print(
        f"{path}: {stats.rows:,} production records, {stats.defect_rows:,} defect rows, "
        f"{stats.items} items, {stats.lines} lines, {stats.date_from}..{stats.date_to} "
        f"({stats.seconds:.1f} s)"
    )
    return 0


def cmd_erp_sim(args: argparse.Namespace) -> int:
    from core.erp.erpsim import ExportMode, simulate_export

    def show(phase: str) -> None:
        print(f"erp-sim {args.mode}: {phase}", flush=True)

    try:
        simulate_export(
            args.path,
            ExportMode(args.mode),
            rows=args.rows,
            seconds=args.seconds,
            seed=args.seed,
            on_phase=show,
            journal=args.journal,
        )
    except OSError as exc:
        print(f"pdh: erp-sim failed on {args.path}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0
