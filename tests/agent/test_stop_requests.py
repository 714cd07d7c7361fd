"""How the process is asked to stop (agent.stopping): the first request stops gracefully,
a second forces; signal handlers set and given back; a hub asked until it takes the stop."""

from __future__ import annotations

import os
import signal
import threading

from agent.stopping import STOP_SIGNALS, HubShutdown, StopHandlers, StopRequests


def test_the_second_request_forces_the_exit() -> None:
    graceful: list[str] = []
    forced: list[str] = []
    stop = StopRequests(lambda: graceful.append("stop"), force=lambda: forced.append("exit"))
    stop("SIGTERM")
    assert graceful == ["stop"] and forced == []
    stop("SIGINT")
    assert graceful == ["stop"] and forced == ["exit"]


def test_stop_handlers_turn_a_signal_into_a_request_and_give_the_old_handler_back() -> None:
    before = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    asked: list[str] = []
    with StopHandlers(asked.append) as handlers:
        os.kill(os.getpid(), signal.SIGTERM)
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # as pystray's gtk loop does
        handlers.reinstall()
        os.kill(os.getpid(), signal.SIGINT)
    assert asked == ["SIGTERM", "SIGINT"]
    assert {signum: signal.getsignal(signum) for signum in STOP_SIGNALS} == before


def test_stop_handlers_off_the_main_thread_leave_the_signals_alone() -> None:
    before = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    errors: list[BaseException] = []

    def aside() -> None:
        try:
            with StopHandlers(lambda why: None) as handlers:
                handlers.reinstall()
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    thread = threading.Thread(target=aside)
    thread.start()
    thread.join(5)
    assert errors == []
    assert {signum: signal.getsignal(signum) for signum in STOP_SIGNALS} == before


class _StartingHub:
    """A channel whose hub takes a shutdown only from its third ask (it is starting)."""

    def __init__(self) -> None:
        self.asks = 0

    def shutdown(self) -> bool:
        self.asks += 1
        return self.asks >= 3


def test_a_hub_shutdown_is_asked_again_until_the_hub_takes_it() -> None:
    hub = _StartingHub()
    stop = HubShutdown(hub)
    asking = threading.Thread(target=stop.keep_asking, kwargs={"interval": 0.01})
    asking.start()
    assert hub.asks == 0  # nothing until a stop is asked
    stop()
    asking.join(5)
    assert not asking.is_alive() and stop.taken.is_set() and hub.asks == 3
    stop.again()
    assert hub.asks == 3  # taken: not asked again
