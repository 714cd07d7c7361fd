"""The words the tray and the toasts show, in Korean and English: ``tr(key, lang)``.

The product's name and the hub's states are the shared words of :mod:`core.words`;
``ui.language = "auto"`` picks Korean when the user's locale is Korean, else English
(:mod:`core.language`).
"""

from __future__ import annotations

from core.language import Language, resolve_language, system_language
from core.words import SHARED, Texts

__all__ = ["TEXTS", "Language", "resolve_language", "system_language", "tr"]

TEXTS = Texts({
    "starting": {"ko": "시작 중", "en": "Starting"},
    "status": {"ko": "상태: {state}", "en": "Status: {state}"},
    "check_now": {"ko": "지금 점검", "en": "Check Now"},
    "auto_mode": {"ko": "자동 모드", "en": "Auto Mode"},
    "open_dashboard": {"ko": "대시보드 열기", "en": "Open Dashboard"},
    "open_api_docs": {"ko": "API 문서 열기", "en": "Open API Docs"},
    "dashboard_server": {"ko": "대시보드 서버", "en": "Dashboard Server"},
    "restart": {"ko": "다시 시작", "en": "Restart"},
    "stop": {"ko": "중지", "en": "Stop"},
    "start": {"ko": "시작", "en": "Start"},
    "open_logs": {"ko": "로그 폴더 열기", "en": "Open Log Folder"},
    "autostart": {"ko": "로그인 시 시작", "en": "Start at Login"},
    "quit": {"ko": "종료", "en": "Quit"},
    "last_update": {"ko": "마지막 DB 업데이트: {at}", "en": "Last DB Update: {at}"},
    "last_check": {"ko": "마지막 인덱스 점검: {at} ({result})",
                  "en": "Last Index Check: {at} ({result})"},
    "next_check": {"ko": "다음 점검: {at}", "en": "Next Check: {at}"},
    "never": {"ko": "없음", "en": "never"},
    "result_ok": {"ko": "정상", "en": "OK"},
    "result_healed": {"ko": "인덱스 {n}개 복구", "en": "{n} restored"},
    "result_stats": {"ko": "통계 갱신", "en": "statistics refreshed"},
    "result_failed": {"ko": "실패", "en": "failed"},
    # toasts
    "toast_healed": {"ko": "ERP 업데이트 후 인덱스를 복구했습니다 ({n}개, {s:.1f}초)",
                    "en": "Indexes restored after an ERP update ({n} indexes, {s:.1f} s)"},
    "toast_check_failed": {"ko": "인덱스 점검 실패: {reason}",
                          "en": "Index check failed: {reason}"},
    "toast_unreadable": {"ko": "데이터베이스를 읽을 수 없습니다: {reason}",
                        "en": "Database unreadable: {reason}"},
    "toast_missing": {"ko": "데이터베이스 파일이 없습니다", "en": "Database missing"},
    "toast_missing_body": {
        "ko": "{path} 파일을 찾을 수 없습니다. 파일이 돌아오면 다시 점검합니다.",
        "en": "{path} was not found. The hub checks again when it returns.",
    },
    "toast_rejected": {"ko": "ERP 내보내기를 보류했습니다 (이전 데이터를 계속 제공): {reason}",
                      "en": "ERP export held back (still serving the last good data): {reason}"},
    "toast_rejected_none": {
        "ko": "ERP 내보내기를 보류했습니다 (아직 제공 중인 데이터 없음): {reason}",
        "en": "ERP export held back (nothing is served yet): {reason}",
    },
    "publish_anyway": {"ko": "보류된 내보내기 게시", "en": "Publish Anyway"},
    "data_as_of": {"ko": "데이터 기준: {at}", "en": "Data as of: {at}"},
    "no_data": {"ko": "게시된 데이터 없음", "en": "No data published yet"},
    "held_back": {"ko": "최신 내보내기 보류됨", "en": "Latest export held back"},
    "overdue": {"ko": "ERP 내보내기 지연", "en": "ERP export overdue"},
    "stale_data": {"ko": "데이터가 오래됨", "en": "Data is old"},
    "toast_restarted": {"ko": "대시보드 서버를 다시 시작했습니다",
                       "en": "Dashboard server restarted"},
    "toast_gave_up": {"ko": "대시보드 서버가 계속 멈춰 재시작을 포기했습니다",
                     "en": "Dashboard server gave up after repeated crashes"},
    "toast_repeat": {"ko": "{text} (최근 {window} 동안 {n}번 더)",
                    "en": "{text} ({n} more in the last {window})"},
    # a tray attached to a hub that runs without one (a service, --headless)
    "attached": {"ko": "실행 중인 허브에 연결됨 (pid {pid})",
                "en": "Attached to the running hub (pid {pid})"},
    "hub_unreachable": {"ko": "허브가 응답하지 않음", "en": "Hub not answering"},
    "close_tray": {"ko": "트레이 닫기 (허브는 계속 실행)",
                  "en": "Close Tray (the hub keeps running)"},
    "hub_refused": {"ko": "허브가 요청을 거부했습니다: {reason}",
                   "en": "The hub refused: {reason}"},
}, base=SHARED)

tr = TEXTS
