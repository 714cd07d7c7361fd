"""The ``pdh`` command line as a user runs it: real child processes, real files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from core.erp.erpsim import write_garbage
from tests.conftest import wait_for


def pdh(
    *args: str, cwd: Path | None = None, timeout: float = 120,
    env_extra: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env_extra or {})}
    env.pop("PDH_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "agent", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd, env=env)


def write_config(tmp_path: Path, db: Path, extra: str = "") -> Path:
    cfg = tmp_path / "pdh.toml"
    cfg.write_text(
        f'[database]\npath = "{db.as_posix()}"\n'
        "[watch]\nsettle_interval = 0.2\nsettle_checks = 2\n"
        '[api]\nenabled = false\n[dashboard]\nenabled = false\n'
        '[log]\ndir = "logs"\n[state]\ndir = "state"\n[store]\ndir = "store"\n' + extra,
        encoding="utf-8",
    )
    return cfg


def test_version() -> None:
    done = pdh("--version")
    assert done.returncode == 0 and done.stdout.startswith("pdh ")


def test_demo_db_and_erp_sim(tmp_path: Path) -> None:
    db = tmp_path / "d" / "p.db"
    done = pdh("demo-db", str(db), "--rows", "1500", "--seed", "3", "--days", "20")
    assert done.returncode == 0, done.stderr
    assert "1,500 production records" in done.stdout
    done = pdh("erp-sim", str(db), "--mode", "rebuild", "--rows", "700", "--seconds", "0")
    assert done.returncode == 0, done.stderr
    assert "committed" in done.stdout
    bad = pdh("erp-sim", str(db), "--mode", "explode")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
    bad = pdh("demo-db", str(db), "--rows", "-5")
    assert bad.returncode == 2 and "positive" in bad.stderr


def test_check_holds_back_and_publish_force_publishes(tmp_path: Path, small_db: Path) -> None:
    from core.erp.erpsim import ExportMode, simulate_export, write_garbage

    cfg = write_config(tmp_path, small_db)
    first = pdh("check", "--config", str(cfg), "--json")
    assert first.returncode == 0, first.stderr
    data = json.loads(first.stdout)
    assert data["publish"] == "published" and data["published"]["rows"] == 2000
    again = json.loads(pdh("check", "--config", str(cfg), "--json").stdout)
    assert again["publish"] == "unchanged"

    simulate_export(small_db, ExportMode.REPLACE, rows=500, seconds=0.0, seed=4, days=20)
    held = pdh("check", "--config", str(cfg))
    assert held.returncode == 1
    assert "export held back" in held.stdout and "pdh publish --force" in held.stdout
    text = pdh("status", "--config", str(cfg)).stdout
    assert "2,000 records" in text and "held back:" in text and "500 production" in text

    assert pdh("publish", "--config", str(cfg)).returncode == 2  # --force is required
    forced = pdh("publish", "--force", "--config", str(cfg))
    assert forced.returncode == 0, forced.stderr
    assert "published 500 records" in forced.stdout
    text = pdh("status", "--config", str(cfg)).stdout
    assert "500 records" in text and "published anyway" in text and "held back:" not in text

    write_garbage(small_db)
    bad = pdh("check", "--config", str(cfg), "--json")
    assert bad.returncode == 1 and json.loads(bad.stdout)["publish"] == "held_back"
    refused = pdh("publish", "--force", "--config", str(cfg))
    assert refused.returncode == 1 and "cannot be published even by force" in refused.stderr


def test_check_exit_codes_and_json(tmp_path: Path, small_db: Path) -> None:
    cfg = write_config(tmp_path, small_db)
    inspect = pdh("check", "--config", str(cfg), "--no-heal", "--json")
    assert inspect.returncode == 1
    data = json.loads(inspect.stdout)
    assert data["ok"] is False and "index idx_records_lot_no is missing" in data["problems"]

    healed = pdh("check", "--config", str(cfg))
    assert healed.returncode == 0, healed.stderr
    assert healed.stdout.startswith("healed in")

    ok = pdh("check", "--config", str(cfg), "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["result"] == "ok"

    events = (tmp_path / "logs" / "events.jsonl").read_text("utf-8").splitlines()
    # The hub's own cycle: a file it has not seen settles first; the second check finds
    # it unchanged (its version is kept in state.json, as the hub's is).
    assert [json.loads(e)["event"] for e in events] == [
        "db_change_detected", "db_settled", "indexes_healed", "snapshot_published", "check_ok"]
    assert json.loads(ok.stdout)["publish"] == "unchanged"

    write_garbage(small_db)
    broken = pdh("check", "--config", str(cfg))
    assert broken.returncode == 1
    assert "not an SQLite database" in broken.stdout

    missing = pdh("check", "--config", str(cfg), "--db", str(tmp_path / "nope.db"))
    assert missing.returncode == 1 and "not found" in missing.stdout


def test_run_headless_stops_cleanly_on_sigterm(tmp_path: Path, small_db: Path) -> None:
    cfg = write_config(tmp_path, small_db)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent", "run", "--headless", "--config", str(cfg)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    try:
        state = tmp_path / "state" / "state.json"
        wait_for(lambda: state.exists() and '"healed"' in state.read_text("utf-8"), 30,
                 message="the first heal to be saved")
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "received SIGTERM; shutting down" in out and "hub stopped" in out
    assert "Traceback" not in out
    status = pdh("status", "--config", str(cfg), "--json")
    assert status.returncode == 0
    assert json.loads(status.stdout)["last_check"]["result"] == "healed"


def test_sigterm_during_a_heal_held_up_by_a_lock_exits_at_once(
        tmp_path: Path, small_db: Path) -> None:
    """Another program holds the write lock; the heal waits for it (with these settings
    about half a minute). SIGTERM ends the agent within a few seconds, exit 0, with the
    file whole and no index half-made."""
    import sqlite3
    import time

    cfg = write_config(tmp_path, small_db, "[heal]\nconnect_timeout = 3.0\nretries = 5\n"
                                           "retry_backoff = 1.0\n")
    erp = sqlite3.connect(small_db, isolation_level=None)
    erp.execute("BEGIN IMMEDIATE")
    erp.execute("UPDATE production_records SET good_qty = good_qty WHERE rowid = 1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent", "run", "--headless", "--config", str(cfg)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        log_file = tmp_path / "logs" / "pdh.log"
        wait_for(lambda: log_file.exists() and "database busy" in log_file.read_text("utf-8"),
                 30, message="the heal waiting for the lock")
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
        erp.execute("ROLLBACK")
        erp.close()
    assert proc.returncode == 0, out
    assert took < 5, f"stopping took {took:.1f} s"
    assert "hub stopped" in out and "Traceback" not in out
    check = sqlite3.connect(small_db)
    try:
        assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        made = [r[0] for r in check.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'idx_%'")]
    finally:
        check.close()
    assert made == []  # the lock was never had: nothing written
    json.loads((tmp_path / "state" / "state.json").read_text("utf-8"))


@pytest.mark.parametrize("sig", [signal.SIGINT])
def test_run_headless_ctrl_c(tmp_path: Path, small_db: Path, sig: signal.Signals) -> None:
    cfg = write_config(tmp_path, small_db)
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent", "run", "--headless", "--config", str(cfg)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        log_file = tmp_path / "logs" / "pdh.log"
        wait_for(lambda: log_file.exists() and "indexes restored" in log_file.read_text("utf-8"),
                 30, message="indexes restored in the log")
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "Traceback" not in out


def test_status_asks_the_running_agent_then_falls_back(tmp_path: Path, small_db: Path) -> None:
    from tests.conftest import free_port

    port = free_port()
    cfg = write_config(tmp_path, small_db)
    cfg.write_text(
        cfg.read_text("utf-8").replace("[api]\nenabled = false", f"[api]\nport = {port}"),
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent", "run", "--headless", "--config", str(cfg)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    # An office PC's proxy settings: the hub on this computer is asked directly anyway.
    proxied = {name: f"http://127.0.0.1:{free_port()}" for name in
               ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy")}
    try:
        def live() -> dict[str, object] | None:
            done = pdh("status", "--config", str(cfg), "--json", env_extra=proxied)
            data = json.loads(done.stdout)
            ready = data["source"] == "running agent" and data.get("last_check")
            return data if ready else None

        data = wait_for(live, 60, interval=0.5, message="the agent answering pdh status")
        assert data["servers"]["api"]["state"] == "running"  # type: ignore[index]
        asked = pdh("check", "--config", str(cfg), env_extra=proxied)
        assert asked.returncode == 0, asked.stderr
        assert "asked it to check now" in asked.stdout
        wait_for(lambda: (d := live()) and d["last_check"]["result"] == "ok",  # type: ignore[index]
                 30, interval=0.5, message="the check asked for, done")
        text = pdh("status", "--config", str(cfg)).stdout
        assert "from:             running agent" in text
        assert f"api:              running http://127.0.0.1:{port}" in text
        assert "data served:      as of " in text and "2,000 records" in text
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    after = json.loads(pdh("status", "--config", str(cfg), "--json").stdout)
    assert after["source"] == "saved state (agent not reachable)"
    assert after["last_check"]["result"] == "ok"  # the check pdh check asked for


@pytest.mark.parametrize("command", ["dashboard", "api"])
def test_a_bad_port_is_one_line_and_exit_2_as_python_m_agent_cli(
        tmp_path: Path, small_db: Path, command: str) -> None:
    """Run as ``python -m agent.cli``: the command line runs as __main__, and must not be
    imported a second time by the commands (two UsageError classes, a traceback)."""
    env = {**os.environ, "PDH_CONFIG": str(write_config(tmp_path, small_db))}
    done = subprocess.run([sys.executable, "-m", "agent.cli", command, "--port", "70000"],
                          capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--port" in lines[0] and "70000" in lines[0], done.stderr
    assert "Traceback" not in done.stderr


def test_no_command_module_imports_the_cli() -> None:
    """The wiring is one way: agent/cli/main.py imports the command modules, never the
    reverse, and nothing is registered by importing a module."""
    import ast

    agent_dir = Path(__file__).resolve().parents[3] / "agent"
    offenders = []
    for source in sorted(agent_dir.rglob("*.py")):
        if source.relative_to(agent_dir).as_posix() in ("cli/main.py", "__main__.py",
                                                        "cli/__main__.py"):
            continue
        for node in ast.walk(ast.parse(source.read_text("utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n == "agent.cli.main" for n in names):
                offenders.append(source.relative_to(agent_dir).as_posix())
    assert offenders == []
