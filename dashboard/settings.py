"""How the dashboard process finds its configuration.

The hub's supervisor (and ``pdh dashboard``) passes the whole resolved configuration as
JSON in ``PDH_DASHBOARD_CONFIG``, so the child sees exactly what the hub sees, ``--db``
included. Started by hand (``streamlit run dashboard/app.py``), it falls back to the
usual discovery (``$PDH_CONFIG``, ``./pdh.toml``, ...) and ``$PDH_DB``.
This module is the only place the dashboard reads the environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from core.config import Config, ConfigError, load_config
from core.net import base_url

ENV_DASHBOARD_CONFIG = "PDH_DASHBOARD_CONFIG"
ENV_DB = "PDH_DB"
ENV_PARENT_PID = "PDH_PARENT_PID"  # the dashboard ends itself when this process is gone
ENV_STOP_ON_EOF = "PDH_STOP_ON_EOF"  # "1": end cleanly when stdin (the starter's pipe) ends
# Seconds between the warmer's looks at the store's pointer (see dashboard.warm); 0: off.
ENV_WARM_INTERVAL = "PDH_DASHBOARD_WARM_INTERVAL"
WARM_INTERVAL_S = 0.5
APP_PATH = Path(__file__).resolve().parent / "app.py"
# uvicorn (Streamlit's server) believes X-Forwarded-For from the hosts listed here
# (default: loopback); the dashboard sets it empty and decides itself.
UVICORN_FORWARDED_ALLOW_IPS = "FORWARDED_ALLOW_IPS"


def config_env(config: Config, *, parent_pid: int | None = None,
               stop_on_eof: bool = False) -> dict[str, str]:
    """Environment variables that hand ``config`` (and the starter's pid) to a dashboard;
    ``stop_on_eof`` when the starter holds a pipe to the child's stdin and closes it to
    ask for a stop (the supervisor)."""
    env = {ENV_DASHBOARD_CONFIG: config.model_dump_json()}
    if parent_pid is not None:
        env[ENV_PARENT_PID] = str(parent_pid)
    if stop_on_eof:
        env[ENV_STOP_ON_EOF] = "1"
    return env


def stop_on_eof(environ: Mapping[str, str] | None = None) -> bool:
    return (os.environ if environ is None else environ).get(ENV_STOP_ON_EOF) == "1"


def parent_pid(environ: Mapping[str, str] | None = None) -> int | None:
    """The pid whose end should end this dashboard process, if one was given."""
    raw = (os.environ if environ is None else environ).get(ENV_PARENT_PID, "")
    return int(raw) if raw.isdigit() else None


def warm_interval(environ: Mapping[str, str] | None = None) -> float:
    """Seconds between the warmer's looks at the store's pointer; 0 turns warming off."""
    raw = (os.environ if environ is None else environ).get(ENV_WARM_INTERVAL, "")
    try:
        value = float(raw) if raw.strip() else WARM_INTERVAL_S
    except ValueError:
        return WARM_INTERVAL_S
    return value if value >= 0 else WARM_INTERVAL_S


def load_dashboard_config(environ: Mapping[str, str] | None = None) -> Config:
    """The configuration of this dashboard process; ConfigError says what is wrong."""
    env = os.environ if environ is None else environ
    raw = env.get(ENV_DASHBOARD_CONFIG)
    if raw:
        try:
            return Config.model_validate_json(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            raise ConfigError(
                f"${ENV_DASHBOARD_CONFIG}: key '{where}': {first.get('msg')}"
            ) from None
    db = env.get(ENV_DB)
    return load_config(None, db_override=Path(db) if db else None).config


def api_base_url(config: Config) -> str:
    """Where the hub's API answers this process (a wildcard host means this computer)."""
    return base_url(config.api.host, config.api.port)


def streamlit_argv(python: str, config: Config, *, port: int | None = None) -> list[str]:
    """The command line that serves the dashboard for ``config``.

    ``python -m dashboard.serve`` is ``streamlit run dashboard/app.py`` plus a watchdog
    on the starting process (see :mod:`dashboard.serve`).
    """
    cfg = config.dashboard
    return [
        python, "-m", "dashboard.serve",
        "--server.headless", "true",
        "--server.address", cfg.host,
        "--server.port", str(cfg.port if port is None else port),
        "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",  # no reloads in production; no watcher threads
        "--server.runOnSave", "false",
        "--client.toolbarMode", "viewer",
        "--theme.base", "light",
    ]
