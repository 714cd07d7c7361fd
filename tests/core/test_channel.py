"""The channel from a real foreign thread into a real hub."""

from __future__ import annotations

import threading
from pathlib import Path

import anyio
import pytest

from core.channel import Channel
from core.state import HubState
from tests.conftest import await_for, make_config
from tests.core.hubtools import count, running_hub, until_at_rest, until_event

pytestmark = pytest.mark.anyio


async def test_commands_from_a_foreign_thread_and_latest_wins(
    tmp_path: Path, small_db: Path
) -> None:
    channel = Channel()
    config = make_config(tmp_path)
    async with running_hub(config, channel=channel) as hub:
        await until_event(hub, "indexes_healed")
        await until_at_rest(hub)
        results: dict[str, object] = {}

        def tray_thread() -> None:
            seq, snap = channel.latest()
            results["first"] = snap.state if snap else None
            # Posting never blocks, even many times in a row.
            results["posted"] = [channel.set_auto_mode(False), channel.check_now()]
            seq, snap = channel.wait_newer(seq, timeout=10)
            while snap.auto_mode:
                seq, snap = channel.wait_newer(seq, timeout=10)
            results["paused"] = snap.auto_mode
            results["thread"] = threading.current_thread().name

        t = threading.Thread(target=tray_thread, name="fake-tray")
        t.start()
        await anyio.to_thread.run_sync(t.join, 20)
        assert results["posted"] == [True, True]
        assert results["paused"] is False and results["thread"] == "fake-tray"
        await until_event(hub, "check_ok")
        await await_for(lambda: channel.latest()[1].state is HubState.PAUSED, 10)
        assert count(hub, "auto_mode_changed") == 1

        # Latest wins: a reader that was away sees only the newest snapshot.
        seq_before, _ = channel.latest()
        for _ in range(50):
            hub.set_auto_mode(True)
            hub.set_auto_mode(False)
        seq_after, snap = channel.latest()
        assert seq_after > seq_before and snap is not None and snap.auto_mode is False
    # Once the hub has stopped, posting says so instead of blocking or raising.
    assert channel.check_now() is False


def test_wait_newer_times_out() -> None:
    with pytest.raises(TimeoutError):
        Channel().wait_newer(0, timeout=0.05)


async def test_listener_errors_do_not_break_publishing(tmp_path: Path, small_db: Path) -> None:
    channel = Channel()
    got: list[HubState] = []

    def bad(_: object) -> None:
        raise RuntimeError("listener bug")

    channel.subscribe(bad)
    unsubscribe = channel.subscribe(lambda s: got.append(s.state))
    async with running_hub(make_config(tmp_path), channel=channel) as hub:
        await until_event(hub, "snapshot_published")
        await await_for(lambda: HubState.HEALTHY in got, message="a healthy snapshot")
    unsubscribe()
