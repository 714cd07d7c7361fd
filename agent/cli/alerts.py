"""``pdh alert-test``: a test alert to every configured alert channel."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from agent.cli.support import load


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

    loaded = load(args)
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
