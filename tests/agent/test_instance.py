"""One hub per database: a real OS lock, a real second process, a real crash."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path, PureWindowsPath

import pytest

from agent.instance import AlreadyRunning, InstanceInfo, InstanceLock, hub_lock, read_info
from core.paths import database_key
from tests.conftest import make_config

HOLD = textwrap.dedent("""
    import sys, time
    from pathlib import Path, PureWindowsPath
    from agent.instance import InstanceInfo, InstanceLock
    import os
    lock = InstanceLock(Path(sys.argv[1]), sys.argv[2])
    lock.acquire(InstanceInfo(pid=os.getpid(), dashboard_url="http://127.0.0.1:8501/"))
    print("locked", flush=True)
    time.sleep(60)
""")


def hold_lock(state_dir: Path, key: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(state_dir), key],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_key_names_the_database_alone(tmp_path: Path) -> None:
    a = hub_lock(make_config(tmp_path / "a", db=tmp_path / "x.db"))
    # Another config (its own state folder) for the same file, named another way: one lock.
    b = hub_lock(make_config(tmp_path / "b", db=tmp_path / "sub" / ".." / "x.db"))
    other = hub_lock(make_config(tmp_path / "a", db=tmp_path / "y.db"))
    assert a.lock_path == b.lock_path != other.lock_path
    assert a.lock_path.name == f"hub-{database_key(tmp_path / 'x.db')}.lock"
    # Also held in an explicit [state] dir, where a service and a tray sharing it meet.
    assert a.lock_paths[1] == tmp_path / "a" / "state" / a.lock_path.name
    assert len(database_key(tmp_path / "x.db")) == 10


@pytest.mark.parametrize(("one", "same"), [
    (r"C:\ERP\Production_Analysis.db", r"c:\erp\production_analysis.db"),
    (r"C:\ERP\Plant1\production_analysis.db", r"C:\ERP\Plant1\PRODUCTION_ANALYSIS.DB"),
])
def test_windows_paths_differing_in_case_are_one_database(one: str, same: str) -> None:
    assert database_key(PureWindowsPath(one)) == database_key(PureWindowsPath(same))
    assert database_key(PureWindowsPath(r"C:\ERP\Plant1\production_analysis.db")) != (
        database_key(PureWindowsPath(r"C:\ERP\Plant2\production_analysis.db")))


def test_two_configs_for_one_database_meet_at_one_lock(tmp_path: Path) -> None:
    first = hub_lock(make_config(tmp_path / "a", db=tmp_path / "x.db"))
    first.acquire(InstanceInfo(pid=os.getpid(), config="a.toml", db=str(tmp_path / "x.db")))
    try:
        second = hub_lock(make_config(tmp_path / "b", db=tmp_path / "x.db"))
        with pytest.raises(AlreadyRunning) as caught:
            second.acquire(InstanceInfo(pid=os.getpid()), wait_info_s=0)
        assert str(caught.value) == (f"already running for {tmp_path / 'x.db'} "
                                     f"(pid {os.getpid()}, config a.toml, dashboard off)")
        assert not second.held
        with hub_lock(make_config(tmp_path / "b", db=tmp_path / "y.db")) as third:
            third.acquire(InstanceInfo(pid=os.getpid()))  # another database: its own lock
    finally:
        first.release()


def test_second_holder_is_told_who_runs_and_a_crash_frees_the_lock(tmp_path: Path) -> None:
    proc = hold_lock(tmp_path, "k1")
    try:
        lock = InstanceLock(tmp_path, "k1")
        with pytest.raises(AlreadyRunning) as caught:
            lock.acquire(InstanceInfo(pid=os.getpid()))
        assert str(caught.value) == f"already running (pid {proc.pid}, http://127.0.0.1:8501/)"
        assert not lock.held
        with InstanceLock(tmp_path, "other") as other:  # another config: its own lock
            other.acquire(InstanceInfo(pid=os.getpid()))
    finally:
        proc.send_signal(signal.SIGKILL)  # a crash: no clean-up at all
        proc.wait(10)
        assert proc.stdout is not None
        proc.stdout.close()
    # The stale files are still there, the lock is not.
    assert (tmp_path / "k1.lock").exists() and (tmp_path / "k1.json").exists()
    with InstanceLock(tmp_path, "k1") as lock:
        lock.acquire(InstanceInfo(pid=os.getpid(), dashboard_url=None))
        info = read_info(lock.info_path)
        assert info is not None and info.pid == os.getpid() and info.started
        assert info.describe() == f"pid {os.getpid()}, dashboard off"
    assert not (tmp_path / "k1.json").exists()  # released cleanly: info removed
