"""The status line people see, chosen by activity and event kind, in both languages."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest

from core.eventlog import EventName
from core.state import Activity, CheckResult, DbStatus, HubState, StatusSnapshot
from core.status_text import CYCLE_EVENTS, OTHER_EVENTS, STATUS_TEXT, status_line
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
        texts = [STATUS_TEXT[kind]] if kind in CYCLE_EVENTS else []
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
    (snap(EventName.DB_SETTLED, activity=Activity.CHECKING), "checking indexes", "인덱스 점검 중"),
    (snap(EventName.INDEXES_HEALED, activity=Activity.CHECKING),
     "copying and verifying the export", "내보내기를 복사하고 검증하는 중"),
    (snap(EventName.DB_CHANGE_DETECTED, activity=Activity.SETTLING),
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
