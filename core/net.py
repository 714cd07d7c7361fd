"""Where a server the hub runs can be reached from this computer, given the host it binds;
what counts as this computer (:func:`is_loopback`); and how a secret is compared
(:func:`secret_matches`). The API and the dashboard use these alone.

A wildcard bind is reached on the loopback of its own family: ``""`` and ``0.0.0.0``
(every IPv4 address) on ``127.0.0.1``; ``::`` (every address) on ``::1``, since on
Windows a socket bound to ``::`` takes IPv6 only. Any other host is used as it is.
"""

from __future__ import annotations

import hmac
import ipaddress
import socket

__all__ = ["LOOPBACK_NAMES", "WILDCARD_HOSTS", "base_url", "is_loopback", "is_wildcard",
           "port_in_use", "reachable_host", "secret_matches", "url_host"]

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})

WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]"})


def is_wildcard(host: str) -> bool:
    """True for a bind to every interface (of one family or all)."""
    return host.strip() in WILDCARD_HOSTS


def reachable_host(host: str) -> str:
    """The address to connect to for a server bound to ``host`` (IPv6 unbracketed)."""
    host = host.strip()
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host in ("::", "[::]"):
        return "::1"
    if host.startswith("[") and host.endswith("]"):
        return host[1:-1]
    return host


def url_host(host: str) -> str:
    """:func:`reachable_host` as it goes in a URL (an IPv6 literal in brackets)."""
    reach = reachable_host(host)
    return f"[{reach}]" if ":" in reach else reach


def base_url(host: str, port: int, scheme: str = "http") -> str:
    """``scheme://host:port`` of a server bound to ``host`` on ``port``, from here."""
    return f"{scheme}://{url_host(host)}:{port}"


def port_in_use(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something already accepts connections at (host, port) (blocking)."""
    try:
        with socket.create_connection((reachable_host(host), port), timeout=timeout):
            return True
    except OSError:
        return False


def is_loopback(host: str | None) -> bool:
    """True for 127.0.0.0/8, ::1 (also IPv4-mapped, bracketed or with a zone) and the
    names of this computer's loopback (``localhost``)."""
    if not host:
        return False
    name = host.strip().strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        addr = ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped.is_loopback
    return addr.is_loopback


def secret_matches(given: str, expected: str) -> bool:
    """A token or password compared in constant time; an empty secret never matches."""
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())
