"""The one wildcard-host rule, and port_in_use against real listening sockets."""

from __future__ import annotations

import socket

import pytest

from core.net import base_url, is_wildcard, port_in_use, reachable_host, url_host


@pytest.mark.parametrize(("host", "reach", "in_url"), [
    ("", "127.0.0.1", "127.0.0.1"),
    ("0.0.0.0", "127.0.0.1", "127.0.0.1"),
    ("::", "::1", "[::1]"),
    ("[::]", "::1", "[::1]"),
    ("hub-pc.example", "hub-pc.example", "hub-pc.example"),
    ("192.168.1.20", "192.168.1.20", "192.168.1.20"),
    ("fe80::1", "fe80::1", "[fe80::1]"),
    ("[::1]", "::1", "[::1]"),
])
def test_wildcards_map_to_the_loopback_of_their_family(host: str, reach: str,
                                                      in_url: str) -> None:
    assert reachable_host(host) == reach
    assert url_host(host) == in_url
    assert base_url(host, 8000) == f"http://{in_url}:8000"
    assert is_wildcard(host) == (host in ("", "0.0.0.0", "::", "[::]"))


def _ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.parametrize(("family", "bind", "asked"), [
    (socket.AF_INET, "0.0.0.0", "0.0.0.0"),
    (socket.AF_INET, "0.0.0.0", ""),
    pytest.param(socket.AF_INET6, "::", "::", marks=pytest.mark.skipif(
        not _ipv6(), reason="no IPv6 loopback here")),
])
def test_port_in_use_finds_a_wildcard_listener(family: int, bind: str, asked: str) -> None:
    with socket.socket(family, socket.SOCK_STREAM) as server:
        if family == socket.AF_INET6:
            server.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)  # as on Windows
        server.bind((bind, 0))
        server.listen()
        port = server.getsockname()[1]
        assert port_in_use(asked, port)
    assert not port_in_use(asked, port)
