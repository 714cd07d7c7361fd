"""One check (and heal) in the foreground, for ``pdh check``: no watching, no servers."""

from __future__ import annotations

import sqlite3
from typing import Any

from core.config import Config
from core.errors import DbBusy, DbChanged, DbMissing, DbReadOnly, DbUnreadable
from core.eventlog import EventLog, EventName


def check_once(config: Config, *, heal_it: bool = True) -> dict[str, Any]:
    """Check ``config.db_path`` against the index spec; heal it unless ``heal_it`` is False.

    Returns a JSON-ready dict: ok (nothing left to fix), result (ok|healed|failed),
    healed, problems, duration_s, summary (one line for a person).
    """
    from core.heal import heal

    path = config.db_path
    events = EventLog(config.events_file)
    out: dict[str, Any] = {"db": str(path), "healed": [], "problems": [], "duration_s": 0.0}
    try:
        report = heal(path, config.heal, dry_run=not heal_it)
    except DbMissing as exc:
        events.emit(EventName.DB_MISSING, path=str(path))
        return {**out, "ok": False, "result": "failed", "problems": [str(exc)],
                "summary": f"problem: {exc}"}
    except DbUnreadable as exc:
        events.emit(EventName.DB_UNREADABLE, error=str(exc))
        return {**out, "ok": False, "result": "failed", "problems": [str(exc)],
                "summary": f"problem: {exc}"}
    except (DbBusy, DbChanged, DbReadOnly, sqlite3.Error, OSError) as exc:
        if heal_it:
            events.emit(EventName.HEAL_FAILED, error=str(exc))
        return {**out, "ok": False, "result": "failed", "problems": [str(exc)],
                "summary": f"problem: {exc}"}
    problems = report.problems
    out.update(
        ok=not problems,
        result=report.result,
        healed=report.healed,
        problems=problems,
        duration_s=round(report.duration_s, 3),
    )
    if heal_it:
        if problems:
            events.emit(EventName.HEAL_FAILED, error="; ".join(problems), healed=report.healed)
        elif report.healed:
            events.emit(EventName.INDEXES_HEALED, healed=report.healed,
                        duration_s=out["duration_s"])
        else:
            events.emit(EventName.CHECK_OK, duration_s=out["duration_s"])
    if problems:
        out["summary"] = f"{len(problems)} problem(s): " + "; ".join(problems)
    elif report.healed:
        out["summary"] = (f"healed in {report.duration_s:.2f} s: " + ", ".join(report.healed))
    else:
        out["summary"] = "ok: every index in place, statistics fresh"
    return out
