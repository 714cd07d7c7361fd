"""The hub's own bookkeeping: commands never dropped, the status never lying about a
settle, saves that cannot persist an older state."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import anyio
import pytest

from core import saver as saver_module
from core.channel import Command, CommandKind
from core.erp.erpsim import ExportMode, simulate_export
from core.hub import Hub
from core.state import Activity, StatusSnapshot, load_state
from tests.conftest import await_for, make_config, make_db
from tests.core.hubtools import running_hub, until_at_rest

pytestmark = pytest.mark.anyio


async def test_a_burst_of_commands_never_drops_the_shutdown(tmp_path: Path) -> None:
    """Hundreds of commands posted while the loop is busy, then Quit: the hub stops."""
    config = make_config(tmp_path, db=make_db(tmp_path / "production_analysis.db", rows=200))
    hub = Hub(config)
    accepted: list[bool] = []

    def burst() -> None:
        accepted.extend(hub.channel.post(Command(CommandKind.CHECK_NOW)) for _ in range(300))
        accepted.append(hub.channel.shutdown())

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            await tg.start(hub.run)
            # Block the loop while another thread posts, as a long callback would.
            poster = threading.Thread(target=burst)
            poster.start()
            poster.join()
    assert all(accepted) and len(accepted) == 301


async def test_a_change_during_the_copy_shows_settling_not_idle(tmp_path: Path) -> None:
    """The ERP replaces the file while the hub copies it: the next state after settling
    again is never idle until the new export has been settled and published."""
    db = make_db(tmp_path / "data" / "production_analysis.db", rows=500)
    config = make_config(tmp_path, db=db, watch={"settle_interval": 0.1, "settle_checks": 2})
    seen: list[tuple[Activity, str]] = []
    replaced = False

    async with running_hub(config) as hub:
        await until_at_rest(hub)
        real = hub.publisher.publish_export

        async def replace_then_copy(*args: Any, **kwargs: Any) -> Any:
            nonlocal replaced
            if not replaced:
                replaced = True
                await anyio.to_thread.run_sync(lambda: simulate_export(
                    db, ExportMode.REPLACE, rows=300, seconds=0.0, seed=5, days=5))
            return await real(*args, **kwargs)

        hub.publisher.publish_export = replace_then_copy  # type: ignore[method-assign]

        def record(snapshot: StatusSnapshot) -> None:
            seen.append((snapshot.activity, snapshot.message))

        hub.channel.subscribe(record)
        await anyio.to_thread.run_sync(lambda: simulate_export(
            db, ExportMode.REPLACE, rows=400, seconds=0.0, seed=4, days=5))
        await await_for(lambda: replaced and hub.publisher.published is not None
                        and hub.publisher.published.rows == 300, 30,
                        message="the second export published")
    # The copy saw the change: from copying straight back to settling.
    moments = [i for i in range(1, len(seen)) if seen[i][0] is Activity.SETTLING
               and seen[i - 1] == (Activity.CHECKING, "copying and verifying the export")]
    assert moments, "the copy never saw the change"
    after = seen[moments[0] + 1]
    assert after[0] is not Activity.IDLE, seen[moments[0]:moments[0] + 3]


async def test_saves_never_persist_an_older_state(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The first save is slow (a busy disk); a later one must not be overwritten by it."""
    config = make_config(tmp_path, db=make_db(tmp_path / "production_analysis.db", rows=200))
    real_save = saver_module.save_state
    first_done, second_done = threading.Event(), threading.Event()
    calls: list[bool | None] = []

    def slow_first_save(path: Path, state: Any) -> None:
        calls.append(state.auto_mode)
        if len(calls) == 1:
            second_done.wait(1.5)  # a save that overtakes this one would finish meanwhile
            real_save(path, state)
            first_done.set()
        else:
            real_save(path, state)
            second_done.set()

    async with running_hub(config) as hub:
        await until_at_rest(hub)
        monkeypatch.setattr(saver_module, "save_state", slow_first_save)
        hub.set_auto_mode(False)
        await await_for(lambda: calls, 5, message="the first save to start")
        hub.set_auto_mode(True)
        await await_for(lambda: first_done.is_set() and second_done.is_set(), 10,
                        message="both saves")
        assert load_state(config.state_file).auto_mode is True, calls
