"""What every ``pdh`` command shares: exit codes, the usage error, the common options
and config loading. A leaf: it imports nothing of ``agent``, so any command module can
import it at the top."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from core.config import Config, LoadedConfig, Override, load_config

EXIT_OK = 0
EXIT_PROBLEM = 1
EXIT_USAGE = 2

Handler = Callable[[argparse.Namespace], int]
# ``register(subparsers, common)`` adds one subcommand; main.py lists them.
Register = Callable[[Any, argparse.ArgumentParser], None]


class UsageError(Exception):
    """A command line that cannot be run as given (exit 2)."""


def common_options() -> argparse.ArgumentParser:
    """``--config`` and ``--db``, which every command takes."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, metavar="FILE", help="config file (TOML)")
    common.add_argument("--db", type=Path, metavar="PATH", help="database path (overrides config)")
    return common


def load(args: argparse.Namespace, overrides: Sequence[Override] = ()) -> LoadedConfig:
    """The configuration for a command, built once with ``--config``, ``--db`` and the
    command's own ``overrides`` (``--host``, ``--port``, ...)."""
    return load_config(args.config, db_override=args.db, overrides=overrides)


def server_overrides(args: argparse.Namespace, section: str) -> list[Override]:
    """``--host`` and ``--port`` of ``pdh api`` / ``pdh dashboard`` for ``[section]``;
    the config's own rules check them (one range for both)."""
    out: list[Override] = []
    if args.host is not None:
        out.append(Override(f"{section}.host", args.host, "--host"))
    if args.port is not None:
        out.append(Override(f"{section}.port", args.port, "--port"))
    return out


def add_server_command(sub: Any, common: argparse.ArgumentParser, section: str, help: str,
                       handler: Handler) -> argparse.ArgumentParser:
    """The subcommand of a server (``pdh api``, ``pdh dashboard``) with ``--host`` and
    ``--port``; their defaults and range are ``[section]``'s in the config model."""
    p: argparse.ArgumentParser = sub.add_parser(section, parents=[common], help=help)
    fields = Config.model_fields[section].annotation.model_fields  # type: ignore[union-attr]
    host, port = fields["host"].default, fields["port"].default
    p.add_argument("--host", help=f"address to listen on (default: [{section}] host, {host})")
    p.add_argument("--port", type=int,
                   help=f"port, 0..65535 (default: [{section}] port, {port})")
    p.set_defaults(handler=handler)
    return p
