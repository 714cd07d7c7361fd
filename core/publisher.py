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
from core.snapshot import finish_copy, newest_work_date, prepare, ready_copy, take_copy
from core.store import HeldBack, Published, snapshot_name, store_of

log = logging.getLogger(__name__)

# Awaited with the snapshot about to be published and its file (e.g. warm a cache), beside
# the copy's last check: nothing is served from it until it has passed.
BeforePublish = Callable[[Published, Path], Awaitable[None]]
# Awaited with a snapshot just published and its file (e.g. warm what can wait).
AfterPublish = Callable[[Published, Path], Awaitable[None]]


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
    def __init__(self, config: Config, events: EventLog,
                 stop: Callable[[], None] | None = None) -> None:
        self.config = config
        self.events = events
        # Called in the copy every few MB; raises (Interrupted) when the hub stops.
        self._stop = stop or (lambda: None)
        self.store = store_of(config)
        self.lock = anyio.Lock()
        self._before: list[BeforePublish] = []
        self._after: list[AfterPublish] = []
        self.published: Published | None = self.store.current()
        self.held_back: HeldBack | None = self.store.held_back()
        self.store_error: str | None = None

    def add_before_publish(self, hook: BeforePublish) -> None:
        self._before.append(hook)

    def add_after_publish(self, hook: AfterPublish) -> None:
        self._after.append(hook)

    async def start(self) -> None:
        """Make the store ready (a copy left by a crash is removed)."""
        try:
            await anyio.to_thread.run_sync(self.store.prepare)
        except StoreError as exc:
            self.store_error = str(exc)
            log.error("%s", exc)

    async def publish_export(self, expected: DbLook, *, written: DbLook | None = None
                             ) -> Outcome:
        """Copy, verify and prepare the settled ``expected`` export, warm the readers'
        caches on it while its last check runs, and publish it; ``written`` is the look
        as the ERP left it (before an in-place heal), for ``as_of``.

        Raises DbChanged (settle again), DbMissing; everything about the export itself
        or the store ends in the :class:`Outcome`.
        """
        cfg = self.config
        started = time.perf_counter()
        as_of = _mtime(written or expected)
        last_rows = self.published.rows if self.published is not None else None
        try:
            dest = await anyio.to_thread.run_sync(self.store.new_copy_path, utcnow())
        except StoreError as exc:  # another database's store, a folder that cannot be made
            return self._store_failed(str(exc))
        try:
            taken = await anyio.to_thread.run_sync(lambda: take_copy(
                cfg.db_path, dest, cfg.heal, expected=expected,
                check_space=self.store.check_space, as_of=as_of, stop=self._stop,
            ))
            rows = await anyio.to_thread.run_sync(lambda: ready_copy(
                dest, cfg.heal, last_rows=last_rows, min_row_ratio=cfg.verify.min_row_ratio,
            ))
            candidate = await self._candidate(dest, source_version=taken.source.version,
                                              as_of=taken.as_of, rows=rows)
            await self._warm(candidate, dest, check=True)
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
        published = await self._switch(dest, candidate, started=started)
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
                             forceable=held.forceable, served=self.published is not None)
            log.error("export held back (%s): %s", self.serving(), reason)
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
        candidate = await self._candidate(path, source_version=held.version,
                                          as_of=held.as_of or held.at, rows=held.rows or 0,
                                          forced=True)
        await self._warm(candidate, path, check=False)
        return await self._switch(path, candidate, started=started)

    async def _candidate(self, path: Path, *, source_version: str, as_of: datetime,
                         rows: int, forced: bool = False) -> Published:
        """The record the copy at ``path`` will be published under (its version and file
        name fixed now, ``published_at`` at the switch)."""
        newest = await anyio.to_thread.run_sync(newest_work_date, path)
        moment = utcnow()
        version = snapshot_version(source_version, moment)
        return Published(
            version=version, source_version=source_version, as_of=as_of,
            published_at=moment, rows=rows, file=snapshot_name(version, moment), forced=forced,
            newest_work_date=newest,
        )

    async def _warm(self, candidate: Published, path: Path, *, check: bool) -> None:
        """Run the before-publish hooks on the copy at ``path``; with ``check``, beside
        the copy's last check and sync (:func:`finish_copy`), whose error is raised once
        all have ended. The readers' connections to ``path`` are closed afterwards (it is
        renamed next)."""
        failed: list[Exception] = []

        async def finish() -> None:
            try:
                await anyio.to_thread.run_sync(finish_copy, path)
            except Exception as exc:  # noqa: BLE001 - raised below, after the hooks
                failed.append(exc)

        try:
            async with anyio.create_task_group() as tg:
                if check:
                    tg.start_soon(finish)
                for hook in self._before:
                    tg.start_soon(self._run_hook, hook, candidate, path, "before")
        finally:
            await anyio.to_thread.run_sync(READERS.forget, path)
        if failed:
            raise failed[0]

    @staticmethod
    async def _run_hook(hook: BeforePublish | AfterPublish, published: Published, path: Path,
                        when: str) -> None:
        try:
            await hook(published, path)
        except Exception:
            log.exception("%s-publish hook failed", when)

    async def _switch(self, path: Path, candidate: Published, *, started: float) -> Published:
        """Move the checked, warmed copy to its name and point readers at it."""
        try:
            placed = await anyio.to_thread.run_sync(self.store.place, path, candidate)
        except OSError as exc:
            await anyio.to_thread.run_sync(lambda: path.unlink(missing_ok=True))
            raise StoreError(f"cannot publish the snapshot in {self.store.root}: "
                             f"{exc.strerror or exc}") from None
        published = candidate.model_copy(update={"published_at": utcnow()})
        try:
            await anyio.to_thread.run_sync(self.store.point, published)
        except OSError as exc:
            await anyio.to_thread.run_sync(lambda: placed.unlink(missing_ok=True))
            raise StoreError(f"cannot publish the snapshot in {self.store.root}: "
                             f"{exc.strerror or exc}") from None
        previous = self.published
        self.published = published
        self.held_back = None
        self.store_error = None
        await anyio.to_thread.run_sync(self.store.clear_held)
        READERS.retire({self.store.path_of(published)})
        seconds = round(time.perf_counter() - started, 3)
        version, forced = published.version, published.forced
        self.events.emit(EventName.SNAPSHOT_PUBLISHED, version=version,
                         source_version=published.source_version, rows=published.rows,
                         seconds=seconds, forced=forced)
        log.info("snapshot %s published (%s rows, %.2f s%s); readers switched from %s",
                 version, f"{published.rows:,}", seconds, ", forced" if forced else "",
                 previous.version if previous else "nothing")
        for hook in self._after:
            await self._run_hook(hook, published, placed, "after")
        return published

    def serving(self) -> str:
        """What readers get meanwhile, in words: this database's last good data, or none."""
        if self.published is not None:
            return "still serving the last good data"
        return "nothing is served yet"

    def _store_failed(self, error: str) -> Outcome:
        error = f"{error}; {self.serving()}"
        if error != self.store_error:
            self.events.emit(EventName.PUBLISH_FAILED, error=error)
        self.store_error = error
        log.error("%s", error)
        return Outcome(store_error=error)


def _mtime(current: DbLook) -> datetime:
    return datetime.fromtimestamp(current.main.mtime_ns / 1e9, UTC)
