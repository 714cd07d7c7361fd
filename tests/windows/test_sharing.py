"""Windows' file-sharing rules against the ERP's rename-over export (defect B) and the
instance info file. Every process here is a Windows process: Wine applies the sharing
rules only between Wine processes."""

from __future__ import annotations

import json
import textwrap
import threading
from pathlib import Path

import httpx
import pytest

from tests.windows.conftest import free_port, write_config
from tests.windows.wine import PDH, PY, Wine, wait_until, winpath

pytestmark = pytest.mark.slow

HOLDER = """
import ctypes, sys, time
h = ctypes.windll.kernel32.CreateFileW(sys.argv[1], 0x80000000, 0, None, 3, 0x80, None)
print("HELD" if h not in (0, -1, 0xFFFFFFFFFFFFFFFF) else "NOT HELD", flush=True)
time.sleep(3)
"""

LOOKS_WHILE_HELD = textwrap.dedent("""\
    # One look, then another process opens the file with no sharing at all; our looks
    # go on. A look that opened the file now would fail to read its header.
    import subprocess, sys
    from pathlib import Path
    from core import dbfile
    db, holder_code = Path(sys.argv[1]), open(sys.argv[3]).read()
    dbfile.HEADERS.enabled = sys.argv[2] == "memo"
    first = dbfile.look(db)
    holder = subprocess.Popen([sys.executable, "-c", holder_code, str(db)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "HELD"
    looks = [dbfile.look(db) for _ in range(50)]
    holder.wait()
    print("UNREADABLE", sum(not lk.header_valid for lk in looks),
          "SAME", sum(lk.same_content(first) for lk in looks))
    """)


@pytest.mark.parametrize("memo", ["memo", "no-memo"])
def test_looks_at_an_unchanged_file_do_not_open_it(wine: Wine, wdir: Path, memo: str) -> None:
    """Any open handle on the ERP's file makes its rename-over fail at that moment, with
    any share mode (seen here: FILE_SHARE_DELETE does not help a replace). So on Windows a
    look opens the file only when its stat changed. 'no-memo' (every look reads the
    header, as on main) shows the test can fail."""
    assert wine.run(PDH, "demo-db", winpath(wdir / "x.db"), "--rows", "200").returncode == 0
    (wdir / "looks.py").write_text(LOOKS_WHILE_HELD)
    (wdir / "holder.py").write_text(HOLDER)
    out = wine.python(winpath(wdir / "looks.py"), winpath(wdir / "x.db"), memo,
                      winpath(wdir / "holder.py")).stdout
    if memo == "memo":
        assert "UNREADABLE 0 SAME 50" in out, out
    else:
        assert "UNREADABLE 50 SAME 0" in out, out


def test_instance_info_survives_a_reader(wine: Wine, wdir: Path) -> None:
    """``os.replace`` of the info file onto one another process holds open raised
    PermissionError at start; it now waits for the reader."""
    script = textwrap.dedent("""\
        import os, sys, time, threading
        from pathlib import Path
        from agent.instance import InstanceInfo, InstanceLock, read_info
        state = Path(sys.argv[1])
        lock = InstanceLock(state, "k")
        state.mkdir(parents=True, exist_ok=True)
        lock.info_path.write_text("{}")
        reader = open(lock.info_path, "rb")          # a plain reader, held 0.5 s
        threading.Timer(0.5, reader.close).start()
        lock.acquire(InstanceInfo(pid=os.getpid(), dashboard_url=None, config=None, db="x"))
        reader = open(lock.info_path, "rb")          # again, while it is rewritten
        threading.Timer(0.3, reader.close).start()
        lock.write_info(InstanceInfo(pid=os.getpid(), dashboard_url="u", config=None, db="x"))
        print("INFO", read_info(lock.info_path).dashboard_url)
        lock.release()
        """)
    (wdir / "info.py").write_text(script)
    out = wine.python(winpath(wdir / "info.py"), winpath(wdir / "state")).stdout
    assert "INFO u" in out, out


ERP_LOOP = textwrap.dedent("""\
    # The ERP side: replace the file every `pause` s, no retry; count what fails.
    import os, shutil, sys, time
    db, count, pause = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    shutil.copyfile(db, db + ".src")
    failed = 0
    for i in range(count):
        shutil.copyfile(db + ".src", db + ".new")
        try:
            os.replace(db + ".new", db)
        except PermissionError as exc:
            failed += 1
            print("FAILED", i, exc, flush=True)
            os.remove(db + ".new")
        time.sleep(pause)
    print("RESULT", count, failed, flush=True)
    """)


def test_replaces_never_fail_while_readers_are_busy(wine: Wine, wdir: Path) -> None:
    """30 replaces 0.5 s apart while API clients read all the time: readers read the
    hub's snapshots and settle looks open the source only once it held still, so at most
    a rare replace fails. (The loop never pauses long enough to settle: heal and copy do
    not run during it.)"""
    assert wine.run(PDH, "demo-db", winpath(wdir / "hub.db"), "--rows", "20000").returncode == 0
    port = free_port()
    write_config(wdir, api_port=port)
    hub = wine.start_process(PY, "-m", "agent", "run", "--headless", "--config",
                             winpath(wdir / "pdh.toml"), name="hub")
    base = f"http://127.0.0.1:{port}/api/v1"
    wait_until(lambda: _published(base), "the first publish", timeout=90)

    stop = threading.Event()
    answers: list[int] = []

    def read() -> None:
        with httpx.Client(timeout=10, trust_env=False) as client:
            while not stop.is_set():
                for route in ("/records?limit=50", "/summary/daily", "/kpis", "/health"):
                    answers.append(client.get(base + route).status_code)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for t in readers:
        t.start()
    try:
        (wdir / "erp.py").write_text(ERP_LOOP)
        out = wine.python(winpath(wdir / "erp.py"), winpath(wdir / "hub.db"), "30", "0.5",
                          timeout=180).stdout
    finally:
        stop.set()
        for t in readers:
            t.join(15)
    result = [line for line in out.splitlines() if line.startswith("RESULT")]
    print("ERP replaces with readers busy:", result, out.count("FAILED"), "failed")
    # Readers never open the ERP's file and an unchanged file is never opened; what is
    # left is the one header read after each change, once the stat held still for a
    # look, and a replace landing in that moment fails. Seen: 0 or 1 of 30 on an idle
    # machine, 4 at load 10-15 (the read takes longer under Wine then); main before the
    # snapshot issue, readers opening the file: 6-10 on an idle machine. The bound says
    # "rare", not "never"; see the note.
    assert result and result[0].startswith("RESULT 30 "), out
    assert int(result[0].split()[2]) <= 5, out
    assert answers and set(answers) <= {200, 304}, sorted(set(answers))
    # and the last export still gets published once the loop has stopped
    wait_until(lambda: "DB update settled" in hub.output(), "the settle after the loop", 60)
    hub.interrupt()
    assert hub.wait(20) == 0


def _published(base: str) -> bool:
    try:
        return bool(httpx.get(base + "/hub/status", timeout=5, trust_env=False)
                    .json().get("published"))
    except (httpx.HTTPError, json.JSONDecodeError):
        return False


def test_in_place_heal_window(wine: Wine, wdir: Path) -> None:
    """Measured, not bounded (figures for 1M rows: docs/benchmarks.md): how long the ERP's
    replaces fail while the hub heals the ERP's file in place and while it copies it
    (SQLite holds the file without FILE_SHARE_DELETE). The rule is real: a replace does
    fail during the heal."""
    bench = Path(__file__).resolve().parents[2] / "bench" / "bench_windows_replace.py"
    out = wine.python(winpath(bench), winpath(wdir / "bench"), "--rows", "100000",
                      timeout=600)
    assert out.returncode == 0, out.stdout[-3000:]
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    print("replace blocked:", figures)
    assert figures["heal_replaces_failed"] > 0, figures
    assert figures["heal_replaces_ok"] > 0 and figures["copy_replaces_ok"] > 0, figures
