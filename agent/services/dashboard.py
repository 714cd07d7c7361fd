"""The dashboard as a hub service: a supervised ``streamlit run dashboard/app.py`` child.

``install(hub)`` (listed in :data:`agent.hub_app.DEFAULT_INSTALLERS`) adds the service when
``dashboard.enabled``. Its state appears in the hub status as ``servers.dashboard``
(state, url, restarts, pid), its crashes and give-ups in the event log, and the tray or
API can restart, stop and start it through the hub's server commands.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from typing import Any

import anyio
from anyio.abc import TaskStatus

from core.config import Config
from core.eventlog import EventName
from core.hub import Hub
from core.net import base_url, reachable_host
from core.supervisor import ChildSpec, Supervisor
from dashboard.settings import config_env, streamlit_argv
from dashboard.visitors import exposure

log = logging.getLogger(__name__)

SERVER_NAME = "dashboard"
HEALTH_PATH = "/_stcore/health"
LOG_NAME = "dashboard.log"


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def dashboard_spec(config: Config, *, port: int | None = None) -> ChildSpec:
    """How to run and watch the dashboard for ``config`` (port 0: any free port)."""
    cfg = config.dashboard
    if port is None:
        port = cfg.port or _free_port(reachable_host(cfg.host))
    base = base_url(cfg.host, port)
    return ChildSpec(
        name=SERVER_NAME,
        argv=streamlit_argv(sys.executable, config, port=port),
        log_file=config.log_dir / LOG_NAME,
        health_url=base + HEALTH_PATH,
        url=base + "/",
        listen=(cfg.host, port),
        env=config_env(config, parent_pid=os.getpid(), stop_on_eof=True),
        start_timeout=cfg.start_timeout,
        restart_backoff=cfg.restart_backoff,
        restart_backoff_max=cfg.restart_backoff_max,
        stable_after=cfg.stable_after,
        max_restarts=cfg.max_restarts,
    )


async def dashboard_service(
    hub: Hub, *, task_status: TaskStatus[Supervisor] = anyio.TASK_STATUS_IGNORED
) -> None:
    """Supervise the dashboard child in the hub's task group until cancelled."""
    spec = dashboard_spec(hub.config)

    def on_event(name: EventName, **fields: Any) -> None:
        hub.events.emit(name, **fields)

    supervisor = Supervisor(
        spec,
        on_status=lambda status: hub.set_server(SERVER_NAME, status),
        on_event=on_event,
    )
    hub.register_server(SERVER_NAME, supervisor.status, supervisor.control)
    log.info("dashboard will serve %s", spec.url)
    exposed = exposure(hub.config)
    if exposed:
        log.warning("%s", exposed)
    await supervisor.run(task_status=task_status)


def install(hub: Hub) -> None:
    """Add the dashboard service to ``hub`` when the config enables it."""
    if hub.config.dashboard.enabled:
        hub.add_service(dashboard_service)
