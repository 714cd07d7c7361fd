"""The data API as a hub service: uvicorn in the hub's task group (:mod:`api.server`)."""

from __future__ import annotations

from core.hub import Hub
from core.state import ServerState, ServerStatus


def install(hub: Hub) -> None:
    """The data API in the hub's task group. Imported only when enabled: FastAPI and
    uvicorn are about a third of the agent's memory."""
    if not hub.config.api.enabled:
        hub.register_server("api", ServerStatus(state=ServerState.DISABLED))
        return
    from api.server import install as install_server

    install_server(hub)
