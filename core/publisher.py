"""Publish snapshots: copy a settled export into the store, verify it, prepare it, warm
the readers' caches, and switch the pointer; or hold it back with the reason.

The hub owns one :class:`Publisher` and calls it from its worker (one cycle at a time);
"publish anyway" goes through the same lock. Blocking work runs in worker threads.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import anyio

from core.config import Config
from core.dbfile import DbLook
from core.errors import DbBusy, ExportRejected, HubError, StoreError
from core.eventlog import EventLog, EventName, utcnow
from core.queries import READERS
from core.snapshot import make_copy, newest_work_date, prepare
from core.store import HeldBack, Published, Store, snapshot_name

log = logging.getLogger(__name__)

# Awaited with the snapshot about to be published and its file (e.g. warm a cache).
BeforePublish = Callable[[Published, Path], Awaitable[None]]


class PublishRefused(HubError):
    """"Publish anyway" cannot be done; the message says why."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt to publish an export came to."""

    published: Published | None = None
    held_back: HeldBack | None = None
    store_error: str | None = None


def snapshot_version(source_version: str, moment: datetime) -> str:
    raw = f"{source_version}:{moment.isoformat()}".encode()
    return hashlib.blake2b(raw, digest_size=8).hexdigest()


class Publisher:
    def __init__(self, config: Config, events: EventLog) -> None:
        self.config = config
        self.events = events
        self.store = Store(config.store_dir, config.store.keep)
        self.lock = anyio.Lock()
        self._before: list[BeforePublish] = []
        self.published: Published | None = self.store.current()
        self.held_back: HeldBack | None = self.store.held_back()
        self.store_error: str | None = None

    def add_before_publish(self, hook: BeforePublish) -> None:
        self._before.append(hook)

    async def start(self) -> None:
        """Make the store ready (a copy left by a crash is removed)."""
        try:
            await anyio.to_thread.run_sync(self.store.prepare)
        except StoreError as exc:
            self.store_error = str(exc)
            log.error("%s", exc)

    async def publish_export(self, expected: DbLook, *, written: DbLook | None = None
                             ) -> Outcome:
        """Copy, verify, prepare and publish the settled ``expected`` export; ``written``
        is the look as the ERP left it (before an in-place heal), for ``as_of``.

        Raises DbChanged (settle again), DbMissing; everything about the export itself
        or the store ends in the :class:`Outcome`.
        """
        cfg = self.config
        as_of = _mtime(written or expected)
        last_rows = self.published.rows if self.published is not None else None
        dest = await anyio.to_thread.run_sync(self.store.new_copy_path, utcnow())
        try:
            copy = await anyio.to_thread.run_sync(lambda: make_copy(
                self.config.db_path, dest, cfg.heal, expected=expected,
                check_space=self.store.check_space, last_rows=last_rows,
                min_row_ratio=cfg.verify.min_row_ratio, as_of=as_of,
            ))
        except ExportRejected as exc:
            held = await self.hold(expected, exc.reason, copy=dest, as_of=as_of, rows=exc.rows,
                                   forceable=exc.forceable)
            return Outcome(held_back=held)
        except StoreError as exc:
            await anyio.to_thread.run_sync(lambda: dest.unlink(missing_ok=True))
            return self._store_failed(str(exc))
        except (DbBusy, sqlite3.Error, OSError) as exc:
            # Locked through the busy timeout, or an I/O error: try again at the next check.
            await anyio.to_thread.run_sync(lambda: dest.unlink(missing_ok=True))
            return self._store_failed(f"cannot copy {cfg.db_path.name}: {exc}")
        except BaseException:
            await anyio.to_thread.run_sync(lambda: dest.unlink(missing_ok=True))
            raise
        published = await self._switch(
            copy.path, source_version=copy.source.version, as_of=copy.as_of, rows=copy.rows,
            started=copy.seconds,
        )
        return Outcome(published=published)

    async def hold(self, export: DbLook, reason: str, *, copy: Path | None = None,
                   as_of: datetime | None = None, rows: int | None = None,
                   forceable: bool = False) -> HeldBack:
        """Hold ``export`` back (its copy, if one was made, kept in the store); readers
        keep the last good snapshot. The event is emitted once per reason."""
        held = HeldBack(at=utcnow(), reason=reason, version=export.version, as_of=as_of,
                        rows=rows, forceable=forceable)
        held = await anyio.to_thread.run_sync(self.store.hold, copy, held)
        if self.held_back is None or (self.held_back.reason, self.held_back.version) != (
                reason, export.version):
            self.events.emit(EventName.EXPORT_REJECTED, reason=reason, version=export.version,
                             forceable=held.forceable)
            log.error("export held back, still serving the last good data: %s", reason)
        self.held_back = held
        self.store_error = None
        return held

    async def publish_held(self) -> Published:
        """"Publish anyway": publish the held-back export; PublishRefused says why not."""
        held = self.held_back
        if held is None:
            raise PublishRefused("no export is held back: nothing to publish")
        if not held.forceable:
            raise PublishRefused(f"the held-back export cannot be published even by force: "
                                 f"{held.reason}")
        path = await anyio.to_thread.run_sync(self.store.take_held, held)
        if path is None:
            raise PublishRefused("the held-back copy is no longer in the store")
        started = time.perf_counter()
        try:
            await anyio.to_thread.run_sync(prepare, path, self.config.heal)
        except (OSError, HubError) as exc:
            raise PublishRefused(f"the held-back copy cannot be prepared: {exc}") from exc
        return await self._switch(
            path, source_version=held.version, as_of=held.as_of or held.at,
            rows=held.rows or 0, started=time.perf_counter() - started, forced=True,
        )

    async def _switch(self, path: Path, *, source_version: str, as_of: datetime, rows: int,
                      started: float, forced: bool = False) -> Published:
        t0 = time.perf_counter()
        newest = await anyio.to_thread.run_sync(newest_work_date, path)
        moment = utcnow()
        version = snapshot_version(source_version, moment)
        published = Published(
            version=version, source_version=source_version, as_of=as_of,
            published_at=moment, rows=rows, file=snapshot_name(version, moment), forced=forced,
            newest_work_date=newest,
        )
        try:
            placed = await anyio.to_thread.run_sync(self.store.place, path, published)
        except OSError as exc:
            await anyio.to_thread.run_sync(lambda: path.unlink(missing_ok=True))
            raise StoreError(f"cannot publish the snapshot in {self.store.root}: "
                             f"{exc.strerror or exc}") from None
        for hook in self._before:  # warming: readers' connections opened on `placed`
            try:
                await hook(published, placed)
            except Exception:
                log.exception("before-publish hook failed")
        try:
            await anyio.to_thread.run_sync(self.store.point, published)
        except OSError as exc:
            READERS.retire({self.store.path_of(self.published)} if self.published else set())
            await anyio.to_thread.run_sync(lambda: placed.unlink(missing_ok=True))
            raise StoreError(f"cannot publish the snapshot in {self.store.root}: "
                             f"{exc.strerror or exc}") from None
        previous = self.published
        self.published = published
        self.held_back = None
        self.store_error = None
        await anyio.to_thread.run_sync(self.store.clear_held)
        READERS.retire({self.store.path_of(published)})
        seconds = round(started + time.perf_counter() - t0, 3)
        self.events.emit(EventName.SNAPSHOT_PUBLISHED, version=version,
                         source_version=source_version, rows=rows, seconds=seconds,
                         forced=forced)
        log.info("snapshot %s published (%s rows, %.2f s%s); readers switched from %s",
                 version, f"{rows:,}", seconds, ", forced" if forced else "",
                 previous.version if previous else "nothing")
        return published

    def _store_failed(self, error: str) -> Outcome:
        if error != self.store_error:
            self.events.emit(EventName.PUBLISH_FAILED, error=error)
        self.store_error = error
        log.error("%s", error)
        return Outcome(store_error=error)


def _mtime(current: DbLook) -> datetime:
    return datetime.fromtimestamp(current.main.mtime_ns / 1e9, UTC)
