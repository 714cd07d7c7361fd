"""Records reads queue for ``[api] record_readers`` threads; aggregates do not wait for
them. On a real uvicorn, with the real record query wrapped to see how many run at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from core import queries
from tests.api.conftest import V1, LiveServer, published_config

DAYS = [f"2026-03-{day:02d}" for day in range(1, 13)]


class Inside:
    """How many record reads run at once (and the most seen), around the real one."""

    def __init__(self, hold: Callable[[], None]) -> None:
        self.hold = hold
        self.now = 0
        self.most = 0
        self.lock = threading.Lock()
        self.real = queries.record_rows

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            self.hold()
            return self.real(*args, **kwargs)
        finally:
            with self.lock:
                self.now -= 1


@contextmanager
def serving(tmp_path: Path, db: Path, readers: int) -> Iterator[LiveServer]:
    config = published_config(tmp_path, db, api={"record_readers": readers})
    with LiveServer(create_app(config)) as server:
        yield server


def get_records(url: str, day: str) -> int:
    r = httpx.get(f"{url}{V1}/records", params={"date_from": day, "date_to": day},
                  timeout=30)
    return r.status_code


def test_one_record_reader_reads_one_page_at_a_time(
        tmp_path: Path, small_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each read holds its thread a while, so reads asked for at once would overlap.
    inside = Inside(hold=lambda: time.sleep(0.05))
    monkeypatch.setattr(queries, "record_rows", inside)
    with serving(tmp_path, small_db, readers=1) as server, \
            ThreadPoolExecutor(len(DAYS)) as pool:
        codes = list(pool.map(lambda day: get_records(server.url, day), DAYS))
    assert codes == [200] * len(DAYS)
    assert inside.most == 1


def test_record_readers_read_that_many_pages_at_once(
        tmp_path: Path, small_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each read waits until three are inside: only three lanes let them through.
    together = threading.Barrier(3, timeout=10)
    inside = Inside(hold=together.wait)
    monkeypatch.setattr(queries, "record_rows", inside)
    with serving(tmp_path, small_db, readers=3) as server, ThreadPoolExecutor(3) as pool:
        codes = list(pool.map(lambda day: get_records(server.url, day), DAYS[:3]))
    assert codes == [200] * 3
    assert inside.most == 3


def test_an_aggregate_does_not_wait_for_a_records_read(
        tmp_path: Path, small_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    inside = Inside(hold=lambda: release.wait(30))
    monkeypatch.setattr(queries, "record_rows", inside)
    with serving(tmp_path, small_db, readers=1) as server, ThreadPoolExecutor(1) as pool:
        try:
            records = pool.submit(get_records, server.url, DAYS[0])
            deadline = time.monotonic() + 10
            while inside.now == 0:
                assert time.monotonic() < deadline, "the records read never started"
                time.sleep(0.01)
            # The lane is taken; a summary is answered meanwhile.
            summary = httpx.get(f"{server.url}{V1}/summary/daily", timeout=10)
            assert summary.status_code == 200 and summary.json()["days"]
            assert not records.done()
        finally:
            release.set()
        assert records.result(timeout=10) == 200
