"""Who may do what: data reads are open to whoever can reach the port; control calls
(check now, auto mode) from another machine need ``Authorization: Bearer <api.token>``.
A server reachable from other machines with no token set refuses to start.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Awaitable, Callable

from fastapi import HTTPException, Request, status

from core.config import ApiConfig

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_loopback(host: str | None) -> bool:
    """True for 127.0.0.0/8, ::1 (also IPv4-mapped) and the name localhost."""
    if not host:
        return False
    name = host.strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        addr = ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped.is_loopback
    return addr.is_loopback


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
    if scheme.lower() != "bearer" or not secrets.compare_digest(
        given.strip().encode(), token.encode()
    ):
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
