"""A tray for a hub that runs without one (a Windows service, ``pdh run --headless``).

``pdh run`` finds the configuration's instance lock held by a headless agent and, rather
than refusing with "already running", shows the usual tray, driving that hub over its
HTTP API: ``GET /hub/status`` every ``ui.status_poll_interval`` seconds for the colour,
tooltip and menu; Check Now, Auto Mode and Publish Anyway as the API's control calls
(loopback needs no token; a hub bound to a LAN address needs ``[api] token``, sent from
this same config as any other process would). Quit closes this tray only: the hub goes
on. One attached tray per configuration (a second lock beside the hub's).

Threads: :class:`RemoteHub` owns one worker thread that polls and runs the control calls
in order (each call has the API client's short timeout), so the tray thread never waits
on the network.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import queue
import threading
from collections.abc import Callable
from datetime import datetime, tzinfo
from pathlib import Path

from agent.instance import AlreadyRunning, InstanceInfo, hub_lock
from agent.stopping import StopHandlers, WindowStop
from agent.tray.controller import Tray, TrayBackend
from agent.tray.texts import Language, resolve_language, tr
from agent.tray.view import Action, MenuEntry, TrayView, present
from core.channel import Channel, Command, CommandKind, Listener
from core.config import Config
from core.hubapi import ApiDown, ApiRefused, HubApi, HubApiError
from core.logs import setup_logging
from core.state import HubState, StatusSnapshot

log = logging.getLogger(__name__)



class RemoteHub:
    """The part of :class:`~core.channel.Channel` the tray uses, over the hub's API.

    ``problem`` is why the API does not answer (None while it does); listeners are
    called on the worker thread after every poll that changed something.
    """

    def __init__(self, api: HubApi, *, poll_interval: float,
                 on_refused: Callable[[str], None] = lambda reason: None) -> None:
        self.api = api
        self.poll_interval = poll_interval
        self.on_refused = on_refused
        self.problem: str | None = None
        self._lock = threading.Lock()
        self._latest: StatusSnapshot | None = None
        # The snapshots go out as a hub's do, through a Channel (its sequence number and
        # listeners); its commands are unused: the control calls go to the API.
        self._snapshots = Channel()
        self._jobs: queue.SimpleQueue[Callable[[], object] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name="pdh-attach", daemon=True)

    # lifetime ------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the worker (after the call it is in, bounded by the client's timeout)."""
        self._jobs.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _work(self) -> None:
        while True:
            self._poll()
            try:
                job = self._jobs.get(timeout=self.poll_interval)
            except queue.Empty:
                continue
            if job is None:
                return
            try:
                job()
            except ApiRefused as exc:
                log.warning("the hub refused: %s", exc.reason)
                self.on_refused(exc.reason)
            except HubApiError as exc:
                log.warning("the hub's API does not answer: %s", exc)
            except Exception:
                log.exception("a call to the hub failed")

    def _poll(self) -> None:
        try:
            snapshot: StatusSnapshot | None = self.api.status()
            problem = None
        except ApiDown as exc:
            snapshot, problem = None, str(exc)
        except ApiRefused as exc:
            snapshot, problem = None, exc.reason
        with self._lock:
            changed = problem != self.problem or (snapshot is not None
                                                  and snapshot != self._latest)
            if problem is not None and problem != self.problem:
                log.warning("the hub's API at %s does not answer: %s", self.api.base_url,
                            problem)
            elif problem is None and self.problem is not None:
                log.info("the hub's API at %s answers again", self.api.base_url)
            self.problem = problem
            if snapshot is not None:
                self._latest = snapshot
            latest = self._latest
        if changed:
            self._snapshots.publish(latest)  # type: ignore[arg-type]  # None: never answered

    # the Channel surface the tray uses (any thread, never blocks) ----------------------

    def latest(self) -> tuple[int, StatusSnapshot | None]:
        return self._snapshots.latest()

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        return self._snapshots.subscribe(listener)

    def _submit(self, job: Callable[[], object]) -> bool:
        if not self._thread.is_alive():
            return False
        self._jobs.put(job)
        return True

    def check_now(self) -> bool:
        return self._submit(self.api.check_now)

    def set_auto_mode(self, on: bool) -> bool:
        return self._submit(lambda: self.api.set_auto_mode(on))

    def post(self, command: Command) -> bool:
        if command.kind is CommandKind.PUBLISH_ANYWAY:
            return self._submit(self.api.publish_anyway)
        log.info("%s is not available from an attached tray (the hub's API has no route "
                 "for it)", command.kind)
        return False

    def shutdown(self) -> bool:
        return False  # an attached tray never stops the hub


def present_attached(snapshot: StatusSnapshot | None, lang: Language, *,
                     autostart_on: bool | None, problem: str | None, pid: int,
                     now: datetime | None = None, tz: tzinfo | None = None) -> TrayView:
    """The usual tray view of the remote hub, with: a line saying whose hub this is, no
    dashboard-server controls (the API has none), Quit closing only the tray, and when
    the API does not answer, the error colour and why."""
    view = present(None if problem else snapshot, lang, autostart_on=autostart_on,
                   now=now, tz=tz)
    tooltip = view.tooltip
    state = view.state
    if problem:
        state = HubState.ERROR
        tooltip = f"{tr('title', lang)}: {tr('hub_unreachable', lang)}\n{problem}"[:127]
    entries: list[MenuEntry] = []
    for index, entry in enumerate(view.menu):
        if index == 0 and problem:
            entry = MenuEntry(tr("hub_unreachable", lang), enabled=False)
        elif entry.children:
            entry = dataclasses.replace(entry, enabled=False, children=())
        elif entry.action is Action.QUIT:
            entry = dataclasses.replace(entry, text=tr("close_tray", lang))
        elif problem and entry.action in (Action.CHECK_NOW, Action.AUTO_MODE,
                                          Action.PUBLISH_ANYWAY):
            entry = dataclasses.replace(entry, enabled=False)
        entries.append(entry)
        if index == 0:
            shown = snapshot.pid if snapshot is not None and snapshot.pid else pid
            entries.append(MenuEntry(tr("attached", lang, pid=shown), enabled=False))
    return dataclasses.replace(view, state=state, tooltip=tooltip, menu=tuple(entries))


def run_attached(config: Config, backend: TrayBackend, hub: InstanceInfo, *,
                 config_source: Path | None, db_path: Path | None) -> int:
    """Show a tray for the headless hub ``hub`` until Quit or a stop signal."""
    from agent.autostart import launch_command, login_item

    assert hub.api_url is not None
    lock = hub_lock(config, role="tray")
    try:
        lock.acquire(InstanceInfo(pid=os.getpid(), mode="tray", api_url=hub.api_url),
                     wait_info_s=0.5)
    except AlreadyRunning as exc:
        print(f"pdh: a tray is already attached to the running hub ({exc})")
        return 0
    with lock:
        # Its own log file: the hub's process rotates pdh.log (on Windows a rename fails
        # while another process has the file open).
        setup_logging(config.log_dir / "tray", config.log.level)
        language: Language = resolve_language(config.ui.language)
        log.info("tray (%s, %s) attached to the headless hub pid %d at %s", backend.name,
                 language, hub.pid, hub.api_url)
        print(f"pdh: the hub runs already without a tray (pid {hub.pid}); showing a tray "
              f"for it ({hub.api_url})", flush=True)
        remote = RemoteHub(HubApi(hub.api_url, config.api.token),
                           poll_interval=config.ui.status_poll_interval)
        command = launch_command(config_source, db_path=db_path)
        tray = Tray(remote, config, backend, language=language,
                    autostart=login_item(command, log_dir=config.log_dir),
                    presenter=lambda snapshot, lang, **kw: present_attached(
                        snapshot, lang, problem=remote.problem, pid=hub.pid, **kw))
        tray.on_quit = lambda: None  # Quit closes this tray; the hub goes on
        remote.on_refused = lambda reason: tray.notify(
            tr("title", language), tr("hub_refused", language, reason=reason))
        return _run(tray, remote)


def _run(tray: Tray, remote: RemoteHub) -> int:
    def request_stop(why: str) -> None:  # any thread
        log.info("received %s; closing the tray", why)
        tray.stop()

    closed = threading.Event()
    signals = StopHandlers(request_stop, stopped=closed)
    windows = WindowStop(request_stop, lambda: request_stop("WM_ENDSESSION"))

    def on_ready() -> None:
        signals.reinstall()
        windows.tray_ready(tray.icon)

    tray.on_ready = on_ready
    try:
        with signals:
            remote.start()
            try:
                tray.run()
            finally:
                closed.set()
    finally:
        remote.close()
        tray.close()
    log.info("attached tray closed")
    return 0
