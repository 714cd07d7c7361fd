"""``pdh dashboard``: serve the dashboard in the foreground (no hub, no supervisor).

For trying the page, or for running it under another service manager. The hub's own
dashboard (``pdh run``) is supervised instead; see :mod:`agent.services.dashboard`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import threading
from typing import Any

from agent.cli.support import add_server_command, load, server_overrides
from agent.stopping import StopHandlers
from core.net import base_url
from core.proctree import SIGKILL, SIGSTOP, group_options, signal_group


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    add_server_command(sub, common, "dashboard", "serve the dashboard in the foreground",
                       cmd_dashboard)


def cmd_dashboard(args: argparse.Namespace) -> int:
    from dashboard.settings import config_env, streamlit_argv
    from dashboard.visitors import exposure

    config = load(args, server_overrides(args, "dashboard")).config
    argv = streamlit_argv(sys.executable, config)
    env = {**os.environ, **config_env(config, parent_pid=os.getpid(), stop_on_eof=True)}
    where = base_url(config.dashboard.host, config.dashboard.port)
    print(f"dashboard for {config.db_path} on {where}/ (Ctrl+C stops it)", flush=True)
    exposed = exposure(config)
    if exposed:
        print(f"pdh: {exposed}", flush=True)
    try:
        # Its own process group: a stop (Ctrl+C, SIGTERM, a console event) comes to this
        # process alone, which passes it on once, as the hub's supervisor does.
        child = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, **group_options())
    except OSError as exc:
        print(f"pdh: cannot start streamlit: {exc}", file=sys.stderr)
        return 1
    stopping = threading.Event()
    with StopHandlers(lambda why: stopping.set()):
        while child.poll() is None and not stopping.wait(_POLL_S):
            pass
        if child.poll() is not None:
            return child.returncode
        return _stop(child)


_POLL_S = 0.1  # how often the foreground loop looks at the child and the stop request
STOP_TIMEOUT_S = 10.0  # for Streamlit's clean stop, before the last resort


def _stop(child: subprocess.Popen[bytes]) -> int:
    """Ask the child to stop (the end of its stdin; SIGTERM to its group, or
    CTRL_BREAK_EVENT on Windows); kill it only if it has not stopped in time."""
    if child.stdin is not None:
        with contextlib.suppress(OSError):
            child.stdin.close()
    signal_group(child, SIGSTOP)
    try:
        child.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        print(f"pdh: the dashboard did not stop within {STOP_TIMEOUT_S:g} s; killing it",
              file=sys.stderr, flush=True)
        signal_group(child, SIGKILL)
        child.wait()
        return 1
    return 0
