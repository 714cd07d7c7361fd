"""``pdh api``: the data API alone, with no hub (no watching, no healing).

It serves the snapshot the store's pointer names (published by a running agent or by
``pdh check``) and follows the pointer on every request; 503 until something has been
published. ``/hub/...`` answers 503. With ``[api] processes`` > 1 (``--processes``),
that many processes accept on one socket, each with its own cache, under uvicorn's
supervisor: a process that dies is replaced.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from agent.cli.support import (
    EXIT_OK,
    EXIT_PROBLEM,
    EXIT_USAGE,
    Override,
    add_server_command,
    load,
    server_overrides,
)


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = add_server_command(sub, common, "api", "serve the data API alone (no hub, no healing)",
                           cmd_api)
    p.add_argument("--processes", type=int,
                   help="processes that serve, 1..32 (default: [api] processes, 1); one "
                        "per core serves the most")


def cmd_api(args: argparse.Namespace) -> int:
    from api.security import startup_problem
    from api.server import BindError, run_standalone
    from core.logs import setup_logging

    overrides = server_overrides(args, "api")
    if args.processes is not None:
        overrides.append(Override("api.processes", args.processes, "--processes"))
    config = load(args, overrides).config
    problem = startup_problem(config.api)
    if problem is not None:
        print(f"pdh: {problem}", file=sys.stderr)
        return EXIT_USAGE
    setup_logging(config.log_dir, config.log.level)

    def listening(url: str) -> None:
        print(f"Production Data Hub API on {url} (docs: {url}/docs) for {config.db_path}; "
              "Ctrl+C stops it", flush=True)

    try:
        error = run_standalone(config, listening)
    except BindError as exc:
        print(f"pdh: {exc}", file=sys.stderr)
        return EXIT_PROBLEM
    except KeyboardInterrupt:
        return EXIT_OK
    if error:
        print(f"pdh: {error}", file=sys.stderr)
        return EXIT_PROBLEM
    return EXIT_OK
