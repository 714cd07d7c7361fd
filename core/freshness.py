"""Export freshness: is the ERP still exporting, and is the data in the exports recent?

An export job that silently stops leaves every dashboard showing yesterday's numbers as
if all were well. With ``[freshness] expect_every`` the hub expects a new published
export that often (plus ``grace``); with ``max_data_age`` it also expects the newest
``work_date`` in the published data to be that recent. Both are judged from the
published snapshot alone (its ``published_at`` and ``newest_work_date``), which the
store keeps, so a restart keeps the clock. :class:`FreshnessWatch` is the hub's judge.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Literal

import anyio
from pydantic import BaseModel

from core.config import FreshnessConfig
from core.eventlog import EventLog, EventName, utcnow
from core.store import Published

log = logging.getLogger(__name__)

FreshnessState = Literal["ok", "overdue", "stale_data", "unknown"]


class Freshness(BaseModel):
    """What ``/hub/status`` says about the exports' freshness."""

    state: FreshnessState = "unknown"
    last_export_at: datetime | None = None
    expected_by: datetime | None = None
    newest_work_date: date | None = None
    message: str | None = None

    @property
    def problem(self) -> bool:
        return self.state in ("overdue", "stale_data")


def _span(seconds: float) -> str:
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.0f} days"
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.0f} h"
    if seconds >= 120:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


def assess(cfg: FreshnessConfig, published: Published | None, now: datetime) -> Freshness:
    """Freshness at ``now`` of the ``published`` snapshot under ``cfg``."""
    if published is None:
        return Freshness()
    last = published.published_at
    newest = published.newest_work_date
    after = cfg.overdue_after
    expected_by = last + timedelta(seconds=after) if after is not None else None
    base = Freshness(state="ok", last_export_at=last, expected_by=expected_by,
                     newest_work_date=newest)
    if expected_by is not None and now > expected_by:
        return base.model_copy(update={"state": "overdue", "message": (
            f"ERP export overdue: last export {_span((now - last).total_seconds())} ago "
            f"(expected every {_span(cfg.expect_every)})")})
    stale_at = stale_from(cfg, newest)
    if stale_at is not None and now > stale_at:
        days = (now.date() - newest).days if newest else 0
        return base.model_copy(update={"state": "stale_data", "message": (
            f"newest production date is {newest}, {days} day{'s' if days != 1 else ''} old")})
    return base


def stale_from(cfg: FreshnessConfig, newest: date | None) -> datetime | None:
    """When data whose newest work_date is ``newest`` becomes too old (None: never)."""
    if not cfg.max_data_age or newest is None:
        return None
    start = datetime(newest.year, newest.month, newest.day, tzinfo=UTC)
    return start + timedelta(seconds=cfg.max_data_age)


def next_change(cfg: FreshnessConfig, published: Published | None,
                now: datetime) -> datetime | None:
    """The next moment the assessment can change with no new publish (None: never)."""
    if published is None:
        return None
    moments = [m for m in (assess(cfg, published, now).expected_by,
                           stale_from(cfg, published.newest_work_date)) if m is not None]
    future = [m for m in moments if m > now]
    return min(future) if future else None


class FreshnessWatch:
    """The hub's judge of freshness: judges again after each publish (:meth:`changed`)
    and whenever the judgement can change by itself (an export falling due, data growing
    old); an overdue export or old data, and their end, become events."""

    def __init__(self, cfg: FreshnessConfig, published: Callable[[], Published | None],
                 events: EventLog, on_change: Callable[[], None]) -> None:
        self.cfg = cfg
        self.current = Freshness()
        self._published = published
        self._events = events
        self._on_change = on_change
        self._wake: anyio.Event | None = None  # made in run(): it belongs to the loop

    def changed(self) -> None:
        """A publish: judge again now."""
        if self._wake is not None:
            self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake = anyio.Event()
            now = utcnow()
            self.judge(now)
            moment = next_change(self.cfg, self._published(), now)
            delay = math.inf if moment is None else (moment - now).total_seconds() + 0.01
            with anyio.move_on_after(delay):
                await self._wake.wait()

    def judge(self, now: datetime) -> None:
        before, after = self.current, assess(self.cfg, self._published(), now)
        self.current = after
        if after.problem and (not before.problem or before.state != after.state):
            self._events.emit(EventName.EXPORT_OVERDUE, state=after.state,
                              message=after.message, last_export_at=after.last_export_at)
            log.warning("%s", after.message)
        elif before.problem and not after.problem:
            self._events.emit(EventName.EXPORT_RESUMED, was=before.state)
            log.info("ERP exports are fresh again (%s cleared)", before.state)
        if after != before:
            self._on_change()
