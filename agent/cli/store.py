"""``pdh check``, ``pdh publish`` and ``pdh status``: the snapshot store of one database,
once, in the foreground.

The store has one writer: whoever holds the hub's lock (:mod:`agent.instance`). When an
agent runs for this database, ``check`` and ``publish`` ask it through its API instead,
and ``status`` shows what it says (else the state it saved).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

from agent.cli.support import load
from agent.instance import AlreadyRunning, InstanceInfo, hub_lock
from core.config import Config, LoadedConfig
from core.hubapi import ApiDown, ApiRefused, HubApi, HubApiError
from core.net import base_url
from core.state import StatusSnapshot


def register_check(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "check", parents=[common], help="check (and heal) the database once, in the foreground"
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--no-heal", action="store_true", help="only inspect; change nothing")
    p.set_defaults(handler=cmd_check)


def cmd_check(args: argparse.Namespace) -> int:
    import json

    from core.checkonce import check_once

    loaded = load(args)

    def check() -> int:
        outcome = check_once(loaded.config, heal_it=not args.no_heal)
        if args.json:
            print(json.dumps(outcome.as_json(), ensure_ascii=False, indent=2))
        else:
            print(outcome.summary)
        return 0 if outcome.ok else 1

    # One writer per store: a running agent checks, heals and publishes.
    return _as_the_writer(
        loaded, check, ask=HubApi.check_now,
        answered=lambda asked: f"an agent is running for this database; asked it to check "
                               f"now (state {asked.state}); see pdh status",
        down="pdh: an agent is running for this database ({who}) and owns the snapshot "
             "store; its API did not answer, so use its Check Now (tray or dashboard)",
        refused="pdh: the running agent refused: ")


def register_publish(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("publish", parents=[common],
                       help="publish the export that verification held back")
    p.add_argument("--force", action="store_true", required=True,
                   help="publish it although it failed verification (required)")
    p.set_defaults(handler=cmd_publish)


def cmd_publish(args: argparse.Namespace) -> int:
    import anyio

    from core.eventlog import EventLog
    from core.publisher import Publisher, PublishRefused

    loaded = load(args)
    config = loaded.config

    async def run() -> str:
        publisher = Publisher(config, EventLog(config.events_file))
        await publisher.start()
        published = await publisher.publish_held()
        return f"published {published.rows:,} records as {published.version}"

    def publish() -> int:
        try:
            print(anyio.run(run, backend="asyncio"))
        except PublishRefused as exc:
            print(f"pdh: not published: {exc}", file=sys.stderr)
            return 1
        return 0

    return _as_the_writer(
        loaded, publish, ask=HubApi.publish_anyway,
        answered=lambda answer: "published by the running agent as "
                                f"{answer.published.version if answer.published else None}",
        down="pdh: an agent is running for this database, and its API did not answer; use "
             "Publish anyway in its tray menu or dashboard",
        refused="pdh: not published: ")


def _as_the_writer(loaded: LoadedConfig, write: Callable[[], int], *,
                   ask: Callable[[HubApi], StatusSnapshot],
                   answered: Callable[[StatusSnapshot], str], down: str,
                   refused: str) -> int:
    """``write()`` holding the hub's lock (whoever holds it is the one writer of the
    store); when an agent holds it, ``ask`` it through its API instead and print what it
    ``answered``, or ``down`` (``{who}``: the agent) or ``refused`` and its reason (exit 1).
    """
    from core.layout import adopt_legacy

    config = loaded.config
    lock = hub_lock(config)
    try:
        lock.acquire(InstanceInfo(pid=os.getpid(), db=str(config.db_path)), wait_info_s=0.5)
    except AlreadyRunning as running:
        try:
            answer = ask(_holder_api(config, running.info))
        except ApiDown:
            who = running.info.describe() if running.info else "pid unknown"
            print(down.format(who=who), file=sys.stderr)
            return 1
        except ApiRefused as exc:
            print(f"{refused}{exc.reason}", file=sys.stderr)
            return 1
        print(answered(answer))
        return 0
    with lock:
        adopt_legacy(config, loaded.source)
        return write()


def _holder_api(config: Config, holder: InstanceInfo | None) -> HubApi:
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


def _live_status(config: Config) -> StatusSnapshot | None:
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

    loaded = load(args)
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
