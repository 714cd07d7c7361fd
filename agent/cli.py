"""``pdh``: the command line of the Production Data Hub.

Exit codes: 0 ok, 1 a problem remains (e.g. ``check`` could not heal), 2 usage or
configuration error. Errors print one line naming the cause, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from core.config import ConfigError, LoadedConfig, load_config

EXIT_OK = 0
EXIT_PROBLEM = 1
EXIT_USAGE = 2

Handler = Callable[[argparse.Namespace], int]


class UsageError(Exception):
    """A command line that cannot be run as given (exit 2)."""


def _version() -> str:
    try:
        return version("production-data-hub")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, metavar="FILE", help="config file (TOML)")
    common.add_argument("--db", type=Path, metavar="PATH", help="database path (overrides config)")
    return common


def load(args: argparse.Namespace) -> LoadedConfig:
    """The configuration for a command, honouring ``--config`` and ``--db``."""
    return load_config(args.config, db_override=args.db)


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pdh",
        description="Production Data Hub: keeps the ERP's production database indexed and served.",
    )
    parser.add_argument("--version", action="version", version=f"pdh {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common = _common()

    from agent import commands

    p = sub.add_parser(
        "demo-db", parents=[common], help="create a demo database in the ERP's format"
    )
    p.add_argument("path", type=Path, metavar="PATH")
    p.add_argument("--rows", type=_positive_int, default=50_000, help="production records")
    p.add_argument("--seed", type=int, default=1, help="random seed (same seed, same data)")
    p.add_argument("--days", type=_positive_int, default=365, help="days of history")
    p.set_defaults(handler=commands.cmd_demo_db)

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
    p.set_defaults(handler=commands.cmd_erp_sim)

    for register in commands.EXTRA_COMMANDS:
        register(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except ConfigError as exc:
        print(f"pdh: config error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except UsageError as exc:
        print(f"pdh: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
