"""``pdh service install|uninstall|start|stop|status``: the hub as a Windows service
(all users; runs when nobody is logged in), through the Service Control Manager's own
API (advapi32 via ctypes: no pywin32, no WinSW).

The service runs this installation's ``python.exe -m agent service run --config <file>``:
``run`` connects to the SCM (``StartServiceCtrlDispatcherW``), reports its state and runs
the hub headless, with the instance lock marked headless so that a logged-in user's
``pdh run`` / ``pdh-tray.exe`` attaches a tray to it (agent/tray/attached.py). Stop and
shutdown requests from the SCM stop the hub cleanly; a logoff does not concern a
service. Failure actions: restart after 5 s, 10 s, 30 s (reset after a day), also
when the hub ends with an error (``SERVICE_CONFIG_FAILURE_ACTIONS_FLAG``).
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import threading
import time
from ctypes import wintypes
from pathlib import Path, PureWindowsPath
from typing import Any

from agent.stopping import HubShutdown
from core.channel import Channel
from core.config import Config
from core.paths import absolute

log = logging.getLogger(__name__)

SERVICE_NAME = "ProductionDataHub"
DISPLAY_NAME = "Production Data Hub"
DESCRIPTION = ("Keeps the ERP's SQLite export indexed and serves it (API, dashboard). "
               "ERP SQLite 내보내기 인덱스를 유지하고 데이터를 제공합니다.")

SC_MANAGER_CONNECT, SC_MANAGER_CREATE_SERVICE = 0x1, 0x2
SERVICE_QUERY_STATUS, SERVICE_START, SERVICE_STOP = 0x4, 0x10, 0x20
SERVICE_CHANGE_CONFIG, DELETE = 0x2, 0x10000
SERVICE_WIN32_OWN_PROCESS, SERVICE_AUTO_START, SERVICE_ERROR_NORMAL = 0x10, 2, 1
STOPPED, START_PENDING, STOP_PENDING, RUNNING = 1, 2, 3, 4
STATE_NAMES = {1: "stopped", 2: "starting", 3: "stopping", 4: "running", 5: "continuing",
               6: "pausing", 7: "paused"}
CONTROL_STOP, CONTROL_INTERROGATE, CONTROL_SHUTDOWN = 1, 4, 5
ACCEPT_STOP, ACCEPT_SHUTDOWN = 0x1, 0x4
ERROR_SERVICE_DOES_NOT_EXIST, ERROR_SERVICE_NOT_ACTIVE = 1060, 1062
ERROR_FAILED_SERVICE_CONTROLLER_CONNECT, ERROR_SERVICE_EXISTS = 1063, 1073
ERROR_SERVICE_SPECIFIC_ERROR = 1066
ERROR_SERVICE_ALREADY_RUNNING = 1056
EXIT_ALREADY_RUNNING = 2  # the service's specific exit code, and `service run`'s
CONFIG_DESCRIPTION, CONFIG_FAILURE_ACTIONS, CONFIG_FAILURE_ACTIONS_FLAG = 1, 2, 4
SC_ACTION_RESTART = 1


class SERVICE_STATUS(ctypes.Structure):  # noqa: N801 (the Windows name)
    _fields_ = [(name, wintypes.DWORD) for name in (
        "dwServiceType", "dwCurrentState", "dwControlsAccepted", "dwWin32ExitCode",
        "dwServiceSpecificExitCode", "dwCheckPoint", "dwWaitHint")]


class SC_ACTION(ctypes.Structure):  # noqa: N801
    _fields_ = [("Type", ctypes.c_int), ("Delay", wintypes.DWORD)]


class SERVICE_FAILURE_ACTIONSW(ctypes.Structure):  # noqa: N801
    _fields_ = [("dwResetPeriod", wintypes.DWORD), ("lpRebootMsg", wintypes.LPWSTR),
                ("lpCommand", wintypes.LPWSTR), ("cActions", wintypes.DWORD),
                ("lpsaActions", ctypes.POINTER(SC_ACTION))]


class ServiceError(Exception):
    """An SCM call failed; ``code`` is the Windows error."""

    def __init__(self, what: str, code: int) -> None:
        hint = " (run as administrator)" if code == 5 else ""
        text = ctypes.FormatError(code).strip()  # type: ignore[attr-defined]
        super().__init__(f"{what}: {text} [{code}]{hint}")
        self.code = code


def _api() -> Any:
    advapi = ctypes.WinDLL("advapi32", use_last_error=True)  # type: ignore[attr-defined]
    handle = wintypes.HANDLE
    for name, args, res in [
        ("OpenSCManagerW", [wintypes.LPCWSTR, wintypes.LPCWSTR, wintypes.DWORD], handle),
        ("CreateServiceW", [handle, wintypes.LPCWSTR, wintypes.LPCWSTR] + [wintypes.DWORD] * 4
         + [wintypes.LPCWSTR, wintypes.LPCWSTR, ctypes.c_void_p, wintypes.LPCWSTR,
            wintypes.LPCWSTR, wintypes.LPCWSTR], handle),
        ("OpenServiceW", [handle, wintypes.LPCWSTR, wintypes.DWORD], handle),
        ("DeleteService", [handle], wintypes.BOOL),
        ("CloseServiceHandle", [handle], wintypes.BOOL),
        ("StartServiceW", [handle, wintypes.DWORD, ctypes.c_void_p], wintypes.BOOL),
        ("ControlService", [handle, wintypes.DWORD, ctypes.POINTER(SERVICE_STATUS)],
         wintypes.BOOL),
        ("QueryServiceStatus", [handle, ctypes.POINTER(SERVICE_STATUS)], wintypes.BOOL),
        ("ChangeServiceConfig2W", [handle, wintypes.DWORD, ctypes.c_void_p], wintypes.BOOL),
        ("SetServiceStatus", [handle, ctypes.POINTER(SERVICE_STATUS)], wintypes.BOOL),
    ]:
        fn = getattr(advapi, name)
        fn.argtypes, fn.restype = args, res
    return advapi


def _check(ok: Any, what: str) -> Any:
    if not ok:
        raise ServiceError(what, ctypes.get_last_error())  # type: ignore[attr-defined]
    return ok


def service_command(config_source: Path | None, python: str | None = None) -> list[str]:
    """What the SCM runs: this installation's console interpreter (a service has no
    console either way; python.exe, not pythonw.exe, keeps stderr for a crash)."""
    exe = PureWindowsPath(python or sys.executable)
    if exe.name.lower() == "pythonw.exe":
        exe = exe.with_name("python.exe")
    command = [str(exe), "-m", "agent", "service", "run"]
    if config_source is not None:
        command += ["--config", str(absolute(config_source))]
    return command


class ServiceManager:
    """Install, remove, start, stop and ask about the service."""

    def __init__(self, name: str = SERVICE_NAME) -> None:
        self.name = name
        self.api = _api()

    def _open(self, access: int) -> Any:
        scm = _check(self.api.OpenSCManagerW(None, None, SC_MANAGER_CONNECT), "OpenSCManager")
        try:
            return _check(self.api.OpenServiceW(scm, self.name, access), "OpenService")
        finally:
            self.api.CloseServiceHandle(scm)

    def install(self, command: list[str]) -> None:
        import subprocess

        scm = _check(self.api.OpenSCManagerW(None, None, SC_MANAGER_CONNECT
                                             | SC_MANAGER_CREATE_SERVICE), "OpenSCManager")
        try:
            service = _check(self.api.CreateServiceW(
                scm, self.name, DISPLAY_NAME, SERVICE_CHANGE_CONFIG | SERVICE_START,
                SERVICE_WIN32_OWN_PROCESS, SERVICE_AUTO_START, SERVICE_ERROR_NORMAL,
                subprocess.list2cmdline(command), None, None, None, None, None),
                "CreateService")
        finally:
            self.api.CloseServiceHandle(scm)
        try:
            self._configure(service)
        finally:
            self.api.CloseServiceHandle(service)

    def _configure(self, service: Any) -> None:
        """Description and restart-on-failure; a manager that lacks them is logged."""
        description = ctypes.c_wchar_p(DESCRIPTION)
        if not self.api.ChangeServiceConfig2W(service, CONFIG_DESCRIPTION,
                                              ctypes.byref(description)):
            log.warning("cannot set the service's description (error %d)",
                        ctypes.get_last_error())  # type: ignore[attr-defined]
        actions = (SC_ACTION * 3)(*(SC_ACTION(SC_ACTION_RESTART, ms)
                                    for ms in (5000, 10000, 30000)))
        failure = SERVICE_FAILURE_ACTIONSW(86400, None, None, 3, actions)
        flag = wintypes.BOOL(True)
        for level, value in ((CONFIG_FAILURE_ACTIONS, failure),
                             (CONFIG_FAILURE_ACTIONS_FLAG, flag)):
            if not self.api.ChangeServiceConfig2W(service, level, ctypes.byref(value)):
                log.warning("cannot set the service's failure actions (level %d, error %d)",
                            level, ctypes.get_last_error())  # type: ignore[attr-defined]

    def state(self) -> str | None:
        """'running', 'stopped', ... or None when the service is not installed."""
        try:
            service = self._open(SERVICE_QUERY_STATUS)
        except ServiceError as exc:
            if exc.code == ERROR_SERVICE_DOES_NOT_EXIST:
                return None
            raise
        try:
            status = SERVICE_STATUS()
            _check(self.api.QueryServiceStatus(service, ctypes.byref(status)),
                   "QueryServiceStatus")
            return STATE_NAMES.get(status.dwCurrentState, str(status.dwCurrentState))
        finally:
            self.api.CloseServiceHandle(service)

    def start(self) -> bool:
        """Start it; False when it was already starting or running (the SCM may have
        started it itself: an automatic service whose manager came up after the install,
        as Wine's services.exe does with each new Wine session). Never a second start."""
        if self.state() in ("starting", "running"):
            return False
        service = self._open(SERVICE_START)
        try:
            if not self.api.StartServiceW(service, 0, None):
                code = ctypes.get_last_error()  # type: ignore[attr-defined]
                if code == ERROR_SERVICE_ALREADY_RUNNING:
                    return False
                raise ServiceError("StartService", code)
            return True
        finally:
            self.api.CloseServiceHandle(service)

    def stop(self, timeout: float = 30.0) -> bool:
        """Ask it to stop and wait until it has; False when it was not running."""
        service = self._open(SERVICE_STOP | SERVICE_QUERY_STATUS)
        try:
            status = SERVICE_STATUS()
            if not self.api.ControlService(service, CONTROL_STOP, ctypes.byref(status)):
                code = ctypes.get_last_error()  # type: ignore[attr-defined]
                if code == ERROR_SERVICE_NOT_ACTIVE:
                    return False
                raise ServiceError("ControlService(stop)", code)
            deadline = time.monotonic() + timeout
            while status.dwCurrentState != STOPPED:
                if time.monotonic() > deadline:
                    raise ServiceError("the service did not stop in time", 1053)
                time.sleep(0.2)
                _check(self.api.QueryServiceStatus(service, ctypes.byref(status)),
                       "QueryServiceStatus")
            return True
        finally:
            self.api.CloseServiceHandle(service)

    def uninstall(self) -> bool:
        """Stop and delete it; False when it was not installed."""
        if self.state() is None:
            return False
        if self.state() not in ("stopped", None):
            self.stop()
        service = self._open(DELETE)
        try:
            _check(self.api.DeleteService(service), "DeleteService")
        finally:
            self.api.CloseServiceHandle(service)
        return True


def run_service(config: Config, config_source: Path | None) -> int:
    """The service process: hand the main thread to the SCM's dispatcher, which calls
    the service's main on a thread of its own; returns when the service has stopped."""
    advapi = _api()
    main_type = ctypes.WINFUNCTYPE(None, wintypes.DWORD,  # type: ignore[attr-defined]
                                   ctypes.POINTER(wintypes.LPWSTR))
    handler_type = ctypes.WINFUNCTYPE(  # type: ignore[attr-defined]
        wintypes.DWORD, wintypes.DWORD, wintypes.DWORD, ctypes.c_void_p, ctypes.c_void_p)

    class TABLE_ENTRY(ctypes.Structure):  # noqa: N801
        _fields_ = [("name", wintypes.LPWSTR), ("main", main_type)]

    advapi.RegisterServiceCtrlHandlerExW.argtypes = [wintypes.LPCWSTR, handler_type,
                                                     ctypes.c_void_p]
    advapi.RegisterServiceCtrlHandlerExW.restype = wintypes.HANDLE
    advapi.StartServiceCtrlDispatcherW.argtypes = [ctypes.POINTER(TABLE_ENTRY)]
    advapi.StartServiceCtrlDispatcherW.restype = wintypes.BOOL
    service = HubService(advapi, config, config_source)
    handler = handler_type(service.control)
    service_main = main_type(lambda argc, argv: service.main(handler))
    table = (TABLE_ENTRY * 2)(TABLE_ENTRY(SERVICE_NAME, service_main), TABLE_ENTRY())
    if not advapi.StartServiceCtrlDispatcherW(table):
        code = ctypes.get_last_error()  # type: ignore[attr-defined]
        if code == ERROR_FAILED_SERVICE_CONTROLLER_CONNECT:
            other = running_hub(config)
            if other is not None:
                print(f"pdh: not started: {other}", file=sys.stderr)
                return EXIT_ALREADY_RUNNING
            print("pdh: `pdh service run` is what the Windows service runs; start it with "
                  "`pdh service start` (or run the hub with `pdh run --headless`)",
                  file=sys.stderr)
            return 2
        raise ServiceError("StartServiceCtrlDispatcher", code)
    return service.exit_code


def refusal(exc: Any, config: Config) -> str:
    """Why a hub is not started: the one that runs for this database, named."""
    info = exc.info
    who = info.describe() if info is not None else "pid unknown"
    mode = f", {info.mode}" if info is not None and info.mode else ""
    return f"a hub already runs for {config.db_path} ({who}{mode})"


def running_hub(config: Config) -> str | None:
    """:func:`refusal` for the hub that holds this database's lock, or None (the lock is
    taken and given back at once)."""
    from agent.instance import AlreadyRunning, InstanceInfo, hub_lock

    lock = hub_lock(config)
    try:
        lock.acquire(InstanceInfo(pid=os.getpid(), db=str(config.db_path)), wait_info_s=1.0)
    except AlreadyRunning as exc:
        return refusal(exc, config)
    lock.release()
    return None


def _log_failure(what: str, config: Config) -> None:
    """Log the exception in hand, setting up the log first if the failure came before;
    with no log at all, into pdh-service-error.txt in %TEMP%."""
    import traceback

    root = logging.getLogger()
    if not root.handlers:
        try:
            from core.logs import setup_logging

            setup_logging(config.log_dir, console=False)
        except Exception:  # noqa: BLE001
            pass
    if root.handlers:
        log.exception(what)
        return
    try:
        folder = Path(os.environ.get("TEMP") or ".")
        with (folder / "pdh-service-error.txt").open("a", encoding="utf-8") as out:
            out.write(f"{what}:\n{traceback.format_exc()}\n")
    except OSError:
        pass


class HubService:
    """The service's main (on the dispatcher's thread) and its control handler."""

    def __init__(self, advapi: Any, config: Config, config_source: Path | None) -> None:
        self.advapi = advapi
        self.config = config
        self.config_source = config_source
        self.exit_code = 0
        self._handle: Any = None
        self._channel = Channel()
        self._stop_hub = HubShutdown(self._channel)  # a stop may come before the hub runs

    def report(self, state: int, *, wait_hint: int = 0, error: int = 0) -> None:
        status = SERVICE_STATUS(
            SERVICE_WIN32_OWN_PROCESS, state,
            0 if state == START_PENDING else ACCEPT_STOP | ACCEPT_SHUTDOWN,
            ERROR_SERVICE_SPECIFIC_ERROR if error else 0, error, 0, wait_hint)
        if self._handle and not self.advapi.SetServiceStatus(self._handle,
                                                             ctypes.byref(status)):
            log.warning("SetServiceStatus(%d) failed (error %d)", state,
                        ctypes.get_last_error())  # type: ignore[attr-defined]

    def control(self, code: int, event_type: int, data: Any, context: Any) -> int:
        if code in (CONTROL_STOP, CONTROL_SHUTDOWN):
            log.info("service: %s requested", "stop" if code == CONTROL_STOP else "shutdown")
            self.report(STOP_PENDING, wait_hint=30000)
            self._stop_hub()
            return 0
        return 0 if code == CONTROL_INTERROGATE else 120  # ERROR_CALL_NOT_IMPLEMENTED

    def main(self, handler: Any) -> None:
        """The service's main. The first thing it does is report START_PENDING: the SCM
        waits for that (Wine's services.exe 10 s, then it ends the process), so nothing
        that can fail or take long (imports, the log, the lock) comes before it. Whatever
        fails after it is logged and reported as a stop with an error: an exception
        escaping a ctypes callback is printed to a stderr a service does not have, and
        the SCM would be left waiting for a report that never comes."""
        self._handle = self.advapi.RegisterServiceCtrlHandlerExW(SERVICE_NAME, handler, None)
        self.report(START_PENDING, wait_hint=30000)
        try:
            self.exit_code = self._run()
        except BaseException:  # noqa: BLE001 (nothing may escape into ctypes)
            _log_failure("service: the hub failed to start or run", self.config)
            self.exit_code = 1
        log.info("service stopped (exit code %d)", self.exit_code)
        self.report(STOPPED, error=self.exit_code)

    def _run(self) -> int:
        """Set up, take the database's lock, run the hub until a stop; the exit code."""
        import anyio

        from agent import hub_app
        from agent.instance import AlreadyRunning, hub_info, hub_lock
        from core.logs import setup_logging

        setup_logging(self.config.log_dir, self.config.log.level, console=False)
        log.info("Production Data Hub starting (Windows service, pid %d) on %s", os.getpid(),
                 self.config.db_path)
        lock = hub_lock(self.config)
        try:
            lock.acquire(hub_info(self.config, self.config_source, mode="headless"))
        except AlreadyRunning as exc:
            log.error("service: not started: %s; stop that hub first (the service runs "
                      "the one hub for this database)", refusal(exc, self.config))
            return EXIT_ALREADY_RUNNING
        with lock:
            from core.layout import adopt_legacy

            adopt_legacy(self.config, self.config_source)
            self.report(RUNNING)
            if self._stop_hub.asked.is_set():  # a stop that came before the hub could run
                return 0
            threading.Thread(target=self._stop_hub.keep_asking, daemon=True,
                             name="pdh-service-stop").start()
            anyio.run(lambda: hub_app.serve(self.config, self._channel, handle_signals=False),
                      backend="asyncio")
        return 0
