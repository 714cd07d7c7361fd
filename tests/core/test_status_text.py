"""The status line people see, chosen by activity and event kind, in both languages."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest

from core.eventlog import EventName
from core.state import CheckResult, DbProblem, DbStatus, HubState, StatusSnapshot, Step
from core.status_text import CYCLE_EVENTS, OTHER_EVENTS, STATUS_TEXT, status_key, status_line
from core.store import HeldBack, Published
from dashboard.i18n import event_label
from tests.conftest import await_for, make_config
from tests.core.hubtools import running_hub, until_at_rest, until_event

pytestmark = pytest.mark.anyio

HANGUL = re.compile("[\uac00-\ud7a3]")
AS_OF = datetime(2026, 3, 31, 6, 0, tzinfo=UTC)


def test_every_event_kind_has_korean_and_english_text() -> None:
    assert set(EventName) == CYCLE_EVENTS | OTHER_EVENTS  # a new kind must be placed
    assert not CYCLE_EVENTS & OTHER_EVENTS
    for kind in EventName:
        texts = [STATUS_TEXT.entry(kind)] if kind in STATUS_TEXT else []
        texts.append({"en": event_label(kind, "en"), "ko": event_label(kind, "ko")})
        for text in texts:
            assert HANGUL.search(text["ko"]), (kind, text)
            assert text["en"].isascii() and text["en"] != text["ko"], (kind, text)
            assert text["en"] != str(kind), (kind, text)


def snap(*events: EventName, **kw: Any) -> StatusSnapshot:
    data: dict[str, Any] = {
        "state": HubState.HEALTHY, "message": "(the hub's English, not shown)",
        "db": DbStatus(path="/d/p.db", exists=True),
        "recent_events": [{"event": str(e), "time": "t"} for e in events],
    }
    data.update(kw)
    return StatusSnapshot.model_validate(data)


@pytest.mark.parametrize(("status", "en", "ko"), [
    (snap(), "starting", "시작하는 중"),
    (snap(EventName.CHECK_OK, EventName.SERVER_STARTED),
     "all indexes in place", "모든 인덱스 정상"),
    (snap(EventName.INDEXES_HEALED, EventName.SNAPSHOT_PUBLISHED,
          published={"version": "v", "source_version": "s", "as_of": AS_OF,
                     "published_at": AS_OF, "rows": 1, "file": "v.db"}),
     "data as of 2026-03-31 06:00 published", "2026-03-31 06:00 기준 데이터 게시됨"),
    (snap(EventName.DB_SETTLED, step=Step.CHECKING), "checking indexes", "인덱스 점검 중"),
    (snap(EventName.INDEXES_HEALED, step=Step.COPYING),
     "copying and verifying the export", "내보내기를 복사하고 검증하는 중"),
    (snap(EventName.DB_CHANGE_DETECTED, step=Step.SETTLING),
     "waiting for the ERP to finish writing", "ERP가 쓰기를 마칠 때까지 기다리는 중"),
    (snap(EventName.CHECK_OK, auto_mode=False, update_pending=True),
     "update detected, auto mode off", "업데이트 감지됨, 자동 모드 꺼짐"),
    (snap(EventName.DB_MISSING, db=DbStatus(path="/d/p.db", problem="missing")),
     "database missing", "데이터베이스 파일 없음"),
    (snap(EventName.EXPORT_REJECTED, held_back={"version": "v", "reason": "600 rows",
                                                "at": AS_OF}),
     "export held back: 600 rows", "내보내기 보류됨 (검증 실패): 600 rows"),
    (snap(last_check=CheckResult(at=AS_OF, result="failed", error="locked")),
     "index check failed: locked", "인덱스 점검 실패: locked"),
])
def test_the_line_follows_activity_and_the_last_cycle_event(status: StatusSnapshot, en: str,
                                                            ko: str) -> None:
    assert (status_line(status, "en"), status_line(status, "ko")) == (en, ko)


async def test_a_real_hub_reads_as_it_says(tmp_path: Path, small_db: Path) -> None:
    """A real hub's status, through a publish and a deleted file: the English line is the
    hub's own message, the Korean one its translation."""
    config = make_config(tmp_path)
    async with running_hub(config) as hub:
        await until_event(hub, "snapshot_published")
        await until_at_rest(hub)
        status = hub.status()
        assert status_line(status, "en") == status.message, status.recent_events
        assert status_line(status, "ko").endswith("기준 데이터 게시됨")
        await anyio.to_thread.run_sync(small_db.unlink)
        await until_event(hub, "db_missing")
        await await_for(lambda: not hub.busy, 10, message="the hub idle")
        status = hub.status()
        assert status_line(status, "en") == status.message == "database missing"
        assert status_line(status, "ko") == "데이터베이스 파일 없음"


# --- every case, generated over the facts ---------------------------------------------

HELD = {"version": "v", "reason": "row count fell 2000 -> 600", "at": AS_OF}
PUBLISHED = {"version": "v", "source_version": "s", "as_of": AS_OF, "published_at": AS_OF,
             "rows": 1, "file": "v.db"}
DETAILS = {"error": "index idx_x: table t is missing", "reason": HELD["reason"]}
FACTS: dict[str, tuple[Any, ...]] = {
    "step": tuple(Step),
    "auto_mode": (True, False),
    "update_pending": (False, True),
    "problem": (None, *DbProblem),
    "last_check": (None, "ok", "healed", "failed"),
    "held_back": (None, HELD),
    "store_error": (None, "disk full; still serving the last good data"),
    "published": (None, PUBLISHED),
    "last_event": (None, *sorted(CYCLE_EVENTS)),
    "fault": (None, "KeyError: 'x'"),
}
BUSY_KEYS = {"settling", "checking", "copying", "publishing", "update_pending"}


def every_status() -> Iterator[StatusSnapshot]:
    """A status for each combination of the facts the line depends on."""
    names = list(FACTS)
    for values in itertools.product(*FACTS.values()):
        f = dict(zip(names, values, strict=True))
        if f["last_event"] is EventName.SNAPSHOT_PUBLISHED and not f["published"]:
            continue  # what was published stays published
        last = f["last_event"]
        events = [{"event": str(last), "time": "t", **DETAILS}] if last else []
        events.append({"event": "server_started", "time": "t"})  # news, not the cycle's state
        check = (CheckResult(at=AS_OF, result=f["last_check"],
                             error=DETAILS["error"] if f["last_check"] == "failed" else None)
                 if f["last_check"] else None)
        yield StatusSnapshot.model_construct(
            state=HubState.HEALTHY, message="", step=f["step"], activity=f["step"].activity,
            auto_mode=f["auto_mode"], update_pending=f["update_pending"],
            db=DbStatus.model_construct(path="/d/p.db", exists=True, problem=f["problem"],
                                        error=DETAILS["error"] if f["problem"] else None),
            last_check=check,
            held_back=HeldBack.model_validate(f["held_back"]) if f["held_back"] else None,
            store_error=f["store_error"],
            published=Published.model_validate(f["published"]) if f["published"] else None,
            recent_events=events, fault=f["fault"],
        )


def test_every_case_reads_in_both_languages() -> None:
    """Over every combination of the facts: one key, its Korean and English texts with
    their details filled, a busy hub never read as at rest (nor the other way round), and
    every text of the table used by some case."""
    used: set[str] = set()
    for status in every_status():
        key, detail = status_key(status)
        used.add(key)
        en, ko = status_line(status, "en"), status_line(status, "ko")
        assert en.isascii() and HANGUL.search(ko), (en, ko)
        assert "?" not in en + ko, (key, en, ko, status)  # every detail known is shown
        if "{detail}" in STATUS_TEXT.entry(key)["en"]:
            assert detail and detail in en and detail in ko, (key, status)
        if status.step is Step.IDLE:
            assert key not in BUSY_KEYS - {"update_pending"}, (key, status)
        else:  # before its first look, the hub is starting
            assert key in BUSY_KEYS | {"starting"}, (key, status)
    assert used == set(STATUS_TEXT), set(STATUS_TEXT) ^ used  # no text left unused
