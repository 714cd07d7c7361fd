"""One check in the foreground, for ``pdh check``: the hub's own cycle, run once as Check
Now runs it (settle, heal in place when ``[heal] in_place``, copy, verify, publish, or hold
back), with no watching and no servers; or, with ``heal_it=False``, only a look at the
indexes that changes nothing. The caller holds the database's lock (one writer)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import anyio

from core.config import Config
from core.errors import DbBusy, DbChanged, DbMissing, DbReadOnly, DbUnreadable
from core.eventlog import utcnow
from core.freshness import assess
from core.heal import heal
from core.store import HeldBack, Published, store_of

PublishResult = Literal["published", "unchanged", "held_back", "failed", "skipped"]


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """What one check came to. ``ok``: nothing left to fix, and the export is the one
    served; ``summary``: one line for a person."""

    db: str
    ok: bool
    result: Literal["ok", "healed", "failed"]
    summary: str
    healed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    publish: PublishResult = "skipped"
    published: Published | None = None
    held_back: HeldBack | None = None
    freshness: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        for name in ("published", "held_back"):
            model = getattr(self, name)
            data[name] = model.model_dump(mode="json") if model is not None else None
        return data


def check_once(config: Config, *, heal_it: bool = True) -> CheckOutcome:
    """Check ``config.db_path``: the hub's cycle once, or (``heal_it=False``) a look."""
    if not heal_it:
        return _inspect(config)
    return anyio.run(_cycle_once, config, backend="asyncio")


async def _cycle_once(config: Config) -> CheckOutcome:
    from core.hub import Hub  # the hub imports the API-facing state; only here is it run

    hub = Hub(config)
    before = hub.publisher.published
    started, clock = utcnow(), time.perf_counter()
    await hub.run_once()
    status = hub.status()
    check = status.last_check if status.last_check and status.last_check.at >= started else None
    published, held = status.published, status.held_back
    problems: list[str] = []
    if status.db.problem is not None:
        problems.append(status.db.error or f"database {status.db.problem}")
    elif check is not None and check.error:
        problems.append(check.error)
    if held is not None and held.version == status.db.version:
        publish: PublishResult = "held_back"
        problems.append(f"held back: {held.reason}")
    elif status.store_error:
        publish = "failed"
        problems.append(status.store_error)
    elif published is not None and (before is None or published.version != before.version):
        publish = "published"
    elif published is not None:
        publish = "unchanged"
    else:
        publish = "failed"
    fresh = assess(config.freshness, published, utcnow())
    if fresh.problem and fresh.message:
        problems.append(fresh.message)
    result = check.result if check is not None else ("failed" if problems else "ok")
    summary = _summary(check.healed if check else [], publish, published, held, problems,
                       seconds=check.duration_s if check else 0.0)
    return CheckOutcome(
        db=str(config.db_path), ok=not problems, result=result, summary=summary,
        healed=list(check.healed) if check else [], problems=problems,
        duration_s=round(time.perf_counter() - clock, 3), publish=publish,
        published=published, held_back=held if publish == "held_back" else None,
        freshness=fresh.model_dump(mode="json"),
    )


def _summary(healed: list[str], publish: PublishResult, published: Published | None,
             held: HeldBack | None, problems: list[str], *, seconds: float) -> str:
    if publish == "held_back" and held is not None:
        hint = " (pdh publish --force publishes it anyway)" if held.forceable else ""
        return f"export held back: {held.reason}{hint}"
    first = (f"healed in {seconds:.2f} s: " + ", ".join(healed) if healed
             else "ok: every index in place, statistics fresh")
    if problems:
        first = f"{len(problems)} problem(s): " + "; ".join(problems)
    if publish == "published" and published is not None:
        return f"{first}; published {published.rows:,} records as {published.version}"
    if publish == "unchanged" and published is not None:
        return f"{first}; already published as {published.version}"
    return first


def _inspect(config: Config) -> CheckOutcome:
    """The indexes as they are, changing nothing (``pdh check --no-heal``)."""
    path = config.db_path
    try:
        report = heal(path, config.heal, dry_run=True)
    except (DbMissing, DbUnreadable, DbBusy, DbChanged, DbReadOnly, OSError) as exc:
        return CheckOutcome(db=str(path), ok=False, result="failed", problems=[str(exc)],
                            summary=f"problem: {exc}")
    problems = report.problems
    served = store_of(config).current()
    summary = (f"{len(problems)} problem(s): " + "; ".join(problems) if problems
               else "ok: every index in place, statistics fresh")
    return CheckOutcome(db=str(path), ok=not problems, result=report.result,
                        summary=summary, healed=report.healed, problems=problems,
                        duration_s=round(report.duration_s, 3), published=served)
