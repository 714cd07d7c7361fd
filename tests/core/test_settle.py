"""Settle counts unchanged looks; any change restarts the count. The looker is scripted
here (the true edge); the hub tests cover real files."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.dbfile import DbLook, FileStat
from core.settle import settle

pytestmark = pytest.mark.anyio


def fake_look(size: int, journal: bool = False) -> DbLook:
    main = FileStat(True, 1, 2, size, 100)
    return DbLook(Path("x.db"), main, FileStat(journal), FileStat(False), FileStat(False),
                  1, True)


async def test_counts_unchanged_looks_and_restarts_on_change() -> None:
    script = [fake_look(1), fake_look(2), fake_look(2), fake_look(2, journal=True),
              fake_look(3), fake_look(3), fake_look(3), fake_look(3)]
    seen: list[DbLook] = []
    calls: list[int] = []

    def looker(path: Path) -> DbLook:
        current = script.pop(0)
        seen.append(current)
        return current

    async def still_writing(current: DbLook, changes: int) -> None:
        calls.append(changes)

    result = await settle(Path("x.db"), interval=0.001, checks=3, looker=looker,
                          on_still_writing=still_writing)
    assert result == fake_look(3)
    assert script == []  # all 8 looks taken: 1->2, 2=2, 2->journal, journal->3, 3=3=3=3
    assert calls == [1, 2, 3]
