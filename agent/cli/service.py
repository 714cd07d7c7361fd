"""``pdh service install|uninstall|start|stop|status`` (Windows): the hub as a service
for all users (see :mod:`agent.windows.service`); ``run`` is what the service itself runs."""

from __future__ import annotations

import argparse
import subprocess
import sys
from typing import Any

from agent.cli.support import EXIT_PROBLEM, EXIT_USAGE, load

ACTIONS = ("install", "uninstall", "start", "stop", "status", "run")


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "service", parents=[common],
        help="Windows: the hub as a service for all users (admin): "
             "install | uninstall | start | stop | status",
    )
    p.add_argument("action", choices=ACTIONS)
    p.set_defaults(handler=cmd_service)


def cmd_service(args: argparse.Namespace) -> int:
    if sys.platform != "win32":
        print("pdh: `pdh service` is for Windows; on Linux use the systemd unit in "
              "docs/operations.md", file=sys.stderr)
        return EXIT_USAGE
    from agent.windows.service import (
        SERVICE_NAME,
        ServiceError,
        ServiceManager,
        run_service,
        service_command,
    )

    loaded = load(args)  # a bad config fails here, not when the service starts
    if args.action == "run":
        return run_service(loaded.config, loaded.source)
    manager = ServiceManager()
    try:
        if args.action == "install":
            command = service_command(loaded.source)
            manager.install(command)
            # Started once: the manager may have started the new automatic service itself.
            how = "started" if manager.start() else "started by the service manager"
            print(f"service {SERVICE_NAME} installed and {how} (starts with Windows)")
            print(f"  runs: {subprocess.list2cmdline(command)}")
        elif args.action == "uninstall":
            if manager.uninstall():
                print(f"service {SERVICE_NAME} stopped and removed")
            else:
                print(f"service {SERVICE_NAME} was not installed")
        elif args.action == "start":
            started = manager.start()
            print(f"service {SERVICE_NAME} {'started' if started else 'was already running'}")
        elif args.action == "stop":
            stopped = manager.stop()
            print(f"service {SERVICE_NAME} {'stopped' if stopped else 'was not running'}")
        else:
            state = manager.state()
            print(f"service {SERVICE_NAME}: {state or 'not installed'}")
    except ServiceError as exc:
        print(f"pdh: service {args.action}: {exc}", file=sys.stderr)
        return EXIT_PROBLEM
    return 0
