"""``pdh``: the command line of the Production Data Hub.

Exit codes: 0 ok, 1 a problem remains (e.g. ``check`` could not heal), 2 usage or
configuration error. Errors print one line naming the cause, never a traceback.

The command modules (one per family, :mod:`agent.cli`) are imported here, at the top,
and listed in :data:`COMMANDS`; none of them imports this module (what they share is in
:mod:`agent.cli.support`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from agent.cli import alerts, api, dashboard, erp, run, service, store
from agent.cli.support import (
    EXIT_OK,
    EXIT_PROBLEM,
    EXIT_USAGE,
    Handler,
    Register,
    UsageError,
    common_options,
    load,
)
from core.config import ConfigError
from core.version import package_version

__all__ = ["COMMANDS", "EXIT_OK", "EXIT_PROBLEM", "EXIT_USAGE", "UsageError", "build_parser",
           "load", "main"]

COMMANDS: tuple[Register, ...] = (
    erp.register_demo_db,
    erp.register_erp_sim,
    store.register_check,
    store.register_publish,
    store.register_status,
    api.register,
    dashboard.register,
    alerts.register_alert_test,
    run.register_run,
    run.register_autostart,
    service.register,
)


def build_parser(registers: Sequence[Register] = COMMANDS) -> argparse.ArgumentParser:
    """The ``pdh`` parser with one subcommand per function of ``registers``."""
    parser = argparse.ArgumentParser(
        prog="pdh",
        description="Production Data Hub: keeps the ERP's production database indexed and served.",
    )
    parser.add_argument("--version", action="version", version=f"pdh {package_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common = common_options()
    for register in registers:
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
