"""One check in the foreground, for ``pdh check``: heal the ERP's file in place (when
``[heal] in_place``), then copy, verify and publish it as the agent would; no watching,
no servers. The caller makes sure no agent owns the store meanwhile (one writer)."""

from __future__ import annotations

import sqlite3
from typing import Any

import anyio

from core.config import Config
from core.dbfile import DbLook, look
from core.errors import DbBusy, DbChanged, DbMissing, DbReadOnly, DbUnreadable
from core.eventlog import EventLog, EventName, utcnow
from core.freshness import assess
from core.heal import HealReport, check_readable, heal
from core.publisher import Outcome, Publisher
from core.store import store_of


def check_once(config: Config, *, heal_it: bool = True) -> dict[str, Any]:
    """Check ``config.db_path``; heal and publish it unless ``heal_it`` is False.

    Returns a JSON-ready dict: ok (nothing left to fix, and the export is the one
    served), result (ok|healed|failed), healed, problems, duration_s, publish
    (published|unchanged|held_back|failed|skipped), published, held_back, summary (one
    line for a person).
    """
    path = config.db_path
    events = EventLog(config.events_file)
    out: dict[str, Any] = {"db": str(path), "healed": [], "problems": [], "duration_s": 0.0,
                           "publish": "skipped", "published": None, "held_back": None}

    def failed(exc: Exception) -> dict[str, Any]:
        return {**out, "ok": False, "result": "failed", "problems": [str(exc)],
                "summary": f"problem: {exc}"}

    report: HealReport | None = None
    written = look(path)  # as the ERP left it: its mtime is the data's "as of"
    try:
        if heal_it and not config.heal.in_place:
            check_readable(path)
        else:
            report = heal(path, config.heal, dry_run=not heal_it)
    except DbMissing as exc:
        events.emit(EventName.DB_MISSING, path=str(path))
        return failed(exc)
    except DbUnreadable as exc:
        events.emit(EventName.DB_UNREADABLE, error=str(exc))
        if heal_it:
            return _with_freshness(config, _publish(config, events, failed(exc), written))
        return failed(exc)
    except (DbBusy, DbChanged, DbReadOnly, sqlite3.Error, OSError) as exc:
        if not heal_it:
            return failed(exc)
        events.emit(EventName.HEAL_FAILED, error=str(exc))
        # The copy is healed instead.
        return _with_freshness(config, _publish(config, events, failed(exc), written))
    if report is not None:
        problems = report.problems
        out.update(ok=not problems, result=report.result, healed=report.healed,
                   problems=problems, duration_s=round(report.duration_s, 3))
        if heal_it:
            if problems:
                events.emit(EventName.HEAL_FAILED, error="; ".join(problems),
                            healed=report.healed)
            elif report.healed:
                events.emit(EventName.INDEXES_HEALED, healed=report.healed,
                            duration_s=out["duration_s"])
            else:
                events.emit(EventName.CHECK_OK, duration_s=out["duration_s"])
        if problems:
            out["summary"] = f"{len(problems)} problem(s): " + "; ".join(problems)
        elif report.healed:
            out["summary"] = f"healed in {report.duration_s:.2f} s: " + ", ".join(report.healed)
        else:
            out["summary"] = "ok: every index in place, statistics fresh"
    else:
        out.update(ok=True, result="ok", summary="ok: the ERP's file is not healed in place")
    if not heal_it:
        return out
    return _with_freshness(config, _publish(config, events, out, written))


def _with_freshness(config: Config, out: dict[str, Any]) -> dict[str, Any]:
    """An overdue export (or old data) is a problem that remains: exit 1."""
    store = store_of(config)
    fresh = assess(config.freshness, store.current(), utcnow())
    out["freshness"] = fresh.model_dump(mode="json")
    if fresh.problem and fresh.message:
        out = {**out, "ok": False, "problems": [*out["problems"], fresh.message],
               "summary": f"{out['summary']}; {fresh.message}"}
    return out


def _publish(config: Config, events: EventLog, out: dict[str, Any],
             written: DbLook) -> dict[str, Any]:
    """Publish the file as it is now, unless the store already serves (or rejected) it."""

    async def run() -> tuple[Outcome | None, Publisher]:
        publisher = Publisher(config, events)
        await publisher.start()
        current = await anyio.to_thread.run_sync(look, config.db_path)
        if publisher.published and publisher.published.source_version == current.version:
            return None, publisher
        return await publisher.publish_export(current, written=written), publisher

    try:
        outcome, publisher = anyio.run(run, backend="asyncio")
    except DbChanged as exc:
        return {**out, "ok": False, "publish": "failed",
                "problems": [*out["problems"], f"{exc}; run the check again"],
                "summary": f"{out['summary']}; not published: {exc}"}
    except DbMissing as exc:
        return {**out, "ok": False, "publish": "failed",
                "problems": [*out["problems"], str(exc)],
                "summary": f"problem: {exc}"}
    published = publisher.published
    out["published"] = published.model_dump(mode="json") if published else None
    if outcome is None:
        return {**out, "publish": "unchanged",
                "summary": f"{out['summary']}; already published as {published.version}"
                if published else out["summary"]}
    if outcome.published is not None:
        assert published is not None
        return {**out, "publish": "published",
                "summary": f"{out['summary']}; published {published.rows:,} records "
                           f"as {published.version}"}
    if outcome.held_back is not None:
        held = outcome.held_back
        out["held_back"] = held.model_dump(mode="json")
        hint = " (pdh publish --force publishes it anyway)" if held.forceable else ""
        return {**out, "ok": False, "publish": "held_back",
                "problems": [*out["problems"], f"held back: {held.reason}"],
                "summary": f"export held back: {held.reason}{hint}"}
    error = outcome.store_error or "not published"
    return {**out, "ok": False, "publish": "failed", "problems": [*out["problems"], error],
            "summary": f"not published: {error}"}
