"""``pdh``: the command line of the Production Data Hub.

Exit codes: 0 ok, 1 a problem remains (e.g. ``check`` could not heal), 2 usage or
configuration error. Errors print one line naming the cause, never a traceback.

The command modules are imported here, at the top, and listed in :data:`COMMANDS`; none
of them imports this module (what they share is in :mod:`agent.cli_support`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from agent import cmd_agent, cmd_api, cmd_dashboard, cmd_service, commands
from agent.cli_support import (
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
    commands.register_demo_db,
    commands.register_erp_sim,
    commands.register_check,
    commands.register_publish,
    commands.register_status,
    cmd_api.register,
    cmd_dashboard.register,
    commands.register_alert_test,
    cmd_agent.register_run,
    cmd_agent.register_autostart,
    cmd_service.register,
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
