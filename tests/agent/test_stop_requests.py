"""Stop requests (signals, console events): the first stops gracefully, a second forces."""

from __future__ import annotations

import threading

from agent.app import StopRequests


def test_the_second_request_forces_the_exit() -> None:
    graceful: list[str] = []
    forced: list[str] = []
    stop = StopRequests(lambda: graceful.append("stop"), force=lambda: forced.append("exit"))
    stop("SIGTERM")
    assert graceful == ["stop"] and forced == []
    stop("SIGINT")
    assert graceful == ["stop"] and forced == ["exit"]


def test_requests_from_many_threads_stop_once() -> None:
    graceful: list[str] = []
    forced: list[str] = []
    stop = StopRequests(lambda: graceful.append("stop"), force=lambda: forced.append("exit"))
    threads = [threading.Thread(target=stop, args=("CTRL_C_EVENT",)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert graceful == ["stop"] and len(forced) == 7
