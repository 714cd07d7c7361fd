"""The hub: owns one root task group, the state and the command inbox, and runs the
cycle: watch -> settle -> heal in place -> snapshot, verify, publish -> state + event.

Everything here runs on the hub's event loop (asyncio backend); blocking work (stat,
sqlite3) goes through ``anyio.to_thread``. Other threads talk to it only through the
:class:`~core.channel.Channel`; code on the loop (the API) calls its methods directly.

At about 640 lines this is the one large module, on purpose: one state machine whose
steps (look, settle, heal, snapshot) and commands share its state and its lock, which a
split of the class would spread over several files. What needs none of that state lives
beside it: publishing (core.publisher), settling (core.settle), healing (core.heal), the
state file and its background saves (core.state, core.saver), merging the requests for a
cycle (core.requests), judging freshness (core.freshness.FreshnessWatch), alerts
(core.alerts.policy).
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskStatus

from core.alerts import Dispatcher, channels_of
from core.alerts.policy import run_alerts
from core.channel import Channel, Command, CommandKind
from core.config import Config
from core.dbfile import DbLook, look
from core.errors import (
    DbBusy,
    DbChanged,
    DbMissing,
    DbReadOnly,
    DbUnreadable,
    Interrupted,
    StoreError,
)
from core.eventlog import EventLog, EventName, utcnow
from core.freshness import FreshnessWatch
from core.heal import HealReport, check_readable, heal
from core.language import resolve_language
from core.publisher import AfterPublish, BeforePublish, Outcome, Publisher, PublishRefused
from core.requests import CycleRequests
from core.saver import StateSaver
from core.settle import settle
from core.sqlite import Interrupter
from core.state import (
    Activity,
    CheckResult,
    DbProblem,
    DbStatus,
    PersistedState,
    Problem,
    ServerStatus,
    StatusSnapshot,
    Step,
    derive_state,
    load_state,
)
from core.status_text import status_line
from core.watcher import watch_db

log = logging.getLogger(__name__)

# A check that finds the database locked (through every busy retry) is repeated this many
# times in a row before it is reported as failed: a long ERP transaction is a write.
BUSY_CHECKS_BEFORE_FAILING = 3

# A service runs in the hub's task group: ``await tg.start(service, hub)``.
Service = Callable[..., Coroutine[Any, Any, None]]
ServerCommand = Callable[[CommandKind], Coroutine[Any, Any, None]]


class Hub:
    """The core of the product, with no UI."""

    def __init__(
        self,
        config: Config,
        *,
        channel: Channel | None = None,
        events: EventLog | None = None,
        persist: bool = True,
    ) -> None:
        self.config = config
        self.path: Path = config.db_path
        self.channel = channel or Channel()
        self.events = events or EventLog(config.events_file)
        saved = load_state(config.state_file) if persist else PersistedState()
        self.events.preload(saved.recent_events)
        self._auto_mode = config.watch.auto_mode if saved.auto_mode is None else saved.auto_mode
        self._known_version = saved.known_version
        self._last_db_update = saved.last_db_update
        self._last_check = saved.last_check
        self._next_check: datetime | None = None
        self._last_look: DbLook | None = None
        # "Checking" until the first look is done: never green before anything was seen.
        self._activity = Activity.CHECKING
        self._step = Step.STARTING
        self._update_pending = False
        self._problem: Problem | None = None  # of the ERP's file
        self._fault: str | None = None  # an unexpected error ended the last cycle
        self._line = ""  # the status line last published (logged when it changes)
        self._servers: dict[str, ServerStatus] = {}
        self._server_commands: dict[str, ServerCommand] = {}
        self._services: list[Service] = []
        # Ends the SQLite work of a check, and a copy, in its thread when the hub stops (a
        # heal waiting for the ERP's lock would otherwise hold the shutdown for minutes).
        self._interrupter = Interrupter()
        self.publisher = Publisher(config, self.events, stop=self._interrupter.check)
        self._freshness = FreshnessWatch(config.freshness, lambda: self.publisher.published,
                                         self.events, self._publish)
        self._alerts: Dispatcher | None = None
        self._requests = CycleRequests()
        self._reschedule: anyio.Event | None = None  # made in run(): it belongs to the loop
        self._busy_streak = 0  # checks in a row that found the database locked
        self._stats_version: str | None = None  # the file's version when its stats were made
        self._tg: anyio.abc.TaskGroup | None = None
        self._saver = StateSaver(config.state_file, self._persisted, persist=persist)

    # wiring ------------------------------------------------------------------------

    def add_service(self, service: Service) -> None:
        """Run ``service(hub, task_status=...)`` in the hub's task group (API, supervisor)."""
        self._services.append(service)

    def add_before_publish(self, hook: BeforePublish) -> None:
        """Await ``hook(published, path)`` before a snapshot is published (cache warming)."""
        self.publisher.add_before_publish(hook)

    def add_after_publish(self, hook: AfterPublish) -> None:
        """Await ``hook(published, path)`` right after a snapshot is published (warming
        what can wait)."""
        self.publisher.add_after_publish(hook)

    def register_server(self, name: str, status: ServerStatus,
                        control: ServerCommand | None = None) -> None:
        self._servers[name] = status
        if control is not None:
            self._server_commands[name] = control
        self._publish()

    def set_server(self, name: str, status: ServerStatus) -> None:
        self._servers[name] = status
        self._publish()

    # commands (call on the loop; other threads use the channel) -------------------

    def check_now(self) -> None:
        """Check (and heal) now, even with auto mode off; never piles up."""
        self._requests.ask(check=True, forced=True)

    def set_auto_mode(self, on: bool) -> None:
        if on == self._auto_mode:
            return
        self._auto_mode = on
        self.events.emit(EventName.AUTO_MODE_CHANGED, auto_mode=on)
        log.info("auto mode %s", "on" if on else "off")
        if on:
            self._requests.ask()  # heal an update that waited for auto mode
        self._saver.soon()
        self._publish()

    async def publish_anyway(self) -> str:
        """Publish the held-back export despite its failed verification (the engineer's
        call: a row-count drop can be real). PublishRefused says why it cannot be."""
        async with self.publisher.lock:
            self._set(Step.PUBLISHING)
            try:
                published = await self.publisher.publish_held()
            except (PublishRefused, StoreError) as exc:
                raise PublishRefused(str(exc)) from None
            finally:
                self._set(Step.IDLE)
            self._freshness.changed()
        await self._saver.save()
        return published.version

    def shutdown(self) -> None:
        """Stop: interrupt the SQLite work in hand, cancel the task group."""
        self._interrupter.interrupt()
        if self._tg is not None:
            self._tg.cancel_scope.cancel()

    def deliver(self, command: Command) -> None:
        """Run a command posted through the channel (on the loop)."""
        if command.kind is CommandKind.CHECK_NOW:
            self.check_now()
        elif command.kind is CommandKind.PUBLISH_ANYWAY and self._tg is not None:
            self._tg.start_soon(self._publish_anyway_logged)
        elif command.kind is CommandKind.SET_AUTO_MODE:
            self.set_auto_mode(bool(command.value))
        elif command.kind is CommandKind.SHUTDOWN:
            self.shutdown()
        elif self._tg is not None:
            name = str(command.value or "dashboard")
            control = self._server_commands.get(name)
            if control is None:
                log.warning("no server named %s to %s", name, command.kind)
            else:
                self._tg.start_soon(control, command.kind)

    async def _publish_anyway_logged(self) -> None:
        try:
            await self.publish_anyway()
        except PublishRefused as exc:
            log.warning("publish anyway refused: %s", exc)

    # status ------------------------------------------------------------------------

    @property
    def message(self) -> str:
        """What the hub is doing or what is wrong, in English (the status line)."""
        return self.status().message

    @property
    def auto_mode(self) -> bool:
        return self._auto_mode

    @property
    def known_version(self) -> str:
        return self._known_version

    @property
    def activity(self) -> Activity:
        """What the hub is doing now: idle, settling (the ERP is writing) or checking."""
        return self._activity

    @property
    def busy(self) -> bool:
        """True while the file is being written or checked (readers should wait)."""
        return self._activity is not Activity.IDLE

    def status(self) -> StatusSnapshot:
        current = self._last_look
        db = DbStatus(path=str(self.path))
        if current is not None and current.exists:
            db.exists = True
            db.size = current.main.size
            db.mtime = datetime.fromtimestamp(current.main.mtime_ns / 1e9, UTC)
            db.version = current.version
        if self._problem is not None:
            db.problem, db.error = self._problem.kind, self._problem.message
        state = derive_state(
            activity=self._activity,
            auto_mode=self._auto_mode,
            update_pending=self._update_pending,
            db=db,
            last_check=self._last_check,
            servers=self._servers,
            published=self.publisher.published is not None,
            held_back=self.publisher.held_back is not None,
            store_error=self.publisher.store_error is not None,
            stale=self._freshness.current.problem,
        )
        snapshot = StatusSnapshot(
            state=state,
            message="",
            activity=self._activity,
            auto_mode=self._auto_mode,
            update_pending=self._update_pending,
            db=db,
            last_db_update=self._last_db_update,
            last_check=self._last_check,
            next_check=self._next_check,
            servers={k: v.model_copy() for k, v in self._servers.items()},
            published=self.publisher.published,
            held_back=self.publisher.held_back,
            store_error=self.publisher.store_error,
            freshness=self._freshness.current,
            alerts={name: st.model_dump(mode="json")
                    for name, st in self._alerts.status().items()} if self._alerts else {},
            recent_events=self.events.recent(20),
            step=self._step,
            fault=self._fault,
            pid=os.getpid(),
            updated_at=utcnow(),
        )
        snapshot.message = status_line(snapshot, "en")
        return snapshot

    def _publish(self) -> None:
        snapshot = self.status()
        if snapshot.message != self._line:
            self._line = snapshot.message
            log.debug("status: %s", snapshot.message)
        self.channel.publish(snapshot)

    def _set(self, step: Step) -> None:
        self._step, self._activity = step, step.activity
        self._publish()

    # lifecycle ---------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[Hub] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run until cancelled or :meth:`shutdown`; state is saved on the way out."""
        self._reschedule = anyio.Event()
        await self.publisher.start()
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                # Commands run straight on the loop (deliver only sets flags or starts a
                # task): no queue in between that could fill up and drop one.
                self.channel.bind(self.deliver)
                tg.start_soon(self._interrupt_when_cancelled)
                tg.start_soon(self._worker)
                tg.start_soon(self._saver.run)
                tg.start_soon(self._scheduler)
                tg.start_soon(self._watch)
                tg.start_soon(self._freshness.run)
                await self._start_alerts(tg)
                for service in self._services:
                    await tg.start(service, self)
                self._requests.ask(check=True, forced=False)  # first look at start-up
                task_status.started(self)
        finally:
            self.channel.unbind()
            self._tg = None
            with anyio.move_on_after(5, shield=True):
                await self._saver.save()
                await anyio.to_thread.run_sync(self.events.flush)
            log.info("hub stopped")

    async def run_once(self) -> None:
        """One Check Now and its retries, as the worker runs it, with nothing else: no
        watching, no servers, no alerts (``pdh check``). The state is saved after."""
        await self.publisher.start()
        self._requests.ask(check=True, forced=True)
        try:
            while (wanted := self._requests.take()) is not None:
                await self._cycle(check=wanted.check, forced=wanted.forced)
        finally:
            await self._saver.save()
            await anyio.to_thread.run_sync(self.events.flush)

    async def _interrupt_when_cancelled(self) -> None:
        """However the hub is cancelled, a check running in a thread is told at once."""
        try:
            await anyio.sleep_forever()
        finally:
            self._interrupter.interrupt()

    async def _start_alerts(self, tg: anyio.abc.TaskGroup) -> None:
        """Alerts for people not at the PC, from the same events the toasts read."""
        cfg = self.config.alerts
        channels = channels_of(cfg)
        if not channels:
            return
        self._alerts = Dispatcher(channels, retries=cfg.retries, retry_backoff=cfg.retry_backoff)
        await tg.start(self._alerts.run)
        await tg.start(partial(
            run_alerts, self.events, self._alerts.submit, cfg, db=str(self.path),
            state=lambda: self.status().state.value,
            language=resolve_language(self.config.ui.language),
        ))
        log.info("alerts to %s", ", ".join(c.name for c in channels))

    async def _watch(self) -> None:
        cfg = self.config.watch
        await watch_db(
            self.path,
            self._on_file_event,
            force_polling=cfg.force_polling,
            poll_interval=cfg.poll_interval,
        )

    def _on_file_event(self) -> None:
        self._requests.ask()

    async def _scheduler(self) -> None:
        """The periodic check every ``check_interval`` (shown as Next Check)."""
        interval = self.config.watch.check_interval
        while True:
            self._reschedule = anyio.Event()
            if self._next_check is None:
                self._next_check = utcnow() + timedelta(seconds=interval)
                self._publish()
            delay = (self._next_check - utcnow()).total_seconds()
            with anyio.move_on_after(max(0.0, delay)):
                await self._reschedule.wait()  # a check just ran: count from now
                continue
            self._next_check = utcnow() + timedelta(seconds=interval)
            log.debug("periodic check")
            self._requests.ask(check=True, forced=False)

    async def _worker(self) -> None:
        """The only place checks run: one at a time, requests during one coalesce."""
        while True:
            wanted = await self._requests.next()
            self._fault = None
            try:
                await self._cycle(check=wanted.check, forced=wanted.forced)
            except Interrupted:
                return  # stopping: the cancellation follows
            except Exception as exc:  # a bug must not end the watching; say it loudly
                log.exception("check cycle failed unexpectedly")
                self._fault = f"{type(exc).__name__}: {exc}"
                self._set(Step.IDLE)
            if self._activity is not Activity.IDLE and not self._requests.pending:
                self._set(Step.IDLE)  # (a cycle asked for again shows its own state)

    # the cycle ---------------------------------------------------------------------

    async def _look(self) -> DbLook:
        current = await anyio.to_thread.run_sync(look, self.path)
        self._last_look = current
        return current

    async def _cycle(self, *, check: bool, forced: bool) -> None:
        current = await self._look()
        if not current.exists:
            await self._missing(current)
            return
        changed = current.version != self._known_version
        if changed:
            if not self._auto_mode and not forced:
                if not self._update_pending:
                    self._update_pending = True
                    self._last_db_update = utcnow()
                    self.events.emit(EventName.DB_CHANGE_DETECTED, auto_mode=False)
                    log.info("DB update detected, auto mode off: waiting for Check Now")
                self._publish()
                self._saver.soon()
                return
            current = await self._settle(current)
            if not current.exists:
                await self._missing(current)
                return
        elif not check or not (self._auto_mode or forced):
            self._publish()  # our own writes, a reader's touch, or paused: nothing to do
            return
        async with self.publisher.lock:
            await self._check(current, new=changed or self._publish_due(), forced=forced)

    def _publish_due(self) -> bool:
        """An unchanged file still needs publishing: nothing published yet (first start
        with this store), or the last copy failed for the store's sake (disk full)."""
        pub = self.publisher
        if pub.store_error is not None:
            return True
        held = pub.held_back
        if held is not None and held.version == self._known_version:
            return False  # rejected as it is; a new export or "publish anyway" moves on
        return pub.published is None

    async def _settle(self, first: DbLook) -> DbLook:
        self._last_db_update = utcnow()
        self.events.emit(EventName.DB_CHANGE_DETECTED, size=first.main.size)
        log.info("DB update detected: %s", self.path)
        cfg = self.config.watch
        self._set(Step.SETTLING)

        async def still_writing(current: DbLook, changes: int) -> None:
            self._last_look = current
            self._publish()
            if changes == 1:
                log.info("ERP still writing %s; waiting", self.path.name)

        settled = await settle(
            self.path,
            interval=cfg.settle_interval,
            checks=cfg.settle_checks,
            first=first,
            on_still_writing=still_writing,
        )
        self._last_look = settled
        if settled.exists:
            self.events.emit(EventName.DB_SETTLED, size=settled.main.size, version=settled.version)
            log.info("DB update settled (%s bytes)", f"{settled.main.size:,}")
        return settled

    async def _missing(self, current: DbLook) -> None:
        self._known_version = ""
        if self._problem is None or self._problem.kind is not DbProblem.MISSING:
            self._problem = Problem(DbProblem.MISSING, f"database file not found: {self.path}")
            self.events.emit(EventName.DB_MISSING, path=str(self.path))
            log.warning("%s; watching for it", self._problem.message)
        self._set(Step.IDLE)
        self._saver.soon()

    def _checked(self) -> None:
        """A check ran (whatever its end): the periodic check counts from now."""
        self._update_pending = False
        # Set here, not left to the scheduler: the status never shows no Next Check.
        self._next_check = utcnow() + timedelta(seconds=self.config.watch.check_interval)
        if self._reschedule is not None:
            self._reschedule.set()

    async def _check(self, settled: DbLook, *, new: bool, forced: bool) -> None:
        """Heal the settled file in place (``[heal] in_place``), then, for a new export,
        copy, verify and publish it. A retry it asks for is forced only if this was."""
        started = utcnow()
        after = settled
        report: HealReport | None = None
        failure: Exception | None = None
        try:
            report = await self._heal(settled)
        except (DbChanged, DbMissing, DbUnreadable, DbBusy, DbReadOnly, sqlite3.Error,
                OSError) as exc:
            failure = exc
        self._checked()  # whatever its end, once: the periodic check counts from now
        if isinstance(failure, DbChanged):
            log.info("%s; waiting for it to settle again", failure)
            self._set(Step.SETTLING)
            self._requests.ask(check=True, forced=forced)
            return
        if isinstance(failure, DbMissing):
            await self._missing(await self._look())
            return
        if isinstance(failure, DbUnreadable):
            await self._unreadable(settled, str(failure), new=new)
            return
        if isinstance(failure, DbBusy):
            # Another program (the ERP in a long transaction) holds the write lock:
            # wait for it like for any write, and fail only if it never lets go.
            self._busy_streak += 1
            if self._busy_streak < BUSY_CHECKS_BEFORE_FAILING:
                log.info("%s; waiting for the other program to finish", failure)
                self._set(Step.IDLE)
                self._requests.ask(check=True, forced=forced)
                return
        self._busy_streak = 0
        if failure is not None:
            # The snapshot is still made and healed: readers get their indexes.
            self._fail(started, str(failure), settled.version)
        elif report is not None:
            after = report.after or settled
            self._record(report, after)
        self._last_look = after
        self._known_version = after.version
        self._problem = None
        if new and not await self._snapshot(after, written=settled, forced=forced):
            return  # the file changed while it was copied: settling again, say so
        self._set(Step.IDLE)
        await self._saver.save()

    async def _heal(self, settled: DbLook) -> HealReport | None:
        """Heal the ERP's file in place, or (``in_place = false``) only see it is whole."""
        if not self.config.heal.in_place:
            await anyio.to_thread.run_sync(check_readable, self.path)
            return None
        self._set(Step.CHECKING)
        return await anyio.to_thread.run_sync(
            lambda: heal(self.path, self.config.heal, expected=settled,
                         stats_version=self._stats_version, interrupter=self._interrupter)
        )

    def _record(self, report: HealReport, after: DbLook) -> None:
        self._last_check = CheckResult(
            at=utcnow(),
            result=report.result,
            healed=report.healed,
            error="; ".join(report.problems) or None,
            duration_s=round(report.duration_s, 3),
            version=after.version,
        )
        if report.result != "failed" and self.config.heal.analyze:
            self._stats_version = after.version
        if report.result == "failed":
            self.events.emit(EventName.HEAL_FAILED, error=self._last_check.error,
                             healed=report.healed)
            log.error("index check failed: %s", self._last_check.error)
        elif report.healed:
            self.events.emit(EventName.INDEXES_HEALED, healed=report.healed,
                             duration_s=self._last_check.duration_s)
            log.info("indexes restored (%d, %.1f s): %s", len(report.created + report.rebuilt),
                     report.duration_s, ", ".join(report.healed))
        else:
            self.events.emit(EventName.CHECK_OK, duration_s=self._last_check.duration_s)
            log.info("index check ok (%.2f s)", report.duration_s)
        self._publish()

    async def _snapshot(self, settled: DbLook, *, written: DbLook, forced: bool) -> bool:
        """Copy, verify and publish; False when the file changed meanwhile (the cycle is
        asked for again and the status says settling)."""
        self._set(Step.COPYING)
        try:
            outcome: Outcome = await self.publisher.publish_export(settled, written=written)
        except DbChanged as exc:
            log.info("%s; waiting for it to settle again", exc)
            self._known_version = ""
            self._set(Step.SETTLING)
            self._requests.ask(check=True, forced=forced)
            return False
        except DbMissing:
            await self._missing(await self._look())
            return True
        except StoreError as exc:
            outcome = Outcome(store_error=str(exc))
        if outcome.published is not None:
            self._freshness.changed()
            # Our read connection may leave WAL sidecars behind: take the file as the
            # copy left it, so that is not mistaken for a new export.
            self._known_version = outcome.published.source_version
            self._last_look = await self._look()
        self._publish()
        return True

    async def _unreadable(self, settled: DbLook, error: str, *, new: bool) -> None:
        """The export is not a whole SQLite file: hold it back; readers keep the last good."""
        self._known_version = settled.version
        problem = Problem(DbProblem.UNREADABLE, error)
        if self._problem != problem:
            self.events.emit(EventName.DB_UNREADABLE, error=error)
            log.error("database unreadable: %s", error)
        self._problem = problem
        if new or self.publisher.held_back is None:
            await self.publisher.hold(settled, error)
        self._set(Step.IDLE)
        self._saver.soon()

    def _fail(self, started: datetime, error: str, version: str) -> None:
        self._last_check = CheckResult(
            at=utcnow(), result="failed", error=error,
            duration_s=round((utcnow() - started).total_seconds(), 3),
            version=version,
        )
        self._problem = None
        self.events.emit(EventName.HEAL_FAILED, error=error)
        log.error("index check failed: %s", error)
        self._set(Step.IDLE)
        self._saver.soon()

    # persistence -------------------------------------------------------------------

    def _persisted(self) -> PersistedState:
        return PersistedState(
            auto_mode=self._auto_mode,
            known_version=self._known_version,
            last_db_update=self._last_db_update,
            last_check=self._last_check,
            recent_events=self.events.recent(20),
        )
