"""``pdh dashboard``: serve the dashboard in the foreground (no hub, no supervisor).

For trying the page, or for running it under another service manager. The hub's own
dashboard (``pdh run``) is supervised instead; see :mod:`agent.dashboard_service`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from typing import Any

from agent.cli_support import add_server_command, load, server_overrides
from core.net import base_url


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    add_server_command(sub, common, "dashboard", "serve the dashboard in the foreground",
                       cmd_dashboard)


def cmd_dashboard(args: argparse.Namespace) -> int:
    from dashboard.settings import config_env, streamlit_argv
    from dashboard.viewer import exposure

    config = load(args, server_overrides(args, "dashboard")).config
    argv = streamlit_argv(sys.executable, config)
    env = {**os.environ, **config_env(config, parent_pid=os.getpid())}
    where = base_url(config.dashboard.host, config.dashboard.port)
    print(f"dashboard for {config.db_path} on {where}/ (Ctrl+C stops it)", flush=True)
    exposed = exposure(config)
    if exposed:
        print(f"pdh: {exposed}", flush=True)
    try:
        child = subprocess.Popen(argv, env=env)
    except OSError as exc:
        print(f"pdh: cannot start streamlit: {exc}", file=sys.stderr)
        return 1
    try:
        return child.wait()
    except KeyboardInterrupt:
        # Ctrl+C reached the child too (same process group): let it stop cleanly.
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        return 130
