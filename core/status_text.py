"""The hub's status line, in Korean and English: one function of the hub's facts, shown
by the tray, the dashboard's panel, ``pdh status``, /hub/status (its ``message``, the
English line) and the hub's log alike.

The line is chosen by what the hub is doing (its :class:`~core.state.Step`), by the
kind of the last event of its check cycle (:class:`~core.eventlog.EventName`) and by the
status's other facts (a problem with the file, a held-back export, an update waiting for
auto mode, ...), with the details from the status itself: a reworded log sentence can
never change what is shown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from core.eventlog import EventName
from core.state import DbProblem, StatusSnapshot, Step
from core.words import SHARED, Language, Texts

__all__ = ["CYCLE_EVENTS", "OTHER_EVENTS", "STATUS_TEXT", "last_cycle_event", "status_key",
           "status_line"]

# Events that end a step of the check cycle: the last of them says where the hub stands.
CYCLE_EVENTS: frozenset[EventName] = frozenset({
    EventName.DB_CHANGE_DETECTED, EventName.DB_SETTLED, EventName.DB_MISSING,
    EventName.DB_UNREADABLE, EventName.CHECK_OK, EventName.INDEXES_HEALED,
    EventName.HEAL_FAILED, EventName.SNAPSHOT_PUBLISHED, EventName.EXPORT_REJECTED,
    EventName.PUBLISH_FAILED,
})
# The rest (servers, freshness, the auto-mode switch) are news of their own: the panel
# lists them and toasts and alerts tell them, but they are not the state of the cycle.
OTHER_EVENTS: frozenset[EventName] = frozenset({
    EventName.EXPORT_OVERDUE, EventName.EXPORT_RESUMED, EventName.SERVER_STARTED,
    EventName.SERVER_CRASHED, EventName.SERVER_GAVE_UP, EventName.AUTO_MODE_CHANGED,
})

# By event kind (the cycle's), or by a situation with no event of its own. A change seen
# or settled is said by the step that follows it (settling, checking) or, at rest, as
# "starting": those two kinds have no line of their own.
STATUS_TEXT = Texts({
    "starting": {"en": "starting", "ko": "시작하는 중"},
    "publishing": {"en": "publishing the held-back export",
                   "ko": "보류된 내보내기를 게시하는 중"},
    "fault": {"en": "internal error; see the log", "ko": "내부 오류: 로그를 확인하세요"},
    "update_pending": {"en": "update detected, auto mode off",
                       "ko": "업데이트 감지됨, 자동 모드 꺼짐"},
    "settling": {"en": "waiting for the ERP to finish writing",
                 "ko": "ERP가 쓰기를 마칠 때까지 기다리는 중"},
    "checking": {"en": "checking indexes", "ko": "인덱스 점검 중"},
    "copying": {"en": "copying and verifying the export",
                "ko": "내보내기를 복사하고 검증하는 중"},
    EventName.DB_MISSING: {"en": "database missing", "ko": "데이터베이스 파일 없음"},
    EventName.DB_UNREADABLE: {"en": "database unreadable: {detail}",
                              "ko": "데이터베이스를 읽을 수 없음: {detail}"},
    EventName.CHECK_OK: {"en": "all indexes in place", "ko": "모든 인덱스 정상"},
    EventName.INDEXES_HEALED: {"en": "indexes restored", "ko": "인덱스 복구됨"},
    EventName.HEAL_FAILED: {"en": "index check failed: {detail}",
                            "ko": "인덱스 점검 실패: {detail}"},
    EventName.SNAPSHOT_PUBLISHED: {"en": "data as of {as_of} published",
                                   "ko": "{as_of} 기준 데이터 게시됨"},
    EventName.EXPORT_REJECTED: {"en": "export held back: {detail}",
                                "ko": "내보내기 보류됨 (검증 실패): {detail}"},
    EventName.PUBLISH_FAILED: {"en": "snapshot failed: {detail}",
                               "ko": "스냅샷을 만들지 못함: {detail}"},
}, base=SHARED)

_BY_RESULT = {"ok": EventName.CHECK_OK, "healed": EventName.INDEXES_HEALED,
              "failed": EventName.HEAL_FAILED}


def last_cycle_event(events: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The newest of ``events`` whose kind is in :data:`CYCLE_EVENTS`."""
    for record in reversed(events):
        if record.get("event") in CYCLE_EVENTS:
            return record
    return None


def status_key(status: StatusSnapshot) -> tuple[str, str]:
    """The key of :data:`STATUS_TEXT` that says where the hub stands, and its detail."""
    last = last_cycle_event(status.recent_events)
    kind = EventName(last["event"]) if last is not None else None
    if status.step is Step.PUBLISHING:
        return "publishing", ""
    if status.update_pending and not status.auto_mode:
        return "update_pending", ""
    if status.step is not Step.IDLE:
        return str(status.step), ""
    if status.fault is not None:
        return "fault", ""
    if status.db.problem is DbProblem.MISSING:
        return EventName.DB_MISSING, ""
    if kind is None and status.last_check is not None:
        kind = _BY_RESULT[status.last_check.result]
    if kind is None or kind in (EventName.DB_CHANGE_DETECTED, EventName.DB_SETTLED):
        return "starting", ""
    if kind is EventName.DB_UNREADABLE:
        return kind, str((last or {}).get("error") or status.db.error or "")
    if kind is EventName.EXPORT_REJECTED:
        held = status.held_back
        return kind, held.reason if held is not None else str((last or {}).get("reason", ""))
    if kind is EventName.PUBLISH_FAILED:
        return kind, status.store_error or str((last or {}).get("error", ""))
    if kind is EventName.HEAL_FAILED:
        check = status.last_check
        return kind, str((last or {}).get("error") or (check.error if check else "") or "")
    return kind, ""


def status_line(status: StatusSnapshot, lang: Language | str) -> str:
    """What the hub is doing or last did, in ``lang`` ("ko", else English)."""
    key, detail = status_key(status)
    as_of = f"{status.published.as_of:%Y-%m-%d %H:%M}" if status.published else "?"
    return STATUS_TEXT(key, "ko" if lang == "ko" else "en", detail=detail or "?", as_of=as_of)
