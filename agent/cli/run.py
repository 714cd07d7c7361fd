"""``pdh run [--headless] [--demo]`` and ``pdh autostart enable|disable|status``."""

from __future__ import annotations

import argparse
import subprocess
import sys
from typing import Any

from agent.cli.support import load
from core.config import Override


def register_run(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "run", parents=[common],
        help="run the hub with its tray icon (headless where there is no display)",
    )
    p.add_argument("--headless", action="store_true",
                   help="no tray icon: the hub and its servers only (for servers)")
    p.add_argument("--demo", action="store_true",
                   help="use demo/production_analysis.db (created if missing) and simulate "
                        "an ERP export every demo.export_interval seconds")
    p.set_defaults(handler=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    from agent.launch import run_agent
    from agent.services.demo import DEMO_DB

    demo_db = [Override("database.path", DEMO_DB, "--demo")] if args.demo and args.db is None \
        else []
    loaded = load(args, demo_db)
    config = loaded.config
    return run_agent(config, headless=args.headless, demo=args.demo,
                     config_source=loaded.source, db_override=args.db)


def register_autostart(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "autostart", parents=[common],
        help="start the agent at login with this config: enable | disable | status",
    )
    p.add_argument("action", choices=["enable", "disable", "status"])
    p.set_defaults(handler=cmd_autostart)


def cmd_autostart(args: argparse.Namespace) -> int:
    from agent.autostart import launch_command, login_item
    from agent.launch import autostart_command_args

    loaded = load(args)  # a bad config fails here, not at the next login
    db_path = autostart_command_args(loaded.config, loaded.source, args.db)
    command = launch_command(loaded.source, db_path=db_path)
    item = login_item(command, log_dir=loaded.config.log_dir)
    try:
        if args.action == "enable":
            where = item.enable()
            print(f"start at login enabled: {where}")
            print(f"  runs: {subprocess.list2cmdline(command)}")
        elif args.action == "disable":
            status = item.status()
            if item.disable():
                print(f"start at login disabled (removed {status.where})")
            else:
                print(f"start at login was not enabled ({status.where})")
        else:
            print(f"start at login {item.status().describe()}")
    except OSError as exc:
        print(f"pdh: cannot change start at login: {exc}", file=sys.stderr)
        return 1
    return 0

