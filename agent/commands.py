"""Handlers of the ``pdh`` subcommands; each returns an exit code."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

Register = Callable[[Any, argparse.ArgumentParser], None]

# Later subcommands (check, run, status, ...) add a register function here.
EXTRA_COMMANDS: list[Register] = []


def _progress_bar(total: int, desc: str) -> tuple[Callable[[int], None], Callable[[], None]]:
    """A tqdm bar on a terminal; nothing when output is piped (logs, CI)."""
    if not sys.stderr.isatty():
        return (lambda n: None), (lambda: None)
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit="rows", unit_scale=True, leave=False)
    return bar.update, bar.close


def cmd_demo_db(args: argparse.Namespace) -> int:
    from core.demodb import create_demo_db

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
    from core.erpsim import ExportMode, simulate_export

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


def _register_check(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "check", parents=[common], help="check (and heal) the database once, in the foreground"
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--no-heal", action="store_true", help="only inspect; change nothing")
    p.set_defaults(handler=cmd_check)


def cmd_check(args: argparse.Namespace) -> int:
    import json

    from core.checkonce import check_once

    loaded = _load(args)
    outcome = check_once(loaded.config, heal_it=not args.no_heal)
    if args.json:
        print(json.dumps(outcome, ensure_ascii=False, indent=2))
    else:
        print(outcome["summary"])
    return 0 if outcome["ok"] else 1


def _register_status(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("status", parents=[common], help="show the hub's last known state")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_status)


def _live_status(config: Any) -> dict[str, Any] | None:
    """The running agent's status from its API on this machine, or None."""
    import httpx

    if not config.api.enabled:
        return None
    host = "127.0.0.1" if config.api.host in ("0.0.0.0", "", "::") else config.api.host
    try:
        response = httpx.get(f"http://{host}:{config.api.port}/api/v1/hub/status", timeout=2)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    data: dict[str, Any] = response.json()
    if data.get("db", {}).get("path") != str(config.db_path):
        return None  # another hub on that port, for another database
    return data


def cmd_status(args: argparse.Namespace) -> int:
    import json

    from core.hub import status_from_disk

    loaded = _load(args)
    live = _live_status(loaded.config)
    data = live if live is not None else status_from_disk(loaded.config)
    data["source"] = "running agent" if live is not None else "saved state (agent not reachable)"
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return 0
    check = data.get("last_check") or {}
    print(f"from:             {data['source']}")
    if live is not None:
        print(f"state:            {live['state']} ({live['message']})")
    print(f"database:         {loaded.config.db_path}")
    print(f"auto mode:        {'on' if data.get('auto_mode', True) else 'off'}")
    print(f"last DB update:   {data.get('last_db_update') or '-'}")
    if check:
        healed = ", ".join(check.get("healed") or []) or "-"
        print(f"last index check: {check['at']} {check['result']} (healed: {healed})")
        if check.get("error"):
            print(f"  problem:        {check['error']}")
    else:
        print("last index check: never")
    if live is not None:
        print(f"next check:       {live.get('next_check') or '-'}")
        for name, server in live.get("servers", {}).items():
            detail = server.get("url") or server.get("error") or ""
            print(f"{name + ':':<18}{server['state']} {detail}".rstrip())
    return 0


def _load(args: argparse.Namespace) -> Any:
    from agent.cli import load

    return load(args)


from agent.cmd_agent import COMMANDS as _AGENT_COMMANDS  # noqa: E402
from agent.cmd_api import register as _register_api  # noqa: E402  (cheap modules)
from agent.cmd_dashboard import register as _register_dashboard  # noqa: E402

EXTRA_COMMANDS.extend([_register_check, _register_status, _register_api, _register_dashboard])
EXTRA_COMMANDS.extend(_AGENT_COMMANDS)
