"""Who is looking at the dashboard, and what they may do (no Streamlit here: the agent
imports it for its start-up line).

Everyone who can reach the port reads: data, KPIs, charts, CSV and the status panel. The
hub's controls (Check Now, Auto Mode, Publish anyway) are for a viewer on the hub's own
computer, a connection from ``[dashboard] local_addresses``, or for a viewer who entered
the control token (``[dashboard] admin_token``, else ``[api] token``) in this session.
Without either token, control is only on the hub's computer.

Who is on the other end is decided from the TCP peer of the page's connection, never
from a header the browser sets. ``X-Forwarded-For`` is believed only when the peer is
one of ``[dashboard] trusted_proxies``, and read from the right (each proxy appends the
address it saw), skipping the listed proxies; a listed proxy that sends none, or an entry
that is not an address, makes the viewer unknown, and unknown is remote.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from core.config import Config
from core.net import is_loopback, is_wildcard

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

BACKOFF_FIRST_S = 1.0  # after a wrong token or password, doubling per wrong try
BACKOFF_MAX_S = 30.0
THROTTLE_KEYS = 1024  # addresses remembered; the oldest are forgotten first


def parse_address(text: str | None) -> Address | None:
    """An IP address from a peer or header value ('::ffff:10.0.0.5' is 10.0.0.5;
    a zone, brackets and an IPv4 port are dropped); None when it is not one."""
    if not text:
        return None
    value = text.strip()
    if value.startswith("["):  # [v6] or [v6]:port
        value = value[1:].split("]", 1)[0]
    elif value.count(":") == 1:  # v4:port
        value = value.split(":", 1)[0]
    value = value.split("%", 1)[0]
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


class Networks:
    """A list of addresses and networks, as the config gives them."""

    def __init__(self, entries: Iterable[str]) -> None:
        self.entries = tuple(entries)
        self._nets: tuple[Network, ...] = tuple(
            ipaddress.ip_network(e, strict=False) for e in self.entries
        )

    def __contains__(self, addr: Address | None) -> bool:
        return addr is not None and any(
            addr.version == net.version and addr in net for net in self._nets
        )

    def __bool__(self) -> bool:
        return bool(self._nets)


@dataclass(frozen=True)
class Viewer:
    """One page session's viewer: where they connect from, as decided here."""

    peer: str | None  # the TCP peer of the connection
    address: str | None  # the viewer's address (behind a trusted proxy: from its header)
    local: bool  # on the hub's computer: the controls without a token
    via_proxy: bool = False  # the peer is a trusted proxy (its header was read)

    @property
    def shown(self) -> str:
        return self.address or "?"


def identify(peer: str | None, forwarded_for: Sequence[str], *, local: Networks,
             proxies: Networks) -> Viewer:
    """The viewer of a connection from ``peer`` that carried these X-Forwarded-For values."""
    peer_addr = parse_address(peer)
    if peer_addr is None:
        return Viewer(peer, None, False)
    if peer_addr not in proxies:
        return Viewer(peer, str(peer_addr), peer_addr in local)
    hops = [h.strip() for value in forwarded_for for h in value.split(",") if h.strip()]
    if not hops:
        return Viewer(peer, None, False, True)  # a proxy that does not say for whom
    client: Address | None = None
    for hop in reversed(hops):
        client = parse_address(hop)
        if client is None:
            return Viewer(peer, None, False, True)
        if client not in proxies:
            break
    # (every hop a listed proxy: the leftmost one is the viewer)
    assert client is not None
    return Viewer(peer, str(client), client in local, True)


def viewer_of(config: Config, peer: str | None, forwarded_for: Sequence[str]) -> Viewer:
    cfg = config.dashboard
    return identify(peer, forwarded_for, local=Networks(cfg.local_addresses),
                    proxies=Networks(cfg.trusted_proxies))


def control_token(config: Config) -> str:
    """What a viewer on another computer enters for the controls ('' : none may)."""
    return config.dashboard.admin_token or config.api.token


class Throttle:
    """A short back-off per (purpose, address) after a wrong token or password:
    ``BACKOFF_FIRST_S``, doubling with each wrong try in a row, at most ``BACKOFF_MAX_S``;
    a right one clears it. Shared by every session of the process (thread-safe), so a new
    tab does not start afresh."""

    def __init__(self, first: float = BACKOFF_FIRST_S, most: float = BACKOFF_MAX_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.first, self.most, self.clock = first, most, clock
        self._lock = threading.Lock()
        self._book: OrderedDict[tuple[str, str], tuple[int, float]] = OrderedDict()

    def wait(self, key: tuple[str, str]) -> float:
        """Seconds until ``key`` may try again (0: now)."""
        with self._lock:
            entry = self._book.get(key)
        return 0.0 if entry is None else max(0.0, entry[1] - self.clock())

    def failed(self, key: tuple[str, str]) -> float:
        """Note a wrong try; the seconds to wait before the next one."""
        with self._lock:
            count = self._book.pop(key, (0, 0.0))[0] + 1
            delay = min(self.first * 2 ** (count - 1), self.most)
            self._book[key] = (count, self.clock() + delay)
            while len(self._book) > THROTTLE_KEYS:
                self._book.popitem(last=False)
        return delay

    def succeeded(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._book.pop(key, None)


def exposure(config: Config) -> str | None:
    """The start-up line for a dashboard other computers can reach (None: loopback only)."""
    cfg = config.dashboard
    if is_loopback(cfg.host):
        return None
    where = "every interface" if is_wildcard(cfg.host) else cfg.host
    readers = (f"after the page password (${cfg.password_env})" if cfg.password_env
               else "with no password")
    if cfg.admin_token:
        controls = "remote-enabled with [dashboard] admin_token"
    elif config.api.token:
        controls = "remote-enabled with [api] token"
    else:
        controls = "only on this computer (no token set)"
    local = ", ".join(cfg.local_addresses) or "none"
    proxies = ", ".join(cfg.trusted_proxies) or "none"
    return (f"dashboard listens on {where} ({cfg.host}:{cfg.port}): anyone who can reach "
            f"it reads the data {readers}; controls {controls}; local viewers: {local}; "
            f"X-Forwarded-For believed from: {proxies}")
