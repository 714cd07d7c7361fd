"""One agent per configuration: a real OS lock, a real second process, a real crash."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from agent.instance import AlreadyRunning, InstanceInfo, InstanceLock, instance_key, read_info

HOLD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
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


def test_key_depends_on_config_and_database(tmp_path: Path) -> None:
    a = instance_key(tmp_path / "a.toml", tmp_path / "x.db")
    assert a == instance_key(tmp_path / "sub" / ".." / "a.toml", tmp_path / "x.db")
    assert a != instance_key(tmp_path / "b.toml", tmp_path / "x.db")
    assert a != instance_key(tmp_path / "a.toml", tmp_path / "y.db")
    assert len(a) == 16


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
    assert (tmp_path / "agent-k1.lock").exists() and (tmp_path / "agent-k1.json").exists()
    with InstanceLock(tmp_path, "k1") as lock:
        lock.acquire(InstanceInfo(pid=os.getpid(), dashboard_url=None))
        info = read_info(lock.info_path)
        assert info is not None and info.pid == os.getpid() and info.started
        assert info.describe() == f"pid {os.getpid()}, dashboard off"
    assert not (tmp_path / "agent-k1.json").exists()  # released cleanly: info removed
