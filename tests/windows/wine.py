"""Run the project's Windows code paths for real: Windows CPython 3.11 under Wine.

The environment (a Wine prefix with the embeddable CPython and the project's wheel in it)
is made by ``tests/windows/setup_wine.sh``; ``make test-windows`` runs it and points
``PDH_WINE_ENV`` at it. This module starts one Wine session for the test run: an Xvfb
display (for the tray, in Wine's virtual desktop), a persistent wineserver and Wine's
services, all with null stdio so that no Wine helper holds a pipe of ours.

Windows python dies at start when its stdout is a regular file ("init_sys_streams ...
Invalid handle"), so every Windows process writes into a pipe; a thread copies it into a
log file here and tests wait on that file's lines.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from tests.conftest import wait_for

PY = r"C:\py311\python.exe"
PYW = r"C:\py311\pythonw.exe"
PDH = r"C:\py311\Scripts\pdh.exe"


def wait_until(condition: Callable[[], Any], what: str, timeout: float = 30.0,
               interval: float = 0.1) -> Any:
    """:func:`tests.conftest.wait_for` with the longer defaults Wine needs."""
    return wait_for(condition, timeout, interval, message=what)


def winpath(path: Path | str) -> str:
    """The Windows name of a Linux path (Wine's Z: drive is /)."""
    return "Z:" + str(Path(path).absolute()).replace("/", "\\")


class WineProcess:
    """A Windows process started from Linux; its output lands in ``log``."""

    def __init__(self, popen: subprocess.Popen[bytes], log: Path) -> None:
        self.popen = popen
        self.log = log
        self._pump = threading.Thread(target=self._copy, daemon=True)
        self._pump.start()

    def _copy(self) -> None:
        assert self.popen.stdout is not None
        with self.log.open("ab") as out, self.popen.stdout as pipe:
            for line in pipe:
                out.write(line)
                out.flush()

    @property
    def pid(self) -> int:
        """The Linux pid; signals to it reach the Windows process (SIGINT = Ctrl-C)."""
        return self.popen.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_for_line(self, pattern: str, timeout: float = 60.0) -> re.Match[str]:
        regex = re.compile(pattern)

        def found() -> re.Match[str] | None:
            if self.popen.poll() is not None:
                self._pump.join(2)
                match = regex.search(self.output())
                if match is None:
                    raise AssertionError(
                        f"exited with {self.popen.returncode} before /{pattern}/:\n"
                        + self.output()[-3000:])
                return match
            return regex.search(self.output())

        return wait_until(found, f"/{pattern}/ in {self.log.name}", timeout)

    def interrupt(self) -> None:
        """Ctrl-C: Wine turns SIGINT into a CTRL_C_EVENT for the process. (Start the
        agent as ``python.exe -m agent``: ``pdh.exe`` is a launcher that ignores Ctrl-C and
        waits for its python child, which a real console would reach too.)"""
        os.kill(self.popen.pid, signal.SIGINT)

    def wait(self, timeout: float) -> int:
        code = self.popen.wait(timeout)
        self._pump.join(5)
        return code

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(10)
        self._pump.join(5)


class Wine:
    """One Wine session for the test run (see the module docstring)."""

    def __init__(self, env_dir: Path, workdir: Path, *, wrap: Sequence[str] = ()) -> None:
        self.env_dir = env_dir
        self.prefix = env_dir / "prefix"
        self.workdir = workdir
        self.wrap = list(wrap)  # e.g. nsenter into a network namespace, for every command
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("PIP_", "PYTHON", "VIRTUAL_ENV", "DISPLAY"))}
        self.env.update(WINEPREFIX=str(self.prefix), WINEDEBUG="-all",
                        WINEDLLOVERRIDES="mscoree,mshtml=", LANG="C.UTF-8")
        self._xvfb: subprocess.Popen[bytes] | None = None
        self.procs: list[WineProcess] = []
        self._count = 0

    # session -----------------------------------------------------------------------

    def start(self) -> None:
        self.env["DISPLAY"] = self._start_xvfb()
        # A server left by the setup (or a crashed run) would not know this display:
        # end it and wait until it is gone (`-k` returns at once), then start ours.
        self._quiet(["wineserver", "-k"], check=False)
        self._quiet(["wineserver", "-w"], check=False)
        # A new prefix (wineboot makes it) needs its folder first: wineserver refuses to
        # start without it ("chdir ... No such file"), and that refusal was silent: the
        # session was then not persistent, and it ended with the last program, taking
        # any service it had started with it (issue 30).
        self.prefix.mkdir(parents=True, exist_ok=True)
        self._quiet(["wineserver", "-p"], check=False)  # refuses if one runs: fine
        self._boot()

    def _boot(self) -> None:
        """Wine's services, with no pipe of ours (see the module doc). Its output goes to
        a file; a failed boot is tried again (seen once on a new machine), then reported
        with what it said."""
        log = self.workdir / "wineboot.log"
        for _attempt in range(3):
            with log.open("ab") as out:
                code = subprocess.run([*self.wrap, "wineboot"], env=self.env,
                                      stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                      timeout=120).returncode
            if code == 0:
                return
            self._quiet(["wineserver", "-w"], check=False)
            self._quiet(["wineserver", "-p"], check=False)
        raise RuntimeError(f"wineboot failed ({code}): {log.read_text(errors='replace')}")

    def new_session(self) -> None:
        """After ``wineboot --end-session``: Wine's services again."""
        self._boot()

    def close(self) -> None:
        for proc in self.procs:
            proc.stop()
        self._quiet(["wineserver", "-k"], check=False)
        if self._xvfb is not None:
            self._xvfb.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._xvfb.wait(5)

    def _quiet(self, args: Sequence[str], check: bool = True) -> None:
        subprocess.run([*self.wrap, *args], env=self.env, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=check,
                       timeout=120)

    def _start_xvfb(self) -> str:
        read_fd, write_fd = os.pipe()
        try:
            self._xvfb = subprocess.Popen(
                ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1024x768x24",
                 "-nolisten", "tcp"], pass_fds=(write_fd,), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        finally:
            os.close(write_fd)
        with os.fdopen(read_fd, "rb") as pipe:
            number = pipe.readline().strip()
        if not number.isdigit():
            raise RuntimeError("Xvfb did not start")
        return f":{number.decode()}"

    # processes ---------------------------------------------------------------------

    def _argv(self, args: Sequence[str]) -> list[str]:
        return [*self.wrap, "wine", *args]

    def run(self, *args: str, timeout: float = 120, cwd: Path | None = None
            ) -> subprocess.CompletedProcess[str]:
        """Run a Windows program to its end; stdout and stderr together, as text."""
        return subprocess.run(self._argv(args), env=self.env, cwd=cwd or self.workdir,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, errors="replace",
                              timeout=timeout)

    def python(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return self.run(PY, *args, timeout=timeout)

    def start_process(self, *args: str, name: str = "proc", cwd: Path | None = None,
                      env: dict[str, str] | None = None) -> WineProcess:
        self._count += 1
        log = self.workdir / f"{name}-{self._count}.log"
        popen = subprocess.Popen(self._argv(args), env={**self.env, **(env or {})},
                                 cwd=cwd or self.workdir, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        proc = WineProcess(popen, log)
        self.procs.append(proc)
        return proc

    def reg_query(self, key: str, value: str) -> str:
        return self.run("reg", "query", key, "/v", value).stdout

    def screenshot(self, path: Path) -> Path:
        subprocess.run(["import", "-display", self.env["DISPLAY"], "-window", "root",
                        str(path)], check=True, timeout=30)
        return path

    def xdotool(self, *args: str) -> str:
        return subprocess.run(["xdotool", *args], env=self.env, capture_output=True,
                              text=True, timeout=30, check=True).stdout


def wine_available(env_dir: str | None) -> str:
    """'' when the Windows suite can run here, else why not."""
    if not env_dir:
        return "the Windows suite runs under Wine: make test-windows"
    if shutil.which("wine") is None or shutil.which("wineserver") is None:
        return "wine is not installed (Debian: apt-get install wine wine64)"
    missing = [t for t in ("Xvfb", "xdotool", "import") if shutil.which(t) is None]
    if missing:
        return f"missing for the tray tests: {', '.join(missing)}"
    if not (Path(env_dir) / "prefix" / "drive_c" / "py311" / "python.exe").exists():
        return f"no Windows Python in {env_dir}: run tests/windows/setup_wine.sh {env_dir}"
    return ""


@contextlib.contextmanager
def wine_session(env_dir: Path, workdir: Path) -> Iterator[Wine]:
    wine = Wine(env_dir, workdir)
    try:
        wine.start()
        yield wine
    finally:
        wine.close()
