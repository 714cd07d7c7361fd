"""Stop requests (signals, console events): the first stops gracefully, a second forces."""

from __future__ import annotations

from agent.app import StopRequests


def test_the_second_request_forces_the_exit() -> None:
    graceful: list[str] = []
    forced: list[str] = []
    stop = StopRequests(lambda: graceful.append("stop"), force=lambda: forced.append("exit"))
    stop("SIGTERM")
    assert graceful == ["stop"] and forced == []
    stop("SIGINT")
    assert graceful == ["stop"] and forced == ["exit"]
