"""The words the tray and the toasts show, in Korean and English.

``ui.language = "auto"`` picks Korean when the user's locale is Korean, else English.
"""

from __future__ import annotations

from core.language import Language, resolve_language, system_language
from core.state import HubState

__all__ = ["Language", "resolve_language", "system_language", "t"]

APP_TITLE = {"ko": "생산 데이터 허브", "en": "Production Data Hub"}

STATE_LABELS: dict[str, dict[HubState, str]] = {
    "ko": {
        HubState.HEALTHY: "정상",
        HubState.WORKING: "작업 중",
        HubState.DEGRADED: "주의",
        HubState.ERROR: "오류",
        HubState.PAUSED: "일시 중지",
    },
    "en": {
        HubState.HEALTHY: "Healthy",
        HubState.WORKING: "Working",
        HubState.DEGRADED: "Degraded",
        HubState.ERROR: "Error",
        HubState.PAUSED: "Paused",
    },
}

TEXT: dict[str, dict[str, str]] = {
    "ko": {
        "starting": "시작 중",
        "status": "상태: {state}",
        "check_now": "지금 점검",
        "auto_mode": "자동 모드",
        "open_dashboard": "대시보드 열기",
        "open_api_docs": "API 문서 열기",
        "dashboard_server": "대시보드 서버",
        "restart": "다시 시작",
        "stop": "중지",
        "start": "시작",
        "open_logs": "로그 폴더 열기",
        "autostart": "로그인 시 시작",
        "quit": "종료",
        "last_update": "마지막 DB 업데이트: {at}",
        "last_check": "마지막 인덱스 점검: {at} ({result})",
        "next_check": "다음 점검: {at}",
        "never": "없음",
        "result_ok": "정상",
        "result_healed": "인덱스 {n}개 복구",
        "result_stats": "통계 갱신",
        "result_failed": "실패",
        # toasts
        "toast_healed": "ERP 업데이트 후 인덱스를 복구했습니다 ({n}개, {s:.1f}초)",
        "toast_check_failed": "인덱스 점검 실패: {reason}",
        "toast_unreadable": "데이터베이스를 읽을 수 없습니다: {reason}",
        "toast_missing": "데이터베이스 파일이 없습니다",
        "toast_missing_body": "{path} 파일을 찾을 수 없습니다. 파일이 돌아오면 다시 점검합니다.",
        "toast_rejected": "ERP 내보내기를 보류했습니다 (이전 데이터를 계속 제공): {reason}",
        "toast_rejected_none": "ERP 내보내기를 보류했습니다 (아직 제공 중인 데이터 없음): {reason}",
        "publish_anyway": "보류된 내보내기 게시",
        "data_as_of": "데이터 기준: {at}",
        "no_data": "게시된 데이터 없음",
        "held_back": "최신 내보내기 보류됨",
        "overdue": "ERP 내보내기 지연",
        "stale_data": "데이터가 오래됨",
        "toast_restarted": "대시보드 서버를 다시 시작했습니다",
        "toast_gave_up": "대시보드 서버가 계속 멈춰 재시작을 포기했습니다",
        "toast_repeat": "{text} (최근 {window} 동안 {n}번 더)",
        # a tray attached to a hub that runs without one (a service, --headless)
        "attached": "실행 중인 허브에 연결됨 (pid {pid})",
        "hub_unreachable": "허브가 응답하지 않음",
        "close_tray": "트레이 닫기 (허브는 계속 실행)",
        "hub_refused": "허브가 요청을 거부했습니다: {reason}",
    },
    "en": {
        "starting": "Starting",
        "status": "Status: {state}",
        "check_now": "Check Now",
        "auto_mode": "Auto Mode",
        "open_dashboard": "Open Dashboard",
        "open_api_docs": "Open API Docs",
        "dashboard_server": "Dashboard Server",
        "restart": "Restart",
        "stop": "Stop",
        "start": "Start",
        "open_logs": "Open Log Folder",
        "autostart": "Start at Login",
        "quit": "Quit",
        "last_update": "Last DB Update: {at}",
        "last_check": "Last Index Check: {at} ({result})",
        "next_check": "Next Check: {at}",
        "never": "never",
        "result_ok": "OK",
        "result_healed": "{n} restored",
        "result_stats": "statistics refreshed",
        "result_failed": "failed",
        "toast_healed": "Indexes restored after an ERP update ({n} indexes, {s:.1f} s)",
        "toast_check_failed": "Index check failed: {reason}",
        "toast_unreadable": "Database unreadable: {reason}",
        "toast_missing": "Database missing",
        "toast_missing_body": "{path} was not found. The hub checks again when it returns.",
        "toast_rejected": "ERP export held back (still serving the last good data): {reason}",
        "toast_rejected_none": "ERP export held back (nothing is served yet): {reason}",
        "publish_anyway": "Publish Anyway",
        "data_as_of": "Data as of: {at}",
        "no_data": "No data published yet",
        "held_back": "Latest export held back",
        "overdue": "ERP export overdue",
        "stale_data": "Data is old",
        "toast_restarted": "Dashboard server restarted",
        "toast_gave_up": "Dashboard server gave up after repeated crashes",
        "toast_repeat": "{text} ({n} more in the last {window})",
        "attached": "Attached to the running hub (pid {pid})",
        "hub_unreachable": "Hub not answering",
        "close_tray": "Close Tray (the hub keeps running)",
        "hub_refused": "The hub refused: {reason}",
    },
}


def t(lang: Language, key: str, **values: object) -> str:
    """The text ``key`` in ``lang``, formatted with ``values``."""
    return TEXT[lang][key].format(**values)
