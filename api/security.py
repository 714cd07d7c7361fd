"""Who may do what: data reads are open to whoever can reach the port; control calls
(check now, auto mode) from another machine need ``Authorization: Bearer <api.token>``.
A server reachable from other machines with no token set refuses to start.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import HTTPException, Request, status

from core.config import ApiConfig
from core.net import is_loopback, secret_matches

__all__ = ["check_control", "control_dependency", "is_loopback", "startup_problem"]

def startup_problem(api: ApiConfig) -> str | None:
    """Why the API must not start with this config, or None."""
    if not is_loopback(api.host) and not api.token:
        return (
            f"API host {api.host} is reachable from other machines but api.token is empty; "
            "set [api] token in the config, or use host = \"127.0.0.1\""
        )
    return None


def check_control(client_host: str | None, authorization: str | None, token: str) -> None:
    """Raise 401/403 unless a control call from ``client_host`` is allowed."""
    if is_loopback(client_host):
        return
    if not token:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "control from other machines is off: set [api] token in the hub's config",
        )
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not secret_matches(given.strip(), token):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "control from another machine needs the header Authorization: Bearer <api.token>",
            headers={"WWW-Authenticate": "Bearer"},
        )


def control_dependency(token: str) -> Callable[[Request], Awaitable[None]]:
    """A dependency that guards control routes with :func:`check_control`."""

    async def require_control(request: Request) -> None:
        host = request.client.host if request.client else None
        check_control(host, request.headers.get("authorization"), token)

    return require_control
