"""The event log: lines in order, and never a disk write in the thread that emits."""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path

import pytest

from core.eventlog import EventLog, EventName, read_events


def test_events_are_written_in_order(tmp_path: Path) -> None:
    events = EventLog(tmp_path / "logs" / "events.jsonl")
    for n in range(200):
        events.emit(EventName.CHECK_OK, n=n)
    assert events.flush(10)
    assert [e["n"] for e in read_events(tmp_path / "logs" / "events.jsonl")] == list(range(200))


@pytest.mark.skipif(sys.platform == "win32", reason="needs a FIFO")
def test_emit_does_not_wait_for_the_disk(tmp_path: Path) -> None:
    """The file is a FIFO with no reader: opening it blocks, like a stalled disk or share.
    emit (called on the hub's event loop) must return at once all the same."""
    fifo = tmp_path / "events.jsonl"
    os.mkfifo(fifo)
    events = EventLog(fifo)
    emitted = threading.Event()

    def emit() -> None:
        events.emit(EventName.CHECK_OK, n=1)
        emitted.set()

    thread = threading.Thread(target=emit, daemon=True)
    thread.start()
    try:
        assert emitted.wait(2), "emit blocked on the event log's file"
        assert [e["event"] for e in events.recent()] == ["check_ok"]
    finally:
        # Unblock the writer (whichever thread it is in) and take its line.
        fd = os.open(fifo, os.O_RDONLY)
        with os.fdopen(fd, encoding="utf-8") as reader:
            line = reader.readline()
        thread.join(5)
    assert json.loads(line)["n"] == 1
    assert events.flush(5)
