"""Handlers of the ``pdh`` subcommands; each returns an exit code."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.cli_support import load as _load
from core.net import base_url
from core.state import StatusSnapshot
from dashboard.hubapi import ApiDown, ApiRefused, HubApi, HubApiError


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


def register_check(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "check", parents=[common], help="check (and heal) the database once, in the foreground"
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--no-heal", action="store_true", help="only inspect; change nothing")
    p.set_defaults(handler=cmd_check)


def cmd_check(args: argparse.Namespace) -> int:
    import json

    from agent.instance import AlreadyRunning, InstanceInfo
    from core.checkonce import check_once
    from core.layout import adopt_legacy

    loaded = _load(args)
    config = loaded.config
    lock = _store_lock(loaded)
    try:
        lock.acquire(InstanceInfo(pid=os.getpid(), db=str(config.db_path)), wait_info_s=0.5)
    except AlreadyRunning as exc:
        # One writer per store: the running agent checks, heals and publishes.
        try:
            asked = _holder_api(config, exc.info).check_now()
        except ApiDown:
            who = exc.info.describe() if exc.info else "pid unknown"
            print(f"pdh: an agent is running for this database ({who}) and owns the "
                  "snapshot store; its API did not answer, so use its Check Now (tray "
                  "or dashboard)", file=sys.stderr)
            return 1
        except ApiRefused as refused:
            print(f"pdh: the running agent refused: {refused.reason}", file=sys.stderr)
            return 1
        print(f"an agent is running for this database; asked it to check now "
              f"(state {asked.state}); see pdh status")
        return 0
    with lock:
        adopt_legacy(config, loaded.source)
        outcome = check_once(config, heal_it=not args.no_heal)
    if args.json:
        print(json.dumps(outcome.as_json(), ensure_ascii=False, indent=2))
    else:
        print(outcome.summary)
    return 0 if outcome.ok else 1


def register_publish(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("publish", parents=[common],
                       help="publish the export that verification held back")
    p.add_argument("--force", action="store_true", required=True,
                   help="publish it although it failed verification (required)")
    p.set_defaults(handler=cmd_publish)


def cmd_publish(args: argparse.Namespace) -> int:
    import anyio

    from agent.instance import AlreadyRunning, InstanceInfo
    from core.eventlog import EventLog
    from core.layout import adopt_legacy
    from core.publisher import Publisher, PublishRefused

    loaded = _load(args)
    config = loaded.config
    lock = _store_lock(loaded)
    try:
        lock.acquire(InstanceInfo(pid=os.getpid(), db=str(config.db_path)), wait_info_s=0.5)
    except AlreadyRunning as exc:
        try:
            answer = _holder_api(config, exc.info).publish_anyway()
        except ApiDown:
            print("pdh: an agent is running for this database, and its API did not answer; "
                  "use Publish anyway in its tray menu or dashboard", file=sys.stderr)
            return 1
        except ApiRefused as refused:
            print(f"pdh: not published: {refused.reason}", file=sys.stderr)
            return 1
        version = answer.published.version if answer.published else None
        print(f"published by the running agent as {version}")
        return 0

    async def run() -> str:
        publisher = Publisher(config, EventLog(config.events_file))
        await publisher.start()
        published = await publisher.publish_held()
        return f"published {published.rows:,} records as {published.version}"

    with lock:
        adopt_legacy(config, loaded.source)
        try:
            print(anyio.run(run, backend="asyncio"))
        except PublishRefused as exc:
            print(f"pdh: not published: {exc}", file=sys.stderr)
            return 1
    return 0


def _store_lock(loaded: Any) -> Any:
    """The running agent's own lock: whoever holds it is the one writer of the store."""
    from agent.instance import hub_lock

    return hub_lock(loaded.config)


def _holder_api(config: Any, holder: Any) -> HubApi:
    """The API of ``holder`` (the :class:`InstanceInfo` of the hub that holds this
    database's lock, which says where its API answers): calls to a hub with none, or an
    unknown holder, end in ApiDown."""
    url = holder.api_url if holder is not None else None
    if not url:
        raise ApiDown("the running hub has no API on this computer")
    return HubApi(url, config.api.token, timeout=30.0)


def register_status(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("status", parents=[common], help="show the hub's last known state")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_status)


def _live_status(config: Any) -> StatusSnapshot | None:
    """The running agent's status from its API on this machine, or None."""
    if not config.api.enabled:
        return None
    try:
        live = HubApi(base_url(config.api.host, config.api.port), config.api.token).status()
    except HubApiError:
        return None
    if live.db.path != str(config.db_path):
        return None  # another hub on that port, for another database
    return live


def cmd_status(args: argparse.Namespace) -> int:
    import json

    from core.state import status_from_disk
    from core.status_text import status_line

    loaded = _load(args)
    live = _live_status(loaded.config)
    data = live.model_dump(mode="json") if live is not None else status_from_disk(loaded.config)
    data["source"] = "running agent" if live is not None else "saved state (agent not reachable)"
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return 0
    check = data.get("last_check") or {}
    print(f"from:             {data['source']}")
    if live is not None:
        print(f"state:            {live.state} ({status_line(live, 'en')})")
    print(f"database:         {loaded.config.db_path}")
    print(f"auto mode:        {'on' if data.get('auto_mode', True) else 'off'}")
    print(f"last DB update:   {data.get('last_db_update') or '-'}")
    published = data.get("published")
    if published:
        forced = ", published anyway" if published.get("forced") else ""
        print(f"data served:      as of {published['as_of']}, {published['rows']:,} records "
              f"(snapshot {published['version']}{forced})")
    else:
        print("data served:      nothing published yet")
    held = data.get("held_back")
    if held:
        print(f"held back:        {held['at']}: {held['reason']}")
    fresh = data.get("freshness") or {}
    if fresh.get("message"):
        print(f"freshness:        {fresh['state']}: {fresh['message']}")
    elif fresh.get("expected_by"):
        print(f"next export by:   {fresh['expected_by']}")
    if check:
        healed = ", ".join(check.get("healed") or []) or "-"
        print(f"last index check: {check['at']} {check['result']} (healed: {healed})")
        if check.get("error"):
            print(f"  problem:        {check['error']}")
    else:
        print("last index check: never")
    if live is not None:
        print(f"next check:       {data.get('next_check') or '-'}")
        for name, server in data.get("servers", {}).items():
            detail = server.get("url") or server.get("error") or ""
            print(f"{name + ':':<18}{server['state']} {detail}".rstrip())
    return 0


def register_alert_test(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("alert-test", parents=[common],
                       help="send a test alert to every configured alert channel")
    p.set_defaults(handler=cmd_alert_test)


def cmd_alert_test(args: argparse.Namespace) -> int:
    """One test alert to each webhook and the email of ``[alerts]``: a line per channel,
    exit 0 if all got it, 1 if some did not, 2 if none is configured."""
    import anyio

    from core.alerts import channels_of, send_test
    from core.language import resolve_language

    loaded = _load(args)
    config = loaded.config
    if not channels_of(config.alerts):
        where = loaded.source or "the built-in defaults (no config file found)"
        print(f"pdh: no alert channel is configured in {where}; add an [[alerts.webhook]] "
              "with a url, or an [alerts.email] section", file=sys.stderr)
        return 2

    async def run() -> dict[str, str | None]:
        return await send_test(config.alerts, language=resolve_language(config.ui.language),
                               db=str(config.db_path))

    results = anyio.run(run, backend="asyncio")
    for name, error in results.items():
        print(f"{name}: {'ok' if error is None else error}")
    return 0 if all(error is None for error in results.values()) else 1
