"""The test helpers themselves: a wait that times out says what it waited for."""

from __future__ import annotations

import pytest

from tests.conftest import await_for, wait_for


@pytest.mark.anyio
async def test_await_for_says_what_it_waited_for() -> None:
    with pytest.raises(AssertionError, match="waiting for the green icon"):
        await await_for(lambda: False, 0.1, message="the green icon")


def test_wait_for_says_what_it_waited_for() -> None:
    with pytest.raises(AssertionError, match="waiting for the green icon"):
        wait_for(lambda: False, 0.1, message="the green icon")
