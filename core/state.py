"""The hub's state: one snapshot model (what /hub/status, ``pdh status``, the tray and
the dashboard panel show), derived from a few facts, and persisted atomically.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from core.config import Config
from core.eventlog import utcnow
from core.freshness import Freshness, assess
from core.store import HeldBack, Published, store_of, write_atomically

log = logging.getLogger(__name__)


class HubState(StrEnum):
    HEALTHY = "healthy"  # green
    WORKING = "working"  # blue: settling, checking, healing
    DEGRADED = "degraded"  # amber: last good data served, but an export held back, a
    #                        problem with the ERP's file, a server down, an update waiting
    ERROR = "error"  # red: a problem, and no snapshot to serve meanwhile
    PAUSED = "paused"  # grey: auto mode off, nothing pending


class Activity(StrEnum):
    IDLE = "idle"
    SETTLING = "settling"
    CHECKING = "checking"


class Step(StrEnum):
    """What the hub is doing, finer than :class:`Activity` (the status line says which)."""

    IDLE = "idle"
    STARTING = "starting"  # before the first look at the file (busy: never green unseen)
    SETTLING = "settling"  # waiting for the ERP to finish writing
    CHECKING = "checking"  # checking (and healing) the indexes
    COPYING = "copying"  # copying, verifying and publishing the export
    PUBLISHING = "publishing"  # publishing the held-back export ("publish anyway")

    @property
    def activity(self) -> Activity:
        if self is Step.IDLE:
            return Activity.IDLE
        return Activity.SETTLING if self is Step.SETTLING else Activity.CHECKING


class DbProblem(StrEnum):
    MISSING = "missing"  # the ERP's file is not there
    UNREADABLE = "unreadable"  # it is there, but not a whole SQLite database


@dataclass(frozen=True, slots=True)
class Problem:
    """What is wrong with the ERP's file, and the sentence that says so."""

    kind: DbProblem
    message: str  # "database file not found: D:/erp/production_analysis.db"


class DbStatus(BaseModel):
    path: str
    exists: bool = False
    size: int | None = None
    mtime: datetime | None = None
    version: str = ""
    problem: DbProblem | None = None
    error: str | None = None


class CheckResult(BaseModel):
    at: datetime
    result: Literal["ok", "healed", "failed"]
    healed: list[str] = Field(default_factory=list)
    error: str | None = None
    duration_s: float = 0.0
    version: str = ""


class ServerState(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"
    STOPPED = "stopped"
    FAILED = "failed"
    GAVE_UP = "gave_up"
    DISABLED = "disabled"


class ServerStatus(BaseModel):
    state: ServerState = ServerState.STOPPED
    url: str | None = None
    restarts: int = 0
    pid: int | None = None
    error: str | None = None

    @property
    def down(self) -> bool:
        return self.state in (ServerState.FAILED, ServerState.GAVE_UP)


class StatusSnapshot(BaseModel):
    """Everything the hub shows about itself at one moment. ``message`` is
    :func:`core.status_text.status_line` of the other fields, in English."""

    state: HubState
    message: str
    activity: Activity = Activity.IDLE
    auto_mode: bool = True
    update_pending: bool = False
    db: DbStatus
    last_db_update: datetime | None = None
    last_check: CheckResult | None = None
    next_check: datetime | None = None
    servers: dict[str, ServerStatus] = Field(default_factory=dict)
    published: Published | None = Field(
        None, description="the snapshot readers are served from (null: nothing yet)")
    held_back: HeldBack | None = Field(
        None, description="the last export that failed verification, until one is published")
    store_error: str | None = Field(
        None, description="why the last copy into the snapshot store failed (disk full, ...)")
    freshness: Freshness = Field(
        default_factory=Freshness,
        description="are the ERP's exports arriving as expected ([freshness])")
    alerts: dict[str, Any] = Field(
        default_factory=dict,
        description="per alert channel: last_ok, last_error, last_error_at")
    recent_events: list[dict[str, Any]] = Field(default_factory=list)
    step: Step = Field(
        Step.IDLE, description="what the hub is doing, finer than activity: settling, "
        "checking (indexes), copying (the export), publishing (the held-back export)")
    fault: str | None = Field(
        None, description="an unexpected error ended the last check cycle (see the log)")
    pid: int | None = None
    updated_at: datetime | None = None


def derive_state(
    *,
    activity: Activity,
    auto_mode: bool,
    update_pending: bool,
    db: DbStatus,
    last_check: CheckResult | None,
    servers: dict[str, ServerStatus],
    published: bool = True,
    held_back: bool = False,
    store_error: bool = False,
    stale: bool = False,
) -> HubState:
    """The colour of the hub, from the facts, by a fixed precedence. With a published
    snapshot readers keep the last good data, so a bad export is amber, not red."""
    if activity is not Activity.IDLE:
        return HubState.WORKING
    heal_failed = last_check is not None and last_check.result == "failed"
    problem = db.problem is not None or heal_failed or held_back or store_error
    if problem and not published:
        return HubState.ERROR
    if problem or stale or update_pending or any(s.down for s in servers.values()):
        return HubState.DEGRADED
    if not auto_mode:
        return HubState.PAUSED
    return HubState.HEALTHY


class PersistedState(BaseModel):
    """What survives a restart."""

    auto_mode: bool | None = None
    known_version: str = ""
    last_db_update: datetime | None = None
    last_check: CheckResult | None = None
    recent_events: list[dict[str, Any]] = Field(default_factory=list)


def save_state(path: Path, state: PersistedState) -> None:
    """Write ``state`` atomically: a temp file in the same folder, then os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, state.model_dump_json(indent=2))


def load_state(path: Path) -> PersistedState:
    """The persisted state, or an empty one if the file is missing or damaged."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return PersistedState()
    except OSError as exc:
        log.warning("cannot read state file %s: %s", path, exc)
        return PersistedState()
    try:
        return PersistedState.model_validate(json.loads(raw))
    except (json.JSONDecodeError, ValidationError) as exc:
        log.warning("state file %s is damaged (%s); starting fresh", path, exc)
        return PersistedState()


def status_from_disk(config: Config) -> dict[str, Any]:
    """What ``pdh status`` shows when no agent answers: the persisted state, and what the
    snapshot store serves and holds back."""
    saved = load_state(config.state_file).model_dump(mode="json")
    store = store_of(config)
    published, held = store.current(), store.held_back()
    saved["published"] = published.model_dump(mode="json") if published else None
    saved["held_back"] = held.model_dump(mode="json") if held else None
    saved["freshness"] = assess(config.freshness, published, utcnow()).model_dump(mode="json")
    return saved
