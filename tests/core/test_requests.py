"""Requests for a check cycle merge: many asks make one cycle, Check Now's force counts
only with a check, and a worker waiting is woken by an ask."""

from __future__ import annotations

import anyio
import pytest

from core.requests import CycleRequests, Wanted


def test_asks_merge_into_one_cycle() -> None:
    requests = CycleRequests()
    assert requests.take() is None and not requests.pending
    requests.ask()  # a file event
    requests.ask(check=True)  # the periodic check
    assert requests.pending
    assert requests.take() == Wanted(check=True, forced=False)
    assert requests.take() is None  # taken: nothing left


def test_force_counts_only_with_a_check_and_survives_later_asks() -> None:
    requests = CycleRequests()
    requests.ask(forced=True)  # no check asked: nothing to force
    assert requests.take() == Wanted(check=False, forced=False)
    requests.ask(check=True, forced=True)  # Check Now
    requests.ask(check=True)  # then the periodic check, before the worker took it
    assert requests.take() == Wanted(check=True, forced=True)


@pytest.mark.anyio
async def test_a_waiting_worker_is_woken_by_an_ask() -> None:
    requests = CycleRequests()
    taken: list[Wanted] = []

    async def worker() -> None:
        taken.append(await requests.next())

    async with anyio.create_task_group() as tg:
        tg.start_soon(worker)
        await anyio.wait_all_tasks_blocked()
        assert taken == []
        requests.ask(check=True)
    assert taken == [Wanted(check=True, forced=False)]
